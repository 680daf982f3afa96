/**
 * Inputs the fuzzers found, kept as plain tests so they stay fixed whatever the seed.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBundle } from '../../src/bundle/bundle.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { BundleSet } from '../../src/bundle/set.js';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { parseCertificates } from '../../src/cert/parse.js';
import { X509SvidVerifier } from '../../src/svid/verifier.js';
import { BUNDLE_LIMITS, VERIFIER_LIMITS } from '../helpers/limits.js';

/** The example root with its key algorithm OID (id-ecPublicKey) changed: OpenSSL parses it, but cannot decode the key. */
function undecodableKeyRoot(): Buffer {
  const der = Buffer.from(new X509Certificate(readFileSync(join(EXAMPLES_DIR, 'certs', 'zone-a.root.pem'))).raw);
  const at = der.indexOf(Buffer.from('06072a8648ce3d0201', 'hex'));
  der[at + 8] = 0x09;
  return der;
}

describe('fuzzer findings', () => {
  it('a certificate whose public key cannot be decoded is malformed at parse time, not an internal error later', () => {
    const der = undecodableKeyRoot();
    expect(() => new X509Certificate(der)).not.toThrow(); // what made it slip through
    expect(() => parseCertificates(der)).toThrow(expect.objectContaining({ code: 'ERR_SVID_MALFORMED' }));
    expect(() => parseBundle(der, TrustDomain.parse('zone-a.example'), BUNDLE_LIMITS)).toThrow(expect.objectContaining({ code: 'ERR_BUNDLE_INVALID' }));
    // as a peer certificate: a deny with a reason, not an exception
    const pem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;
    expect(new X509SvidVerifier(new BundleSet(), VERIFIER_LIMITS).verifyPem(pem)).toMatchObject({ ok: false, code: 'ERR_SVID_MALFORMED' });
  });

  it('a config with an unresolved YAML alias, or an alias bomb, is a ConfigError (not an exception from the YAML library)', () => {
    expect(() => parseConfig('*!', 'c.yaml', '.')).toThrow(ConfigError);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...Array.from({ length: 8 }, (_, i) => `${'bcdefghi'[i]}: &${'bcdefghi'[i]} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`)].join('\n');
    expect(() => parseConfig(bomb, 'c.yaml', '.')).toThrow(/c\.yaml:1: .*alias/i);
  });
});
