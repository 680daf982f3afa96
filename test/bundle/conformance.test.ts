/**
 * The public bundle vectors (bundle-cases.tsv): SPIFFE bundles, plain JWK Sets, PEM/DER X.509
 * bundles and bundle maps, every file the table names. Where go-spiffe or gRPC are stricter than
 * the spec (DIVERGENCE rows), zonegate follows the spec; docs/spiffe.md lists each choice.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBundle, parseJwtBundle, parseSpiffeBundle, serializeSpiffeBundle, type Bundle } from '../../src/bundle/bundle.js';
import { findDuplicateKey, parseBundleMap } from '../../src/bundle/map.js';
import { ZonegateError } from '../../src/errors.js';
import { TrustDomain } from '../../src/spiffe/id.js';
import { BUNDLE_LIMITS } from '../helpers/limits.js';

const V = new URL('../../../shared/conformance/spiffe/', import.meta.url);
const file = (p: string) => readFileSync(new URL(p, V));
const td = TrustDomain.parse('domain.test');

type Summary = { x509: number; jwt: number; seq?: number; hint?: number; weak?: number };
/** `weak`: authorities parsed but left out for their key (RSA under 2048 bits: cert/strength.ts). */
const summary = (b: Bundle): Summary => ({
  x509: b.x509Authorities.length,
  jwt: b.jwtAuthorities.size,
  ...(b.ignored.some((n) => n.includes('ERR_KEY_TOO_WEAK')) ? { weak: b.ignored.filter((n) => n.includes('ERR_KEY_TOO_WEAK')).length } : {}),
  ...(b.sequence !== undefined ? { seq: b.sequence } : {}),
  ...(b.refreshHintSeconds !== undefined ? { hint: b.refreshHintSeconds } : {}),
});
function attempt<T>(fn: () => T): T | string {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ZonegateError && err.code === 'ERR_BUNDLE_INVALID') return `reject: ${err.message}`;
    throw err;
  }
}
const spiffe = (path: string) => attempt(() => summary(parseBundle(file(path), td, BUNDLE_LIMITS)));
const jwks = (path: string) => attempt(() => summary(parseJwtBundle(file(path), td, BUNDLE_LIMITS)));
const map = (path: string) => attempt(() => Object.fromEntries([...parseBundleMap(file(path), BUNDLE_LIMITS)].map(([k, b]) => [k, summary(b)])));
const R = (msg: string) => `reject: bundle: trust domain "domain.test": ${msg}`;

