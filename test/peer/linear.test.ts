/**
 * XFCC and PEM parsing in linear time: the one-pass parsers give what the previous ones (a
 * character loop with rescans, and lazy regular expressions) gave on every input fast-check
 * builds from XFCC's and PEM's own alphabet, and hostile headers (unterminated PEM markers,
 * unclosed quotes, thousands of pairs) cost microseconds per kilobyte, not a rescan per marker.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_XFCC_ELEMENTS, parseXfcc, type XfccEntry } from '../../src/peer/xfcc.js';
import { pemBlocks } from '../../src/cert/pem.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261123);
const RUNS = Number(process.env.FUZZ_RUNS ?? 3000);

/** The parser this one replaced, kept as the oracle. */
function previousParseXfcc(header: string): XfccEntry[] | undefined {
  const KEYS: Record<string, keyof XfccEntry> = { by: 'by', hash: 'hash', cert: 'cert', chain: 'chain', subject: 'subject', uri: 'uri', dns: 'dns' };
  const out: XfccEntry[] = [];
  let entry: XfccEntry = { uri: [], dns: [] };
  let i = 0;
  const n = header.length;
  const skipSpaces = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  while (i <= n) {
    skipSpaces();
    const eq = header.indexOf('=', i);
    if (eq === -1) return undefined;
    const key = header.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let value = '';
    if (header[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = header[i];
        if (c === '\\' && i + 1 < n) {
          value += header[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return undefined;
    } else {
      const start = i;
      while (i < n && header[i] !== ';' && header[i] !== ',') i++;
      value = header.slice(start, i).trim();
    }
    const field = KEYS[key];
    if (!field) return undefined;
    if (field === 'uri' || field === 'dns') entry[field].push(value);
    else if (entry[field] !== undefined) return undefined;
    else entry[field] = value;
    skipSpaces();
    if (i >= n) {
      out.push(entry);
      break;
    }
    const sep = header[i];
    i++;
    if (sep === ',') {
      out.push(entry);
      entry = { uri: [], dns: [] };
    } else if (sep !== ';') return undefined;
  }
  return out;
}

const previousPem = (text: string) => [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g)].map((m) => ({ label: m[1]!, body: m[2]! }));
const previousCertBodies = (text: string) => [...text.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map((m) => m[1]!);

/** Pieces XFCC headers are made of, so random strings hit every branch of both parsers. */
const xfccPiece = fc.constantFrom('By', 'Hash', 'Cert', 'Chain', 'Subject', 'URI', 'DNS', 'uri', 'dns', 'by', 'Foo', '=', ';', ',', '"', '\\', ' ', '\t', 'a', 'spiffe://a.test/x', '%2C', 'CN=x', '\\"');
/** Well-formed headers: elements of known keys with plain and quoted values. */
const value = fc.string({ unit: fc.constantFrom('a', 'b', '=', ';', ',', '"', '\\', ' ', '/', ':', '%') });
const quoted = value.map((v) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`);
const plain = fc.string({ unit: fc.constantFrom('a', 'b', '=', '"', ' ', '/', ':', '%') }).filter((v) => !v.startsWith('"'));
const pair = fc.tuple(fc.constantFrom('By', 'Hash', 'Cert', 'Chain', 'Subject', 'URI', 'DNS', 'uri'), fc.oneof(quoted, plain)).map(([k, v]) => `${k}=${v}`);
const element = fc.array(pair, { minLength: 1, maxLength: 6 }).map((ps) => ps.join(';'));
const validHeader = fc.array(element, { minLength: 1, maxLength: 4 }).map((es) => es.join(','));

const pemPiece = fc.constantFrom('-----BEGIN ', '-----END ', '-----', 'CERTIFICATE', 'KEY', 'A', ' ', '\n', 'MIIB', '-', 'x');

describe('XFCC tokenizer', () => {
  it('gives what the previous parser gave on well-formed headers', () => {
    fc.assert(
      fc.property(validHeader, (h) => {
        const want = previousParseXfcc(h);
        expect(parseXfcc(h)).toEqual(want);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('gives what the previous parser gave on any header made of XFCC pieces, malformed ones included', () => {
    fc.assert(
      fc.property(fc.array(xfccPiece, { maxLength: 40 }).map((p) => p.join('')), (h) => {
        expect(parseXfcc(h, Infinity)).toEqual(previousParseXfcc(h));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it(`refuses more than ${MAX_XFCC_ELEMENTS} elements (one per proxy hop: a real header holds a few)`, () => {
    const el = 'URI=spiffe://a.test/x';
    expect(parseXfcc(Array(MAX_XFCC_ELEMENTS).fill(el).join(','))).toHaveLength(MAX_XFCC_ELEMENTS);
    expect(parseXfcc(Array(MAX_XFCC_ELEMENTS + 1).fill(el).join(','))).toBeUndefined();
  });

  it('refuses prototype keys the previous parser looked up on Object.prototype', () => {
    expect(parseXfcc('constructor=x')).toBeUndefined();
    expect(parseXfcc('__proto__=x;URI=spiffe://a.test/x')).toBeUndefined();
  });
});

describe('PEM scanner', () => {
  it('finds the blocks the lazy regular expressions found', () => {
    fc.assert(
      fc.property(fc.array(pemPiece, { maxLength: 40 }).map((p) => p.join('')), (t) => {
        expect(pemBlocks(t)).toEqual(previousPem(t));
        expect(pemBlocks(t, 'CERTIFICATE').map((b) => b.body)).toEqual(previousCertBodies(t));
      }),
      { seed: SEED, numRuns: RUNS * 2 },
    );
  });
});

/** Best of several runs, in ms: the cost of the code, not of the machine's other work. */
function best(f: () => unknown, runs = 5): number {
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    min = Math.min(min, performance.now() - t);
  }
  return min;
}

describe('hostile input costs linear time', () => {
  const KB64 = 64 * 1024;
  it.each([
    ['BEGIN CERTIFICATE markers without an END', '-----BEGIN CERTIFICATE-----'],
    ['BEGIN markers of many labels', '-----BEGIN A-----'],
    ['END markers without a BEGIN', '-----END CERTIFICATE-----'],
    ['URL-encoded BEGIN markers', '-----BEGIN%20CERTIFICATE-----%0A'],
  ])('%s: 64 KiB in under 10 ms', (_n, unit) => {
    const text = unit.repeat(Math.ceil(KB64 / unit.length)).slice(0, KB64);
    const xfcc = `Hash=a;Cert="${text}";URI=spiffe://a.test/x`;
    expect(best(() => pemBlocks(text))).toBeLessThan(10);
    expect(best(() => pemBlocks(text, 'CERTIFICATE'))).toBeLessThan(10);
    expect(best(() => parseXfcc(xfcc))).toBeLessThan(10);
    // the regex it replaced needs a rescan per marker: at least ten times as long here
    if (unit.startsWith('-----BEGIN CERT')) expect(best(() => previousCertBodies(text), 1)).toBeGreaterThan(best(() => pemBlocks(text, 'CERTIFICATE')) * 10);
  });

  it.each([
    ['an unclosed quote', `Cert="${'a'.repeat(65_000)}`],
    ['thousands of pairs', 'URI=spiffe://a.test/x;'.repeat(3000) + 'Hash=a'],
    ['thousands of elements', 'Hash=a,'.repeat(9000) + 'Hash=a'],
    ['escapes everywhere', `Subject="${'\\"'.repeat(30_000)}"`],
    ['no equals sign', ';'.repeat(65_000)],
  ])('XFCC with %s: under 10 ms', (_n, h) => {
    expect(best(() => parseXfcc(h))).toBeLessThan(10);
  });
});
