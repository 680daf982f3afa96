/**
 * The HTTP authorization mode's connections, through the real listener: a request must arrive
 * whole within 10 s (a body that trickles in is cut off, not held for node's 300 s), at most
 * server.http.maxConnections are open at once, and a drain lets the checks in flight finish
 * (within server.shutdownGraceSeconds) instead of cutting them off.
 */
import { connect, type Socket } from 'node:net';
import { request, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { MemoryCA } from '../../src/demo/pki.js';
import { hashPassword } from '../../src/identity/basic.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { sleep, until } from '../helpers/wait.js';

const A = 'zone-a.test';
let dir: string;

type Reply = { status: number; headers: IncomingHttpHeaders };

function send(port: number, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    })
      .on('error', reject)
      .end();
  });
}

/** A connected socket, and a promise of when the server closed it (ms after connecting) with what it had sent. */
function open(port: number): Promise<{ sock: Socket; closed: Promise<{ afterMs: number; data: string }> }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    let data = '';
    const sock = connect(port, '127.0.0.1');
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => (data += c));
    const closed = new Promise<{ afterMs: number; data: string }>((done) => sock.on('close', () => done({ afterMs: Date.now() - t0, data })));
    sock.once('connect', () => resolve({ sock, closed }));
    sock.once('error', (err) => (sock.connecting ? reject(err) : undefined));
  });
}

const line = { 'x-original-method': 'GET', 'x-original-host': 'api.internal', 'x-original-uri': '/api/items' };
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  dir = mkdtempSync(join(tmpdir(), 'zg-http-conn-'));
  const svid = await ca.issue(`spiffe://${A}/ns/web/sa/frontend`);
  writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
  writeFileSync(join(dir, 'svid.key'), svid.keyPem);
  writeFileSync(join(dir, 'a.pem'), ca.certPem);
  // scrypt at N = 2^16, r = 8 (64 MiB): each check takes a while on the thread pool, one at a time
  writeFileSync(join(dir, 'users.yaml'), stringify({ users: [{ name: 'bob', password: hashPassword('correct horse', 2 ** 16) }] }));
});

/** An egress HTTP-mode zonegate whose Basic checks are slow and queued one at a time. */
const start = (http: Record<string, unknown> = {}, server: Record<string, unknown> = {}) =>
  startWith(
    {
      server: { http: { address: '127.0.0.1', port: 0, context: { direction: 'egress' }, ...http }, drainDelaySeconds: 0, ...server },
      identity: { cert: 'svid.pem', key: 'svid.key' },
      trust: [{ trustDomain: A, bundle: 'a.pem' }],
      commonIdentity: { egress: { defaultAudience: 'spiffe://zone-b.test', workload: false, basic: { usersFile: 'users.yaml', maxConcurrent: 1 } } },
      rules: [{ name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } }],
    },
    dir,
  );

