/**
 * Settles "does a second ext_authz filter (under its own name) see the first one's header
 * changes" on every pinned Envoy: yes. The Consul edge (docs/integrations/consul/edge-envoy.yaml)
 * relies on it: its ingress check keeps zone A's verified token on the request and its egress
 * check, a second ext_authz filter named `zonegate.egress`, re-signs that token.
 *
 * A recording Authorization server (real gRPC on loopback) answers both filters: the first sets
 * a header, overwrites a client's copy of another and removes a third; the test reads what the
 * second check was sent, and what the upstream received. Each filter gets its own per-route
 * context_extensions, looked up by its own name.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProtos } from '../../src/envoy/proto.js';
import { envoyMatrix, startEnvoy, type RunningEnvoy } from '../helpers/envoy.js';
import { checkContext, cluster, extAuthzFilter, httpListener, routerFilter } from '../helpers/envoy-zones.js';
import { call, echoApp, type EchoApp } from '../helpers/http.js';

const matrix = envoyMatrix();

interface Seen {
  context: Record<string, string>;
  headers: Record<string, string>;
}

/** An Authorization server that records every check and answers by the check's `stage` context. */
async function recordingAuthz(): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server = new grpc.Server();
  server.addService(loadProtos().authService, {
    Check: (callObj: grpc.ServerUnaryCall<any, unknown>, done: grpc.sendUnaryData<unknown>) => {
      const attrs = callObj.request.attributes ?? {};
      const s: Seen = { context: attrs.context_extensions ?? {}, headers: attrs.request?.http?.headers ?? {} };
      seen.push(s);
      const set = (key: string, value: string) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
      done(null, {
        status: { code: 0 },
        ok_response:
          s.context.stage === 'one'
            ? { headers: [set('x-set-by-first', 'first'), set('x-overwritten', 'by-first')], headers_to_remove: ['x-removed-by-first'] }
            : { headers: [set('x-set-by-second', 'second')] },
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { port, seen, close: () => new Promise<void>((r) => server.tryShutdown(() => r())) };
}

describe.skipIf(matrix.length === 0).each(matrix)('two ext_authz filters on envoy $version', (bin) => {
  let authz: Awaited<ReturnType<typeof recordingAuthz>>;
  let app: EchoApp;
  let envoy: RunningEnvoy;

  beforeAll(async () => {
    [authz, app] = await Promise.all([recordingAuthz(), echoApp('app')]);
    envoy = await startEnvoy(bin, {
      static_resources: {
        listeners: [
          httpListener({
            name: 'in',
            at: 0,
            route: { cluster: 'app' },
            perFilter: { ...checkContext('envoy.filters.http.ext_authz', { stage: 'one' }), ...checkContext('zonegate.second', { stage: 'two' }) },
            filters: [
              extAuthzFilter('envoy.filters.http.ext_authz', 'authz', { include_peer_certificate: false }),
              extAuthzFilter('zonegate.second', 'authz', { include_peer_certificate: false }),
              routerFilter,
            ],
          }),
        ],
        clusters: [cluster('app', app.port), cluster('authz', authz.port, { h2: true })],
      },
    });
  }, 30_000);

  afterAll(async () => {
    await envoy?.stop();
    await Promise.allSettled([authz?.close(), app?.close()]);
  });

  it('the second filter is asked after the first, with its own context, and sees the first one\'s sets and removals', async () => {
    authz.seen.length = 0;
    const r = await call({ to: envoy.ports.in!, path: '/x', headers: { 'x-overwritten': 'by-client', 'x-removed-by-first': 'client' } });
    expect(r.status, r.body).toBe(200);
    expect(authz.seen.map((s) => s.context)).toEqual([{ stage: 'one' }, { stage: 'two' }]);
    const [first, second] = authz.seen;
    expect(first!.headers).toMatchObject({ 'x-overwritten': 'by-client', 'x-removed-by-first': 'client' });
    expect(second!.headers).toMatchObject({ 'x-set-by-first': 'first', 'x-overwritten': 'by-first' });
    expect(second!.headers['x-removed-by-first']).toBeUndefined();
    // and the upstream gets both filters' changes, one value each
    expect(r.json.headers).toMatchObject({ 'x-set-by-first': 'first', 'x-set-by-second': 'second', 'x-overwritten': 'by-first' });
    expect(r.json.headers['x-removed-by-first']).toBeUndefined();
  });
});
