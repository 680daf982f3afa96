/**
 * Live trust through the real gRPC server: bundles change at their source and decisions follow,
 * without a restart. Sources: an https_spiffe endpoint, Consul's CA roots API, Istio's root file,
 * a file swapped through a symlink (as Kubernetes mounts do).
 */
import { mkdirSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { testServer, type TestServer } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const B = 'zone-b.test';
const ENDPOINT_ID = `spiffe://${B}/spire/server`;
const fast = { refresh: { defaultSeconds: 0.2, minSeconds: 0.1, maxSeconds: 0.3, jitter: 0 } };
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c();
});

const doc = (roots: MemoryCA[], sequence?: number) =>
  JSON.stringify({
    keys: roots.map((r) => ({ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [r.cert.raw.toString('base64')] })),
    ...(sequence !== undefined ? { spiffe_sequence: sequence } : {}),
    spiffe_refresh_hint: 1,
  });

async function verdict(s: Started, certPem: string): Promise<string> {
  const r = await s.check(checkRequest({ certificate: encodeURIComponent(certPem) }));
  if (!r.ok) return `error ${r.error.code}`;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : String(st.message);
}
const allowAll = [{ name: 'verified', action: 'allow', from: { principals: [{ prefix: 'spiffe://' }] } }];

describe('https_spiffe endpoint: rotation, outage, staleness, sequence', () => {
  let oldRoot: MemoryCA;
  let newRoot: MemoryCA;
  let endpoint: TestServer;
  let body: string;
  let down = false;
  let s: Started;
  const dir = mkdtempSync(join(tmpdir(), 'zg-live-'));

  beforeAll(async () => {
    oldRoot = await MemoryCA.create(B);
    newRoot = await MemoryCA.create(B);
    body = doc([oldRoot], 1);
    // The endpoint's own certificate is an SVID of the old root (as SPIRE's server would have).
    const serverCert = await oldRoot.server(ENDPOINT_ID);
    endpoint = await testServer({ cert: serverCert.chainPem, key: serverCert.keyPem }, (_q, res) => {
      if (down) res.socket?.destroy();
      else res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    closers.push(() => endpoint.close());
    writeFileSync(join(dir, 'bootstrap.pem'), oldRoot.certPem);
    s = await startWith(
      {
        federation: { ...fast, maxStalenessSeconds: 1.5 },
        trust: [{ trustDomain: B, source: { https_spiffe: { url: endpoint.url, endpointSpiffeId: ENDPOINT_ID, bootstrap: 'bootstrap.pem' } } }],
        rules: allowAll,
      },
      dir,
    );
    closers.push(() => s.close());
  });

  it('a root added and the old one removed at the endpoint show up in decisions; the removed root\'s SVIDs are then denied', async () => {
    const oldSvid = (await oldRoot.issue(`spiffe://${B}/old`)).certPem;
    const newSvid = (await newRoot.issue(`spiffe://${B}/new`)).certPem;
    expect(await verdict(s, oldSvid)).toBe('allow');
    expect(await verdict(s, newSvid)).toBe('ERR_SVID_UNTRUSTED');
    body = doc([oldRoot, newRoot], 2); // add the new root
    await until(async () => (await verdict(s, newSvid)) === 'allow', 5000, 'the new root');
    expect(await verdict(s, oldSvid)).toBe('allow');
    // Like SPIRE: the endpoint moves to a certificate of the new root before the old root goes,
    // or its next https_spiffe connection (trusting the latest bundle) would fail.
    const next = await newRoot.server(ENDPOINT_ID);
    endpoint.setCert({ cert: next.chainPem, key: next.keyPem });
    body = doc([newRoot], 3); // remove the old root
    await until(async () => (await verdict(s, oldSvid)) === 'ERR_SVID_UNTRUSTED', 5000, 'the old root to go');
    expect(await verdict(s, newSvid)).toBe('allow');
  });

  it('a sequence regression is refused: the newer bundle stays', async () => {
    const newSvid = (await newRoot.issue(`spiffe://${B}/new2`)).certPem;
    body = doc([oldRoot], 2); // older sequence, old root only
    const before = endpoint.requests;
    await until(() => endpoint.requests >= before + 3, 5000, 'refreshes');
    expect(await verdict(s, newSvid)).toBe('allow');
    const st = s.zg.trust.status()[0]!;
    expect(st.sequence).toBe(3);
    expect(st.lastError).toMatch(/sequence regression/);
    body = doc([newRoot], 4);
  });

  it('https_spiffe trusts the latest bundle, not the bootstrap: an endpoint certificate from the removed root is refused', async () => {
    const stale = await oldRoot.server(ENDPOINT_ID);
    endpoint.setCert({ cert: stale.chainPem, key: stale.keyPem });
    await until(() => /^fetch: /.test(s.zg.trust.status()[0]!.lastError ?? ''), 5000, 'a TLS failure');
    expect(s.zg.trust.status()[0]!.lastError).toMatch(/certificate|verify|issuer/i);
    const fresh = await newRoot.server(ENDPOINT_ID);
    endpoint.setCert({ cert: fresh.chainPem, key: fresh.keyPem });
    await until(() => s.zg.trust.status()[0]!.lastResult === 'ok', 5000, 'recovery');
  });

  it('endpoint down: the last good bundle keeps serving; past max staleness: fail closed; back up: recovers', async () => {
    const svid = (await newRoot.issue(`spiffe://${B}/w`)).certPem;
    await until(() => s.zg.trust.status()[0]!.sequence === 4, 5000, 'sequence 4');
    down = true;
    await until(() => s.zg.trust.status()[0]!.lastResult === 'error', 5000, 'a failed refresh');
    expect(await verdict(s, svid)).toBe('allow');
    await until(async () => (await verdict(s, svid)) === 'ERR_TRUST_DOMAIN_STALE', 5000, 'staleness');
    expect((await fetch(`http://127.0.0.1:${s.zg.ops.port}/readyz`)).status).toBe(503);
    const metrics = await (await fetch(`http://127.0.0.1:${s.zg.ops.port}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`zonegate_bundle_stale\\{trust_domain="${B}"\\} 1`));
    expect(metrics).toMatch(new RegExp(`zonegate_bundle_last_refresh_success\\{trust_domain="${B}"\\} 0`));
    down = false;
    await until(async () => (await verdict(s, svid)) === 'allow', 5000, 'recovery');
    expect((await fetch(`http://127.0.0.1:${s.zg.ops.port}/readyz`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${s.zg.ops.port}/metrics`)).text()).toMatch(
      new RegExp(`zonegate_bundle_sequence\\{trust_domain="${B}"\\} 4`),
    );
  });
});

describe('Consul CA roots and Istio root cert as sources', () => {
  it('federates a Consul mesh from /v1/connect/ca/roots (with the ACL token) and an Istio mesh from its root file', async () => {
    const consulTd = '7f3c8e2a-0b1d-4c5e-9f6a-2d8b4e1c3a5f.consul';
    const consulCa = await MemoryCA.create(consulTd);
    const istioCa = await MemoryCA.create('cluster.local');
    const dir = mkdtempSync(join(tmpdir(), 'zg-meshes-'));
    writeFileSync(join(dir, 'root-cert.pem'), istioCa.certPem);
    writeFileSync(join(dir, 'consul.token'), 's3cr3t-token\n');
    let token = '';
    const consul = await testServer(undefined, (req, res) => {
      token = String(req.headers['x-consul-token'] ?? '');
      if (req.url !== '/v1/connect/ca/roots') return void res.writeHead(404).end();
      res.end(JSON.stringify({ ActiveRootID: 'a', TrustDomain: consulTd, Roots: [{ ID: 'a', RootCert: consulCa.certPem, Active: true }] }));
    });
    closers.push(() => consul.close());
    const s = await startWith(
      {
        trust: [
          { trustDomain: consulTd, source: { consul: { url: `http://127.0.0.1:${consul.port}`, tokenFile: 'consul.token' } } },
          { trustDomain: 'cluster.local', source: { istio: { rootCert: 'root-cert.pem' } } },
        ],
        rules: allowAll,
      },
      dir,
    );
    closers.push(() => s.close());
    expect(token).toBe('s3cr3t-token');
    expect(await verdict(s, (await consulCa.issue(`spiffe://${consulTd}/ns/default/dc/dc1/svc/web`)).certPem)).toBe('allow');
    expect(await verdict(s, (await istioCa.issue('spiffe://cluster.local/ns/default/sa/web')).certPem)).toBe('allow');
    // Istio's CA cannot speak for the Consul trust domain
    expect(await verdict(s, (await istioCa.issue(`spiffe://${consulTd}/ns/default/dc/dc1/svc/web`)).certPem)).toBe('ERR_SVID_UNTRUSTED');
    // the token never reaches the logs
    expect(JSON.stringify(s.logs)).not.toContain('s3cr3t-token');
  });

  it('refuses Consul roots for another trust domain than the one configured', async () => {
    const consul = await testServer(undefined, (_q, res) => res.end(JSON.stringify({ TrustDomain: 'other.consul', Roots: [] })));
    closers.push(() => consul.close());
    const s = await startWith({ trust: [{ trustDomain: 'mine.consul', source: { consul: { url: `http://127.0.0.1:${consul.port}` } } }], rules: allowAll });
    closers.push(() => s.close());
    const st = s.zg.trust.status()[0]!;
    expect([st.hasBundle, st.lastError]).toEqual([false, expect.stringMatching(/trust domain is "other\.consul", configured "mine\.consul"/)]);
    expect(s.zg.readiness.ready).toBe(false);
  });
});

describe('file source', () => {
  it('reloads a bundle swapped through a symlink, as a Kubernetes ConfigMap mount does', async () => {
    const ca1 = await MemoryCA.create('zone-f.test');
    const ca2 = await MemoryCA.create('zone-f.test');
    const dir = mkdtempSync(join(tmpdir(), 'zg-cm-'));
    // <dir>/..2026_v1/bundle.pem, <dir>/..data -> ..2026_v1, <dir>/bundle.pem -> ..data/bundle.pem
    mkdirSync(join(dir, '..v1'));
    writeFileSync(join(dir, '..v1', 'bundle.pem'), ca1.certPem);
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/bundle.pem', join(dir, 'bundle.pem'));
    const s = await startWith(
      { federation: { refresh: { defaultSeconds: 3600, minSeconds: 3600, maxSeconds: 3600 } }, trust: [{ trustDomain: 'zone-f.test', bundle: 'bundle.pem' }], rules: allowAll },
      dir,
    );
    closers.push(() => s.close());
    const svid2 = (await ca2.issue('spiffe://zone-f.test/w')).certPem;
    expect(await verdict(s, svid2)).toBe('ERR_SVID_UNTRUSTED');
    // atomic swap: new version dir, new ..data symlink renamed over the old one
    mkdirSync(join(dir, '..v2'));
    writeFileSync(join(dir, '..v2', 'bundle.pem'), ca2.certPem);
    symlinkSync('..v2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    await until(async () => (await verdict(s, svid2)) === 'allow', 5000, 'the swapped bundle');
    expect(await verdict(s, (await ca1.issue('spiffe://zone-f.test/w')).certPem)).toBe('ERR_SVID_UNTRUSTED');
  });

  it('an invalid file at startup is a configuration error; a broken file later keeps the last good bundle', async () => {
    const ca = await MemoryCA.create('zone-g.test');
    const dir = mkdtempSync(join(tmpdir(), 'zg-file-'));
    writeFileSync(join(dir, 'bad.pem'), 'not a bundle');
    await expect(startWith({ trust: [{ trustDomain: 'zone-g.test', bundle: 'bad.pem' }] }, dir)).rejects.toThrow(/zone-g\.test.*no PEM blocks/);
    writeFileSync(join(dir, 'good.pem'), ca.certPem);
    const s = await startWith({ trust: [{ trustDomain: 'zone-g.test', bundle: 'good.pem' }], rules: allowAll }, dir);
    closers.push(() => s.close());
    const svid = (await ca.issue('spiffe://zone-g.test/w')).certPem;
    writeFileSync(join(dir, 'good.pem'), '-----BEGIN CERTIFICATE-----\nhalf');
    await until(() => s.zg.trust.status()[0]!.lastResult === 'error', 5000, 'the failed reload');
    expect(await verdict(s, svid)).toBe('allow');
  });
});
