/**
 * Re-issue key rotation with overlap, on a controlled clock: the next key is in the JWKS before
 * it signs, and the previous one stays until its last token has expired. An upstream's cached
 * JWKS copy is simulated by verifying against the set as served at an earlier time.
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readiness } from '../../src/readiness.js';
import { startOpsServer } from '../../src/http/ops.js';
import type { Listening } from '../../src/net/listen.js';
import { createMetrics } from '../../src/metrics.js';
import { KeyRing } from '../../src/rewrite/keys.js';
import { Reissuer } from '../../src/rewrite/reissue.js';

const S = 1000;
const T0 = Date.UTC(2026, 10, 23, 9, 0, 0);
const EVERY = 3600 * S;
const AHEAD = 300 * S;
const TTL = 5;
const RETAIN = (TTL + 30) * S;

let clock = T0;
let ring: KeyRing;
let issuer: Reissuer;
let ops: Listening;

const kidOf = (t: string) => decodeProtectedHeader(t).kid!;
const served = async (): Promise<{ jwks: JSONWebKeySet; cacheControl: string | null }> => {
  const r = await fetch(`http://127.0.0.1:${ops.port}/.well-known/jwks.json`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-type')).toBe('application/jwk-set+json');
  return { jwks: (await r.json()) as JSONWebKeySet, cacheControl: r.headers.get('cache-control') };
};
const kids = (jwks: JSONWebKeySet) => jwks.keys.map((k) => k.kid);
const sign = (sub: string) => issuer.token({ sub }, 'billing', clock);
const verifyAt = (token: string, jwks: JSONWebKeySet, at: number) =>
  jwtVerify(token, createLocalJWKSet(jwks), { audience: 'billing', issuer: 'zonegate', currentDate: new Date(at), algorithms: ['ES256'] });

beforeAll(async () => {
  ring = new KeyRing({ algorithm: 'ES256', everyMs: EVERY, publishAheadMs: AHEAD, retainMs: RETAIN }, T0);
  issuer = new Reissuer(ring, { issuer: 'zonegate', ttlSeconds: TTL, reuseFraction: 0.5, cacheSize: 100 });
  ops = await startOpsServer('127.0.0.1', 0, { readiness: new Readiness(), metrics: createMetrics(), keys: ring, now: () => clock });
});
afterAll(async () => {
  await ops?.close();
});

describe('re-issue key rotation with overlap', () => {
  it('publishes the next key ahead, switches on schedule, and keeps the old key until its tokens expired', async () => {
    // T0: one key signs and is the only one published
    const first = await served();
    expect(first.jwks.keys).toHaveLength(1);
    expect(first.cacheControl).toBe('max-age=150'); // half the lead time: a cached copy learns the next key in time
    const k0 = first.jwks.keys[0]!.kid!;
    expect(kidOf(sign('alice'))).toBe(k0);

    // just before the lead time: still only k0
    clock = T0 + EVERY - AHEAD - 1;
    expect(kids((await served()).jwks)).toEqual([k0]);

    // the lead time: k1 is announced but does not sign yet
    clock = T0 + EVERY - AHEAD;
    const announced = (await served()).jwks;
    expect(announced.keys).toHaveLength(2);
    const k1 = announced.keys[1]!.kid!;
    expect(k1).not.toBe(k0);
    expect(kidOf(sign('bob'))).toBe(k0);

    // the last token of k0, signed just before the switch
    clock = T0 + EVERY - 1;
    const lastOfK0 = sign('carol');
    expect(kidOf(lastOfK0)).toBe(k0);

    // the switch: k1 signs, even for an identity whose k0 token is still in the reuse window
    clock = T0 + EVERY;
    const firstOfK1 = sign('carol');
    expect(kidOf(firstOfK1)).toBe(k1);
    expect(firstOfK1).not.toBe(lastOfK0);
    // an upstream that cached the JWKS at the lead time verifies k1's first token without refetching
    await expect(verifyAt(firstOfK1, announced, clock)).resolves.toMatchObject({ payload: { sub: 'carol' } });
    // and the set served now still verifies k0's last token until it expires
    const during = (await served()).jwks;
    expect(kids(during)).toEqual([k0, k1]);
    await expect(verifyAt(lastOfK0, during, T0 + EVERY - 1 + (TTL - 1) * S)).resolves.toMatchObject({ payload: { sub: 'carol' } });

    // k0 stays published until its last token has expired plus the skew margin, then goes
    clock = T0 + EVERY + RETAIN - 1;
    expect(kids((await served()).jwks)).toEqual([k0, k1]);
    clock = T0 + EVERY + RETAIN;
    const after = (await served()).jwks;
    expect(kids(after)).toEqual([k1]);
    await expect(verifyAt(lastOfK0, after, T0 + EVERY)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });

    // the next round announces k2 the same way
    clock = T0 + 2 * EVERY - AHEAD;
    const k2set = (await served()).jwks;
    expect(kids(k2set)).toHaveLength(2);
    expect(kids(k2set)[0]).toBe(k1);
    expect(kidOf(sign('dave'))).toBe(k1);
  });

  it('a signed token is reused for the same identity during part of its life, then signed afresh', () => {
    clock = T0 + 5 * EVERY + 123; // a fresh round, whatever key signs
    const a = sign('erin');
    clock += 2 * S;
    expect(sign('erin')).toBe(a); // at least (1 - 0.5) × 5 s of life left
    clock += 2 * S;
    const b = sign('erin');
    expect(b).not.toBe(a);
    const exp = (t: string) => JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()).exp as number;
    // a reused token never reaches the upstream with less than half its lifetime left
    expect(exp(a) * 1000 - (clock - 2 * S)).toBeGreaterThanOrEqual(2.5 * S);
    expect(exp(b)).toBeGreaterThan(exp(a));
  });

  it('after a long pause the successor still gets its full lead time', async () => {
    const r = new KeyRing({ algorithm: 'EdDSA', everyMs: EVERY, publishAheadMs: AHEAD, retainMs: RETAIN }, T0);
    const next = r.jwks(T0 + EVERY - AHEAD).keys[1]!.kid;
    const late = T0 + 10 * EVERY; // the process slept through many rotations
    expect(r.current(late).kid).toBe(next); // the key upstreams have seen since its announcement
    // its successor is announced now and signs only after the full lead time
    const set = r.jwks(late);
    expect(set.keys).toHaveLength(2);
    expect(set.keys[0]!.kid).toBe(next);
    const successor = set.keys[1]!.kid;
    expect(r.current(late + AHEAD - 1).kid).toBe(next);
    expect(r.current(late + AHEAD).kid).toBe(successor);
    expect(set.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
  });
});
