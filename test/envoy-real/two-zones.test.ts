/**
 * Two zones through real Envoy, both directions, on every pinned Envoy:
 *   app A ─HTTP─▶ Envoy A egress ─ext_authz egress─▶ zonegate A (mints the common identity)
 *         ─mTLS with A's SVID─▶ Envoy B ingress ─ext_authz ingress─▶ zonegate B (A's bundle from
 *         zonegate A's https_spiffe endpoint) ─▶ app B (an echo) receives A's verified identity;
 * and B → A the same way (zonegate A holds B's bundle from a file). Then zone A adds a root and
 * rotates its SVID: Envoy gets both through file-based SDS (secrets whose files are watched with
 * `watched_directory`), zonegate through its file watches and its federation refresh; traffic
 * keeps flowing with no restart, and once the old root leaves zone A's bundle an SVID of it is
 * refused, by zonegate B first and by Envoy B's TLS once its roots follow.
 *
 * Settles "does file-based SDS reload as assumed": yes, on every version here, when the new
 * files arrive by a move into the watched directory (the Kubernetes `..data` swap).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { envoyMatrix, envoyStat, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { checkContext, cluster, envoyCertSerials, extAuthzFilter, httpListener, routerFilter, sdsSecret, SwappedDir, watchedCertificate, watchedRoots } from '../helpers/envoy-zones.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { call, echoApp, type EchoApp } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const matrix = envoyMatrix();

const A = { td: 'zone-a.test', id: 'spiffe://zone-a.test/ns/shop/sa/frontend' };
const B = { td: 'zone-b.test', id: 'spiffe://zone-b.test/ns/billing/sa/billing' };
const FILTER = 'envoy.filters.http.ext_authz';
/** Seconds the Envoy process has been up (admin /server_info); a restart would start it again. */
const uptimeOf = async (e: RunningEnvoy): Promise<number> =>
  Number(((await (await fetch(`${e.admin}/server_info`)).json()) as { uptime_all_epochs?: string }).uptime_all_epochs?.replace(/s$/, '') ?? NaN);

const serial = (s: Issued) => s.cert.serialNumber.toLowerCase().replace(/^0+/, '');

/** zonegate of one zone: its own bundle from a file, the other's from `peerTrust`, two rules. */
function zonegateConfig(self: typeof A, peer: typeof A, peerTrust: Record<string, unknown>) {
  return {
    peer: { source: 'certificate' },
    identity: { cert: 'self/svid/cert.pem', key: 'self/svid/key.pem' },
    trust: [{ trustDomain: self.td, bundle: 'self/bundle/roots.pem' }, { trustDomain: peer.td, ...peerTrust }],
    federation: {
      // seconds, so that a rotation shows within the test; production keeps the defaults
      refresh: { defaultSeconds: 1, minSeconds: 1, maxSeconds: 5 },
      endpoint: { trustDomain: self.td, address: '127.0.0.1', port: 0, profile: 'https_spiffe' },
    },
    commonIdentity: { required: true, egress: { defaultAudience: `spiffe://${peer.td}` } },
    rules: [
      { name: 'calls-out', action: 'allow', from: { principals: [self.id] }, to: { context: { direction: 'egress' } } },
      { name: 'peer-reads-api', action: 'allow', from: { principals: [peer.id] }, to: { methods: ['GET'], paths: [{ prefix: '/api/' }], context: { direction: 'ingress' } } },
    ],
  };
}

/** Envoy of one zone: mTLS ingress on a Unix socket, plain egress on a TCP port, SDS from files. */
function envoyConfig(o: { dir: string; peerTd: string; appPort: number; zonegatePort: number; ingress: string; peerIngress: string; svid: SwappedDir; peerRoots: SwappedDir }) {
  const svid = sdsSecret(join(o.dir, 'sds-svid.yaml'), { name: 'svid', tls_certificate: watchedCertificate(o.svid) });
  const roots = sdsSecret(join(o.dir, 'sds-peer-roots.yaml'), { name: 'peer_roots', validation_context: watchedRoots(o.peerRoots) });
  const tlsContext = {
    tls_certificate_sds_secret_configs: [svid],
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${o.peerTd}/` } }] },
      validation_context_sds_secret_config: roots,
    },
  };
  return {
    node: { id: `envoy-${o.peerTd}-peer`, cluster: 'zones' }, // file-based SDS needs a node
    static_resources: {
      listeners: [
        httpListener({
          name: 'ingress',
          at: o.ingress,
          downstreamTls: { require_client_certificate: true, common_tls_context: tlsContext },
          route: { cluster: 'app' },
          perFilter: checkContext(FILTER, { direction: 'ingress' }),
          filters: [extAuthzFilter(FILTER), routerFilter],
        }),
        httpListener({
          name: 'egress',
          at: 0,
          route: { cluster: 'peer' },
          perFilter: checkContext(FILTER, { direction: 'egress', audience: `spiffe://${o.peerTd}` }),
          filters: [extAuthzFilter(FILTER), routerFilter],
        }),
      ],
      clusters: [
        cluster('app', o.appPort),
        cluster('zonegate', o.zonegatePort, { h2: true }),
        // A reloaded SVID is presented on new connections only: pooled ones keep the old one
        // until they close, so the connections to the other zone are bounded in time.
        cluster('peer', o.peerIngress, { tls: { common_tls_context: tlsContext }, maxConnectionDuration: '2s' }),
      ],
    },
  };
}

