/**
 * Both of Envoy's gRPC clients against zonegate, on every Envoy in the matrix: `envoy_grpc`
 * (Envoy's own HTTP/2 client, through a cluster) and `google_grpc` (gRPC C-core inside Envoy), each
 * over plaintext loopback, TLS, mTLS (zonegate's server.grpc.tls with clientCa) and a Unix socket
 * (server.grpc.unixSocket). Each path carries an allow and a deny end to end, and a client that
 * cannot authenticate to an mTLS zonegate gets status_on_error (503), never an allow.
 *
 * Not covered: TLS over the Unix socket. zonegate serves its socket with its TCP port's
 * credentials, so the socket here is the plaintext zonegate's; a local socket is protected by its
 * file mode, and both clients' TLS and mTLS are covered over TCP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { cluster, downstreamTls, envoyGrpc, extAuthzFilter, googleGrpc, grpcService, httpListener, loopbackServerCert, send, writePem, type GrpcService } from '../helpers/envoy-authz.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { echoApp, valuesOf, type EchoApp } from '../helpers/http.js';

const matrix = envoyMatrix();
const A = 'zone-a.test';
const WEB = `spiffe://${A}/ns/shop/sa/web`;

interface Material {
  dir: string;
  roots: string;
  web: Issued;
  envoyTls: { cert: string; key: string; ca: string };
  /** zonegate's gRPC server certificate and the CA Envoy verifies it with. */
  zgCert: string;
  zgKey: string;
  zgCa: string;
  /** Envoy's client certificate towards an mTLS zonegate, and the CA zonegate requires. */
  envoyClientCert: string;
  envoyClientKey: string;
}

let m: Material;

async function material(): Promise<Material> {
  const dir = mkdtempSync(join(tmpdir(), 'zg-envoy-grpc-'));
  const caA = await MemoryCA.create(A);
  const ops = await MemoryCA.create('ops.test'); // the CA of the Envoy ↔ zonegate hop
  const envoyCert = await loopbackServerCert(caA);
  const zg = await loopbackServerCert(ops);
  const client = await loopbackServerCert(ops, `spiffe://ops.test/envoy`);
  writePem(dir, 'a.pem', caA.certPem);
  return {
    dir,
    roots: caA.certPem,
    web: await caA.issue(WEB),
    envoyTls: { cert: writePem(dir, 'envoy.pem', envoyCert.chainPem), key: writePem(dir, 'envoy.key', envoyCert.keyPem), ca: writePem(dir, 'roots.pem', caA.certPem) },
    zgCert: writePem(dir, 'zg.pem', zg.chainPem),
    zgKey: writePem(dir, 'zg.key', zg.keyPem),
    zgCa: writePem(dir, 'ops.pem', ops.certPem),
    envoyClientCert: writePem(dir, 'envoy-client.pem', client.chainPem),
    envoyClientKey: writePem(dir, 'envoy-client.key', client.keyPem),
  };
}

const policy = {
  trust: [{ trustDomain: A, bundle: 'a.pem' }],
  rules: [{ name: 'web-api', action: 'allow', from: { principals: [WEB] }, to: { paths: [{ prefix: '/api/' }] } }],
};

/** One Envoy listener per way of reaching zonegate. */
const PATHS = [
  { name: 'envoy_plain', title: 'envoy_grpc, plaintext' },
  { name: 'envoy_tls', title: 'envoy_grpc, TLS (cluster UpstreamTlsContext)' },
  { name: 'envoy_mtls', title: 'envoy_grpc, mTLS (cluster client certificate)' },
  { name: 'envoy_unix', title: 'envoy_grpc, Unix socket (cluster pipe address)' },
  { name: 'google_plain', title: 'google_grpc, plaintext' },
  { name: 'google_tls', title: 'google_grpc, TLS (ssl_credentials root_certs)' },
  { name: 'google_mtls', title: 'google_grpc, mTLS (ssl_credentials with cert_chain)' },
  { name: 'google_unix', title: 'google_grpc, Unix socket (target unix:PATH)' },
] as const;
/** Envoy without a client certificate towards the mTLS zonegate. */
const REFUSED = [
  { name: 'envoy_mtls_nocert', title: 'envoy_grpc' },
  { name: 'google_mtls_nocert', title: 'google_grpc' },
] as const;

