/**
 * A foreign trust domain's bundle endpoint misbehaving, over real HTTPS on loopback: it stalls,
 * resets the connection, answers garbage, streams a huge body slowly, or trickles a body past the
 * total timeout. Each time zonegate keeps the last good bundle (decisions unchanged), says so in
 * its metrics and logs with the reason, never crashes, and recovers when the endpoint does; an
 * outage longer than the maximum staleness fails the trust domain closed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const B = 'zone-b.test';
type Mode = 'ok' | 'stall' | 'reset' | 'garbage' | 'huge' | 'trickle';
let mode: Mode = 'ok';
let endpoint: TestServer;
let s: Started;
let svid: Issued;
let body: string;
const open = new Set<ServerResponse>();

function misbehave(res: ServerResponse): void {
  switch (mode) {
    case 'ok':
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    case 'stall':
      open.add(res); // headers never come
      return;
    case 'reset':
      return void res.socket?.destroy();
    case 'garbage':
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.from('{"keys":[{"kty":"EC","use":"x509-svid","x5c":["\u0000\u00ff%%"]}]}\u0000garbage'));
    case 'huge':
    case 'trickle': {
      // a valid start, then 8 KiB chunks (huge: past maxBytes) or 16 bytes (trickle: past the total timeout)
      open.add(res);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"keys":[');
      const chunk = mode === 'huge' ? ' '.repeat(8192) : ' '.repeat(16);
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(chunk)), 20);
      res.on('close', () => clearInterval(t));
      return;
    }
  }
}

beforeAll(async () => {
  const root = await MemoryCA.create(B);
  svid = await root.issue(`spiffe://${B}/ns/default/sa/billing`);
  body = JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [root.cert.raw.toString('base64')] }], spiffe_refresh_hint: 1 });
  const web = await MemoryCA.create('web.test');
  const tls = await web.server();
  endpoint = await testServer({ cert: tls.chainPem, key: tls.keyPem }, (_q, res) => misbehave(res));
  const dir = mkdtempSync(join(tmpdir(), 'zg-endpoint-faults-'));
  writeFileSync(join(dir, 'web-ca.pem'), web.certPem);
  s = await startWith(
    {
      federation: {
        refresh: { defaultSeconds: 0.2, minSeconds: 0.1, maxSeconds: 0.2, jitter: 0 },
        fetch: { connectTimeoutMs: 400, totalTimeoutMs: 800, maxBytes: 32 * 1024 },
        maxStalenessSeconds: 4,
      },
      trust: [{ trustDomain: B, source: { https_web: { url: endpoint.url, ca: 'web-ca.pem' } } }],
      rules: [{ name: 'b', action: 'allow', from: { trustDomains: [B] } }],
    },
    dir,
  );
});
afterAll(async () => {
  for (const r of open) r.destroy();
  await s?.close();
  await endpoint?.close();
});

async function verdict(): Promise<string> {
  const r = await s.check(checkRequest({ certificate: encodeURIComponent(svid.certPem) }));
  if (!r.ok) return `error ${r.error.code}`;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : String(st.message);
}
const status = () => s.zg.trust.status()[0]!;
const metrics = async () => (await fetch(`http://127.0.0.1:${s.zg.ops.port}/metrics`)).text();

describe('bundle endpoint faults', () => {
  it('serves the bundle when the endpoint is healthy', async () => {
    expect(status()).toMatchObject({ hasBundle: true, lastResult: 'ok' });
    expect(await verdict()).toBe('allow');
  });

  it.each([
    ['stalls (no response)', 'stall', /fetch: ERR_BUNDLE_FETCH: .*no response within 400 ms/],
    ['resets the connection', 'reset', /fetch: ERR_BUNDLE_FETCH: .*(socket hang up|ECONNRESET)/],
    ['answers garbage', 'garbage', /parse: ERR_BUNDLE_INVALID: /],
    ['streams a huge body mid-stream', 'huge', /fetch: ERR_BUNDLE_TOO_LARGE: .*more than 32768 bytes/],
    ['trickles the body past the total timeout', 'trickle', /fetch: ERR_BUNDLE_FETCH: .*not complete within 800 ms/],
  ] as const)('endpoint %s: the last good bundle keeps deciding; metrics and logs say why; recovery', async (_name, m, why) => {
    const errorsBefore = status().refreshes.error;
    const logsBefore = s.logs.length;
    mode = m;
    await until(() => status().refreshes.error > errorsBefore && why.test(status().lastError ?? ''), 10_000, `a failed refresh (${m})`);
    expect(await verdict()).toBe('allow');
    expect(status()).toMatchObject({ hasBundle: true, stale: false, lastResult: 'error' });
    expect(await metrics()).toMatch(new RegExp(`zonegate_bundle_last_refresh_success\\{trust_domain="${B}"\\} 0`));
    const failed = s.logs.slice(logsBefore).find((l) => l.msg === 'bundle refresh failed');
    expect(failed).toMatchObject({ trustDomain: B });
    expect(String(failed!.detail)).toMatch(why);
    expect((await fetch(`http://127.0.0.1:${s.zg.ops.port}/readyz`)).status).toBe(200);
    mode = 'ok';
    for (const r of open) r.destroy();
    open.clear();
    await until(() => status().lastResult === 'ok', 10_000, 'recovery');
    expect(await verdict()).toBe('allow');
  });

  it('an outage longer than federation.maxStalenessSeconds fails the trust domain closed, and it recovers', async () => {
    mode = 'reset';
    await until(async () => (await verdict()) === 'ERR_TRUST_DOMAIN_STALE', 15_000, 'staleness');
    expect(await metrics()).toMatch(new RegExp(`zonegate_bundle_stale\\{trust_domain="${B}"\\} 1`));
    expect((await fetch(`http://127.0.0.1:${s.zg.ops.port}/readyz`)).status).toBe(503);
    mode = 'ok';
    await until(async () => (await verdict()) === 'allow', 10_000, 'recovery');
    expect((await fetch(`http://127.0.0.1:${s.zg.ops.port}/readyz`)).status).toBe(200);
  });
});
