/**
 * The demo in process: its zones, its written requests (re-minted while it runs), its port
 * layout, and stop(). The user's view (npm start, the printed table) is test/cli/demo.test.ts.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { checkClient } from '../../src/demo/client.js';
import { DEMO_RULES } from '../../src/demo/policy.js';
import { runDemo, type RunningDemo } from '../../src/demo/run.js';
import { DEFAULT_PORTS, parsePortBase, portLayout } from '../../src/demo/zones.js';
import { until } from '../helpers/wait.js';

let demo: RunningDemo;
const printed: string[] = [];

beforeAll(async () => {
  demo = await runDemo({ portBase: 0, print: (s) => printed.push(s), refreshMs: 300 });
});
afterAll(async () => {
  await demo?.stop();
});

const claimsOf = (file: string) => {
  const req = JSON.parse(readFileSync(file, 'utf8')) as { attributes: { request: { http: { headers: Record<string, string> } } } };
  const token = req.attributes.request.http.headers['x-common-identity']!;
  return { req, claims: JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { jti: string; exp: number; iat: number; sub: string } };
};

describe('zonegate demo, in process', () => {
  it('every scripted call gets the verdict the scenario states, and the table says so', () => {
    expect(demo.rows).toHaveLength(11);
    for (const r of demo.rows) expect([r.call.slug, r.verdict.error ? 'error' : r.verdict.allowed ? 'allow' : r.verdict.reason]).toEqual([r.call.slug, r.call.expect]);
    expect(printed.join('\n')).not.toContain('warning:');
  });

  it('each zone runs the config it wrote, with the policy from one place, federating the other over https_spiffe', () => {
    for (const key of ['a', 'b'] as const) {
      const { config } = loadConfig(demo.zones[key].files.config, {});
      expect(config.rules.map((r) => r.name)).toEqual(DEMO_RULES[key].map((r) => r.name));
      const other = demo.zones[key === 'a' ? 'b' : 'a'].zone;
      expect(config.trust.find((t) => t.trustDomain === other.trustDomain)?.source).toMatchObject({
        https_spiffe: { url: `https://127.0.0.1:${other.ports.bundle}/`, endpointSpiffeId: other.zonegateId },
      });
      expect(demo.zonegates[key].trust.status().map((s) => [s.trustDomain, s.hasBundle, s.lastResult])).toEqual([
        [demo.zones[key].zone.trustDomain, true, 'ok'],
        [other.trustDomain, true, 'ok'],
      ]);
    }
  });

  it('the written requests get fresh tokens while it runs; an expired one stays expired', async () => {
    const dir = demo.zones.b.files.requests;
    const allowedFile = join(dir, readdirSync(dir).find((n) => n.endsWith('-allowed.json'))!);
    const expiredFile = join(dir, readdirSync(dir).find((n) => n.endsWith('-expired-token.json'))!);
    const first = claimsOf(allowedFile).claims;
    expect(first.exp - first.iat).toBe(600);
    await until(() => claimsOf(allowedFile).claims.jti !== first.jti, 5000, 'a re-minted token');
    const { req, claims } = claimsOf(allowedFile);
    expect(claims.sub).toBe('user:alice');
    const client = checkClient('127.0.0.1', demo.zones.b.zone.ports.grpc);
    try {
      expect(await client.check(req as never)).toMatchObject({ allowed: true, rule: 'frontend-creates-invoices' });
      expect(await client.check(claimsOf(expiredFile).req as never)).toMatchObject({ allowed: false, reason: 'ERR_TOKEN_EXPIRED' });
    } finally {
      client.close();
    }
  });

  it('stop() closes both zones and removes the directory; a second stop() is harmless', async () => {
    const ops = demo.zones.a.zone.ports.ops;
    expect((await fetch(`http://127.0.0.1:${ops}/readyz`)).status).toBe(200);
    await demo.stop();
    await demo.stop();
    expect(existsSync(demo.root)).toBe(false);
    await expect(fetch(`http://127.0.0.1:${ops}/readyz`)).rejects.toThrow();
  });
});

describe('demo port layout', () => {
  it('defaults keep zone A on 50051 and 8181 and the Envoys on the compose host ports; a base lays out ten ports; 0 means free ports', () => {
    expect(portLayout(undefined)).toEqual(DEFAULT_PORTS);
    expect(DEFAULT_PORTS.a).toMatchObject({ grpc: 50051, ops: 8181, ingress: 10001, egress: 15001 });
    expect(DEFAULT_PORTS.b).toMatchObject({ ingress: 10002, egress: 15002 });
    expect(portLayout(20000)).toEqual({
      a: { grpc: 20000, ops: 20001, bundle: 20002, ingress: 20006, egress: 20007 },
      b: { grpc: 20003, ops: 20004, bundle: 20005, ingress: 20008, egress: 20009 },
    });
    expect(parsePortBase('0')).toBe(0);
    expect(parsePortBase('65526')).toBe(65526);
    for (const bad of ['80', '65527', '-1', '1.5', 'x', ''])
      expect(() => parsePortBase(bad), bad).toThrow(/--port-base/);
  });
});