describe('HTTP mode: a request arrives whole within 10 s', () => {
  let s: Started;
  beforeAll(async () => {
    s = await start();
  });
  afterAll(async () => s?.close());

  it('a request whose body trickles in is answered and its connection closed after 10 s, not 300 s', async () => {
    const { sock, closed } = await open(s.zg.httpAuthz!.port);
    sock.write(`POST / HTTP/1.1\r\nhost: zonegate\r\ncontent-length: 1000\r\n${Object.entries(line).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    const drip = setInterval(() => sock.writable && sock.write('x'), 500);
    try {
      const { afterMs, data } = await closed;
      expect(afterMs).toBeGreaterThanOrEqual(9_000);
      expect(afterMs).toBeLessThan(13_000);
      expect(data).toMatch(/^HTTP\/1\.1 401 /); // the verdict went out before the body ended
    } finally {
      clearInterval(drip);
    }
  }, 20_000);

  it('headers that never end are cut off after 10 s', async () => {
    const { sock, closed } = await open(s.zg.httpAuthz!.port);
    sock.write('GET / HTTP/1.1\r\nhost: zonegate\r\n');
    const drip = setInterval(() => sock.writable && sock.write('x-a: b\r\n'), 500);
    try {
      const { afterMs, data } = await closed;
      expect(afterMs).toBeGreaterThanOrEqual(9_000);
      expect(afterMs).toBeLessThan(13_000);
      expect(data).toMatch(/^HTTP\/1\.1 408 /);
    } finally {
      clearInterval(drip);
    }
  }, 20_000);
});

describe('HTTP mode: server.http.maxConnections', () => {
  let s: Started;
  beforeAll(async () => {
    s = await start({ maxConnections: 2 });
  });
  afterAll(async () => s?.close());

  it('past the limit a new connection is closed at once; below it again, requests are answered', async () => {
    const port = s.zg.httpAuthz!.port;
    const a = await open(port);
    const b = await open(port);
    const c = await open(port);
    const third = await Promise.race([c.closed, sleep(2000).then(() => 'still open' as const)]);
    expect(third).toMatchObject({ data: '' });
    a.sock.destroy();
    await a.closed;
    await until(async () => (await send(port, { ...line, authorization: basic('bob', 'wrong') }).catch(() => undefined))?.status === 401, 5000, 'an answer below the limit');
    b.sock.destroy();
  });
});

describe('HTTP mode: a drain lets the checks in flight finish', () => {
  it('checks in flight when the stop begins are all answered (with connection: close); new connections are refused', async () => {
    const s = await start();
    const port = s.zg.httpAuthz!.port;
    const idle = await open(port); // an idle keep-alive connection: closed at once by the drain
    const inFlight = [1, 2, 3].map(() => send(port, { ...line, authorization: basic('bob', 'wrong') }));
    await sleep(100); // the three are waiting for their scrypt, one at a time
    const t0 = Date.now();
    const stopped = s.zg.stop(0);
    const replies = await Promise.all(inFlight);
    expect(replies.map((r) => [r.status, r.headers['x-zonegate-reason'], r.headers.connection])).toEqual([1, 2, 3].map(() => [401, 'ERR_USER_CREDENTIAL', 'close']));
    expect((await idle.closed).data).toBe('');
    await expect(send(port, line)).rejects.toThrow(/ECONNREFUSED/);
    await stopped;
    expect(Date.now() - t0).toBeLessThan(5_000); // no wait for the grace once nothing is in flight
    await s.close();
  }, 20_000);

  it('a connection with no request being answered (half a request line and headers) is closed at once', async () => {
    const s = await start();
    const port = s.zg.httpAuthz!.port;
    const partial = await open(port);
    partial.sock.write('GET / HTTP/1.1\r\nhost: zonegate\r\n'); // headers not ended yet: nothing to answer
    await sleep(100);
    const t0 = Date.now();
    await s.zg.stop(0);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect((await partial.closed).data).toBe('');
    await s.close();
  });

  it('checks still in flight when server.shutdownGraceSeconds runs out are closed, and the stop ends', async () => {
    const s = await start({}, { shutdownGraceSeconds: 1 });
    const port = s.zg.httpAuthz!.port;
    // 40 slow checks one at a time: more than one second's worth
    const inFlight = Array.from({ length: 40 }, () =>
      send(port, { ...line, authorization: basic('bob', 'wrong') }).then(
        (r) => r.status,
        (err: NodeJS.ErrnoException) => err.code ?? err.message,
      ),
    );
    await sleep(100);
    const t0 = Date.now();
    await s.zg.stop(0);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(3_000);
    const outcomes = await Promise.all(inFlight);
    expect(outcomes.filter((o) => o === 401).length).toBeGreaterThan(0); // answered within the grace
    expect(outcomes.filter((o) => o !== 401).every((o) => o === 'ECONNRESET')).toBe(true); // the rest cut off after it
    expect(outcomes.filter((o) => o === 'ECONNRESET').length).toBeGreaterThan(0);
    await s.close();
  }, 20_000);
});