describe.skipIf(matrix.length === 0).each(matrix)('two zones through envoy $version', (bin) => {
  let dir: string;
  let root1: MemoryCA;
  let root2: MemoryCA;
  let rootB: MemoryCA;
  let svidA1: Issued;
  let svidA2: Issued;
  const dirs = {} as Record<'aSvid' | 'aBundle' | 'bSvid' | 'bBundle' | 'aPeerRoots' | 'bPeerRoots', SwappedDir>;
  let appA: EchoApp;
  let appB: EchoApp;
  let zgA: Started;
  let zgB: Started;
  let envoyA: RunningEnvoy;
  let envoyB: RunningEnvoy;
  let ingressB: string;

  const aToB = (path = '/api/orders/1', headers: Record<string, string> = {}) => call({ to: envoyA.ports.egress!, path, headers });
  const bToA = (path = '/api/orders/1') => call({ to: envoyB.ports.egress!, path });
  const zoneAStatus = () => zgB.zg.trust.status().find((s) => s.trustDomain === A.td)!;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zg-2z-'));
    [root1, root2, rootB] = await Promise.all([MemoryCA.create(A.td), MemoryCA.create(A.td), MemoryCA.create(B.td)]);
    svidA1 = await root1.issue(A.id);
    svidA2 = await root2.issue(A.id);
    const svidB = await rootB.issue(B.id);
    for (const [k, sub] of Object.entries({ aSvid: 'a/self/svid', aBundle: 'a/self/bundle', aPeerRoots: 'a/peer-roots', bSvid: 'b/self/svid', bBundle: 'b/self/bundle', bPeerRoots: 'b/peer-roots' })) {
      dirs[k as keyof typeof dirs] = new SwappedDir(join(dir, sub));
    }
    dirs.aSvid.write({ 'cert.pem': svidA1.chainPem, 'key.pem': svidA1.keyPem });
    dirs.aBundle.write({ 'roots.pem': root1.certPem });
    dirs.bSvid.write({ 'cert.pem': svidB.chainPem, 'key.pem': svidB.keyPem });
    dirs.bBundle.write({ 'roots.pem': rootB.certPem });
    dirs.aPeerRoots.write({ 'roots.pem': rootB.certPem }); // Envoy A trusts zone B's root
    dirs.bPeerRoots.write({ 'roots.pem': root1.certPem }); // Envoy B trusts zone A's root
    writeFileSync(join(dir, 'a', 'zone-b-bundle.pem'), rootB.certPem);
    writeFileSync(join(dir, 'b', 'zone-a-bootstrap.pem'), root1.certPem);

    [appA, appB] = await Promise.all([echoApp('app-a'), echoApp('app-b')]);
    // zone A holds zone B's bundle from a file; zone B fetches zone A's from zone A's endpoint
    zgA = await startWith(zonegateConfig(A, B, { bundle: 'zone-b-bundle.pem' }), join(dir, 'a'));
    const endpointA = `https://127.0.0.1:${zgA.zg.bundleEndpoint!.port}/`;
    zgB = await startWith(
      zonegateConfig(B, A, { source: { https_spiffe: { url: endpointA, endpointSpiffeId: A.id, bootstrap: 'zone-a-bootstrap.pem' } } }),
      join(dir, 'b'),
    );
    await until(() => zgA.zg.readiness.ready && zgB.zg.readiness.ready, 15_000, 'both zonegates ready');

    const ingressA = join(dir, 'a', 'ingress.sock');
    ingressB = join(dir, 'b', 'ingress.sock');
    [envoyA, envoyB] = await Promise.all([
      startEnvoy(bin, envoyConfig({ dir: join(dir, 'a'), peerTd: B.td, appPort: appA.port, zonegatePort: zgA.zg.grpc.port, ingress: ingressA, peerIngress: ingressB, svid: dirs.aSvid, peerRoots: dirs.aPeerRoots })),
      startEnvoy(bin, envoyConfig({ dir: join(dir, 'b'), peerTd: A.td, appPort: appB.port, zonegatePort: zgB.zg.grpc.port, ingress: ingressB, peerIngress: ingressA, svid: dirs.bSvid, peerRoots: dirs.bPeerRoots })),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([envoyA?.stop(), envoyB?.stop()]);
    await Promise.allSettled([zgA?.close(), zgB?.close(), appA?.close(), appB?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('A → B: app B receives zone A\'s verified identity; a client\'s copies of the identity headers never reach it', async () => {
    const r = await aToB('/api/orders/1', { 'x-zonegate-peer': 'spiffe://zone-b.test/forged', 'x-zonegate-actor': 'forged' });
    expect(r.status, r.body).toBe(200);
    expect(r.headers['x-echo']).toBe('app-b');
    expect(r.json.headers).toMatchObject({ 'x-zonegate-peer': A.id, 'x-zonegate-actor': A.id });
    expect(r.json.headers['x-common-identity']).toBeUndefined();
  });

  it('B → A: app A receives zone B\'s verified identity', async () => {
    const r = await bToA();
    expect(r.status, r.body).toBe(200);
    expect(r.headers['x-echo']).toBe('app-a');
    expect(r.json.headers).toMatchObject({ 'x-zonegate-peer': B.id, 'x-zonegate-actor': B.id });
  });

  it('a path zone B\'s rules do not allow is denied by zonegate B and the deny reaches app A', async () => {
    const before = appB.seen.length;
    const r = await aToB('/admin/users');
    expect(r.status).toBe(403);
    expect(r.headers['x-zonegate-reason']).toBe('ERR_POLICY_NO_MATCH');
    expect(appB.seen.length).toBe(before);
  });

  it('zone A adds a root and rotates its SVID: Envoy (file SDS) and zonegate (watches, federation) follow with no restart; the old root is refused once it leaves the bundle', async () => {
    const startedAt = await Promise.all([envoyA, envoyB].map(uptimeOf));
    // 1 zone A publishes both roots; Envoy B's roots file gets both (what edge-zone-a-roots.sh does)
    dirs.aBundle.write({ 'roots.pem': root1.certPem + root2.certPem });
    dirs.bPeerRoots.write({ 'roots.pem': root1.certPem + root2.certPem });
    await until(() => zoneAStatus().x509Authorities === 2, 15_000, 'zonegate B to fetch zone A\'s new root');

    // 2 zone A's SVID comes from the new root: one swap of the directory Envoy A and zonegate A read
    expect(await envoyCertSerials(envoyA.admin)).toContain(serial(svidA1));
    dirs.aSvid.write({ 'cert.pem': svidA2.chainPem, 'key.pem': svidA2.keyPem });
    await until(async () => (await envoyCertSerials(envoyA.admin)).includes(serial(svidA2)), 15_000, 'Envoy A to load the new SVID through SDS');
    const rotatedAt = (await envoyStat(envoyA, 'cluster.peer.upstream_cx_max_duration_reached')) ?? 0;
    await until(() => zgA.zg.identity!.current.certPem.includes(svidA2.certPem.trim().split('\n')[1]!), 15_000, 'zonegate A to load the new SVID');
    expect(await envoyCertSerials(envoyA.admin)).not.toContain(serial(svidA1));
    // traffic flows both ways meanwhile; Envoy B took the new root from its SDS file
    expect((await aToB()).status).toBe(200);
    expect((await bToA()).status).toBe(200);
    // the connection opened before the swap still presents the old SVID until it closes
    // (max_connection_duration): only then may the old root leave the bundle
    await until(async () => ((await envoyStat(envoyA, 'cluster.peer.upstream_cx_max_duration_reached')) ?? 0) > rotatedAt, 15_000, 'Envoy A to recycle its connection to zone B');
    const r1 = await aToB();
    expect(r1.status).toBe(200);
    expect(r1.json.headers['x-zonegate-peer']).toBe(A.id);

    // 3 the old root leaves zone A's bundle: zonegate B refuses an SVID of it even while Envoy B's
    // TLS still trusts it ...
    dirs.aBundle.write({ 'roots.pem': root2.certPem });
    await until(() => zoneAStatus().x509Authorities === 1, 15_000, 'zonegate B to drop zone A\'s old root');
    const old = { cert: svidA1.chainPem, key: svidA1.keyPem };
    const refused = await call({ to: ingressB, path: '/api/orders/1', tls: old });
    expect(refused.status).toBe(401);
    expect(refused.headers['x-zonegate-reason']).toBe('ERR_SVID_UNTRUSTED');
    // ... and Envoy B's handshake refuses it once its roots file follows
    dirs.bPeerRoots.write({ 'roots.pem': root2.certPem });
    await until(
      () => call({ to: ingressB, path: '/api/orders/1', tls: old }).then(() => false, () => true),
      15_000,
      'Envoy B to refuse the old root in the handshake',
    );
    // the new SVID still passes end to end, on the same Envoy processes
    const after = await aToB();
    expect(after.status, `${after.headers['x-zonegate-reason']} ${after.body}`).toBe(200);
    expect((await bToA()).status).toBe(200);
    // the same Envoy processes throughout: their uptime only grew
    const uptimes = await Promise.all([envoyA, envoyB].map(uptimeOf));
    uptimes.forEach((u, k) => expect(u).toBeGreaterThanOrEqual(startedAt[k]!));
  }, 60_000);
});