/** [file, parser, expected summary or the start of the rejection message] */
const CASES: [string, (path: string) => unknown, Summary | Record<string, Summary> | string][] = [
  ['go-spiffe/spiffebundle/spiffebundle_valid_1.json', spiffe, { x509: 1, jwt: 1 }],
  ['go-spiffe/spiffebundle/spiffebundle_valid_2.json', spiffe, { x509: 1, jwt: 6, seq: 1, hint: 60 }],
  ['go-spiffe/spiffebundle/spiffebundle_valid_with_wit.json', spiffe, { x509: 1, jwt: 2, seq: 1, hint: 60 }], // wit-svid ignored
  ['go-spiffe/spiffebundle/spiffebundle_missing_kid.json', spiffe, R('keys[1]: keyID cannot be empty')],
  ['go-spiffe/spiffebundle/spiffebundle_no_keys.json', spiffe, R('"keys" is missing or not an array (no authorities found)')],
  // DIVERGENCE: the spec says use the first x5c certificate; go-spiffe rejects the bundle
  ['go-spiffe/spiffebundle/spiffebundle_multiple_x509.json', spiffe, { x509: 1, jwt: 1 }],
  ['go-spiffe/jwtbundle/jwks_valid_1.json', jwks, { x509: 0, jwt: 1 }],
  ['go-spiffe/jwtbundle/jwks_valid_2.json', jwks, { x509: 0, jwt: 2 }],
  ['go-spiffe/jwtbundle/jwks_missing_kid.json', jwks, R('keys[1]: keyID cannot be empty')],
  // DIVERGENCE: go-spiffe's test roots have 768-bit RSA keys: parsed, then left out as too weak
  ['go-spiffe/x509bundle/certs.pem', spiffe, { x509: 0, jwt: 0, weak: 2 }],
  ['go-spiffe/x509bundle/cert.pem', spiffe, { x509: 0, jwt: 0, weak: 1 }],
  ['go-spiffe/x509bundle/empty.pem', spiffe, { x509: 0, jwt: 0 }],
  ['go-spiffe/x509bundle/not-pem.pem', spiffe, R('cannot parse certificate: x509: no PEM blocks found')],
  ['go-spiffe/x509bundle/corrupted.pem', spiffe, R('cannot parse certificate: x509: malformed certificate')],
  ['go-spiffe/x509bundle/key.pem', spiffe, R('cannot parse certificate: x509: no certificates found')],
  ['grpc-go/spiffe/spiffebundle.json', map, { 'example.com': { x509: 1, jwt: 0, seq: 12035488 }, 'test.example.com': { x509: 1, jwt: 0 } }],
  ['grpc-go/spiffe/spiffebundle2.json', map, { 'example.com': { x509: 1, jwt: 0, seq: 12035488 } }],
  ['grpc-go/spiffe/spiffebundle_match_client_spiffe.json', map, { 'foo.bar.com': { x509: 1, jwt: 0, seq: 12035488 }, 'test.example.com': { x509: 1, jwt: 0 } }],
  ['grpc-go/spiffe/spiffebundle_wrong_use.json', map, { 'example.com': { x509: 0, jwt: 0, seq: 12035488 } }], // "use": "NOT-x509-svid" ignored
  ['grpc-go/spiffe/spiffebundle_corrupted_cert.json', map, 'reject: bundle: trust domain "example.com": keys[0]: '],
  ['grpc-go/spiffe/spiffebundle_malformed.json', map, 'reject: bundle map: the document is not a JSON object'],
  ['grpc-go/spiffe/spiffebundle_wrong_kid.json', map, 'reject: bundle: trust domain "example.com": keys[0]: "kty" must be set'],
  // DIVERGENCE: the unknown kty "DSA" element is ignored (spec), gRPC rejects the whole map
  ['grpc-go/spiffe/spiffebundle_wrong_kty.json', map, { 'example.com': { x509: 0, jwt: 0, seq: 12035488 }, 'test.example.com': { x509: 1, jwt: 0 } }],
  // DIVERGENCE: the first x5c certificate is used (X509-SVID §6.2), gRPC rejects
  ['grpc-go/spiffe/spiffebundle_wrong_multi_certs.json', map, { 'google.com': { x509: 1, jwt: 0, seq: 123 } }],
  ['grpc-go/spiffe/spiffebundle_wrong_root.json', map, 'reject: bundle map: "trust_domains" is missing or not an object'],
  ['grpc-go/spiffe/spiffebundle_wrong_seq_type.json', map, 'reject: bundle: trust domain "example.com": spiffe_sequence must be a non-negative integer'],
  ['grpc-go/spiffe/spiffebundle_invalid_trustdomain.json', map, 'reject: bundle map: trust domain "invalid#character": '],
  ['grpc-go/spiffe/spiffebundle_empty_string_key.json', map, 'reject: bundle map: trust domain "": '],
  ['grpc-go/spiffe/spiffebundle_empty_keys.json', map, 'reject: bundle map: trust domain "": '],
  ['grpc-go/spiffe/spiffe_test.json', spiffe, { x509: 1, jwt: 0 }],
  // Private key material in a used element: refused (java accepts; docs/spiffe.md)
  ['java-spiffe/jwtbundle/jwks_valid_RSA_1.json', jwks, R('keys[0] (kid "14cc39cd-838d-426d-9bb1-77f3468fba96"): carries private key material (d, p, q, dp, dq, qi)')],
  ['java-spiffe/jwtbundle/jwks_valid_RSA_EC.json', jwks, R('keys[0] (kid "14cc39cd-838d-426d-9bb1-77f3468fba96"): carries private key material')],
  ['java-spiffe/jwtbundle/jwks_invalid_keytype.json', jwks, R('keys[0] (kid "1"): invalid key: ')],
  ['java-spiffe/workloadapi/bundle.json', spiffe, { x509: 0, jwt: 3 }],
  ['py-spiffe/jwks_ec_missing_x.json', jwks, R('keys[0] (kid "C6vs25welZOx6WksNYfbMfiw9l96pMnD"): invalid key: ')],
  ['derived/bundle_x509_entry_missing_x5c.json', spiffe, { x509: 0, jwt: 1, seq: 2, hint: 300 }],
  ['derived/bundle_x509_entry_empty_x5c.json', spiffe, { x509: 0, jwt: 1 }],
  ['derived/bundle_key_missing_use.json', spiffe, { x509: 1, jwt: 0 }],
  ['derived/bundle_use_wrong_case.json', spiffe, { x509: 1, jwt: 0 }],
  ['derived/bundle_empty_keys_array.json', spiffe, { x509: 0, jwt: 0, seq: 3, hint: 60 }],
  ['derived/bundle_refresh_hint_string.json', spiffe, R('spiffe_refresh_hint must be a non-negative integer')],
  ['derived/bundle_sequence_float.json', spiffe, R('spiffe_sequence must be a non-negative integer')],
  ['derived/bundle_jwt_entry_missing_kid.json', spiffe, R('keys[1]: keyID cannot be empty')],
  ['derived/bundle_unknown_kty.json', spiffe, { x509: 0, jwt: 1 }],
  ['derived/bundle_unknown_top_level_param.json', spiffe, { x509: 1, jwt: 1 }],
  ['derived/bundlemap_duplicate_trust_domain.json', map, 'reject: bundle map: key "example.org" appears twice'],
  ['derived/bundlemap_valid_two_domains.json', map, { 'example.org': { x509: 1, jwt: 1, seq: 1 }, 'other.test': { x509: 0, jwt: 0 } }],
  ['derived/bundlemap_missing_trust_domains.json', map, 'reject: bundle map: "trust_domains" is missing or not an object'],
  ['derived/bundlemap_empty_trust_domains.json', map, {}],
  // ambiguous in the table; zonegate follows go-spiffe: trust domain names are lower case
  ['derived/bundlemap_uppercase_trust_domain.json', map, 'reject: bundle map: trust domain "Example.ORG": '],
];

