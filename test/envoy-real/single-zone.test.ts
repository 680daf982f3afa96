/**
 * One zone behind a real Envoy, on every Envoy in the matrix: a client with an X509-SVID → Envoy
 * (mTLS, both zones' roots trusted) → ext_authz over envoy_grpc → a real `zonegate serve` process
 * → an echo upstream. Every verdict below is what Envoy really did with zonegate's answer: the
 * allow reaches the upstream with the identity headers, every deny reaches the client with its
 * status, reason header and JSON body, no client copy of a header zonegate sets or guards gets
 * through, and zonegate gone or too slow is Envoy's status_on_error (503), never an allow.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createH2, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { loadX509Svid } from '../../src/svid/local.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { BIN, serve, type Served } from '../helpers/cli.js';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { cluster, controlledHeaders, downstreamTls, envoyGrpc, extAuthzFilter, grpcService, httpListener, loopbackServerCert, send, writePem } from '../helpers/envoy-authz.js';
import { echoApp, valuesOf, type EchoApp, type Reply } from '../helpers/http.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const matrix = envoyMatrix();
const A = 'zone-a.test';
const B = 'zone-b.test';
const C = 'zone-c.test'; // trusted by Envoy's TLS, unknown to zonegate
const WEB = `spiffe://${A}/ns/shop/sa/web`;
const FRONTEND = `spiffe://${A}/ns/shop/sa/frontend`;
const DAY = 86_400_000;

interface Pki {
  dir: string;
  roots: string;
  web: Issued;
  other: Issued;
  forged: Issued;
  foreign: Issued;
  expired: Issued;
  envoyTls: { cert: string; key: string; ca: string };
}

let pki: Pki;

/** The zonegate config of this suite: every rewrite mode has a destination, so every header zonegate can set is guarded. */
function zonegateConfig() {
  return {
    server: { drainDelaySeconds: 0, shutdownGraceSeconds: 1 },
    identity: { cert: 'zonegate.pem', key: 'zonegate.key' },
    trust: [
      { trustDomain: A, bundle: 'a.pem', naming: 'istio' },
      { trustDomain: B, bundle: 'b.pem' },
    ],
    commonIdentity: { required: false },
    rules: [
      { name: 'no-admin', action: 'deny', to: { paths: [{ prefix: '/admin/' }] } },
      { name: 'web-api', action: 'allow', from: { principals: [WEB] }, to: { paths: [{ prefix: '/api/' }] } },
    ],
    upstream: {
      guard: ['x-internal-admin'],
      destinations: { signed: { mode: 'jwt' }, proof: { mode: 'hmac' }, legacy: { mode: 'basic' } },
      hmac: { secretFile: 'hmac.secret', keyId: 'k1' },
      basic: { credentialsFile: 'basic.yaml' },
    },
  };
}

async function makePki(): Promise<Pki> {
  const dir = mkdtempSync(join(tmpdir(), 'zg-envoy-zone-'));
  const caA = await MemoryCA.create(A);
  const caB = await MemoryCA.create(B);
  const caC = await MemoryCA.create(C);
  const zg = await caA.issue(`spiffe://${A}/zonegate`);
  const envoyCert = await loopbackServerCert(caA, `spiffe://${A}/ns/shop/sa/ingress`);
  writePem(dir, 'a.pem', caA.certPem);
  writePem(dir, 'b.pem', caB.certPem);
  writePem(dir, 'zonegate.pem', zg.chainPem);
  writePem(dir, 'zonegate.key', zg.keyPem);
  writeFileSync(join(dir, 'hmac.secret'), 'an hmac secret of at least thirty-two bytes\n');
  writeFileSync(join(dir, 'basic.yaml'), stringify({ alice: 'alice:s3cret', [WEB]: 'web:s3cret' }));
  writeFileSync(join(dir, 'zonegate.yaml'), stringify(zonegateConfig()));
  return {
    dir,
    roots: caA.certPem,
    web: await caA.issue(WEB),
    other: await caA.issue(`spiffe://${A}/ns/shop/sa/other`),
    // zone B's CA vouching for a zone-A name: Envoy's TLS accepts it (B's root is trusted), zonegate must not
    forged: await caB.issue(WEB),
    foreign: await caC.issue(`spiffe://${C}/ns/x/sa/y`),
    expired: await caA.issue(WEB, { notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) }),
    envoyTls: {
      cert: writePem(dir, 'envoy.pem', envoyCert.chainPem),
      key: writePem(dir, 'envoy.key', envoyCert.keyPem),
      ca: writePem(dir, 'envoy-roots.pem', caA.certPem + caB.certPem + caC.certPem),
    },
  };
}

/** A gRPC "server" that accepts every call and never answers: zonegate too slow, from Envoy's side. */
async function silentGrpc(): Promise<{ server: Http2Server; port: number }> {
  const server = createH2();
  // never respond; Envoy resets the stream at its timeout
  server.on('stream', (stream) => stream.on('error', () => undefined));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as AddressInfo).port };
}

