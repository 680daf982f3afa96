/**
 * Certificate authorities made in memory (@peculiar/x509 on WebCrypto): a trust domain's root,
 * intermediates, X509-SVIDs and TLS server certificates. The demo makes its two zones with it,
 * and the tests make every certificate shape they need with it, broken ones included (CA leaf,
 * missing or wrong keyUsage, path length, critical extensions, empty subject, weak keys).
 * Tooling only — never the request path (@peculiar/x509 takes milliseconds per certificate).
 *
 *   const ca = await MemoryCA.create('zone-a.test', { keyType: 'RSA' });
 *   const svid = await (await ca.intermediate()).issue('spiffe://zone-a.test/web');
 *   set.set(ca.bundle());
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { generateKeyPairSync, X509Certificate, webcrypto } from 'node:crypto';
import { Bundle } from '../bundle/bundle.js';
import { TrustDomain } from '../spiffe/id.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * The key of a certificate; a CA signs with its own (ECDSA with SHA-256 or SHA-384, RSASSA-PKCS1
 * or RSA-PSS with SHA-256, Ed25519). 'RSA-1024' and 'secp256k1' are keys zonegate must refuse;
 * secp256k1 only for leaves (WebCrypto cannot sign with it, so it has no CryptoKey).
 */
export type KeyType = 'P-256' | 'P-384' | 'Ed25519' | 'RSA' | 'RSA-PSS' | 'RSA-1024' | 'secp256k1';
export const KU = x509.KeyUsageFlags;
const DAY = 86_400_000;
type SigningAlgorithm = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['signingAlgorithm'];

/** Options shared by CA and leaf certificates. */
export interface CertOptions {
  /** Default: the issuing CA's key type (P-256 for a root). */
  readonly keyType?: KeyType;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** KeyUsageFlags; null leaves the extension out. Default: CA keyCertSign|cRLSign, leaf digitalSignature. */
  readonly keyUsage?: number | null;
  /** basicConstraints cA; default true for CAs, false for leaves (a "CA" that is not one, a leaf that is). */
  readonly isCa?: boolean;
  /** basicConstraints pathLenConstraint (CA only). */
  readonly pathLength?: number;
  /** Leave basicConstraints out entirely. */
  readonly noBasicConstraints?: boolean;
  /** Distinguished name; '' for an empty subject. */
  readonly subject?: string;
  readonly sanCritical?: boolean;
  readonly dns?: readonly string[];
  readonly ips?: readonly string[];
  /** extendedKeyUsage purposes, e.g. ['serverAuth', 'clientAuth']; none by default. */
  readonly extKeyUsage?: readonly (keyof typeof x509.ExtendedKeyUsage)[];
  /** More extensions, e.g. an unknown critical one. */
  readonly extensions?: readonly x509.Extension[];
  /**
   * Certify this SubjectPublicKeyInfo (DER) instead of a generated key, e.g. an RSA key with an
   * exponent no key generator makes. The certificate's holder then cannot sign with it.
   */
  readonly spki?: Uint8Array;
}

export interface CaOptions extends CertOptions {
  /** URI SAN of the CA; default spiffe://<td>; null for none. */
  readonly uri?: string | null;
  /**
   * The clock (ms) default validity windows are built around, inherited by everything this CA
   * issues. Default: the time of each issue.
   */
  readonly at?: number;
  /** subjectKeyIdentifier on this CA, authorityKeyIdentifier on what it issues (inherited by intermediates). */
  readonly keyIdentifiers?: boolean;
  /**
   * Leaves share one key per key type with every other CA made so (generating an RSA key costs
   * 100+ ms). Only where nothing tells two leaves apart by their key; CA keys are always fresh
   * (two CAs sharing a key would vouch for each other). Inherited by intermediates.
   */
  readonly sharedLeafKeys?: boolean;
}

export interface IssueOptions extends CertOptions {
  /** URI SANs after the SPIFFE ID (a second one breaks the one-URI rule). */
  readonly extraUris?: readonly string[];
}

/** An issued certificate: PEM for files and requests, the key for signing. */
export interface Issued {
  readonly spiffeId?: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** The certificate followed by its issuers up to (not including) the root. */
  readonly chainPem: string;
  readonly cert: X509Certificate;
  readonly der: Buffer;
  /** The private key (none for secp256k1: keyPem is the key then). */
  readonly key: CryptoKey;
}

/** An X509-SVID: an issued certificate with its SPIFFE ID. */
export type IssuedSvid = Issued & { readonly spiffeId: string };

interface Keys {
  readonly publicKey: CryptoKey | ArrayBuffer;
  readonly privateKey?: CryptoKey;
  readonly keyPem?: string;
}

