/**
 * `zonegate status` and `zonegate explain` against a running `zonegate serve` (a real process):
 * the live trust domains and reload state, a decision with its steps using the server's bundles,
 * counted in its metrics, with no secret in the answer, and off unless enabled.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { isLoopback } from '../../src/config/server.js';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { until } from '../helpers/wait.js';
import { BIN, serve, zonegate, type Served } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'zg-ops-cli-'));
const file = join(dir, 'zonegate.yaml');
const request = (name: string, destination?: string) => {
  const r = JSON.parse(readFileSync(join(EXAMPLES_DIR, 'requests', name), 'utf8'));
  if (destination) r.attributes.contextExtensions = { destination };
  const f = join(dir, `${name}-${destination ?? 'default'}.json`);
  writeFileSync(f, JSON.stringify(r));
  return f;
};

function config(extra: (c: Record<string, any>) => void = () => undefined): string {
  const c = parse(readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8'));
  for (const t of c.trust) t.bundle = join(EXAMPLES_DIR, t.bundle);
  c.server.ops.explain = true;
  c.upstream = { destinations: { 'with-proof': { mode: 'hmac' } }, hmac: { secretFile: join(dir, 'hmac.secret'), keyId: 'k1' } };
  extra(c);
  return stringify(c);
}

const decisions = async (ops: number, result: string) => {
  const text = await (await fetch(`http://127.0.0.1:${ops}/metrics`)).text();
  return Number(new RegExp(`^zonegate_decisions_total\\{result="${result}",reason="[^"]*"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
};

let s: Served;
const ops = () => ['--ops', `http://127.0.0.1:${s.opsPort}`];

beforeAll(async () => {
  writeFileSync(join(dir, 'hmac.secret'), 'a-secret-of-at-least-thirty-two-bytes-0123456789\n');
  writeFileSync(file, config());
  s = await serve(process.execPath, [BIN, 'serve', '--workers', '1', '--config', file]);
}, 60_000);
afterAll(() => s?.signal('SIGKILL'));

describe('zonegate status', () => {
  it('each trust domain: generation, last and next refresh, staleness; the config origin and reload state', async () => {
    const r = zonegate(['status', ...ops(), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout);
    expect(st).toMatchObject({ ready: true, config: { origin: file, reload: { watching: true, last: null } } });
    expect(st.trustDomains.map((t: { trustDomain: string }) => t.trustDomain)).toEqual(['zone-a.example', 'zone-b.example']);
    const now = Date.parse(st.now);
    for (const t of st.trustDomains) {
      expect(t).toMatchObject({ lastResult: 'ok', stale: false, lastError: null, x509Authorities: 1 });
      expect(t.generation).toBeGreaterThan(0);
      expect(Date.parse(t.lastRefresh)).toBeLessThanOrEqual(now);
      expect(Date.parse(t.nextRefresh)).toBeGreaterThan(now);
      // maxStalenessSeconds (86400) after the last successful refresh
      expect(Date.parse(t.staleAt) - Date.parse(t.lastRefresh)).toBe(86_400_000);
    }
    const table = zonegate(['status', ...ops()]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/ready: configuration and trust material loaded/);
    expect(table.stdout).toContain(`config: ${file}`);
    expect(table.stdout).toMatch(/TRUST DOMAIN +GENERATION +SEQUENCE +LAST RESULT +LAST REFRESH +NEXT REFRESH +STALENESS +SOURCE/);
    expect(table.stdout).toMatch(/zone-a\.example +\d+ +- +ok +\d+s ago +in \d+m\d+s +fails closed in 2\dh\d+m +file:/);
  });

  it('shows a refused reload with its problems, and the one that succeeds after it', { timeout: 60_000 }, async () => {
    writeFileSync(file, config((c) => (c.rules[0].action = 'permit')));
    s.proc.kill('SIGHUP');
    await until(async () => JSON.parse(zonegate(['status', ...ops(), '--json']).stdout).config.reload.last?.result === 'error', 20_000, 'the refused reload');
    const table = zonegate(['status', ...ops()]);
    expect(table.stdout).toMatch(/reload: last error \d+s ago \(SIGHUP\)/);
    expect(table.stdout).toMatch(/zonegate\.yaml:\d+: rules\[0\]\.action: /);
    writeFileSync(file, config());
    s.proc.kill('SIGHUP');
    await until(async () => JSON.parse(zonegate(['status', ...ops(), '--json']).stdout).config.reload.last?.result === 'ok', 20_000, 'the good reload');
  });

  it('cannot reach a server: exit 2 naming where it looked', () => {
    const r = zonegate(['status', '--ops', 'http://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot reach the ops server at http:\/\/127\.0\.0\.1:1/);
  });
});

describe('zonegate explain', () => {
  it("decides with the server's live state and shows the steps; counted in the metrics like any decision", async () => {
    const before = await decisions(s.opsPort, 'allow');
    const r = zonegate(['explain', ...ops(), '--request', request('allowed.json')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^verdict: allow/);
    expect(r.stdout).toMatch(/PHASE +RESULT +REASON \/ RULE +DETAIL/);
    expect(r.stdout).toMatch(/peer +ok +- +verified X509-SVID spiffe:\/\/zone-a\.example\/ns\/shop\/sa\/frontend/);
    expect(r.stdout).toMatch(/policy +ok +frontend-calls-api/);
    expect(await decisions(s.opsPort, 'allow')).toBe(before + 1);
    const forged = zonegate(['explain', ...ops(), '--request', request('forged-trust-domain.json'), '--json']);
    expect(forged.code).toBe(1);
    expect(JSON.parse(forged.stdout)).toMatchObject({ allowed: false, reason: 'ERR_SVID_UNTRUSTED', steps: expect.arrayContaining([expect.objectContaining({ phase: 'peer', result: 'deny' })]) });
  });

  it('never returns a secret: the HMAC proof is redacted, the identity headers are not', async () => {
    const r = zonegate(['explain', ...ops(), '--request', request('allowed.json', 'with-proof'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const headers = Object.fromEntries(
      JSON.parse(r.stdout).checkResponse.okResponse.headers.map((h: { header: { key: string; value: string } }) => [h.header.key, h.header.value]),
    );
    expect(headers['x-zonegate-peer']).toBe('spiffe://zone-a.example/ns/shop/sa/frontend');
    expect(headers['x-zonegate-proof']).toMatch(/^<redacted sha256:[0-9a-f]{16}>$/);
    // the local check, with the same config and its own copy of the secret, shows what was withheld
    const local = JSON.parse(zonegate(['check', '--config', file, '--request', request('allowed.json', 'with-proof')]).stdout);
    const proof = local.checkResponse.okResponse.headers.find((h: { header: { key: string } }) => h.header.key === 'x-zonegate-proof').header.value;
    expect(proof).not.toMatch(/redacted/);
    expect(r.stdout).not.toContain(proof);
  });

  it('off unless enabled, and loopback clients only', { timeout: 60_000 }, async () => {
    const off = await serve(process.execPath, [BIN, 'serve', '--workers', '1', '--config', join(EXAMPLES_DIR, 'zonegate.yaml')], { ZONEGATE_OPS_ADDRESS: '0.0.0.0' });
    try {
      const r = zonegate(['explain', '--ops', `http://127.0.0.1:${off.opsPort}`, '--request', request('allowed.json')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/explain is off: set server\.ops\.explain: true/);
    } finally {
      off.signal('SIGKILL');
    }
    expect([isLoopback('127.0.0.1'), isLoopback('::1'), isLoopback('::ffff:127.0.0.5'), isLoopback('10.0.0.1'), isLoopback('::ffff:10.0.0.1'), isLoopback('')]).toEqual([true, true, true, false, false, false]);
    // from this host's own non-loopback address, to a server listening on every address
    const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    expect(external, 'a non-loopback IPv4 address on this machine').toBeDefined();
    writeFileSync(join(dir, 'all.yaml'), config((c) => (c.server.ops.address = '0.0.0.0')));
    const all = await serve(process.execPath, [BIN, 'serve', '--workers', '1', '--config', join(dir, 'all.yaml')], { ZONEGATE_OPS_ADDRESS: '0.0.0.0' });
    try {
      const body = readFileSync(request('allowed.json'));
      const far = await fetch(`http://${external}:${all.opsPort}/explain`, { method: 'POST', body });
      expect(far.status).toBe(403);
      expect(await far.json()).toEqual({ error: 'explain answers loopback clients only' });
      expect((await fetch(`http://127.0.0.1:${all.opsPort}/explain`, { method: 'POST', body })).status).toBe(200);
    } finally {
      all.signal('SIGKILL');
    }
  });
});
