/**
 * The HTTP mode reads the original request line only where the configured proxy writes it.
 * Through the real HTTP listener, one zonegate per proxy preset: headers of the other presets are
 * ignored, a missing or repeated request-line header is a deny with its reason, a URI that is not
 * a path is refused, and behind Envoy the request's own line (minus path_prefix) is the request.
 */
import { connect } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { call } from '../helpers/http.js';
import { startWith, type Started } from '../helpers/zonegate.js';

const A = 'zone-a.test';
let frontend: Issued;
const servers: Record<string, Started> = {};

/** One request to `s`'s HTTP mode with the frontend's certificate as the proxy forwards it. */
async function decide(s: Started, method: string, path: string, headers: Record<string, string | string[]>): Promise<{ status: number; reason: string | undefined; remove?: string | undefined }> {
  const r = await call({ to: s.zg.httpAuthz!.port, method, path, headers: { 'x-ssl-client-cert': encodeURIComponent(frontend.certPem), ...headers } });
  return { status: r.status, reason: r.reason, remove: r.headers['x-envoy-auth-headers-to-remove'] as string | undefined };
}

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  frontend = await ca.issue(`spiffe://${A}/ns/web/sa/frontend`);
  const dir = mkdtempSync(join(tmpdir(), 'zg-request-line-'));
  writeFileSync(join(dir, 'a.pem'), ca.certPem);
  const base = {
    trust: [{ trustDomain: A, bundle: 'a.pem' }],
    rules: [
      { name: 'no-admin', action: 'deny', to: { paths: [{ prefix: '/admin/' }] } },
      { name: 'no-admin-host', action: 'deny', to: { hosts: ['admin.internal'] } },
      { name: 'reads', action: 'allow', from: { trustDomains: [A] }, to: { methods: ['GET'], paths: [{ prefix: '/api/' }] } },
    ],
  };
  for (const [name, http] of Object.entries({
    nginx: {},
    traefik: { proxy: 'traefik' },
    envoy: { proxy: 'envoy', request: { pathPrefix: '/authz' } },
    custom: { request: { method: 'x-my-method', uri: 'x-my-uri' } },
  }))
    servers[name] = await startWith({ ...base, server: { http: { address: '127.0.0.1', port: 0, ...http } } }, dir);
});
afterAll(async () => {
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

const line = (method: string, uri: string, host = 'api.internal') => ({ 'x-original-method': method, 'x-original-uri': uri, 'x-original-host': host });

describe('server.http.proxy: nginx (the default)', () => {
  it('decides on X-Original-*; X-Forwarded-* from the client are ignored', async () => {
    const s = servers.nginx!;
    expect(await decide(s, 'GET', '/', line('GET', '/api/items'))).toMatchObject({ status: 200 });
    expect(await decide(s, 'GET', '/', { ...line('GET', '/admin/users'), 'x-forwarded-uri': '/api/items' })).toMatchObject({ status: 403, reason: 'ERR_POLICY_DENIED' });
    expect(await decide(s, 'GET', '/', { ...line('DELETE', '/api/items'), 'x-forwarded-method': 'GET' })).toMatchObject({ status: 403, reason: 'ERR_POLICY_NO_MATCH' });
    expect(await decide(s, 'GET', '/', { ...line('GET', '/api/items', 'admin.internal'), 'x-forwarded-host': 'api.internal' })).toMatchObject({ status: 403, reason: 'ERR_POLICY_DENIED' });
    // the authorization request's own line is not the request either
    expect(await decide(s, 'GET', '/api/items', { 'x-original-method': 'DELETE', 'x-original-uri': '/api/items', 'x-original-host': 'a' })).toMatchObject({ status: 403 });
  });

  it.each([
    ['no X-Original-URI', { 'x-original-method': 'GET', 'x-original-host': 'a' }, 'ERR_REQUEST_MALFORMED'],
    ['no X-Original-Method', { 'x-original-uri': '/api/items', 'x-original-host': 'a' }, 'ERR_REQUEST_MALFORMED'],
    ['no X-Original-Host', { 'x-original-method': 'GET', 'x-original-uri': '/api/items' }, 'ERR_REQUEST_MALFORMED'],
    ['X-Original-URI twice', { ...line('GET', '/api/items'), 'x-original-uri': ['/api/items', '/admin/users'] }, 'ERR_DUPLICATE_HEADER'],
    ['X-Original-Method twice', { ...line('GET', '/api/items'), 'x-original-method': ['GET', 'GET'] }, 'ERR_DUPLICATE_HEADER'],
    ['X-Original-Host twice', { ...line('GET', '/api/items'), 'x-original-host': ['api.internal', 'admin.internal'] }, 'ERR_DUPLICATE_HEADER'],
    ['an absolute URI', line('GET', 'http://api.internal/api/items'), 'ERR_REQUEST_MALFORMED'],
    ['an asterisk', line('OPTIONS', '*'), 'ERR_REQUEST_MALFORMED'],
    ['an empty URI', line('GET', ''), 'ERR_REQUEST_MALFORMED'],
    ['an empty method', line('', '/api/items'), 'ERR_REQUEST_MALFORMED'],
  ])('%s → denied', async (_title, headers, reason) => {
    expect(await decide(servers.nginx!, 'GET', '/', headers as Record<string, string | string[]>)).toMatchObject({ status: 403, reason });
  });
});

describe('server.http.proxy: traefik', () => {
  it('decides on X-Forwarded-*; X-Original-* are ignored', async () => {
    const s = servers.traefik!;
    const fwd = (method: string, uri: string, host = 'api.internal') => ({ 'x-forwarded-method': method, 'x-forwarded-uri': uri, 'x-forwarded-host': host });
    expect(await decide(s, 'GET', '/', fwd('GET', '/api/items'))).toMatchObject({ status: 200 });
    expect(await decide(s, 'GET', '/', { ...fwd('GET', '/admin/users'), ...line('GET', '/api/items') })).toMatchObject({ status: 403, reason: 'ERR_POLICY_DENIED' });
    expect(await decide(s, 'GET', '/', { ...fwd('DELETE', '/api/items'), ...line('GET', '/api/items') })).toMatchObject({ status: 403, reason: 'ERR_POLICY_NO_MATCH' });
    expect(await decide(s, 'GET', '/', line('GET', '/api/items'))).toMatchObject({ status: 403, reason: 'ERR_REQUEST_MALFORMED' });
  });
});

describe('server.http.proxy: envoy (http_service: the original method, path_prefix + path, Host)', () => {
  it("decides on the request's own line without the prefix; forwarding headers are ignored", async () => {
    const s = servers.envoy!;
    expect(await decide(s, 'GET', '/authz/api/items', { host: 'api.internal' })).toMatchObject({ status: 200 });
    expect(await decide(s, 'DELETE', '/authz/api/items', { host: 'api.internal', ...line('GET', '/api/items'), 'x-forwarded-method': 'GET' })).toMatchObject({ status: 403, reason: 'ERR_POLICY_NO_MATCH' });
    expect(await decide(s, 'GET', '/authz/admin/users', { host: 'api.internal', ...line('GET', '/api/items'), 'x-forwarded-uri': '/api/items' })).toMatchObject({ status: 403, reason: 'ERR_POLICY_DENIED' });
    expect(await decide(s, 'GET', '/authz/api/items', { host: 'admin.internal', 'x-forwarded-host': 'api.internal', ...line('GET', '/api/items') })).toMatchObject({ status: 403, reason: 'ERR_POLICY_DENIED' });
  });

  it('an allow names the guarded headers zonegate does not set in x-envoy-auth-headers-to-remove', async () => {
    const r = await decide(servers.envoy!, 'GET', '/authz/api/items', { host: 'api.internal', 'x-zonegate-actor': 'root' });
    expect(r.status).toBe(200);
    const removed = r.remove!.split(', ');
    expect(removed).toEqual(expect.arrayContaining(['x-zonegate-actor', 'x-zonegate-roles', 'x-zonegate-act']));
    expect(removed).not.toContain('x-zonegate-peer'); // set by zonegate: Envoy would remove it after setting it
  });

  it('a path without the configured prefix did not come from Envoy, and two Hosts are no request line: denied', async () => {
    expect(await decide(servers.envoy!, 'GET', '/api/items', { host: 'api.internal' })).toMatchObject({ status: 403, reason: 'ERR_REQUEST_MALFORMED' });
    // node's client sends one Host only: two, written by hand
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(servers.envoy!.zg.httpAuthz!.port, '127.0.0.1', () =>
        sock.end(`GET /authz/api/items HTTP/1.1\r\nHost: api.internal\r\nHost: admin.internal\r\nx-ssl-client-cert: ${encodeURIComponent(frontend.certPem)}\r\nConnection: close\r\n\r\n`),
      );
      let got = '';
      sock.on('data', (d) => (got += String(d)));
      sock.on('end', () => resolve(got));
      sock.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 403/);
    expect(raw.toLowerCase()).toContain('x-zonegate-reason: err_duplicate_header');
  });
});

describe('server.http.request: single keys override the preset', () => {
  it('reads the configured headers, and the preset for the rest', async () => {
    const s = servers.custom!;
    const mine = { 'x-my-method': 'GET', 'x-my-uri': '/api/items', 'x-original-host': 'api.internal' };
    expect(await decide(s, 'GET', '/', mine)).toMatchObject({ status: 200 });
    expect(await decide(s, 'GET', '/', { ...mine, 'x-my-uri': '/admin/users', 'x-original-uri': '/api/items' })).toMatchObject({ status: 403, reason: 'ERR_POLICY_DENIED' });
  });
});
