/**
 * The world a soak runs in, all on loopback: two trust domains built in code, zone A's bundle in
 * a file that is rotated (a new root added, traffic moved to it, the old one removed), zone B's
 * bundle behind an HTTPS bundle endpoint that flaps (resets, stalls, garbage, 500), and a config
 * file that is rewritten, HUPed and now and then replaced with an invalid one.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { selfSignedSvid, MemoryCA, type Issued } from '../src/demo/pki.js';
import { testServer, type TestServer } from '../test/helpers/http.js';

export const A = 'zone-a.soak';
export const B = 'zone-b.soak';
export const FRONTEND = `spiffe://${A}/ns/shop/sa/frontend`;
export const BILLING = `spiffe://${B}/ns/default/sa/billing`;
export type Flap = 'ok' | 'reset' | 'stall' | 'garbage' | 'http500';

const pemOf = (roots: MemoryCA[]) => roots.map((r) => r.certPem).join('');
const enc = (pem: string) => encodeURIComponent(pem);

export class World {
  readonly dir = mkdtempSync(join(tmpdir(), 'zg-soak-'));
  readonly configFile = join(this.dir, 'zonegate.yaml');
  flap: Flap = 'ok';
  private stalled = new Set<ServerResponse>();
  /** Zone A's current root and the SVID issued by it (URL-encoded, as Envoy sends it). */
  current!: { root: MemoryCA; frontend: string };
  /** SVIDs of roots removed from zone A's bundle: must be denied. */
  revoked: string[] = [];
  billing!: string;
  forged!: string;
  selfSigned!: string;
  endpoint!: TestServer;
  private variant = 0;

  private constructor() {}

  static async create(): Promise<World> {
    const w = new World();
    const rootA = await MemoryCA.create(A);
    const rootB = await MemoryCA.create(B);
    w.current = { root: rootA, frontend: enc((await rootA.issue(FRONTEND)).certPem) };
    w.billing = enc((await rootB.issue(BILLING)).certPem);
    w.forged = enc((await rootB.issue(FRONTEND)).certPem); // zone B's CA signing a zone A identity
    w.selfSigned = enc((await selfSignedSvid(FRONTEND)).certPem);
    const bodyB = JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [rootB.cert.raw.toString('base64')] }], spiffe_refresh_hint: 2 });
    const web = await MemoryCA.create('web.soak');
    const tls: Issued = await web.server();
    w.endpoint = await testServer({ cert: tls.chainPem, key: tls.keyPem }, (_q, res) => {
      if (w.flap === 'ok') res.writeHead(200, { 'content-type': 'application/json' }).end(bodyB);
      else if (w.flap === 'reset') res.socket?.destroy();
      else if (w.flap === 'stall') w.stalled.add(res);
      else if (w.flap === 'garbage') res.writeHead(200).end('{"keys": [garbage');
      else res.writeHead(500).end();
    });
    writeFileSync(join(w.dir, 'web-ca.pem'), web.certPem);
    writeFileSync(join(w.dir, 'zone-a.pem'), rootA.certPem);
    w.writeConfig();
    return w;
  }

  /** A valid config; variants differ in a rule nobody matches and in refresh timing (so trust is rebuilt). */
  config(variant: number): string {
    return stringify({
      server: { drainDelaySeconds: 0, shutdownGraceSeconds: 10 },
      log: { level: variant % 2 ? 'warn' : 'info' },
      federation: {
        refresh: { defaultSeconds: 2, minSeconds: 1, maxSeconds: 4 + (variant % 2), jitter: 0.1 },
        fetch: { connectTimeoutMs: 500, totalTimeoutMs: 1500 },
        maxStalenessSeconds: 3600,
      },
      trust: [
        { trustDomain: A, bundle: 'zone-a.pem' },
        { trustDomain: B, source: { https_web: { url: this.endpoint.url, ca: 'web-ca.pem' } } },
      ],
      rules: [
        { name: 'no-admin', action: 'deny', to: { paths: [{ prefix: '/admin/' }] } },
        { name: 'frontend', action: 'allow', from: { principals: [FRONTEND] }, to: { methods: ['GET', 'POST'], paths: [{ prefix: '/api/' }] } },
        { name: 'billing', action: 'allow', from: { principals: [BILLING] }, to: { methods: ['GET'], paths: [{ prefix: '/api/orders' }] } },
        ...(variant % 2 ? [{ name: `unused-${variant}`, action: 'allow', from: { trustDomains: ['zone-z.soak'] } }] : []),
      ],
    });
  }

  private atomicWrite(path: string, text: string): void {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  }

  /** The next valid config variant. */
  writeConfig(): void {
    this.atomicWrite(this.configFile, this.config(this.variant++));
  }

  /** An invalid config (the running one must be kept). */
  writeInvalidConfig(): void {
    this.atomicWrite(this.configFile, this.config(this.variant).replace('action: allow', 'action: permit'));
  }

  endFlap(): void {
    this.flap = 'ok';
    for (const r of this.stalled) r.destroy();
    this.stalled.clear();
  }

  /** Rotation, step 1: the next root joins zone A's bundle. Returns its frontend SVID. */
  async addRoot(): Promise<{ root: MemoryCA; frontend: string }> {
    const next = await MemoryCA.create(A);
    const frontend = enc((await next.issue(FRONTEND)).certPem);
    this.atomicWrite(join(this.dir, 'zone-a.pem'), pemOf([this.current.root, next]));
    return { root: next, frontend };
  }

  /** Rotation, step 2: traffic has moved to `next`; the old root leaves the bundle. */
  removeOldRoot(next: { root: MemoryCA; frontend: string }): string {
    const old = this.current.frontend;
    this.current = next;
    this.atomicWrite(join(this.dir, 'zone-a.pem'), pemOf([next.root]));
    return old;
  }

  async close(): Promise<void> {
    this.endFlap();
    await this.endpoint.close();
  }
}
