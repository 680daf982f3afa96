/**
 * The HTTP authorization mode against inputs its proxies are not meant to send, through the real
 * listener: what reaches the upstream is the bytes the gRPC Check would give Envoy (a verified
 * subject past Latin-1 is UTF-8, never a 500), a repeated certificate header is a deny and not
 * half of a chain, and the original request line cannot be bent by fragments, encoded slashes,
 * absolute URIs or a second copy (a path that is not in normal form is refused as it is over gRPC).
 */
import { connect } from 'node:net';
import { request, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { loadX509Svid, type LocalSvid } from '../../src/svid/local.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const A = 'zone-a.test';
let s: Started;
let frontend: Issued;
let other: Issued;
let svid: LocalSvid;

type Reply = { status: number; headers: IncomingHttpHeaders; rawHeaders: string[]; body: string };

function send(headers: Record<string, string | string[]>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: s.zg.httpAuthz!.port, path: '/', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body }));
    })
      .on('error', reject)
      .end();
  });
}

/** One request written byte for byte (what node:http as a client would not send); the status line back. */
function raw(text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(s.zg.httpAuthz!.port, '127.0.0.1', () => sock.end(text));
    let out = '';
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => (out += c));
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

const base = (uri = '/api/items'): Record<string, string> => ({
  'x-ssl-client-cert': encodeURIComponent(frontend.certPem),
  'x-original-method': 'GET',
  'x-original-host': 'api.internal',
  'x-original-uri': uri,
});
const verdict = (r: Reply) => ({ status: r.status, reason: r.headers['x-zonegate-reason'] });
const latin1 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  frontend = await ca.issue(`spiffe://${A}/ns/web/sa/frontend`);
  other = await (await MemoryCA.create('zone-x.test')).issue('spiffe://zone-x.test/x');
  svid = loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem));
  const dir = mkdtempSync(join(tmpdir(), 'zg-http-attack-'));
  writeFileSync(join(dir, 'a.pem'), ca.certPem);
  s = await startWith(
    {
      server: { http: { address: '127.0.0.1', port: 0 } },
      trust: [{ trustDomain: A, bundle: 'a.pem' }],
      commonIdentity: { audiences: [`spiffe://${A}`], required: false },
      rules: [
        { name: 'admin', action: 'deny', to: { paths: [{ prefix: '/admin' }] } },
        { name: 'public', action: 'allow', from: { trustDomains: [A] }, to: { hosts: [{ exact: 'key.example' }], paths: [{ prefix: '/public' }] } },
        { name: 'api', action: 'allow', from: { trustDomains: [A] }, to: { methods: ['GET'], paths: [{ prefix: '/api/' }] } },
        { name: 'post', action: 'allow', from: { trustDomains: [A] }, to: { methods: ['POST'], paths: [{ prefix: '/post/' }] } },
      ],
    },
    dir,
  );
});
afterAll(async () => s?.close());

describe('HTTP mode: identity values reach the upstream as UTF-8 bytes', () => {
  it.each([
    ['alice', 'alice'],
    ['José', 'JosÃ©'],
    ['李', 'æ\u009d\u008e'],
    ['a\u2028b', 'a\u00e2\u0080\u00a8b'],
    ['\ud800x', '\u00ef\u00bf\u00bdx'],
  ])('a verified sub %j: 200, x-zonegate-actor is its UTF-8 bytes', async (sub, bytes) => {
    const token = mintCommonIdentity(svid, { ttlSeconds: EGRESS_TTL_SECONDS, sub, aud: `spiffe://${A}` });
    const r = await send({ ...base(), 'x-common-identity': token });
    expect(verdict(r)).toEqual({ status: 200, reason: undefined });
    // the response read as latin1: one character per byte on the wire
    expect(r.headers['x-zonegate-actor']).toBe(bytes);
    expect(Buffer.from(r.headers['x-zonegate-actor'] as string, 'latin1').toString('utf8')).toBe(sub.replace('\ud800', '\ufffd'));
  });
});

describe('HTTP mode: the certificate header appears once or the request is denied', () => {
  const enc = encodeURIComponent;
  it.each([
    ['a valid certificate, then garbage', () => [enc(frontend.certPem), 'garbage']],
    ['garbage, then a valid certificate', () => ['garbage', enc(frontend.certPem)]],
    ['the same valid certificate twice', () => [enc(frontend.certPem), enc(frontend.certPem)]],
    ['another zone\'s certificate, then a valid one', () => [enc(other.certPem), enc(frontend.certPem)]],
  ])('%s: 403 ERR_DUPLICATE_HEADER', async (_n, values) => {
    const r = await send({ ...base(), 'x-ssl-client-cert': values() });
    expect(verdict(r)).toEqual({ status: 403, reason: 'ERR_DUPLICATE_HEADER' });
    expect(r.headers['x-zonegate-peer']).toBeUndefined();
  });

  it('once: 200 as the frontend (the control)', async () => {
    const r = await send(base());
    expect(verdict(r)).toEqual({ status: 200, reason: undefined });
    expect(r.headers['x-zonegate-peer']).toBe(`spiffe://${A}/ns/web/sa/frontend`);
  });
});

