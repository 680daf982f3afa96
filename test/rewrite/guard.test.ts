/**
 * Turning a header off never stops guarding it: through the real gRPC server, a client copy of
 * every identity header (default name, configured name, a name turned off with "") is either
 * overwritten by zonegate's value (append: false) or listed in headers_to_remove, at ingress and
 * at egress. What Envoy forwards is exactly "the client's headers, minus the removals, with the
 * sets overwriting": the helper below applies the CheckResponse that way.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA } from '../../src/demo/pki.js';
import { DEFAULT_IDENTITY_HEADERS } from '../../src/rewrite/schema.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

type Hdr = { header: { key: string; value: string }; append?: { value?: boolean } };
interface Ok {
  status: { code: number };
  ok_response?: { headers?: Hdr[]; headers_to_remove?: string[] };
}

/** What the upstream receives, applying the CheckResponse as Envoy does (sets, then removals). */
async function upstreamSees(s: Started, clientHeaders: Record<string, string>, context: Record<string, string> = {}): Promise<Record<string, string>> {
  const r = await s.check(checkRequest({ principal: 'spiffe://a.test/ns/shop/sa/frontend', headers: clientHeaders, context }));
  if (!r.ok) throw new Error(r.error.message);
  const res = r.response as unknown as Ok;
  expect(res.status.code).toBe(0);
  const out = new Map(Object.entries(clientHeaders));
  for (const h of res.ok_response?.headers ?? []) {
    expect(h.append).toEqual({ value: false });
    out.set(h.header.key, h.header.value);
  }
  for (const n of res.ok_response?.headers_to_remove ?? []) out.delete(n);
  return Object.fromEntries(out);
}

const FORGED = 'forged-by-the-client';
const allDefaults = Object.values(DEFAULT_IDENTITY_HEADERS);
const rules = [{ name: 'any', action: 'allow', from: { principals: [{ prefix: 'spiffe://a.test/' }] } }];

describe.each([
  ['every identity header turned off', Object.fromEntries(Object.keys(DEFAULT_IDENTITY_HEADERS).map((k) => [k, '']))],
  ['the peer header renamed, roles and actor off', { principal: 'x-caller', roles: '', actor: '' }],
  ['every identity header renamed', Object.fromEntries(Object.keys(DEFAULT_IDENTITY_HEADERS).map((k) => [k, `x-mine-${k.toLowerCase()}`]))],
  ['the defaults', {}],
])('guarded headers: %s', (_title, headers) => {
  let s: Started;
  const configured = Object.values(headers).filter((n) => n !== '');
  beforeAll(async () => {
    // egress signs with zonegate's own SVID
    const dir = mkdtempSync(join(tmpdir(), 'zg-guard-'));
    const svid = await (await MemoryCA.create('a.test')).issue('spiffe://a.test/ns/shop/sa/zonegate');
    writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
    writeFileSync(join(dir, 'svid.key'), svid.keyPem);
    s = await startWith(
      { peer: { source: 'principal' }, identity: { cert: 'svid.pem', key: 'svid.key' }, rules, upstream: { headers, guard: ['x-internal-admin'] } },
      dir,
    );
  });
  afterAll(async () => s?.close());

  it.each(['ingress', 'egress'])('%s: no client copy of a default, configured or guarded name reaches the upstream', async (direction) => {
    const names = [...allDefaults, ...configured, 'x-internal-admin'];
    const sent = Object.fromEntries([...names.map((n) => [n, FORGED]), ['x-app-header', 'kept']]);
    const seen = await upstreamSees(s, sent, { direction });
    for (const n of names) expect(seen[n], n).not.toBe(FORGED);
    // the app's own headers pass
    expect(seen['x-app-header']).toBe('kept');
    // what zonegate sets under a configured name is the verified value
    const peerName = (headers as Record<string, string>).principal ?? DEFAULT_IDENTITY_HEADERS.principal;
    if (direction === 'ingress' && peerName !== '') expect(seen[peerName]).toBe('spiffe://a.test/ns/shop/sa/frontend');
  });
});
