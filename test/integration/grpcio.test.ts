/**
 * Wire compatibility with an independent implementation: Python grpcio (gRPC C-core, the core
 * Envoy's google_grpc client uses), with stubs compiled from the vendored protos, parsing the
 * example CheckRequests from proto3 JSON with protobuf's own json_format.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXAMPLES_DIR, PACKAGE_ROOT } from '../../src/paths.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { PYTHON, pythonGrpc, requireTool } from '../helpers/tools.js';

const run = requireTool(pythonGrpc());
const CLIENT = join(PACKAGE_ROOT, 'test/python/check_client.py');

type Line = { ok: boolean; code?: string; details?: string; status?: string; response?: Record<string, any> };

function python(args: string[]): Promise<Line[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(PYTHON, [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) =>
      code === 0
        ? resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line))
        : reject(new Error(`python client exited ${code}: ${err}`)),
    );
  });
}

describe.runIf(run)('Check from Python grpcio (gRPC C-core)', () => {
  let s: Started;
  beforeAll(async () => {
    s = await startWith(parse(readFileSync(join(EXAMPLES_DIR, 'zonegate.yaml'), 'utf8')));
  });
  afterAll(async () => {
    await s?.close();
  });
  const req = (name: string) => join(EXAMPLES_DIR, 'requests', name);

  it('gets the right verdicts and header rewrites for the example requests', async () => {
    const names = ['allowed.json', 'spoofed-header.json', 'cross-zone-allowed.json', 'denied-admin.json', 'no-rule.json', 'no-identity.json', 'forged-trust-domain.json'];
    const lines = await python(['--target', s.target, ...names.map(req)]);
    expect(lines).toHaveLength(names.length);
    const byName = Object.fromEntries(names.map((n, i) => [n, lines[i]!]));
    for (const l of lines) expect(l.ok).toBe(true);

    const allowed = byName['allowed.json']!.response!;
    expect(allowed.status ?? {}).toEqual({}); // code 0 is the proto3 default: omitted in JSON
    const headers = Object.fromEntries(
      (allowed.okResponse.headers as { header: { key: string; value: string }; append: boolean }[]).map((h) => [h.header.key, [h.header.value, h.append]]),
    );
    expect(headers['x-zonegate-peer']).toEqual(['spiffe://zone-a.example/ns/shop/sa/frontend', false]);
    expect(headers['x-zonegate-peer-trust-domain']).toEqual(['zone-a.example', false]);
    expect(allowed.okResponse.headersToRemove).toEqual(['x-zonegate-zone', 'x-zonegate-namespace', 'x-zonegate-service', 'x-zonegate-actor', 'x-zonegate-act', 'x-zonegate-roles']);

    const spoofed = byName['spoofed-header.json']!.response!;
    const peer = spoofed.okResponse.headers.find((h: { header: { key: string } }) => h.header.key === 'x-zonegate-peer');
    expect(peer.header.value).toBe('spiffe://zone-a.example/ns/shop/sa/frontend');

    expect(byName['cross-zone-allowed.json']!.response!.okResponse).toBeDefined();
    const expectDeny = (n: string, reason: string, code: number, http: string) => {
      const r = byName[n]!.response!;
      expect(r.status).toEqual({ code, message: reason });
      expect(r.deniedResponse.status.code).toBe(http);
      expect(JSON.parse(r.deniedResponse.body)).toMatchObject({ reason });
    };
    expectDeny('denied-admin.json', 'ERR_POLICY_DENIED', 7, 'Forbidden');
    expectDeny('no-rule.json', 'ERR_POLICY_NO_MATCH', 7, 'Forbidden');
    expectDeny('no-identity.json', 'ERR_NO_IDENTITY', 16, 'Unauthorized');
    expectDeny('forged-trust-domain.json', 'ERR_SVID_UNTRUSTED', 16, 'Unauthorized');
  });

  it('reads gRPC health as SERVING', async () => {
    expect(await python(['--target', s.target, '--health', ''])).toEqual([{ ok: true, status: 'SERVING' }]);
    expect(await python(['--target', s.target, '--health', 'envoy.service.auth.v3.Authorization'])).toEqual([
      { ok: true, status: 'SERVING' },
    ]);
  });
});
