/**
 * SPIFFE IDs and trust domains against the public conformance tables: spiffe-ids.tsv (go-spiffe's
 * 541 rows), trust-domains.tsv (308), spiffe-ids-extra.tsv (java, rust, py, spec limits). The TSV
 * files are the tables; spiffe-ids.json must say the same thing, row for row.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZonegateError } from '../../src/errors.js';
import { SpiffeId, TrustDomain } from '../../src/spiffe/index.js';

const VECTORS = new URL('../../../shared/conformance/spiffe/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, VECTORS), 'utf8');

/** The tables' input encoding: printable ASCII as-is, `\\` for a backslash, `\xNN` for any other byte (UTF-8). */
function decode(field: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < field.length; i++) {
    if (field[i] === '\\' && field[i + 1] === '\\') {
      bytes.push(0x5c);
      i++;
    } else if (field[i] === '\\' && field[i + 1] === 'x') {
      bytes.push(parseInt(field.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(field.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

function tsv(name: string): string[][] {
  const lines = read(name).replace(/\n$/, '').split('\n');
  return lines.slice(1).map((l) => l.split('\t'));
}

interface Row {
  input: string;
  expected: string;
  error: string;
}
const rows = (name: string): Row[] => tsv(name).map(([input, expected, error]) => ({ input: decode(input!), expected: expected!, error: error ?? '' }));
const ids = rows('spiffe-ids.tsv');
const tds = rows('trust-domains.tsv');
const extra = tsv('spiffe-ids-extra.tsv').map(([input, spec, go, note]) => ({ input: decode(input!), spec: spec!, go: go!, note: note! }));
const json = JSON.parse(read('spiffe-ids.json')) as {
  go_spiffe_id_cases: { input: string; expected: string; go_spiffe_error: string }[];
  go_spiffe_trust_domain_cases: { input: string; expected: string; go_spiffe_error: string }[];
  extra_cases: { input: string; expected_per_spec: string }[];
};

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'valid';
  } catch (err) {
    if (!(err instanceof ZonegateError) || err.code !== 'ERR_SPIFFE_ID_INVALID') throw err;
    return `invalid: ${err.message}`;
  }
}
const label = (s: string) => JSON.stringify(s).slice(0, 70);

describe('the tables', () => {
  it('have the documented sizes, and the TSV and JSON forms agree row for row', () => {
    expect(ids).toHaveLength(541);
    expect(tds).toHaveLength(308);
    expect(extra).toHaveLength(45);
    expect(ids.map((r) => [r.input, r.expected, r.error])).toEqual(json.go_spiffe_id_cases.map((c) => [c.input, c.expected, c.go_spiffe_error]));
    expect(tds.map((r) => [r.input, r.expected, r.error])).toEqual(json.go_spiffe_trust_domain_cases.map((c) => [c.input, c.expected, c.go_spiffe_error]));
    expect(extra.map((r) => [r.input, r.spec])).toEqual(json.extra_cases.map((c) => [c.input, c.expected_per_spec]));
  });
});

describe('SpiffeId.parse: spiffe-ids.tsv (go-spiffe id_test.go, 541 rows) with go-spiffe messages', () => {
  it.each(ids.map((r) => [label(r.input), r] as const))('%s', (_n, r) => {
    const got = outcome(() => SpiffeId.parse(r.input));
    if (r.expected === 'valid') expect(got).toBe('valid');
    else expect(got).toMatch(new RegExp(`^invalid: .*: ${r.error.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  });
});

describe('TrustDomain.parse: trust-domains.tsv (go-spiffe trustdomain_test.go, 308 rows)', () => {
  it.each(tds.map((r) => [label(r.input), r] as const))('%s', (_n, r) => {
    const got = outcome(() => TrustDomain.parse(r.input));
    if (r.expected === 'valid') expect(got).toBe('valid');
    else expect(got).toContain(`: ${r.error}`);
  });
});

/** Rows where zonegate deliberately does not take the table's per-spec column (docs/spiffe.md). */
const DECIDED: Record<string, string> = {
  ambiguous: 'invalid', // mixed-case scheme / trust domain: rejected as go-spiffe does
  'valid (parsing); SHOULD NOT be generated': 'invalid', // > 2048 bytes: refused as a limit
};

describe('SpiffeId.parse: spiffe-ids-extra.tsv (java-spiffe, rust-spiffe, py-spiffe, spec §2.3)', () => {
  it.each(extra.map((r) => [label(r.input), r] as const))('%s', (_n, r) => {
    const want = DECIDED[r.spec] ?? r.spec.replace(/^(valid|invalid).*$/, '$1');
    const got = outcome(() => SpiffeId.parse(r.input));
    expect(got.split(':')[0]).toBe(want);
    // Where the row states go-spiffe's message, an invalid row must fail for that reason.
    if (want === 'invalid' && r.go.startsWith('invalid: ')) expect(got).toContain(r.go.slice('invalid: '.length));
  });

  it('every decided row is one the table itself marks as open or as a SHOULD', () => {
    const decided = extra.filter((r) => r.spec in DECIDED);
    expect(decided.map((r) => r.spec.split(' ')[0])).toEqual(['ambiguous', 'ambiguous', 'ambiguous', 'ambiguous', 'valid']);
    expect(decided.at(-1)!.input.length).toBe(2049);
  });
});

describe('value types', () => {
  it('splits trust domain and path, and knows the root ID', () => {
    const id = SpiffeId.parse('spiffe://zone-a.example/ns/shop/sa/frontend');
    expect(id.value).toBe('spiffe://zone-a.example/ns/shop/sa/frontend');
    expect(id.trustDomain.name).toBe('zone-a.example');
    expect(id.path).toBe('/ns/shop/sa/frontend');
    expect(id.isRoot).toBe(false);
    expect(id.memberOf(TrustDomain.parse('zone-a.example'))).toBe(true);
    expect(id.memberOf(TrustDomain.parse('zone-b.example'))).toBe(false);
    expect(id.equals(SpiffeId.parse(String(id)))).toBe(true);
    expect(SpiffeId.parse('spiffe://zone-a.example').isRoot).toBe(true);
    expect(TrustDomain.parse('spiffe://zone-a.example/x').idString).toBe('spiffe://zone-a.example');
    expect(TrustDomain.parse('spiffe://zone-a.example').equals(TrustDomain.parse('zone-a.example'))).toBe(true);
    expect(`${TrustDomain.parse('zone-a.example')}`).toBe('zone-a.example');
  });

  it('enforces §2.3: 2048 bytes of ID, 255 of trust domain, at the exact boundaries', () => {
    const at = (n: number) => `spiffe://a/${'x'.repeat(n - 'spiffe://a/'.length)}`;
    expect(outcome(() => SpiffeId.parse(at(2048)))).toBe('valid');
    expect(outcome(() => SpiffeId.parse(at(2049)))).toMatch(/: SPIFFE ID is longer than 2048 bytes$/);
    expect(outcome(() => TrustDomain.parse('a'.repeat(255)))).toBe('valid');
    expect(outcome(() => TrustDomain.parse('a'.repeat(256)))).toMatch(/: trust domain is longer than 255 bytes$/);
    expect(outcome(() => TrustDomain.parse(`spiffe://${'a'.repeat(256)}/x`))).toMatch(/longer than 255 bytes$/);
  });

  it('messages quote the input, escaping control characters and cutting long input', () => {
    expect(outcome(() => SpiffeId.parse('spiffe://a\u0000/x'))).toBe(
      'invalid: spiffe: "spiffe://a\\u0000/x": trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
    );
    expect(outcome(() => SpiffeId.parse(`http://${'a'.repeat(200)}`)).length).toBeLessThan(150);
  });

  it('case is never normalized: mixed case is rejected, not folded', () => {
    expect(outcome(() => SpiffeId.parse('SPIFFE://example.org/x'))).toMatch(/scheme is missing or invalid$/);
    expect(outcome(() => TrustDomain.parse('Example.org'))).toMatch(/lowercase letters/);
    expect(SpiffeId.parse('spiffe://example.org/Path').path).toBe('/Path');
  });
});

describe('properties', () => {
  const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_');
  const segChar = fc.constantFrom(...'abcXYZ0189.-_');
  const tdName = fc.string({ unit: tdChar, minLength: 1, maxLength: 40 });
  const segment = fc.string({ unit: segChar, minLength: 1, maxLength: 12 }).filter((s) => s !== '.' && s !== '..');

  it('every well-formed ID parses back to its parts', () => {
    fc.assert(
      fc.property(tdName, fc.array(segment, { maxLength: 6 }), (td, segs) => {
        const path = segs.map((s) => `/${s}`).join('');
        const id = SpiffeId.parse(`spiffe://${td}${path}`);
        expect([id.trustDomain.name, id.path, id.isRoot]).toEqual([td, path, segs.length === 0]);
        expect(TrustDomain.parse(td).name).toBe(td);
      }),
    );
  });

  it('any string either parses to itself or throws ERR_SPIFFE_ID_INVALID; a parsed ID is ASCII without query, fragment, port or userinfo', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `spiffe://${s}`)), (s) => {
        const got = outcome(() => SpiffeId.parse(s));
        if (got !== 'valid') return;
        expect(SpiffeId.parse(s).value).toBe(s);
        expect(s).toMatch(/^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/);
      }),
      { numRuns: 2000 },
    );
  });
});
