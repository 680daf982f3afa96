/**
 * The HTTP authorization mode reads, bounds, decides and records a request as the gRPC Check
 * does, through the same code, against a real HTTP server: the hop-by-hop headers of the proxy's
 * own connection count toward no limit, a URI fragment is not part of the query, header bytes
 * are read as UTF-8 (as Envoy's raw header_map is), and every check is timed in
 * zonegate_check_duration_seconds and logged with its rule.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyProof } from '../../src/rewrite/verify.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { startWith, type Started } from '../helpers/zonegate.js';

const A = 'zone-a.test';
const SECRET = 'a-shared-secret-of-at-least-32-bytes!';
/** End-to-end headers of every request here besides the certificate: name and value bytes (Host at most 19). */
const MAX_HEADERS = 7;
let s: Started;
let frontend: Issued;
let baseBytes: number;

type Reply = { status: number; headers: IncomingHttpHeaders };

/** One request to the HTTP mode; `extra` may add hop-by-hop headers of this connection too. */
function send(extra: Record<string, string> = {}, uri = '/api/items'): Promise<Reply> {
  const headers = { ...base(uri), ...extra };
  return new Promise((resolve, reject) => {
    // agent: false also sends "Connection: close", one more hop-by-hop header
    request({ host: '127.0.0.1', port: s.zg.httpAuthz!.port, path: '/', headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers }));
    })
      .on('error', reject)
      .end();
  });
}

/** Six end-to-end headers with Host, which node:http adds. */
const base = (uri: string): Record<string, string> => ({
  'x-ssl-client-cert': encodeURIComponent(frontend.certPem),
  'x-original-method': 'GET',
  'x-original-host': 'api.internal',
  'x-original-uri': uri,
  'x-tenant': 't1',
});

const reason = (r: Reply) => r.headers['x-zonegate-reason'];
const latin1 = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  frontend = await ca.issue(`spiffe://${A}/ns/web/sa/frontend`);
  const dir = mkdtempSync(join(tmpdir(), 'zg-http-shared-'));
  writeFileSync(join(dir, 'a.pem'), ca.certPem);
  writeFileSync(join(dir, 'hmac.key'), SECRET);
  // every end-to-end header's name and value, with at most 19 bytes for "Host: 127.0.0.1:port"
  baseBytes = Object.entries(base('/api/items?x=1#frag')).reduce((n, [k, v]) => n + k.length + v.length, 0) + 'host'.length + '127.0.0.1:65535'.length;
  s = await startWith(
    {
      server: { http: { address: '127.0.0.1', port: 0 } },
      limits: { maxHeaders: MAX_HEADERS, maxHeaderBytes: baseBytes + 64 },
      trust: [{ trustDomain: A, bundle: 'a.pem' }],
      rules: [
        {
          name: 'tenants',
          action: 'allow',
          from: { trustDomains: [A] },
          to: { methods: ['GET'], paths: [{ prefix: '/api/' }] },
          when: [{ header: 'x-tenant', values: ['t1', 'é'] }],
        },
      ],
      upstream: { default: { mode: 'hmac' }, hmac: { secretFile: 'hmac.key', keyId: 'k1', bindRequest: true } },
    },
    dir,
  );
});
afterAll(async () => s?.close());

describe('HTTP mode: the limits count the request, not the proxy connection', () => {
  const hopByHop = { 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-connection': 'keep-alive', 'content-length': '0' };

  it('five hop-by-hop headers beside six end-to-end ones, under maxHeaders 7: allowed', async () => {
    const r = await send(hopByHop);
    expect({ status: r.status, reason: reason(r) }).toEqual({ status: 200, reason: undefined });
  });

  it('a long keep-alive header does not use up maxHeaderBytes', async () => {
    const r = await send({ 'keep-alive': `timeout=5, ${'x'.repeat(1000)}` });
    expect(r.status).toBe(200);
  });

  it('end-to-end headers past either limit are still refused (ERR_HEADERS_TOO_LARGE)', async () => {
    const count = await send({ ...hopByHop, 'x-one': '1', 'x-two': '2' });
    expect({ status: count.status, reason: reason(count) }).toEqual({ status: 403, reason: 'ERR_HEADERS_TOO_LARGE' });
    const bytes = await send({ 'x-big': 'v'.repeat(100) });
    expect({ status: bytes.status, reason: reason(bytes) }).toEqual({ status: 403, reason: 'ERR_HEADERS_TOO_LARGE' });
  });
});

describe('HTTP mode: the URI is split as Envoy\'s path is', () => {
  it('a fragment after the query is not part of it: the HMAC proof signs /api/items?x=1', async () => {
    const r = await send({}, '/api/items?x=1#frag');
    expect(r.status).toBe(200);
    const check = (path: string) =>
      verifyProof({ headers: r.headers as Record<string, string>, method: 'GET', path, secrets: { k1: SECRET }, required: [':method', ':path'] });
    expect(check('/api/items?x=1')).toMatchObject({ ok: true, kid: 'k1' });
    expect(check('/api/items?x=1#frag')).toEqual({ ok: false, reason: 'signature' });
  });

  it('a fragment before the query stays in the path, which is refused (ERR_PATH_INVALID)', async () => {
    const r = await send({}, '/api/items#/../admin?x=1');
    expect({ status: r.status, reason: reason(r) }).toEqual({ status: 403, reason: 'ERR_PATH_INVALID' });
  });
});

describe('HTTP mode: header bytes are read as UTF-8', () => {
  it('"é" sent as UTF-8 matches a rule naming "é"', async () => {
    const r = await send({ 'x-tenant': latin1('é') });
    expect({ status: r.status, reason: reason(r) }).toEqual({ status: 200, reason: undefined });
  });

  it('the byte 0xE9 alone is not UTF-8: it matches no rule text (it read as "é" in latin1)', async () => {
    const r = await send({ 'x-tenant': '\xe9' });
    expect({ status: r.status, reason: reason(r) }).toEqual({ status: 403, reason: 'ERR_POLICY_NO_MATCH' });
  });
});

describe('HTTP mode: recorded as the gRPC Check is', () => {
  const sample = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  const metrics = () => s.zg.metrics.registry.metrics();

  it('every check is timed in zonegate_check_duration_seconds and counted; the decision line names the rule', async () => {
    const before = await metrics();
    const lines = s.logs.length;
    expect((await send()).status).toBe(200);
    expect((await send({ 'x-tenant': 't2' })).status).toBe(403);
    const after = await metrics();
    const diff = (name: string) => sample(after, name) - sample(before, name);
    expect(diff('zonegate_check_duration_seconds_count\\{result="allow"\\}')).toBe(1);
    expect(diff('zonegate_check_duration_seconds_count\\{result="deny"\\}')).toBe(1);
    expect(diff('zonegate_decisions_total\\{result="allow",reason=""\\}')).toBe(1);
    expect(diff('zonegate_decisions_total\\{result="deny",reason="ERR_POLICY_NO_MATCH"\\}')).toBe(1);
    const decisions = s.logs.slice(lines).filter((l) => l.msg === 'decision');
    expect(decisions.map((l) => [l.mode, l.result, l.rule, l.reason])).toEqual([
      ['http', 'allow', 'tenants', null],
      ['http', 'deny', null, 'ERR_POLICY_NO_MATCH'],
    ]);
    for (const l of decisions) expect(l.latencyUs).toEqual(expect.any(Number));
  });
});
