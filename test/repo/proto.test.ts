/** proto/ is exactly what `npm run proto:sync` produces, and `buf build` compiles it. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT, PROTO_DIR } from '../../src/paths.js';

function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

describe('vendored protos', () => {
  it('buf build passes on the module described by buf.yaml', () => {
    execFileSync(join(PACKAGE_ROOT, 'node_modules/.bin/buf'), ['build', '-o', '/dev/null'], { cwd: PACKAGE_ROOT, stdio: 'pipe' });
  });

  it('proto/ is reproduced byte for byte by proto:sync, with the upstream recorded', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'zg-proto-'));
    execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/proto-sync.mjs'), tmp], { stdio: 'pipe' });
    const want = files(tmp);
    const have = files(PROTO_DIR);
    expect([...have.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, bytes] of want) expect({ name, same: bytes.equals(have.get(name)!) }).toEqual({ name, same: true });
    const upstream = readFileSync(join(PROTO_DIR, 'UPSTREAM.md'), 'utf8');
    expect(upstream).toMatch(/@grpc\/grpc-js-xds@\d+\.\d+\.\d+/);
    expect(have.has('envoy/service/auth/v3/external_auth.proto')).toBe(true);
    expect(have.has('grpc/health/v1/health.proto')).toBe(true);
  });
});