describe.skipIf(matrix.length === 0)("Envoy's two gRPC clients → zonegate over plaintext, TLS, mTLS and a Unix socket", () => {
  let plain: Started;
  let tls: Started;
  let mtls: Started;
  let socket: string;
  beforeAll(async () => {
    m = await material();
    socket = join(m.dir, 'zonegate.sock');
    // one zonegate per transport setting: TLS is per listener, the Unix socket rides with plaintext
    [plain, tls, mtls] = await Promise.all([
      startWith({ ...policy, server: { grpc: { unixSocket: socket } } }, m.dir),
      startWith({ ...policy, server: { grpc: { tls: { cert: m.zgCert, key: m.zgKey } } } }, m.dir),
      startWith({ ...policy, server: { grpc: { tls: { cert: m.zgCert, key: m.zgKey, clientCa: m.zgCa } } } }, m.dir),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([plain?.close(), tls?.close(), mtls?.close()]);
    rmSync(m?.dir ?? '/nonexistent', { recursive: true, force: true });
  });

  const services = (): Record<(typeof PATHS)[number]['name'] | (typeof REFUSED)[number]['name'], GrpcService> => {
    const tcp = (s: Started) => `127.0.0.1:${s.zg.grpc.port}`;
    return {
      envoy_plain: envoyGrpc('zg_plain'),
      envoy_tls: envoyGrpc('zg_tls'),
      envoy_mtls: envoyGrpc('zg_mtls'),
      envoy_unix: envoyGrpc('zg_unix'),
      envoy_mtls_nocert: envoyGrpc('zg_mtls_nocert'),
      google_plain: googleGrpc(tcp(plain)),
      google_tls: googleGrpc(tcp(tls), { ca: m.zgCa }),
      google_mtls: googleGrpc(tcp(mtls), { ca: m.zgCa, cert: m.envoyClientCert, key: m.envoyClientKey }),
      google_unix: googleGrpc(`unix:${socket}`),
      google_mtls_nocert: googleGrpc(tcp(mtls), { ca: m.zgCa }),
    };
  };

  for (const bin of matrix) {
    describe(`envoy ${bin.version}`, () => {
      let envoy: RunningEnvoy;
      let app: EchoApp;
      beforeAll(async () => {
        app = await echoApp();
        const tlsTo = { ca: m.zgCa };
        envoy = await startEnvoy(bin, {
          static_resources: {
            listeners: Object.entries(services()).map(([name, service]) =>
              httpListener(name, { tls: downstreamTls(m.envoyTls), filters: [extAuthzFilter(grpcService(service, 2))], cluster: 'app' }),
            ),
            clusters: [
              cluster('app', app.port),
              cluster('zg_plain', plain.zg.grpc.port, { http2: true }),
              cluster('zg_tls', tls.zg.grpc.port, { http2: true, tls: tlsTo }),
              cluster('zg_mtls', mtls.zg.grpc.port, { http2: true, tls: { ...tlsTo, cert: m.envoyClientCert, key: m.envoyClientKey } }),
              cluster('zg_mtls_nocert', mtls.zg.grpc.port, { http2: true, tls: tlsTo }),
              cluster('zg_unix', { pipe: socket }, { http2: true }),
            ],
          },
        });
      }, 60_000);
      afterAll(async () => {
        await envoy?.stop();
        await app?.close();
      });

      for (const p of PATHS) {
        it(`${p.title}: an allow reaches the upstream with the identity, a deny reaches the client`, async () => {
          const port = envoy.ports[p.name]!;
          const ok = await send(port, { client: m.web, ca: m.roots });
          expect({ status: ok.status, peer: ok.seen && valuesOf(ok.seen, 'x-zonegate-peer') }).toEqual({ status: 200, peer: [WEB] });
          const no = await send(port, { client: m.web, ca: m.roots, path: '/other' });
          expect({ status: no.status, reason: no.reason, reached: no.seen !== undefined }).toEqual({ status: 403, reason: 'ERR_POLICY_NO_MATCH', reached: false });
        });
      }

      for (const p of REFUSED) {
        it(`${p.title} without a client certificate to the mTLS zonegate: refused, status_on_error (503), the app never reached`, async () => {
          const before = app.seen.length;
          const r = await send(envoy.ports[p.name]!, { client: m.web, ca: m.roots });
          expect({ status: r.status, reached: r.seen !== undefined }).toEqual({ status: 503, reached: false });
          expect(app.seen.length).toBe(before);
        });
      }
    });
  }
});
