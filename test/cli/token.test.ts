/** `zonegate token mint` and `token verify` as a user runs them. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { zonegate } from '../helpers/cli.js';
import { MemoryCA } from '../../src/demo/pki.js';

const dir = mkdtempSync(join(tmpdir(), 'zg-token-'));
const f = (n: string) => join(dir, n);
const ID = 'spiffe://zone-a.test/ns/web/sa/frontend';

beforeAll(async () => {
  const a = await MemoryCA.create('zone-a.test');
  const other = await MemoryCA.create('zone-a.test');
  const s = await a.issue(ID);
  writeFileSync(f('a.pem'), a.certPem);
  writeFileSync(f('other.pem'), other.certPem);
  writeFileSync(f('svid.pem'), s.chainPem);
  writeFileSync(f('svid.key'), s.keyPem);
  writeFileSync(f('peer.pem'), s.certPem);
  writeFileSync(f('gw.pem'), (await a.issue('spiffe://zone-a.test/gw')).chainPem);
});

const mint = (extra: string[] = []) => zonegate(['token', 'mint', '--cert', f('svid.pem'), '--key', f('svid.key'), '--sub', 'alice', '--aud', 'spiffe://zone-b.test', ...extra]);

describe('zonegate token', () => {
  it('mint without --aud is a usage error (exit 2), not a token with "aud": []', () => {
    const r = zonegate(['token', 'mint', '--cert', f('svid.pem'), '--key', f('svid.key'), '--sub', 'alice']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/--aud/);
  });

  it('mint refuses a --ttl longer than verifiers accept (10 min unless --max-lifetime says more)', () => {
    const long = mint(['--ttl', '1h']);
    expect(long.code).toBe(2);
    expect(long.stdout).toBe('');
    expect(long.stderr).toMatch(/--ttl 1h \(3600 s\) is longer than verifiers accept \(600 s/);
    expect(mint(['--ttl', '10m']).code).toBe(0);
    // raised on both sides, it verifies
    const raised = mint(['--ttl', '1h', '--max-lifetime', '2h']);
    expect(raised.code).toBe(0);
    const v = zonegate(['token', 'verify', raised.stdout.trim(), '--bundle', `zone-a.test=${f('a.pem')}`, '--audience', 'spiffe://zone-b.test', '--max-lifetime', '2h']);
    expect(JSON.parse(v.stdout)).toMatchObject({ valid: true });
  });

  it('mints a token that verifies, with the peer bound by ID or by certificate', () => {
    const m = mint(['--ttl', '2m']);
    expect(m.code).toBe(0);
    const token = m.stdout.trim();
    const v = zonegate(['token', 'verify', token, '--bundle', `zone-a.test=${f('a.pem')}`, '--audience', 'spiffe://zone-b.test', '--peer', ID]);
    expect(v.code).toBe(0);
    const out = JSON.parse(v.stdout);
    expect(out).toMatchObject({ valid: true, reason: null, claims: { iss: ID, sub: 'alice' } });
    expect(out.claims.exp - out.claims.iat).toBe(120);
    expect(zonegate(['token', 'verify', '-', '--bundle', `zone-a.test=${f('a.pem')}`, '--audience', 'spiffe://zone-b.test', '--peer-cert', f('peer.pem')], { input: token }).code).toBe(0);
  });

  it('reports the reason and exits 1: wrong audience, wrong peer, foreign bundle', () => {
    const token = mint().stdout.trim();
    const verify = (args: string[]) => {
      const r = zonegate(['token', 'verify', token, ...args]);
      return [r.code, JSON.parse(r.stdout).reason];
    };
    expect(verify(['--bundle', `zone-a.test=${f('a.pem')}`, '--audience', 'spiffe://zone-c.test'])).toEqual([1, 'ERR_TOKEN_AUDIENCE']);
    expect(verify(['--bundle', `zone-a.test=${f('a.pem')}`, '--audience', 'spiffe://zone-b.test', '--peer', 'spiffe://zone-a.test/x'])).toEqual([1, 'ERR_TOKEN_PEER_MISMATCH']);
    expect(verify(['--bundle', `zone-a.test=${f('other.pem')}`, '--audience', 'spiffe://zone-b.test'])).toEqual([1, 'ERR_TOKEN_CHAIN']);
  });

  it('--act-from chains the caller into act', () => {
    const first = mint().stdout.trim();
    const second = zonegate(['token', 'mint', '--cert', f('gw.pem'), '--key', f('svid.key'), '--sub', 'alice', '--aud', 'x']);
    expect(second.code).toBe(2); // the gateway's cert does not match this key
    const chained = mint(['--act-from', first]).stdout.trim();
    expect(JSON.parse(Buffer.from(chained.split('.')[1]!, 'base64url').toString()).act).toEqual({ sub: ID });
  });

  it('usage errors exit 2', () => {
    expect(mint(['--ttl', 'forever']).code).toBe(2);
    expect(zonegate(['token', 'verify', 'x.y.z', '--bundle', `zone-a.test=${f('a.pem')}`]).code).toBe(2);
    expect(zonegate(['token', 'verify', 'x.y.z', '--audience', 'a']).code).toBe(2);
    expect(zonegate(['token', 'mint', '--cert', f('svid.pem'), '--key', f('missing'), '--sub', 's', '--aud', 'a']).code).toBe(2);
  });
});
