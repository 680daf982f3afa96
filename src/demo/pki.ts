/**
 * The demo's certificate authorities, made in memory for one run: a root CA per trust domain and
 * the X509-SVIDs it issues (ECDSA P-256). Tooling only — never the request path (@peculiar/x509
 * takes milliseconds per certificate).
 */
import 'reflect-metadata'; // @peculiar/x509 2.x needs a Reflect metadata polyfill
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const KEY_ALG = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN_ALG = { name: 'ECDSA', hash: 'SHA-256' } as const;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** An issued X509-SVID: PEM for files and requests, the key for minting. */
export interface DemoSvid {
  readonly spiffeId: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface SvidOptions {
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

const serial = () => randomBytes(16).toString('hex').replace(/^[89a-f]/, '1');

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function pkcs8Pem(kp: CryptoKeyPair): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', kp.privateKey));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** A trust domain's root CA. */
export class DemoCA {
  private constructor(
    readonly trustDomain: string,
    private readonly cert: x509.X509Certificate,
    private readonly keys: CryptoKeyPair,
  ) {}

  /** A self-signed root for `trustDomain`, valid from yesterday for a year. */
  static async create(trustDomain: string, subject: string): Promise<DemoCA> {
    const keys = await keyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: subject,
      keys,
      notBefore: new Date(Date.now() - DAY),
      notAfter: new Date(Date.now() + 365 * DAY),
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new DemoCA(trustDomain, cert, keys);
  }

  /** The root certificate, PEM: what this trust domain's bundle holds. */
  get rootPem(): string {
    return `${this.cert.toString('pem')}\n`;
  }

  /**
   * An X509-SVID for `spiffeId`, signed by this CA whatever the ID's trust domain says (the demo
   * forges one that way). Valid from an hour ago for a day unless told otherwise.
   */
  async issue(spiffeId: string, o: SvidOptions = {}): Promise<DemoSvid> {
    const kp = await keyPair();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `O=zonegate demo, CN=${spiffeId.slice(spiffeId.lastIndexOf('/') + 1)}`,
      issuer: this.cert.subject,
      publicKey: kp.publicKey,
      signingKey: this.keys.privateKey,
      notBefore: o.notBefore ?? new Date(Date.now() - HOUR),
      notAfter: o.notAfter ?? new Date(Date.now() + DAY),
      signingAlgorithm: SIGN_ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
      ],
    });
    return { spiffeId, certPem: `${cert.toString('pem')}\n`, keyPem: await pkcs8Pem(kp) };
  }
}
