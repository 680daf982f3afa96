/**
 * Two zonegate instances, two trust domains with different roots. Each publishes its bundle
 * over https_spiffe with its own SVID and federates the other's after a one-time bootstrap
 * (each side handed the other its root once). Then each verifies the other zone's workloads.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { freePort } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

async function verdict(s: Started, certPem: string): Promise<string> {
  const r = await s.check(checkRequest({ certificate: encodeURIComponent(certPem) }));
  if (!r.ok) return `error ${r.error.code}`;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : String(st.message);
}

interface Zone {
  td: string;
  ca: MemoryCA;
  dir: string;
  port: number;
  zg?: Started;
}

let a: Zone;
let b: Zone;

async function zone(td: string): Promise<Zone> {
  const ca = await MemoryCA.create(td);
  const dir = mkdtempSync(join(tmpdir(), `zg-${td}-`));
  writeFileSync(join(dir, 'own-bundle.pem'), ca.certPem);
  const svid = await ca.server(`spiffe://${td}/zonegate`);
  writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
  writeFileSync(join(dir, 'svid.key'), svid.keyPem);
  return { td, ca, dir, port: await freePort() };
}

function configFor(self: Zone, peer: Zone) {
  return {
    identity: { cert: 'svid.pem', key: 'svid.key' },
    federation: {
      refresh: { defaultSeconds: 0.3, minSeconds: 0.1, maxSeconds: 0.5, jitter: 0.1 },
      endpoint: { trustDomain: self.td, address: '127.0.0.1', port: self.port, profile: 'https_spiffe' },
    },
    trust: [
      { trustDomain: self.td, bundle: 'own-bundle.pem' },
      {
        trustDomain: peer.td,
        source: { https_spiffe: { url: `https://127.0.0.1:${peer.port}/`, endpointSpiffeId: `spiffe://${peer.td}/zonegate`, bootstrap: 'peer-bootstrap.pem' } },
      },
    ],
    rules: [{ name: 'both-zones', action: 'allow', from: { trustDomains: [self.td, peer.td] } }],
  };
}

beforeAll(async () => {
  a = await zone('zone-a.test');
  b = await zone('zone-b.test');
  // the one-time bootstrap: each side is handed the other's root
  writeFileSync(join(a.dir, 'peer-bootstrap.pem'), b.ca.certPem);
  writeFileSync(join(b.dir, 'peer-bootstrap.pem'), a.ca.certPem);
  a.zg = await startWith(configFor(a, b), a.dir); // B is not up yet: A waits, not ready
  b.zg = await startWith(configFor(b, a), b.dir);
});
afterAll(async () => {
  await a?.zg?.close();
  await b?.zg?.close();
});

describe('two zones federating over https_spiffe', () => {
  it('both become ready once each has fetched the other\'s bundle', async () => {
    await until(() => a.zg!.zg.readiness.ready && b.zg!.zg.readiness.ready, 8000, 'both ready');
    expect(a.zg!.zg.trust.status().map((s) => [s.trustDomain, s.hasBundle])).toEqual([
      ['zone-a.test', true],
      ['zone-b.test', true],
    ]);
  });

  it('each verifies the other zone\'s workloads; a forged cross-zone SVID is denied on both', async () => {
    const fromA = (await a.ca.issue('spiffe://zone-a.test/ns/web/sa/frontend')).certPem;
    const fromB = (await b.ca.issue('spiffe://zone-b.test/ns/default/dc/dc1/svc/billing')).certPem;
    const forged = (await a.ca.issue('spiffe://zone-b.test/ns/default/dc/dc1/svc/billing')).certPem;
    expect(await verdict(b.zg!, fromA)).toBe('allow');
    expect(await verdict(a.zg!, fromB)).toBe('allow');
    expect(await verdict(a.zg!, forged)).toBe('ERR_SVID_UNTRUSTED');
    expect(await verdict(b.zg!, forged)).toBe('ERR_SVID_UNTRUSTED');
  });

  it('rotation flows on its own: A adds a root and moves its SVID to it; B follows without a restart', async () => {
    const next = await MemoryCA.create('zone-a.test');
    writeFileSync(join(a.dir, 'own-bundle.tmp'), a.ca.certPem + next.certPem);
    renameSync(join(a.dir, 'own-bundle.tmp'), join(a.dir, 'own-bundle.pem'));
    const fromNext = (await next.issue('spiffe://zone-a.test/ns/web/sa/frontend')).certPem;
    await until(async () => (await verdict(b.zg!, fromNext)) === 'allow', 8000, 'B to trust A\'s new root');
    // A's endpoint moves to an SVID of the new root (key first, then cert; a half-written pair is ignored)
    const svid = await next.server('spiffe://zone-a.test/zonegate');
    writeFileSync(join(a.dir, 'svid.key'), svid.keyPem);
    writeFileSync(join(a.dir, 'svid.pem'), svid.chainPem);
    await until(() => a.zg!.zg.identity!.current.chain[0]!.raw.equals(svid.cert.raw), 5000, 'A to load its new SVID');
    // A drops the old root; B keeps fetching over https_spiffe (now trusting the new root)
    writeFileSync(join(a.dir, 'own-bundle.tmp'), next.certPem);
    renameSync(join(a.dir, 'own-bundle.tmp'), join(a.dir, 'own-bundle.pem'));
    const fromOld = (await a.ca.issue('spiffe://zone-a.test/ns/web/sa/frontend')).certPem;
    await until(async () => (await verdict(b.zg!, fromOld)) === 'ERR_SVID_UNTRUSTED', 8000, 'B to drop A\'s old root');
    const requestsOk = b.zg!.zg.trust.status().find((s) => s.trustDomain === 'zone-a.test')!.refreshes.ok;
    await until(() => b.zg!.zg.trust.status().find((s) => s.trustDomain === 'zone-a.test')!.refreshes.ok > requestsOk + 2, 5000, 'more refreshes');
    expect(b.zg!.zg.trust.status().find((s) => s.trustDomain === 'zone-a.test')!.lastResult).toBe('ok');
    expect(await verdict(b.zg!, fromNext)).toBe('allow');
  });

  it('the published bundle is a SPIFFE bundle with sequence and refresh hint', async () => {
    // async: the endpoint under test runs in this very process
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const { BIN } = await import('../helpers/cli.js');
    const { stdout: out } = await promisify(execFile)(process.execPath, [
      BIN, 'bundle', 'fetch', `https://127.0.0.1:${b.port}/`, '--trust-domain', 'zone-b.test',
      '--profile', 'https_spiffe', '--endpoint-spiffe-id', 'spiffe://zone-b.test/zonegate', '--bootstrap', join(a.dir, 'peer-bootstrap.pem'),
    ]);
    const doc = JSON.parse(out) as { keys: { use: string; x5c: string[] }[]; spiffe_sequence: number; spiffe_refresh_hint: number };
    expect(doc.keys.map((k) => k.use)).toEqual(['x509-svid']);
    expect(doc.keys[0]!.x5c[0]).toBe(b.ca.cert.raw.toString('base64'));
    expect(doc.spiffe_sequence).toBeGreaterThan(1_700_000_000);
    expect(doc.spiffe_refresh_hint).toBe(1); // whole seconds, never below 1
  });
});