describe('bundle-cases.tsv', () => {
  it('every file the table names has a case here', () => {
    const named = file('bundle-cases.tsv').toString('utf8').trim().split('\n').slice(1).map((l) => l.split('\t')[0]!);
    const covered = new Set(CASES.map(([f]) => f));
    expect(named.filter((f) => !f.startsWith('(') && !covered.has(f))).toEqual([]);
  });

  it.each(CASES.map(([f, p, want]) => [f, p, want] as const))('%s', (path, parse, want) => {
    const got = parse(path);
    if (typeof want === 'string') expect(String(got).startsWith(want), String(got)).toBe(true);
    else expect(got).toEqual(want);
  });

  it('(empty input) is not a SPIFFE bundle; an empty PEM file is a bundle with no authorities', () => {
    expect(attempt(() => parseSpiffeBundle('', td, BUNDLE_LIMITS))).toMatch(/^reject: .*unable to parse JWKS/);
    expect(attempt(() => parseSpiffeBundle(Buffer.alloc(0), td, BUNDLE_LIMITS))).toMatch(/^reject: /);
    expect(summary(parseBundle('', td, BUNDLE_LIMITS))).toEqual({ x509: 0, jwt: 0 });
  });

  it('a plain JWK Set read as a SPIFFE bundle yields nothing: keys without a SPIFFE use are ignored', () => {
    expect(spiffe('go-spiffe/jwtbundle/jwks_valid_2.json')).toEqual({ x509: 0, jwt: 0 });
    // and a "use":"sig" element with private members is ignored there, not refused
    expect(spiffe('java-spiffe/jwtbundle/jwks_valid_RSA_1.json')).toEqual({ x509: 0, jwt: 0 });
  });

  it('grpc-go spiffe_end2end bundle maps (beside the table) parse to one trust domain each', () => {
    expect(map('grpc-go/spiffe_end2end/client_spiffebundle.json')).toEqual({ 'example.com': { x509: 1, jwt: 0, seq: 12035488 } });
    expect(map('grpc-go/spiffe_end2end/server_spiffebundle.json')).toEqual({ 'foo.bar.com': { x509: 1, jwt: 0, seq: 12035488 } });
  });
});