const RSA = { modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' };
const GENERATE: Record<Exclude<KeyType, 'secp256k1'>, Record<string, unknown>> = {
  'P-256': { name: 'ECDSA', namedCurve: 'P-256' },
  'P-384': { name: 'ECDSA', namedCurve: 'P-384' },
  Ed25519: { name: 'Ed25519' },
  RSA: { name: 'RSASSA-PKCS1-v1_5', ...RSA },
  'RSA-PSS': { name: 'RSA-PSS', ...RSA },
  'RSA-1024': { name: 'RSASSA-PKCS1-v1_5', ...RSA, modulusLength: 1024 },
};

async function generate(type: KeyType): Promise<Keys> {
  if (type === 'secp256k1') {
    const kp = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    const spki = kp.publicKey.export({ format: 'der', type: 'spki' });
    return { publicKey: new Uint8Array(spki).buffer, keyPem: kp.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
  }
  return (await webcrypto.subtle.generateKey(GENERATE[type] as never, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/** A key pair that can sign certificates (every type but secp256k1). */
async function signingKeys(type: KeyType): Promise<CryptoKeyPair> {
  const keys = await generate(type);
  if (!keys.privateKey) throw new Error(`pki: a ${type} key cannot sign certificates here`);
  return keys as CryptoKeyPair;
}

/** How a CA with this key signs. */
function signingAlgorithm(key: CryptoKey): SigningAlgorithm {
  const alg = key.algorithm as { name: string; namedCurve?: string };
  if (alg.name === 'ECDSA') return { name: 'ECDSA', hash: alg.namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256' } as SigningAlgorithm;
  if (alg.name === 'RSA-PSS') return { name: 'RSA-PSS', hash: 'SHA-256', saltLength: 32 } as SigningAlgorithm;
  if (alg.name === 'RSASSA-PKCS1-v1_5') return { name: alg.name, hash: 'SHA-256' } as SigningAlgorithm;
  return { name: alg.name } as SigningAlgorithm;
}

async function pemKey(k: Keys): Promise<string> {
  if (k.keyPem) return k.keyPem;
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', k.privateKey!));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

const pem = (c: x509.X509Certificate) => c.toString('pem') + '\n';
const unique = () => Math.random().toString(36).slice(2, 8);

async function extensions(o: CertOptions, uris: readonly string[], isCa: boolean, ids?: { subject?: CryptoKey | ArrayBuffer; issuer?: CryptoKey }): Promise<x509.Extension[]> {
  const ext: x509.Extension[] = [];
  if (!o.noBasicConstraints) ext.push(new x509.BasicConstraintsExtension(isCa, isCa ? o.pathLength : undefined, true));
  const ku = o.keyUsage === undefined ? (isCa ? KU.keyCertSign | KU.cRLSign : KU.digitalSignature) : o.keyUsage;
  if (ku !== null) ext.push(new x509.KeyUsagesExtension(ku, true));
  if (o.extKeyUsage) ext.push(new x509.ExtendedKeyUsageExtension(o.extKeyUsage.map((name) => x509.ExtendedKeyUsage[name])));
  const names: x509.JsonGeneralName[] = [
    ...uris.map((value) => ({ type: 'url' as const, value })),
    ...(o.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(o.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length > 0) ext.push(new x509.SubjectAlternativeNameExtension(names, o.sanCritical ?? false));
  if (ids?.subject && isCa) ext.push(await x509.SubjectKeyIdentifierExtension.create(ids.subject as CryptoKey));
  if (ids?.issuer) ext.push(await x509.AuthorityKeyIdentifierExtension.create(ids.issuer));
  return [...ext, ...(o.extensions ?? [])];
}

async function issued(cert: x509.X509Certificate, keys: Keys, chainPem: string, spiffeId: string | undefined): Promise<Issued> {
  const der = Buffer.from(cert.rawData);
  return { ...(spiffeId ? { spiffeId } : {}), certPem: pem(cert), keyPem: await pemKey(keys), chainPem, cert: new X509Certificate(der), der, key: keys.privateKey as CryptoKey };
}

interface Inherited {
  readonly at: number | undefined;
  readonly keyIdentifiers: boolean;
  readonly sharedLeafKeys: boolean;
}

/** The leaf keys of CAs made with sharedLeafKeys, one per key type. */
const sharedLeafKeys = new Map<KeyType, Promise<Keys>>();

/** A CA held in memory: a root, or an intermediate below one. */
export class MemoryCA {
  /** The root CA at the top of this CA's chain (itself for a root). */
  readonly root: MemoryCA;
  /** This CA's certificate (node:crypto). */
  readonly cert: X509Certificate;

  private constructor(
    readonly trustDomain: string,
    readonly keyType: KeyType,
    private readonly x: x509.X509Certificate,
    readonly keys: CryptoKeyPair,
    private readonly inherited: Inherited,
    /** PEMs of this CA and the intermediates above it, excluding the root (empty for a root). */
    private readonly above: readonly string[],
    root?: MemoryCA,
  ) {
    this.root = root ?? this;
    this.cert = new X509Certificate(Buffer.from(x.rawData));
  }

  /** A self-signed root CA for `trustDomain` (URI SAN spiffe://<td> unless `uri` says otherwise). */
  static async create(trustDomain: string, o: CaOptions = {}): Promise<MemoryCA> {
    const keyType = o.keyType ?? 'P-256';
    const keys = await signingKeys(keyType);
    const uri = o.uri === undefined ? `spiffe://${trustDomain}` : o.uri;
    const at = o.at ?? Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: o.subject ?? `CN=${trustDomain} root ${unique()}`,
      keys,
      notBefore: o.notBefore ?? new Date(at - 10 * DAY),
      notAfter: o.notAfter ?? new Date(at + 365 * DAY),
      signingAlgorithm: signingAlgorithm(keys.privateKey),
      extensions: await extensions(o, uri ? [uri] : [], o.isCa ?? true, o.keyIdentifiers ? { subject: keys.publicKey } : undefined),
    });
    const inherited = { at: o.at, keyIdentifiers: o.keyIdentifiers ?? false, sharedLeafKeys: o.sharedLeafKeys ?? false };
    return new MemoryCA(trustDomain, keyType, cert, keys, inherited, []);
  }

  /** This CA's certificate, PEM (for a root: what its trust domain's bundle holds). */
  get certPem(): string {
    return pem(this.x);
  }

  /** A Bundle for this CA's trust domain holding its root. */
  bundle(): Bundle {
    return new Bundle(TrustDomain.parse(this.trustDomain), { x509Authorities: [this.root.cert] });
  }

  private async sign(o: CertOptions, uris: readonly string[], publicKey: CryptoKey | ArrayBuffer, isCa: boolean, defaultSubject: string) {
    const at = this.inherited.at ?? Date.now();
    const ids = this.inherited.keyIdentifiers ? { subject: publicKey, issuer: this.keys.publicKey } : undefined;
    return x509.X509CertificateGenerator.create({
      subject: o.subject ?? defaultSubject,
      issuer: this.x.subject,
      publicKey: o.spki ?? publicKey,
      signingKey: this.keys.privateKey,
      notBefore: o.notBefore ?? new Date(at - (isCa ? 5 : 1) * DAY),
      notAfter: o.notAfter ?? new Date(at + (isCa ? 180 : 30) * DAY),
      signingAlgorithm: signingAlgorithm(this.keys.privateKey),
      extensions: await extensions(o, uris, isCa, ids),
    });
  }

  /** An intermediate CA signed by this CA (isCa: false builds a "CA" that is not one). */
  async intermediate(o: CaOptions = {}): Promise<MemoryCA> {
    const keyType = o.keyType ?? this.keyType;
    const keys = await signingKeys(keyType);
    const uri = o.uri === undefined ? `spiffe://${this.trustDomain}` : o.uri;
    const cert = await this.sign(o, uri ? [uri] : [], keys.publicKey, o.isCa ?? true, `CN=${this.trustDomain} intermediate ${unique()}`);
    const inherited = { ...this.inherited, ...(o.at === undefined ? {} : { at: o.at }) };
    return new MemoryCA(this.trustDomain, keyType, cert, keys, inherited, [pem(cert).trim(), ...this.above], this.root);
  }

  private leafKeys(type: KeyType): Promise<Keys> {
    if (!this.inherited.sharedLeafKeys) return generate(type);
    let keys = sharedLeafKeys.get(type);
    if (!keys) sharedLeafKeys.set(type, (keys = generate(type)));
    return keys;
  }

  /**
   * An X509-SVID for `spiffeId` (a full spiffe:// ID; undefined for a certificate without one),
   * in any shape the options describe. Signed whatever the ID's trust domain says: a CA forging
   * another trust domain's ID is one of the shapes.
   */
  issue(spiffeId: string, o?: IssueOptions): Promise<IssuedSvid>;
  issue(spiffeId: string | undefined, o?: IssueOptions): Promise<Issued>;
  async issue(spiffeId: string | undefined, o: IssueOptions = {}): Promise<Issued> {
    const keys = await this.leafKeys(o.keyType ?? this.keyType);
    const uris = [...(spiffeId === undefined ? [] : [spiffeId]), ...(o.extraUris ?? [])];
    const cert = await this.sign(o, uris, keys.publicKey, o.isCa ?? false, `CN=svid ${unique()}`);
    return issued(cert, keys, [pem(cert).trim(), ...this.above].join('\n') + '\n', spiffeId);
  }

  /** A TLS server certificate for loopback (DNS localhost, IP 127.0.0.1), optionally with a SPIFFE ID. */
  server(spiffeId?: string, o: IssueOptions = {}): Promise<Issued> {
    return this.issue(spiffeId, { dns: ['localhost'], ips: ['127.0.0.1'], ...o });
  }
}

/** A leaf signed by its own key, carrying a valid-looking SPIFFE ID (and a digitalSignature KU). */
export async function selfSignedSvid(spiffeId: string, o: IssueOptions & { at?: number } = {}): Promise<IssuedSvid> {
  const keys = await signingKeys(o.keyType ?? 'P-256');
  const at = o.at ?? Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: o.subject ?? 'CN=self-signed',
    keys,
    notBefore: o.notBefore ?? new Date(at - DAY),
    notAfter: o.notAfter ?? new Date(at + DAY),
    signingAlgorithm: signingAlgorithm(keys.privateKey),
    extensions: await extensions(o, [spiffeId, ...(o.extraUris ?? [])], o.isCa ?? false),
  });
  return (await issued(cert, keys, pem(cert), spiffeId)) as IssuedSvid;
}
