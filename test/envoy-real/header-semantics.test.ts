/**
 * How each Envoy in the matrix applies an ext_authz OkHttpResponse's header fields to a request
 * whose client already sent the header twice. A stub Authorization server answers a fixed
 * CheckResponse per route (the claim here is about Envoy, not about zonegate; zonegate's own
 * answers go through the same Envoys in single-zone.test.ts). It pins down why zonegate sends
 * `append: false` and leaves `append_action` unset (README, "Why append: false"; envoyproxy/envoy
 * #43310, reverted by #43442): that choice overwrites the client's copies on every version, and
 * `headers_to_remove` is applied after the sets.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProtos } from '../../src/envoy/proto.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { cluster, downstreamTls, envoyGrpc, extAuthzFilter, grpcService, httpListener, loopbackServerCert, send, writePem } from '../helpers/envoy-authz.js';
import { echoApp, valuesOf, type EchoApp } from '../helpers/http.js';

const matrix = envoyMatrix();
const header = (o: Record<string, unknown> = {}) => ({ header: { key: 'x-h', value: 'server' }, ...o });

/** The OkHttpResponse each route's request gets, keyed by the route's last path segment. */
const CASES: Record<string, Record<string, unknown>> = {
  // zonegate's choice (src/envoy/response.ts)
  'append-false': { headers: [header({ append: { value: false } })] },
  'append-true': { headers: [header({ append: { value: true } })] },
  unset: { headers: [header()] },
  'action-overwrite': { headers: [header({ append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })] },
  'action-add-if-absent': { headers: [header({ append_action: 'ADD_IF_ABSENT' })] },
  both: { headers: [header({ append: { value: false }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })] },
  'set-then-remove': { headers: [header({ append: { value: false } })], headers_to_remove: ['x-h'] },
  'remove-guarded': { headers: [header({ append: { value: false } })], headers_to_remove: ['x-g'] },
};

/** A stub Authorization service: OK with the case's headers, chosen by the request path. */
async function stubAuthz(): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(loadProtos().authService, {
    Check: (call: grpc.ServerUnaryCall<{ attributes: { request: { http: { path: string } } } }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const name = call.request.attributes.request.http.path.split('/').pop() ?? '';
      cb(null, { status: { code: 0 }, ok_response: CASES[name] ?? {} });
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  return { server, port };
}

describe.skipIf(matrix.length === 0)('ext_authz header semantics on every pinned Envoy', () => {
  let dir: string;
  let roots: string;
  let client: Issued;
  let tls: { cert: string; key: string; ca: string };
  let stub: Awaited<ReturnType<typeof stubAuthz>>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'zg-envoy-hdr-'));
    const ca = await MemoryCA.create('zone-a.test');
    const cert = await loopbackServerCert(ca);
    client = await ca.issue('spiffe://zone-a.test/ns/shop/sa/web');
    roots = ca.certPem;
    tls = { cert: writePem(dir, 'envoy.pem', cert.chainPem), key: writePem(dir, 'envoy.key', cert.keyPem), ca: writePem(dir, 'roots.pem', ca.certPem) };
    stub = await stubAuthz();
  }, 60_000);
  afterAll(() => {
    stub?.server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const bin of matrix) {
    describe(`envoy ${bin.version}`, () => {
      let envoy: RunningEnvoy;
      let app: EchoApp;
      const upstreamSees = async (name: string, h = 'x-h') => {
        const r = await send(envoy.ports.l!, { client, ca: roots, path: `/case/${name}`, headers: { 'x-h': ['c1', 'c2'], 'x-g': ['g1', 'g2'] } });
        expect(r.status).toBe(200);
        return valuesOf(r.seen!, h);
      };
      beforeAll(async () => {
        app = await echoApp();
        envoy = await startEnvoy(bin, {
          static_resources: {
            listeners: [httpListener('l', { tls: downstreamTls(tls), filters: [extAuthzFilter(grpcService(envoyGrpc('stub'), 2))], cluster: 'app' })],
            clusters: [cluster('stub', stub.port, { http2: true }), cluster('app', app.port)],
          },
        });
      }, 60_000);
      afterAll(async () => {
        await envoy?.stop();
        await app?.close();
      });

      it('append: false (what zonegate sends) replaces both client copies with the one value', async () => {
        expect(await upstreamSees('append-false')).toEqual(['server']);
      });

      it('headers_to_remove is applied after the sets: a header both set and removed is gone', async () => {
        expect(await upstreamSees('set-then-remove')).toEqual([]);
      });

      it('headers_to_remove removes every client copy of a guarded header, next to a set', async () => {
        expect(await upstreamSees('remove-guarded', 'x-g')).toEqual([]);
        expect(await upstreamSees('remove-guarded')).toEqual(['server']);
      });

      it('append: true keeps the client copies (why zonegate never sends it)', async () => {
        const got = (await upstreamSees('append-true')).join(',').replace(/ /g, '').split(',');
        expect(got.sort()).toEqual(['c1', 'c2', 'server']);
      });

      // Measured on 1.36.4 and 1.40.0: in an ext_authz OkHttpResponse an unset `append` overwrites
      // and `append_action` is not read at all (ADD_IF_ABSENT still overwrites), and setting both
      // is not refused. The Envoy that read append_action here (1.37, envoyproxy/envoy #43310,
      // reverted by #43442) is not pinned; an explicit `append: false` overwrites either way.
      it('an unset append overwrites; append_action is not read (ADD_IF_ABSENT overwrites too); both set is accepted', async () => {
        expect(await upstreamSees('unset')).toEqual(['server']);
        expect(await upstreamSees('action-overwrite')).toEqual(['server']);
        expect(await upstreamSees('action-add-if-absent')).toEqual(['server']);
        expect(await upstreamSees('both')).toEqual(['server']);
      });
    });
  }
});
