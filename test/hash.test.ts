/** RecentHashes: always the SHA-256 of the very string asked about, whatever it has seen before. */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecentHashes, sha256 } from '../src/hash.js';

describe('RecentHashes', () => {
  it('gives sha256(s) for every string, seen before or not, across evictions', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('abcX', 'abdX', 'bbcX', 'abc')), { maxLength: 60 }),
        fc.integer({ min: 1, max: 5 }),
        (strings, size) => {
          const r = new RecentHashes(size, 'base64url');
          for (const s of strings) expect(r.hash(s)).toBe(sha256(s, 'base64url'));
        },
      ),
      { seed: 3, numRuns: 500 },
    );
  });

  it('strings of the same length and last character that differ elsewhere get their own hash', () => {
    const r = new RecentHashes(4, 'hex');
    const a = `${'x'.repeat(2000)}A${'y'.repeat(500)}.sig1`;
    const b = `${'x'.repeat(2000)}B${'y'.repeat(500)}.sig1`;
    expect(r.hash(a)).toBe(sha256(a, 'hex'));
    expect(r.hash(b)).toBe(sha256(b, 'hex'));
    expect(r.hash(b)).not.toBe(r.hash(a));
  });

  it('an equal string built anew (another object) is found without hashing it again', () => {
    const r = new RecentHashes(2, 'base64');
    const parts = ['-----BEGIN%20CERTIFICATE-----', 'MIIB'.repeat(300)];
    const first = parts.join('%0A');
    const again = [...parts].join('%0A'); // same content, another string object
    expect(r.hash(first)).toBe(sha256(first, 'base64'));
    const strings = (r as unknown as { strings: unknown[] }).strings;
    expect(strings.filter((s) => s !== undefined)).toHaveLength(1);
    expect(r.hash(again)).toBe(sha256(first, 'base64'));
    expect(strings.filter((s) => s !== undefined)).toHaveLength(1); // a hit: nothing new remembered
  });
});

describe('sha256', () => {
  it('of bytes and of strings (their UTF-8) is node:crypto\'s SHA-256, in each encoding', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 40 }), fc.constantFrom('base64', 'base64url', 'hex' as const), (bytes, text, enc) => {
        expect(sha256(Buffer.from(bytes), enc)).toBe(createHash('sha256').update(bytes).digest(enc));
        expect(sha256(text, enc)).toBe(createHash('sha256').update(text).digest(enc));
      }),
      { seed: 5, numRuns: 200 },
    );
  });
});
