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
import { createServer as createHttp, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, createServer as createNet, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadX509Svid } from '../../src/svid/local.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { probe, requireTool } from '../helpers/tools.js';
import { TestCA, type Issued } from '../fixtures/pki.js';
import { eventually } from '../fixtures/https.js';

const haveNginx = requireTool(probe('nginx (Debian package nginx-light)', 'nginx', ['-v']));
const A = 'zone-a.test';
const B = 'zone-b.test';
const dir = mkdtempSync(join(tmpdir(), 'zg-nginx-'));
let caA: TestCA;
let caB: TestCA;
let frontend: Issued;
let zg: Started;
let nginx: ChildProcess;
let upstream: Server;
let nginxPort: number;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNet().listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function nginxConf(port: number, zgPort: number, upstreamPort: number): string {
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
    ssl_verify_client optional_no_ca;
    location / {
      auth_request /_zonegate;
      auth_request_set $zg_peer $upstream_http_x_zonegate_peer;
      auth_request_set $zg_td $upstream_http_x_zonegate_peer_trust_domain;
      auth_request_set $zg_actor $upstream_http_x_zonegate_actor;
      auth_request_set $zg_reason $upstream_http_x_zonegate_reason;
      add_header X-Zonegate-Reason $zg_reason always;
      # identity headers always come from zonegate, never from the client
      proxy_set_header X-Zonegate-Peer $zg_peer;
      proxy_set_header X-Zonegate-Peer-Trust-Domain $zg_td;
      proxy_set_header X-Zonegate-Actor $zg_actor;
      proxy_set_header X-Common-Identity "";
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
    location = /_zonegate {
      internal;
      proxy_pass http://127.0.0.1:${zgPort}/;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
    }
  }
}
`;
}

interface Reply {
  status: number;
  reason?: string;
  seen?: Record<string, string>;
}

function get(client: Issued | undefined, headers: Record<string, string> = {}, path = '/api/items'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port: nginxPort,
        path,
        headers,
        ca: caB.rootPem,
        ...(client ? { cert: client.chainPem, key: client.keyPem } : {}),
        servername: 'localhost',
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ...(res.headers['x-zonegate-reason'] ? { reason: String(res.headers['x-zonegate-reason']) } : {}),
            ...(res.statusCode === 200 ? { seen: JSON.parse(body) as Record<string, string> } : {}),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe.runIf(haveNginx)('nginx auth_request → zonegate HTTP mode', () => {
  beforeAll(async () => {
    caA = await TestCA.create(A);
    caB = await TestCA.create(B);
    frontend = await caA.issue(`spiffe://${A}/ns/web/sa/frontend`);
    const nginxCert = await caB.server(`spiffe://${B}/ingress`);
    writeFileSync(join(dir, 'nginx.pem'), nginxCert.chainPem);
    writeFileSync(join(dir, 'nginx.key'), nginxCert.keyPem);
    writeFileSync(join(dir, 'a.pem'), caA.rootPem);
    writeFileSync(join(dir, 'b.pem'), caB.rootPem);
    const svidB = await caB.issue(`spiffe://${B}/ns/default/svc/orders`);
    writeFileSync(join(dir, 'svid.pem'), svidB.chainPem);
    writeFileSync(join(dir, 'svid.key'), svidB.keyPem);
    upstream = createHttp((req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.headers)));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
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
        rules: [{ name: 'zone-a', action: 'allow', from: { trustDomains: [A] } }],
      },
      dir,
    );
    nginxPort = await freePort();
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(nginxPort, zg.zg.httpAuthz!.port, (upstream.address() as AddressInfo).port));
    nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: 'ignore' });
    await eventually(
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
    upstream?.close();
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

  it('a carried common identity becomes the actor at the upstream; the token itself is not forwarded', async () => {
    const token = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { sub: 'alice', aud: `spiffe://${B}` });
    const r = await get(frontend, { 'x-common-identity': token });
    expect(r.status).toBe(200);
    expect(r.seen?.['x-zonegate-actor']).toBe('alice');
    expect(r.seen?.['x-common-identity'] ?? '').toBe('');
  });

  it('a forged identity (A\'s CA vouching for a B workload), a forged token and no certificate are denied', async () => {
    const forged = await caA.issue(`spiffe://${B}/ns/default/svc/orders`);
    expect(await get(forged)).toMatchObject({ status: 401, reason: 'ERR_SVID_UNTRUSTED' });
    const [h, p] = mintCommonIdentity(loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem)), { sub: 'alice', aud: `spiffe://${B}` }).split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'admin' })).toString('base64url')}.AAAA`;
    expect(await get(frontend, { 'x-common-identity': tampered })).toMatchObject({ status: 401, reason: 'ERR_TOKEN_SIGNATURE' });
    expect(await get(undefined)).toMatchObject({ status: 401, reason: 'ERR_NO_IDENTITY' });
  });

  it('a bundle rotation is picked up without restarting nginx or zonegate', async () => {
    const next = await TestCA.create(A);
    const rotated = await next.issue(`spiffe://${A}/ns/web/sa/frontend`);
    expect(await get(rotated)).toMatchObject({ status: 401, reason: 'ERR_SVID_UNTRUSTED' });
    writeFileSync(join(dir, 'a.tmp'), caA.rootPem + next.rootPem);
    renameSync(join(dir, 'a.tmp'), join(dir, 'a.pem'));
    await eventually(async () => (await get(rotated)).status === 200, 8000, 'the rotated bundle');
    expect((await get(frontend)).status).toBe(200);
  });
});
