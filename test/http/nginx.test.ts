/**
 * A real proxy end to end: nginx terminates mTLS with each zone's SVIDs, asks zonegate's HTTP
 * authorization mode through auth_request (client certificate in $ssl_client_escaped_cert, the
 * carried identity as sent), and copies zonegate's headers to an upstream that echoes what it got.
 * nginx requests a client certificate but leaves its verification to zonegate
 * (ssl_verify_client optional_no_ca): trust per trust domain is zonegate's job, and bundle
 * rotation then needs no nginx reload.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadX509Svid } from '../../src/svid/local.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { probe, requireTool } from '../helpers/tools.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { call, echoApp, freePort, type EchoApp, type Seen } from '../helpers/http.js';
import { until } from '../helpers/wait.js';
import { readmeRecipe } from '../guides/nginx-recipe.js';
import { parseConfig } from '../../src/config/load.js';
import { proxyGuard } from '../../src/rewrite/guard.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const haveNginx = requireTool(probe('nginx (Debian package nginx-light)', 'nginx', ['-v']));
const A = 'zone-a.test';
const B = 'zone-b.test';
const dir = mkdtempSync(join(tmpdir(), 'zg-nginx-'));
let caA: MemoryCA;
let caB: MemoryCA;
let frontend: Issued;
let zg: Started;
let nginx: ChildProcess;
let upstream: EchoApp;
let nginxPort: number;

/** The README's nginx recipe, as printed, with the app and zonegate on this test's ports. */
function nginxConf(port: number, zgPort: number, upstreamPort: number): string {
  const recipe = readmeRecipe()
    .replace('proxy_pass http://app;', `proxy_pass http://127.0.0.1:${upstreamPort};`)
    .replace('proxy_pass http://127.0.0.1:8182/;', `proxy_pass http://127.0.0.1:${zgPort}/;`);
  expect(recipe).toContain(`127.0.0.1:${upstreamPort}`);
  expect(recipe).toContain(`127.0.0.1:${zgPort}/`);
  return `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${dir}/nginx.pem;
    ssl_certificate_key ${dir}/nginx.key;
${recipe}
  }
}
`;
}

interface Reply {
  status: number;
  reason?: string;
  /** The headers the app received (when the request reached it). */
  seen?: IncomingHttpHeaders;
}

/** One HTTPS request to nginx as `client` (none: without a client certificate). */
async function get(client: Issued | undefined, headers: Record<string, string | string[]> = {}, path = '/api/items', method = 'GET'): Promise<Reply> {
  const tls = { ca: caB.certPem, ...(client ? { cert: client.chainPem, key: client.keyPem } : {}) };
  const r = await call({ to: nginxPort, path, method, headers, tls });
  return { status: r.status, ...(r.reason ? { reason: r.reason } : {}), ...(r.status === 200 ? { seen: (r.json as Seen).headers } : {}) };
}