function bootstrap(zgPort: number, stubPort: number, appPort: number) {
  const authz = [extAuthzFilter(grpcService(envoyGrpc('zonegate'), 2))];
  const routes = [
    { prefix: '/api/signed', context: { destination: 'signed' } },
    { prefix: '/api/proof', context: { destination: 'proof' } },
    { prefix: '/api/legacy', context: { destination: 'legacy' } },
    { prefix: '/' },
  ];
  return {
    static_resources: {
      listeners: [
        // the recommended listener: a client certificate is required and must chain to a trusted root
        httpListener('strict', { tls: downstreamTls(pki.envoyTls), filters: authz, cluster: 'app', routes }),
        // a lax listener (no certificate required, expired ones accepted) shows zonegate's own checks
        httpListener('lax', { tls: downstreamTls(pki.envoyTls, { require: false, allowExpired: true }), filters: authz, cluster: 'app' }),
        // ext_authz against a server that never answers, with a short timeout
        httpListener('slow', { tls: downstreamTls(pki.envoyTls), filters: [extAuthzFilter(grpcService(envoyGrpc('stub'), 0.3))], cluster: 'app' }),
      ],
      clusters: [cluster('zonegate', zgPort, { http2: true }), cluster('stub', stubPort, { http2: true }), cluster('app', appPort)],
    },
  };
}

/** The reply is zonegate's deny as Envoy relayed it: status, reason header, JSON body. */
function expectDeny(r: Reply, status: number, reason: string) {
  expect({ status: r.status, reason: r.reason, reached: r.seen !== undefined }).toEqual({ status, reason, reached: false });
  const body = JSON.parse(r.body) as { reason: string; decisionId: string };
  expect(body.reason).toBe(reason);
  expect(body.decisionId).toMatch(/\S/);
}

