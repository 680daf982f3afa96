/** The `zonegate` command as a user runs it: bin/zonegate.js over the compiled dist/. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { zonegate } from '../helpers/cli.js';

const req = (n: string) => join(EXAMPLES_DIR, 'requests', n);
const cfg = join(EXAMPLES_DIR, 'zonegate.yaml');

describe('zonegate check', () => {
  it('allowed: exit 0, the exact CheckResponse in proto3 JSON', () => {
    const r = zonegate(['check', '--config', cfg, '--request', req('allowed.json')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ allowed: true, reason: null });
    expect(out.checkResponse.status ?? {}).toEqual({});
    expect(out.checkResponse.okResponse.headers).toContainEqual({
      header: { key: 'x-zonegate-peer', value: 'spiffe://zone-a.example/ns/shop/sa/frontend' },
      append: false,
    });
    expect(out.checkResponse.okResponse.headersToRemove).toEqual(['x-zonegate-zone', 'x-zonegate-namespace', 'x-zonegate-service', 'x-zonegate-actor', 'x-zonegate-act', 'x-zonegate-roles']);
    expect(out.steps).toBeUndefined();
  });

  it('denied: exit 1 with the reason, and --explain names each phase', () => {
    const r = zonegate(['check', '--config', cfg, '--request', req('denied-admin.json'), '--explain']);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ allowed: false, reason: 'ERR_POLICY_DENIED' });
    expect(out.checkResponse.deniedResponse.status.code).toBe('Forbidden');
    expect(out.steps.map((s: { phase: string; result: string }) => `${s.phase}:${s.result}`)).toEqual([
      'request:ok',
      'peer:ok',
      'carried:skip',
      'policy:deny',
    ]);
    expect(out.steps[3]).toMatchObject({ rule: 'no-admin-from-outside', reason: 'ERR_POLICY_DENIED' });
  });

  it('uses the embedded default without --config and reads the request from stdin', () => {
    const r = zonegate(['check', '--request', '-', '--explain'], { input: readFileSync(req('forged-trust-domain.json'), 'utf8') });
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.reason).toBe('ERR_SVID_UNTRUSTED');
    expect(out.steps.at(-1)).toMatchObject({ phase: 'peer', result: 'deny' });
  });

  it('usage errors exit 2: not JSON, unknown field, missing file, missing option, unknown command', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-cli-'));
    writeFileSync(join(dir, 'bad.json'), '{nope');
    writeFileSync(join(dir, 'unknown.json'), JSON.stringify({ attributes: { sauce: {} } }));
    for (const args of [
      ['check', '--config', cfg, '--request', join(dir, 'bad.json')],
      ['check', '--config', cfg, '--request', join(dir, 'unknown.json')],
      ['check', '--config', cfg, '--request', join(dir, 'missing.json')],
      ['check', '--config', cfg],
      ['frobnicate'],
    ]) {
      const r = zonegate(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stdout).toBe('');
    }
  });
});

describe('zonegate config validate', () => {
  it('accepts the example and names key path and line of a problem', () => {
    expect(zonegate(['config', 'validate', cfg])).toMatchObject({ code: 0, stdout: `${cfg}: valid\n` });
    const dir = mkdtempSync(join(tmpdir(), 'zg-cli-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'server:\n  grpc:\n    port: 99999\nrules:\n  - name: x\n    action: maybe\n');
    const r = zonegate(['config', 'validate', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${bad}:3: server.grpc.port:`);
    expect(r.stderr).toContain(`${bad}:6: rules[0].action:`);
  });

  it('a config whose bundle file is missing is a config error for check (exit 2)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-cli-'));
    writeFileSync(join(dir, 'z.yaml'), 'trust: [{trustDomain: a.test, bundle: nope.pem}]\n');
    const r = zonegate(['check', '--config', join(dir, 'z.yaml'), '--request', req('allowed.json')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/z\.yaml:1: trust\[0\]\.bundle: cannot read .*nope\.pem: ENOENT/);
  });
});
