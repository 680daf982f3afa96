/**
 * Certificate signatures checked on the libuv thread pool. X509Certificate.verify() has no
 * asynchronous form, so the signed bytes, the algorithm and the signature are read from the DER
 * and handed to node:crypto's callback `verify()`: the same OpenSSL check, off the event loop.
 * What OpenSSL's X509_verify also requires is required here: the signature algorithm inside the
 * signed part equals the outer one, and the BIT STRING has no unused bits. A signature this
 * module has no exact form for (RSASSA-PSS with an MGF1 hash other than its hash, as Go's
 * crypto/x509 also refuses, or parameters it cannot read) is refused by the path search before
 * any check (signatureCheckable): left to the synchronous check, it let a caller put every
 * signature check of a chain back on the event loop.
 */
import { verify as cryptoVerify, constants, type X509Certificate } from 'node:crypto';
import { DIGESTS, MGF1, RSA_PSS, SIGNATURE_ALGORITHMS } from './algorithms.js';
import { children, int, oid, readTlv } from './der.js';

interface Signed {
  readonly tbs: Buffer;
  readonly signature: Buffer;
  readonly hash: string | null;
  readonly pss?: { readonly saltLength: number };
}

/** RSASSA-PSS-params: the hash, the MGF1 hash and the salt length (RFC 4055 defaults: SHA-1, 20). */
function pssParams(der: Buffer, alg: ReturnType<typeof readTlv>): { hash: string; saltLength: number } | undefined {
  const parts = children(der, alg);
  const params = parts[1]?.tag === 0x30 ? children(der, parts[1]) : [];
  let hash: string | undefined;
  let mgfHash: string | undefined;
  let saltLength = 20;
  for (const p of params) {
    const inner = children(der, p)[0];
    if (!inner) return undefined;
    if (p.tag === 0xa0) hash = DIGESTS.get(oid(der, children(der, inner)[0]!));
    else if (p.tag === 0xa1) {
      const [mgfOid, mgfAlg] = children(der, inner);
      if (!mgfOid || oid(der, mgfOid) !== MGF1 || !mgfAlg) return undefined;
      mgfHash = DIGESTS.get(oid(der, children(der, mgfAlg)[0]!));
    } else if (p.tag === 0xa2) saltLength = int(der, inner);
    // OpenSSL refuses any trailerField but 1; an unknown field has no exact form either
    else if (p.tag !== 0xa3 || int(der, inner) !== 1) return undefined;
  }
  // SHA-1 defaults are refused as signatures anyway; a mismatched MGF1 hash has no exact form here
  // (such a certificate is refused before any check, svid/x509.ts)
  if (!hash || (mgfHash ?? 'sha1') !== hash) return undefined;
  return { hash, saltLength };
}

const parsed = new WeakMap<X509Certificate, Signed | null>();

/** The signed part, signature and algorithm of a certificate; null when there is no exact async form. */
function signed(cert: X509Certificate): Signed | null {
  let s = parsed.get(cert);
  if (s !== undefined) return s;
  s = null;
  try {
    const der = cert.raw;
    const top = readTlv(der, 0);
    const [tbsTlv, algTlv, sigTlv] = children(der, top);
    if (tbsTlv && algTlv && sigTlv && sigTlv.tag === 0x03 && der[sigTlv.start] === 0) {
      const fields = children(der, tbsTlv);
      const at = fields[0]?.tag === 0xa0 ? 2 : 1;
      const innerAlg = fields[at];
      // the algorithm identifiers, tag and length included, must be the same bytes (TLVs are
      // contiguous: each starts where the one before it ends)
      const outerBytes = der.subarray(tbsTlv.end, algTlv.end);
      const innerBytes = innerAlg ? der.subarray(fields[at - 1]!.end, innerAlg.end) : undefined;
      if (innerBytes && outerBytes.equals(innerBytes)) {
        const id = oid(der, children(der, algTlv)[0]!);
        const tbs = der.subarray(top.start, tbsTlv.end);
        const signature = der.subarray(sigTlv.start + 1, sigTlv.end);
        const alg = SIGNATURE_ALGORITHMS.get(id); // RSASSA-PSS is keyed with its hash: never found here
        if (alg) s = { tbs, signature, hash: alg.hash };
        else if (id === RSA_PSS) {
          const p = pssParams(der, algTlv);
          if (p) s = { tbs, signature, hash: p.hash, pss: { saltLength: p.saltLength } };
        }
      }
    }
  } catch {
    s = null;
  }
  parsed.set(cert, s);
  return s;
}

/** Can `cert`'s signature be checked here (and so be accepted at all)? */
export function signatureCheckable(cert: X509Certificate): boolean {
  return signed(cert) !== null;
}

/**
 * Does `issuer`'s key verify the signature on `child`? On the thread pool; undefined when it has
 * no exact form here (the chain is then refused before any check, see signatureCheckable).
 */
export function certificateSignatureAsync(child: X509Certificate, issuer: X509Certificate): Promise<boolean> | undefined {
  const s = signed(child);
  if (!s) return undefined;
  const key = s.pss ? { key: issuer.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: s.pss.saltLength } : { key: issuer.publicKey };
  return new Promise((resolve) => {
    try {
      cryptoVerify(s.hash, s.tbs, key, s.signature, (err, ok) => resolve(!err && ok));
    } catch {
      resolve(false);
    }
  });
}
