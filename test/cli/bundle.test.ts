/** `zonegate bundle show` and `bundle fetch` (https_web, against zonegate's own endpoint) as a user runs them. */
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { BIN, zonegate } from '../helpers/cli.js';
import { startWith, type Started } from '../helpers/zonegate.js';
import { MemoryCA } from '../../src/demo/pki.js';

const run = async (args: string[]) => {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, ...args]);
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
};

describe('zonegate bundle show', () => {
  it('lists the authorities of a PEM bundle as a table and as JSON', () => {
    const file = join(EXAMPLES_DIR, 'certs/zone-a.root.pem');
    const table = zonegate(['bundle', 'show', file]);
    expect(table.code).toBe(0);
    // no hint is "none", not "- s"
    expect(table.stdout).toMatch(/^sequence: none\s+refresh hint: none\s+authorities: 1\n/);
    // the full SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it
    const der = new X509Certificate(readFileSync(file)).raw;
    const colon = createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
    expect(table.stdout).toMatch(/SHA-256 FINGERPRINT\n/);
    expect(table.stdout).toContain(colon);
    expect(table.stdout).toMatch(/x509 +O=zonegate example, CN=zone-a\.example root +spiffe:\/\/zone-a\.example +20\d\d-/);
    const json = JSON.parse(zonegate(['bundle', 'show', file, '--json']).stdout);
    expect(json.authorities).toEqual([expect.objectContaining({ kind: 'x509', spiffeId: 'spiffe://zone-a.example', keyId: null })]);
  });

  it('shows JWT authorities with their key ids, sequence and hint', () => {
    const file = new URL('../../../shared/conformance/spiffe/go-spiffe/spiffebundle/spiffebundle_valid_2.json', import.meta.url).pathname;
    const json = JSON.parse(zonegate(['bundle', 'show', file, '--json']).stdout);
    expect([json.sequence, json.refreshHintSeconds]).toEqual([1, 60]);
    expect(json.authorities.filter((a: { kind: string }) => a.kind === 'jwt')).toHaveLength(6);
    expect(json.authorities.every((a: { sha256: string }) => /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/.test(a.sha256))).toBe(true);
    expect(zonegate(['bundle', 'show', file]).stdout).toMatch(/^sequence: 1\s+refresh hint: 60 s\s+authorities: 7/);
  });

  it('an invalid bundle or missing file exits 2', () => {
    const notPem = zonegate(['bundle', 'show', join(EXAMPLES_DIR, 'zonegate.yaml')]);
    expect(notPem.code).toBe(2);
    // names the file, and no made-up trust domain
    expect(notPem.stderr).toMatch(/^bundle show: .*zonegate\.yaml: /);
    expect(notPem.stderr).not.toMatch(/invalid"|trust domain "/);
    expect(zonegate(['bundle', 'show', '/nonexistent']).code).toBe(2);
  });
});

describe('zonegate bundle fetch over https_web', () => {
  let s: Started;
  let ca: MemoryCA;
  let dir: string;
  beforeAll(async () => {
    ca = await MemoryCA.create('web-pki.test');
    const serving = await ca.server();
    dir = mkdtempSync(join(tmpdir(), 'zg-web-'));
    writeFileSync(join(dir, 'server.pem'), serving.chainPem);
    writeFileSync(join(dir, 'server.key'), serving.keyPem);
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'zone.pem'), (await MemoryCA.create('zone-w.test')).certPem);
    s = await startWith(
      {
        trust: [{ trustDomain: 'zone-w.test', bundle: 'zone.pem' }],
        federation: { endpoint: { trustDomain: 'zone-w.test', address: '127.0.0.1', port: 0, profile: 'https_web', cert: 'server.pem', key: 'server.key' } },
      },
      dir,
    );
  });
  afterAll(async () => s?.close());

  it('a missing --bootstrap or --ca file is named by its option (exit 2), not a bare ENOENT', () => {
    const r = zonegate(['bundle', 'fetch', 'https://127.0.0.1:1/', '--trust-domain', 'a.test', '--profile', 'https_spiffe', '--endpoint-spiffe-id', 'spiffe://a.test/x', '--bootstrap', '/etc/zonegate/zone-a-bootstrap.pem']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('bundle fetch: --bootstrap /etc/zonegate/zone-a-bootstrap.pem: cannot read: ENOENT');
    const ca = zonegate(['bundle', 'fetch', 'https://127.0.0.1:1/', '--trust-domain', 'a.test', '--profile', 'https_web', '--ca', '/nonexistent/ca.pem']);
    expect(ca.stderr.trim()).toBe('bundle fetch: --ca /nonexistent/ca.pem: cannot read: ENOENT');
  });

  it('fetches our endpoint with --ca; without it the system roots refuse the server (exit 1 with a reason)', async () => {
    const url = `https://127.0.0.1:${s.zg.bundleEndpoint!.port}/`;
    const ok = await run(['bundle', 'fetch', url, '--trust-domain', 'zone-w.test', '--profile', 'https_web', '--ca', join(dir, 'ca.pem')]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).keys).toHaveLength(1);
    const refused = await run(['bundle', 'fetch', url, '--trust-domain', 'zone-w.test', '--profile', 'https_web', '--timeout', '3']);
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.stdout)).toMatchObject({ reason: 'ERR_BUNDLE_FETCH' });
  });

  it('usage errors exit 2', () => {
    for (const args of [
      ['bundle', 'fetch', 'https://127.0.0.1:1/', '--trust-domain', 'x.test', '--profile', 'ftp'],
      ['bundle', 'fetch', 'https://127.0.0.1:1/', '--trust-domain', 'x.test', '--profile', 'https_spiffe'],
      ['bundle', 'fetch', 'https://127.0.0.1:1/', '--trust-domain', 'BAD', '--profile', 'https_web'],
      ['bundle', 'fetch', 'https://127.0.0.1:1/', '--profile', 'https_web'],
    ])
      expect({ args, code: zonegate(args).code }).toEqual({ args, code: 2 });
  });
});
