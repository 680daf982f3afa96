/**
 * Loads an X509-SVID with its private key (zonegate's own identity, as SPIRE's spiffe-helper,
 * cert-manager or a mesh write it): certificates and key from PEM or DER, in one file or two,
 * and checks that they belong together. Tooling and startup only; not the request path.
 */
import { createPrivateKey, createPublicKey, type KeyObject, type X509Certificate } from 'node:crypto';
import { ZonegateError } from '../errors.js';
import { certInfo } from '../cert/certinfo.js';
import { parseCertificates } from '../cert/parse.js';
import { pemBlocks } from '../cert/pem.js';
import { SpiffeId } from '../spiffe/id.js';

export interface LocalSvid {
  readonly id: SpiffeId;
  /** leaf first */
  readonly chain: readonly X509Certificate[];
  readonly key: KeyObject;
  readonly certPem: string;
  readonly keyPem: string;
}

const fail = (msg: string): never => {
  throw new ZonegateError('ERR_SVID_MALFORMED', `x509svid: ${msg}`);
};

function parseKey(input: Buffer): KeyObject {
  const text = input.toString('utf8');
  if (input[0] === 0x30) {
    // DER: PKCS#8, or the older PKCS#1 (RSA) and SEC1 (EC) structures
    for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
      try {
        return createPrivateKey({ key: input, format: 'der', type });
      } catch {
        // try the next structure
      }
    }
    return fail('cannot parse DER encoded private key');
  }
  const blocks = pemBlocks(text);
  if (blocks.length === 0) fail('cannot parse PEM encoded private key: no PEM blocks found');
  const keyBlock = blocks.find((b) => b.label.endsWith('PRIVATE KEY'));
  if (!keyBlock) return fail('private key validation failed: no private key found');
  try {
    return createPrivateKey(`-----BEGIN ${keyBlock.label}-----\n${keyBlock.body.trim()}\n-----END ${keyBlock.label}-----\n`);
  } catch (err) {
    return fail(`cannot parse PEM encoded private key: ${(err as Error).message}`);
  }
}

/** Parses and checks an SVID and its key. Both arguments may be the same combined PEM file. */
export function loadX509Svid(certs: Buffer, key: Buffer): LocalSvid {
  const chain = parseCertificates(certs);
  const leaf = chain[0]!;
  const uris = certInfo(leaf).uris;
  if (uris.length !== 1) fail('certificate validation failed: leaf must have exactly one URI SAN');
  const id = SpiffeId.tryParse(uris[0]!);
  if (!id || id.isRoot) return fail('certificate validation failed: leaf URI SAN is not a SPIFFE ID with a path');
  const privateKey = parseKey(key);
  const pub = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  if (!pub.equals(leaf.publicKey.export({ format: 'der', type: 'spki' })))
    fail('private key validation failed: leaf certificate does not match private key');
  return {
    id,
    chain,
    key: privateKey,
    certPem: chain.map((c) => c.toString()).join(''),
    keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}
