/**
 * Load shedding through the real gRPC server: past server.grpc.maxInFlight waiting checks (new
 * tokens' EC signature checks on the thread pool) a check is answered UNAVAILABLE with
 * ERR_OVERLOADED at once; a call whose deadline passed before its turn is answered
 * DEADLINE_EXCEEDED without being decided. Neither is ever an allow, and the server decides
 * normally once the burst is over.
 */
import * as grpc from '@grpc/grpc-js';
import { connect, constants } from 'node:http2';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMethod } from '../../src/envoy/proto.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { loadX509Svid, type LocalSvid } from '../../src/svid/local.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { sleep } from '../helpers/wait.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';

const A = 'zone-a.test';
const FRONTEND = `spiffe://${A}/ns/web/sa/frontend`;
let leaf: Issued;
let svid: LocalSvid;
let s: Started;

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  leaf = await ca.issue(FRONTEND);
  svid = loadX509Svid(Buffer.from(leaf.chainPem), Buffer.from(leaf.keyPem));
  const dir = mkdtempSync(join(tmpdir(), 'zg-shed-'));
  writeFileSync(join(dir, 'root.pem'), ca.certPem);
  s = await startWith(
    {
      server: { grpc: { maxInFlight: 2 } },
      trust: [{ trustDomain: A, bundle: 'root.pem' }],
      commonIdentity: { audiences: [`spiffe://${A}`] },
      rules: [{ name: 'zone-a', action: 'allow', from: { trustDomains: [A] } }],
    },
    dir,
  );
});
afterAll(async () => {
  await s?.close();
});

const request = (token: string) => checkRequest({ certificate: encodeURIComponent(leaf.certPem), headers: { 'x-common-identity': token } });
const fresh = () => mintCommonIdentity(svid, { ttlSeconds: EGRESS_TTL_SECONDS, sub: 'alice', aud: `spiffe://${A}`, alg: 'ES256' });
const errors = async (reason: string) => {
  const text = await fetch(`http://127.0.0.1:${s.zg.ops.port}/metrics`).then((r) => r.text());
  return Number(new RegExp(`^zonegate_check_errors_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
};

describe('load shedding', () => {
  it('past maxInFlight waiting checks: UNAVAILABLE with ERR_OVERLOADED at once, the others decided, none wrongly allowed', async () => {
    const before = await errors('ERR_OVERLOADED');
    // distinct tokens: each waits for its signature check on the thread pool
    const results = await Promise.all(Array.from({ length: 40 }, () => s.check(request(fresh()))));
    const shed = results.filter((r) => !r.ok);
    const decided = results.filter((r) => r.ok);
    expect(shed.length).toBeGreaterThan(0);
    expect(decided.length).toBeGreaterThanOrEqual(2);
    for (const r of shed) {
      if (r.ok) continue;
      expect(r.error.code).toBe(grpc.status.UNAVAILABLE);
      expect(r.error.metadata.get('x-zonegate-reason')).toEqual(['ERR_OVERLOADED']);
    }
    for (const r of decided) if (r.ok) expect((r.response.status as { code: number }).code).toBe(0);
    expect((await errors('ERR_OVERLOADED')) - before).toBe(shed.length);
    // the burst is over: checks are decided again, one at a time none is shed
    for (let i = 0; i < 5; i++) {
      const r = await s.check(request(fresh()));
      expect(r.ok && (r.response.status as { code: number }).code).toBe(0);
    }
  });

  it('a forged token in a burst is denied or shed, never allowed', async () => {
    const good = fresh();
    const forged = good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => s.check(request(i % 2 ? forged : fresh()))));
    results.forEach((r, i) => {
      if (i % 2 === 0) return;
      if (r.ok) expect((r.response.status as { code: number; message?: string }).message).toBe('ERR_TOKEN_SIGNATURE');
      else expect(r.error.code).toBe(grpc.status.UNAVAILABLE);
    });
  });

  it('a call whose deadline has passed when its turn comes is answered DEADLINE_EXCEEDED, not decided', async () => {
    const before = await errors('ERR_DEADLINE_EXCEEDED');
    const decisionsBefore = s.logs.filter((l) => l.msg === 'decision').length;
    // a raw HTTP/2 call whose grpc-timeout (1 ns) has run out by the time the server reads it
    const body = checkMethod().requestSerialize(request(fresh()));
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
    frame.writeUInt32BE(body.length, 1);
    const session = connect(`http://${s.target}`);
    const trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const st = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: '/envoy.service.auth.v3.Authorization/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '1n',
      });
      let headers: Record<string, unknown> = {};
      st.on('response', (h) => (headers = h));
      st.on('trailers', (t) => resolve({ ...headers, ...t }));
      st.on('error', reject);
      st.on('end', () => resolve(headers));
      st.resume();
      st.end(frame);
    });
    session.close();
    expect(trailers['grpc-status']).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    // zonegate answered it (counted below) and never decided it
    await sleep(50);
    expect(s.logs.filter((l) => l.msg === 'decision').length).toBe(decisionsBefore);
    expect((await errors('ERR_DEADLINE_EXCEEDED')) - before).toBe(1);
  });
});