describe.runIf(haveNginx)('nginx auth_request → zonegate HTTP mode', () => {
  beforeAll(async () => {
    caA = await MemoryCA.create(A);
    caB = await MemoryCA.create(B);
    frontend = await caA.issue(`spiffe://${A}/ns/web/sa/frontend`);
    const nginxCert = await caB.server(`spiffe://${B}/ingress`);
    writeFileSync(join(dir, 'nginx.pem'), nginxCert.chainPem);
    writeFileSync(join(dir, 'nginx.key'), nginxCert.keyPem);
    writeFileSync(join(dir, 'a.pem'), caA.certPem);
    writeFileSync(join(dir, 'b.pem'), caB.certPem);
    const svidB = await caB.issue(`spiffe://${B}/ns/default/svc/orders`);
    writeFileSync(join(dir, 'svid.pem'), svidB.chainPem);
    writeFileSync(join(dir, 'svid.key'), svidB.keyPem);
    upstream = await echoApp();
    zg = await startWith(
      {
        server: { http: { address: '127.0.0.1', port: 0 } },
        identity: { cert: 'svid.pem', key: 'svid.key' },
        trust: [
          { trustDomain: A, bundle: 'a.pem' },
          { trustDomain: B, bundle: 'b.pem' },
        ],
        federation: { refresh: { defaultSeconds: 3600, minSeconds: 3600, maxSeconds: 3600 } },
        commonIdentity: { required: false },
        rules: [
          { name: 'no-admin', action: 'deny', to: { paths: [{ prefix: '/admin/' }] } },
          { name: 'no-admin-host', action: 'deny', to: { hosts: ['admin.internal'] } },
          { name: 'zone-a-reads', action: 'allow', from: { trustDomains: [A] }, to: { methods: ['GET'], paths: [{ prefix: '/api/' }] } },
        ],
      },
      dir,
    );
    nginxPort = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(nginxPort, zg.zg.httpAuthz!.port, upstream.port));
    nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await until(
      () =>
        new Promise<boolean>((resolve) => {
          const s = connect(nginxPort, '127.0.0.1');
          s.on('connect', () => (s.destroy(), resolve(true)));
          s.on('error', () => resolve(false));
        }),
      10_000,
      'nginx to listen',
    );
  });
  afterAll(async () => {
    nginx?.kill('SIGTERM');
    await zg?.close();
    await upstream?.close();
  });

  it('cross-zone allow: the upstream receives the verified identity', async () => {
    const r = await get(frontend);
    expect(r.status).toBe(200);
    expect(r.seen).toMatchObject({ 'x-zonegate-peer': `spiffe://${A}/ns/web/sa/frontend`, 'x-zonegate-peer-trust-domain': A });
  });

  it('a spoofed identity header is replaced, not passed through', async () => {
    const r = await get(frontend, { 'X-Zonegate-Peer': `spiffe://${B}/admin`, 'X-Zonegate-Actor': 'root' });
    expect(r.seen?.['x-zonegate-peer']).toBe(`spiffe://${A}/ns/web/sa/frontend`);
    expect(r.seen?.['x-zonegate-actor'] ?? '').toBe('');
  });

  it('a client copy of every header zonegate sets or guards never reaches the upstream: only zonegate\'s value, or none', async () => {
    const config = parseConfig('commonIdentity: { audiences: [spiffe://zone-b.test] }\n', 'z.yaml', '/').config;
    const names = proxyGuard(config.upstream, config.commonIdentity?.header);
    expect(names.length).toBeGreaterThanOrEqual(12);
    const forged = 'forged-by-the-client';
    const carried = config.commonIdentity!.header;
    const others = names.filter((n) => n !== carried);
    // the carried token must verify (a forged one is a deny): a genuine one, which stops at nginx
    const token = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${B}` });
    // each name once, in upper case, and twice (nginx replaces every copy of a name it sets)
    const variants: Record<string, string | string[]>[] = [
      { ...Object.fromEntries(others.map((n) => [n, forged])), [carried]: token },
      { ...Object.fromEntries(others.map((n) => [n.toUpperCase(), forged])), [carried.toUpperCase()]: token },
      Object.fromEntries(others.map((n) => [n, [forged, `${forged}-2`]])),
    ];
    for (const headers of variants) {
      const r = await get(frontend, headers);
      expect(r.status).toBe(200);
      for (const n of others) expect(r.seen?.[n] ?? '', n).not.toContain(forged);
      expect(r.seen?.[carried]).toBeUndefined();
      expect(r.seen?.['x-zonegate-peer']).toBe(`spiffe://${A}/ns/web/sa/frontend`);
      expect(r.seen?.['x-zonegate-decision-id']).toMatch(/^[0-9a-f]{32}$/); // nginx's $request_id
    }
  });

  it.each([
    ['a denied path, the allowed one in X-Forwarded-Uri and X-Original-URI', 'GET', '/admin/users', { 'X-Forwarded-Uri': '/api/items', 'X-Original-URI': '/api/items' }, 'ERR_POLICY_DENIED'],
    ['a denied path with a query, the allowed one in the headers (mixed case)', 'GET', '/admin/users?x=1', { 'X-Forwarded-Uri': '/api/orders', 'X-Original-Uri': '/api/orders' }, 'ERR_POLICY_DENIED'],
    ['DELETE, GET in X-Forwarded-Method and X-Original-Method', 'DELETE', '/api/items', { 'X-Forwarded-Method': 'GET', 'X-Original-Method': 'GET' }, 'ERR_POLICY_NO_MATCH'],
    ['POST, GET in both, twice', 'POST', '/api/items', { 'X-Original-Method': ['GET', 'GET'], 'X-Forwarded-Method': ['GET', 'GET'] }, 'ERR_POLICY_NO_MATCH'],
    ['a denied host, another in X-Forwarded-Host and X-Original-Host', 'GET', '/api/items', { Host: 'admin.internal', 'X-Forwarded-Host': 'api.internal', 'X-Original-Host': 'api.internal' }, 'ERR_POLICY_DENIED'],
    ['a request id of its own choosing is not the decision id', 'DELETE', '/api/items', { 'X-Request-Id': 'chosen' }, 'ERR_POLICY_NO_MATCH'],
  ])('the request line comes from nginx, not from client headers: %s', async (_title, method, path, headers, reason) => {
    expect(await get(frontend, headers as Record<string, string | string[]>, path, method)).toMatchObject({ status: 403, reason });
  });

  it('the same requests without the spoofed headers are decided the same way, and the allowed one passes', async () => {
    expect(await get(frontend, {}, '/admin/users')).toMatchObject({ status: 403, reason: 'ERR_POLICY_DENIED' });
    expect(await get(frontend, {}, '/api/items', 'DELETE')).toMatchObject({ status: 403, reason: 'ERR_POLICY_NO_MATCH' });
    expect(await get(frontend, { 'X-Request-Id': 'chosen' })).toMatchObject({ status: 200 });
    expect((await get(frontend, { 'X-Request-Id': 'chosen' })).seen?.['x-zonegate-decision-id']).not.toBe('chosen');
  });

  it('a carried common identity becomes the actor at the upstream; the token itself is not forwarded', async () => {
    const token = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${B}` });
    const r = await get(frontend, { 'x-common-identity': token });
    expect(r.status).toBe(200);
    expect(r.seen?.['x-zonegate-actor']).toBe('alice');
    expect(r.seen?.['x-common-identity'] ?? '').toBe('');
  });

  it('a subject past Latin-1 reaches the upstream through nginx as its UTF-8 bytes (as over gRPC), not a 500', async () => {
    const sub = 'José 李';
    const token = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub, aud: `spiffe://${B}` });
    const r = await get(frontend, { 'x-common-identity': token });
    expect(r.status).toBe(200);
    // node:http gives the upstream one character per byte
    expect(Buffer.from(String(r.seen?.['x-zonegate-actor']), 'latin1').toString('utf8')).toBe(sub);
  });

  it('a forged identity (A\'s CA vouching for a B workload), a forged token and no certificate are denied', async () => {
    const forged = await caA.issue(`spiffe://${B}/ns/default/svc/orders`);
    expect(await get(forged)).toMatchObject({ status: 401, reason: 'ERR_SVID_UNTRUSTED' });
    const [h, p] = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${B}` }).split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'admin' })).toString('base64url')}.AAAA`;
    expect(await get(frontend, { 'x-common-identity': tampered })).toMatchObject({ status: 401, reason: 'ERR_TOKEN_SIGNATURE' });
    expect(await get(undefined)).toMatchObject({ status: 401, reason: 'ERR_NO_IDENTITY' });
  });

  it('a bundle rotation is picked up without restarting nginx or zonegate', async () => {
    const next = await MemoryCA.create(A);
    const rotated = await next.issue(`spiffe://${A}/ns/web/sa/frontend`);
    expect(await get(rotated)).toMatchObject({ status: 401, reason: 'ERR_SVID_UNTRUSTED' });
    writeFileSync(join(dir, 'a.tmp'), caA.certPem + next.certPem);
    renameSync(join(dir, 'a.tmp'), join(dir, 'a.pem'));
    await until(async () => (await get(rotated)).status === 200, 8000, 'the rotated bundle');
    expect((await get(frontend)).status).toBe(200);
  });
});