describe.skipIf(matrix.length === 0)('single zone through real Envoy (mTLS → ext_authz envoy_grpc → zonegate serve → app)', () => {
  beforeAll(async () => {
    pki = await makePki();
  }, 60_000);
  afterAll(() => rmSync(pki?.dir ?? '/nonexistent', { recursive: true, force: true }));

  for (const bin of matrix) {
    describe(`envoy ${bin.version}`, () => {
      let zg: Served;
      let envoy: RunningEnvoy;
      let app: EchoApp;
      let stub: Awaited<ReturnType<typeof silentGrpc>>;
      const get = (client: Issued | undefined, o: { path?: string; headers?: Record<string, string | string[]>; listener?: string } = {}) =>
        send(envoy.ports[o.listener ?? 'strict']!, { client, ca: pki.roots, ...(o.path ? { path: o.path } : {}), ...(o.headers ? { headers: o.headers } : {}) });
      const token = (o: { now?: number; extra?: Record<string, unknown>; onBehalfOf?: { iss: string } } = {}) =>
        mintCommonIdentity(loadX509Svid(Buffer.from(pki.web.chainPem), Buffer.from(pki.web.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${A}`, ...o });

      beforeAll(async () => {
        [zg, app, stub] = await Promise.all([serve(process.execPath, [BIN, 'serve', '--workers', '1', '--config', join(pki.dir, 'zonegate.yaml')]), echoApp(), silentGrpc()]);
        envoy = await startEnvoy(bin, bootstrap(zg.grpcPort, stub.port, app.port));
      }, 60_000);
      afterAll(async () => {
        zg?.signal('SIGKILL');
        await envoy?.stop();
        await app?.close();
        stub?.server.close();
      });

      it('allow: the upstream receives the verified identity, once', async () => {
        const r = await get(pki.web);
        expect(r.status).toBe(200);
        const one = (n: string) => valuesOf(r.seen!, n);
        expect(one('x-zonegate-peer')).toEqual([WEB]);
        expect(one('x-zonegate-peer-trust-domain')).toEqual([A]);
        expect(one('x-zonegate-namespace')).toEqual(['shop']);
        expect(one('x-zonegate-service')).toEqual(['web']);
        expect(one('x-zonegate-decision-id')).toHaveLength(1);
        expect(one('x-zonegate-actor')).toEqual([]);
      });

      it('allow with a common identity: actor, act chain and roles reach the upstream; the token does not', async () => {
        const r = await get(pki.web, { headers: { 'x-common-identity': token({ onBehalfOf: { iss: FRONTEND }, extra: { roles: ['reader'] } }) } });
        expect(r.status).toBe(200);
        expect(valuesOf(r.seen!, 'x-zonegate-actor')).toEqual(['alice']);
        expect(valuesOf(r.seen!, 'x-zonegate-act')).toEqual([FRONTEND]);
        expect(valuesOf(r.seen!, 'x-zonegate-roles')).toEqual(['reader']);
        expect(valuesOf(r.seen!, 'x-common-identity')).toEqual([]);
      });

      it('policy deny (a deny rule) → 403 ERR_POLICY_DENIED', async () => {
        expectDeny(await get(pki.web, { path: '/admin/users' }), 403, 'ERR_POLICY_DENIED');
      });

      it('no rule matches → 403 ERR_POLICY_NO_MATCH', async () => {
        expectDeny(await get(pki.other), 403, 'ERR_POLICY_NO_MATCH');
        expectDeny(await get(pki.web, { path: '/other' }), 403, 'ERR_POLICY_NO_MATCH');
      });

      it("forged: zone B's CA vouching for a zone-A workload passes Envoy's TLS (both roots trusted) and zonegate denies it", async () => {
        expectDeny(await get(pki.forged), 401, 'ERR_SVID_UNTRUSTED');
      });

      it('a trust domain Envoy trusts but zonegate does not know → 401 ERR_TRUST_DOMAIN_UNKNOWN', async () => {
        expectDeny(await get(pki.foreign), 401, 'ERR_TRUST_DOMAIN_UNKNOWN');
      });

      it('no client certificate: the strict listener refuses the handshake; the lax one reaches zonegate → 401 ERR_NO_IDENTITY', async () => {
        await expect(get(undefined)).rejects.toThrow();
        expectDeny(await get(undefined, { listener: 'lax' }), 401, 'ERR_NO_IDENTITY');
      });

      it("expired SVID: the strict listener's TLS refuses it; where Envoy lets it through, zonegate denies 401 ERR_SVID_EXPIRED", async () => {
        await expect(get(pki.expired)).rejects.toThrow();
        expectDeny(await get(pki.expired, { listener: 'lax' }), 401, 'ERR_SVID_EXPIRED');
      });

      it('a tampered or expired common identity → 401 ERR_TOKEN_SIGNATURE / ERR_TOKEN_EXPIRED', async () => {
        const [h, p] = token().split('.');
        const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
        const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.AAAA`;
        expectDeny(await get(pki.web, { headers: { 'x-common-identity': tampered } }), 401, 'ERR_TOKEN_SIGNATURE');
        expectDeny(await get(pki.web, { headers: { 'x-common-identity': token({ now: Date.now() - 600_000 }) } }), 401, 'ERR_TOKEN_EXPIRED');
      });

      it('no client copy of any header zonegate sets or guards reaches the upstream, in every rewrite mode', async () => {
        const cfg = parseConfig(stringify(zonegateConfig()), 'zonegate.yaml', pki.dir).config;
        const controlled = controlledHeaders(cfg);
        // the list comes from the rewrite phase; these are the ones the suite's config must cover
        expect(controlled).toEqual(
          expect.arrayContaining(['x-zonegate-peer', 'x-zonegate-actor', 'x-zonegate-roles', 'x-internal-admin', 'x-common-identity', 'x-zonegate-jwt', 'x-zonegate-proof', 'authorization']),
        );
        const carried = cfg.commonIdentity!.header;
        const headers: Record<string, string | string[]> = {};
        // each header twice, so "overwrite" has to replace both copies, not one
        for (const n of controlled) if (n !== carried) headers[n] = [`client-1-${n}`, `client-2-${n}`];
        // a control: a header zonegate does not touch arrives twice, so the client really sends repeats
        headers['x-other'] = ['o1', 'o2'];
        for (const path of ['/api/items', '/api/signed/x', '/api/proof/x', '/api/legacy/x']) {
          headers[carried] = token({ onBehalfOf: { iss: FRONTEND }, extra: { roles: ['reader'] } });
          const r = await get(pki.web, { path, headers });
          expect({ path, status: r.status, reason: r.reason }).toEqual({ path, status: 200, reason: undefined });
          for (const n of controlled) {
            const got = valuesOf(r.seen!, n);
            expect({ path, header: n, count: got.length <= 1, client: got.some((v) => v.includes('client-')) }).toEqual({ path, header: n, count: true, client: false });
          }
          expect(valuesOf(r.seen!, 'x-other')).toEqual(['o1', 'o2']);
          // and what zonegate set arrived: one value each
          if (path === '/api/items') expect(valuesOf(r.seen!, 'x-zonegate-peer')).toEqual([WEB]);
          if (path === '/api/signed/x') expect(valuesOf(r.seen!, 'x-zonegate-jwt')).toHaveLength(1);
          if (path === '/api/proof/x') expect(valuesOf(r.seen!, 'x-zonegate-proof')).toHaveLength(1);
          if (path === '/api/legacy/x') expect(valuesOf(r.seen!, 'authorization')).toEqual([`Basic ${Buffer.from('alice:s3cret').toString('base64')}`]);
        }
      });

      it('zonegate too slow (no answer within the ext_authz timeout) → 503 status_on_error, the app never reached', async () => {
        const before = app.seen.length;
        const r = await get(pki.web, { listener: 'slow' });
        expect({ status: r.status, reached: r.seen !== undefined }).toEqual({ status: 503, reached: false });
        expect(app.seen.length).toBe(before);
      });

      it('zonegate stopped → 503 status_on_error, never an allow', async () => {
        expect((await get(pki.web)).status).toBe(200);
        zg.signal('SIGTERM');
        expect(await zg.exited()).toBe(0);
        const before = app.seen.length;
        for (let i = 0; i < 3; i++) {
          const r = await get(pki.web);
          expect({ status: r.status, reached: r.seen !== undefined }).toEqual({ status: 503, reached: false });
        }
        expect(app.seen.length).toBe(before);
      });
    });
  }
});
