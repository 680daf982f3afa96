/**
 * zonegate's own SVID rotated in place by a writer that is not atomic (as some tools write):
 * while the files are half-written, or the certificate is new but the key still old, the current
 * identity keeps signing; the complete new pair is picked up without a restart.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { until, sleep } from '../helpers/wait.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const A = 'zone-a.test';
const ME = `spiffe://${A}/ns/web/sa/frontend`;
let s: Started;
let dir: string;
let oldSvid: Issued;
let newSvid: Issued;

beforeAll(async () => {
  const ca = await MemoryCA.create(A);
  oldSvid = await ca.issue(ME);
  newSvid = await ca.issue(ME);
  dir = mkdtempSync(join(tmpdir(), 'zg-rotate-'));
  writeFileSync(join(dir, 'svid.pem'), oldSvid.chainPem);
  writeFileSync(join(dir, 'svid.key'), oldSvid.keyPem);
  writeFileSync(join(dir, 'root.pem'), ca.certPem);
  s = await startWith(
    {
      identity: { cert: 'svid.pem', key: 'svid.key' },
      trust: [{ trustDomain: A, bundle: 'root.pem' }],
      commonIdentity: { egress: { defaultAudience: 'spiffe://zone-b.test' } },
      rules: [{ name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } }],
    },
    dir,
  );
});
afterAll(async () => {
  await s?.close();
});

/** The certificate that signed the common identity minted for one outgoing call. */
async function signer(): Promise<string> {
  const r = await s.check(checkRequest({ context: { direction: 'egress' } }));
  if (!r.ok) throw r.error;
  const ok = r.response.ok_response as { headers: { header: { key: string; value: string } }[] } | undefined;
  const token = ok?.headers.find((h) => h.header.key === 'x-common-identity')?.header.value;
  if (!token) throw new Error(`no token minted: ${JSON.stringify(r.response.status)}`);
  const x5c = (JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as { x5c: string[] }).x5c;
  const b64 = x5c[0]!;
  return b64 === oldSvid.cert.raw.toString('base64') ? 'old' : b64 === newSvid.cert.raw.toString('base64') ? 'new' : 'unknown';
}
const notReloaded = () => s.logs.filter((l) => l.msg === 'local SVID not reloaded: keeping the current one').length;

describe('local SVID rotation with half-written files', () => {
  it('half a certificate, then a certificate without its key: the old identity keeps signing; the complete pair takes over', async () => {
    expect(await signer()).toBe('old');

    let before = notReloaded();
    writeFileSync(join(dir, 'svid.pem'), newSvid.chainPem.slice(0, Math.floor(newSvid.chainPem.length / 2)));
    await until(() => notReloaded() > before, 10_000, 'the half-written certificate to be refused');
    expect(await signer()).toBe('old');

    before = notReloaded();
    writeFileSync(join(dir, 'svid.pem'), newSvid.chainPem);
    await until(() => notReloaded() > before, 10_000, 'the certificate without its key to be refused');
    expect(String(s.logs.filter((l) => l.msg === 'local SVID not reloaded: keeping the current one').pop()?.detail)).toMatch(/does not match private key/);
    expect(await signer()).toBe('old');

    writeFileSync(join(dir, 'svid.key'), newSvid.keyPem.slice(0, 40));
    await sleep(200);
    expect(await signer()).toBe('old');

    writeFileSync(join(dir, 'svid.key'), newSvid.keyPem);
    await until(async () => (await signer()) === 'new', 10_000, 'the new SVID');
    expect(s.logs.some((l) => l.msg === 'local SVID rotated')).toBe(true);
    // the logs name the identity, never the key
    expect(JSON.stringify(s.logs)).not.toContain(newSvid.keyPem.split('\n')[1]);
  });
});