describe('HTTP mode: the original request line', () => {
  it.each([
    ['/api/items#/../../admin', 403, 'ERR_PATH_INVALID'],
    ['/api/..%2F..%2Fadmin', 403, 'ERR_PATH_NOT_NORMALIZED'],
    ['/api/%2e%2e/admin', 403, 'ERR_PATH_NOT_NORMALIZED'],
    ['/api/%252e%252e/admin', 200, undefined],
    ['/api/items/../../admin', 403, 'ERR_PATH_NOT_NORMALIZED'],
    ['/api/items%00', 403, 'ERR_PATH_INVALID'],
    ['/api/items;x=/../../admin', 403, 'ERR_PATH_INVALID'],
    ['http://api.internal/api/items', 403, 'ERR_REQUEST_MALFORMED'],
    ['*', 403, 'ERR_REQUEST_MALFORMED'],
    ['//admin', 403, 'ERR_PATH_NOT_NORMALIZED'],
    ['/api/items?next=/admin#x', 200, undefined],
  ])('X-Original-URI %j: %i %s', async (uri, status, reason) => {
    expect(verdict(await send(base(uri)))).toEqual({ status, reason });
  });

  it('X-Original-URI twice (the allowed one first): 403 ERR_DUPLICATE_HEADER', async () => {
    expect(verdict(await send({ ...base(), 'x-original-uri': ['/api/items', '/admin'] }))).toEqual({ status: 403, reason: 'ERR_DUPLICATE_HEADER' });
  });

  it('X-Original-Method twice: 403 ERR_DUPLICATE_HEADER', async () => {
    expect(verdict(await send({ ...base(), 'x-original-method': ['GET', 'DELETE'] }))).toEqual({ status: 403, reason: 'ERR_DUPLICATE_HEADER' });
  });

  it.each([
    ['key.example', 200, undefined],
    ['KEY.example', 200, undefined],
    // U+212A KELVIN SIGN lower-cases to "k": the upstream routes on other bytes than the rule matched
    ['\u212aey.example', 403, 'ERR_HOST_INVALID'],
    ['\u0130.example', 403, 'ERR_HOST_INVALID'],
  ])('X-Original-Host %j (sent as UTF-8): %i %s', async (host, status, reason) => {
    const latin1 = Buffer.from(host, 'utf8').toString('latin1');
    expect(verdict(await send({ ...base('/public/x'), 'x-original-host': latin1 }))).toEqual({ status, reason });
  });

  it('a path past limits.maxPathLength is ERR_PATH_TOO_LONG, not a crash', async () => {
    expect(verdict(await send(base(`/api/${'a'.repeat(9000)}`)))).toEqual({ status: 403, reason: 'ERR_PATH_TOO_LONG' });
  });

  it('an obs-folded X-Original-URI never reaches the decision', async () => {
    const cert = encodeURIComponent(frontend.certPem);
    const out = await raw(
      `GET / HTTP/1.1\r\nHost: z\r\nX-SSL-Client-Cert: ${cert}\r\nX-Original-Method: GET\r\nX-Original-Host: api.internal\r\nX-Original-URI: /api/items\r\n /../admin\r\nConnection: close\r\n\r\n`,
    );
    // node:http refuses the fold itself (RFC 9112 §5.2 allows either): never a decision
    expect(out).toMatch(/^HTTP\/1\.1 400 /);
    expect(out).not.toMatch(/x-zonegate-decision/i);
  });
});

describe('the method is an RFC 9110 token, upper-cased in ASCII only: over HTTP and gRPC alike', () => {
  // U+FB06 LATIN SMALL LIGATURE ST upper-cases to "ST": "poﬆ" would match a POST rule while the
  // upstream sees a method that is not POST; U+0131 DOTLESS I upper-cases to "I"
  const cases: [string, number, string | undefined][] = [
    ['POST', 200, undefined],
    ['post', 200, undefined],
    ['pOsT', 200, undefined],
    ['po\ufb06', 403, 'ERR_REQUEST_MALFORMED'],
    ['\u0131NFO', 403, 'ERR_REQUEST_MALFORMED'],
    ['PO ST', 403, 'ERR_REQUEST_MALFORMED'],
    ['PO/ST', 403, 'ERR_REQUEST_MALFORMED'],
  ];
  it.each(cases)('X-Original-Method %j (sent as UTF-8): %i %s', async (method, status, reason) => {
    expect(verdict(await send({ ...base('/post/x'), 'x-original-method': latin1(method) }))).toEqual({ status, reason });
  });
  it.each(cases)('CheckRequest method %j: %i %s', async (method, status, reason) => {
    const r = await s.check(checkRequest({ certificate: encodeURIComponent(frontend.certPem), method, path: '/post/x' }));
    if (!r.ok) throw r.error;
    const st = r.response.status as { code: number; message?: string };
    expect({ status: st.code === 0 ? 200 : 403, reason: st.message || undefined }).toEqual({ status, reason });
  });
});