describe('bundle contents', () => {
  it('an empty bundle is valid and marks the trust domain revoked', () => {
    expect(parseBundle(file('derived/bundle_empty_keys_array.json'), td, BUNDLE_LIMITS).revoked).toBe(true);
    expect(parseBundle(file('go-spiffe/spiffebundle/spiffebundle_valid_1.json'), td, BUNDLE_LIMITS).revoked).toBe(false);
  });

  it('keeps each X.509 authority as X509Certificate, DER and PEM, and each JWT authority as JWK + KeyObject by kid', () => {
    const b = parseBundle(file('go-spiffe/spiffebundle/spiffebundle_valid_1.json'), td, BUNDLE_LIMITS);
    expect(b.trustDomain.name).toBe('domain.test');
    expect(b.x509Der[0]!.equals(b.x509Authorities[0]!.raw)).toBe(true);
    expect(b.x509Pem).toBe(readFileSync(new URL('derived/root-from-spiffebundle_valid_1-x5c.pem', V), 'utf8'));
    const a = b.jwtAuthorities.get('C6vs25welZOx6WksNYfbMfiw9l96pMnD')!;
    expect([a.jwk.kty, a.jwk.crv, a.key.type, a.key.asymmetricKeyType]).toEqual(['EC', 'P-256', 'public', 'ec']);
  });

  it('round-trips through serializeSpiffeBundle', () => {
    const b = parseBundle(file('go-spiffe/spiffebundle/spiffebundle_valid_2.json'), td, BUNDLE_LIMITS);
    const again = parseSpiffeBundle(serializeSpiffeBundle(b), td, BUNDLE_LIMITS);
    expect(summary(again)).toEqual(summary(b));
    expect(again.x509Authorities[0]!.raw.equals(b.x509Authorities[0]!.raw)).toBe(true);
    expect([...again.jwtAuthorities.keys()]).toEqual([...b.jwtAuthorities.keys()]);
    expect(serializeSpiffeBundle(again)).toBe(serializeSpiffeBundle(b));
  });

  it('refuses private key material in an element it would use, for X.509 and JWT authorities alike', () => {
    const doc = JSON.parse(file('go-spiffe/spiffebundle/spiffebundle_valid_1.json').toString()) as { keys: Record<string, unknown>[] };
    for (const i of [0, 1]) {
      const tampered = structuredClone(doc);
      tampered.keys[i]!.d = 'AAAA';
      expect(attempt(() => parseSpiffeBundle(JSON.stringify(tampered), td, BUNDLE_LIMITS))).toMatch(/carries private key material \(d\)/);
    }
  });

  it('refuses duplicate kids, an x5c[0] that is not one certificate, a UTF-8 BOM is fine', () => {
    const doc = JSON.parse(file('go-spiffe/spiffebundle/spiffebundle_valid_1.json').toString()) as { keys: Record<string, any>[] };
    const dup = structuredClone(doc);
    dup.keys.push(dup.keys[1]!);
    expect(attempt(() => parseSpiffeBundle(JSON.stringify(dup), td, BUNDLE_LIMITS))).toMatch(/keys\[2\]: duplicate kid "C6vs25welZOx6WksNYfbMfiw9l96pMnD"$/);
    const two = structuredClone(doc);
    const der = Buffer.from(two.keys[0]!.x5c[0] as string, 'base64');
    two.keys[0]!.x5c = [Buffer.concat([der, der]).toString('base64')];
    expect(attempt(() => parseSpiffeBundle(JSON.stringify(two), td, BUNDLE_LIMITS))).toMatch(/keys\[0\]: x5c\[0\] holds 2 certificates, not one$/);
    expect(summary(parseBundle(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), file('go-spiffe/spiffebundle/spiffebundle_valid_1.json')]), td, BUNDLE_LIMITS))).toEqual({ x509: 1, jwt: 1 });
  });

  it('sniffs the format: JSON, DER, PEM', () => {
    expect(summary(parseBundle(file('rust-spiffe/bundle-x509/bundle.der'), td, BUNDLE_LIMITS))).toEqual({ x509: 0, jwt: 0, weak: 2 }); // 768-bit RSA
    expect(summary(parseBundle(file('go-spiffe/x509bundle/certs.pem'), td, BUNDLE_LIMITS))).toEqual({ x509: 0, jwt: 0, weak: 2 });
    expect(summary(parseBundle(file('grpc-go/spiffe_end2end/leaf_and_intermediate_chain.pem'), td, BUNDLE_LIMITS))).toEqual({ x509: 2, jwt: 0 });
    expect(summary(parseBundle(`  \n${file('derived/bundle_key_missing_use.json').toString()}`, td, BUNDLE_LIMITS))).toEqual({ x509: 1, jwt: 0 });
    expect(attempt(() => parseBundle(file('rust-spiffe/bundle-x509/corrupted'), td, BUNDLE_LIMITS))).toMatch(/no PEM blocks found$/);
  });
});

describe('duplicate keys', () => {
  it('detects duplicate keys at any depth, ignores equal strings that are values', () => {
    expect(findDuplicateKey('{"a":1,"b":{"c":1,"c":2}}')).toBe('c');
    expect(findDuplicateKey('{"a":"a","b":["a","a"],"c":{"a":"b"}}')).toBeUndefined();
    expect(findDuplicateKey('{"a\\"x":1,"a\\"x":2}')).toBe('a"x');
    expect(findDuplicateKey('{"a":1,"\\u0061":2}')).toBe('a');
    expect(findDuplicateKey('[{"k":1},{"k":2}]')).toBeUndefined();
    expect(findDuplicateKey('{"t":{"x":{"k":[1,{"k":2}]},"y":{"k":3}}}')).toBeUndefined();
  });
});
