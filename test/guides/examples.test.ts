/**
 * The example material (examples/certs, examples/requests) is what the README's regeneration
 * commands make: run as printed in a copy of examples/, examples/make-certs.sh --flat writes the
 * same certificate files with the same names in them, and the requests make-requests.mjs writes
 * from them get the verdicts the committed ones get from `zonegate check`.
 */
import { X509Certificate } from 'node:crypto';
import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheck } from '../../src/cli/check.js';
import { EXAMPLES_DIR, PACKAGE_ROOT } from '../../src/paths.js';
import { runShell } from '../envoy-real/shipped.js';
import { makeCerts, MAKE_CERTS, probe, requireTool } from '../helpers/tools.js';

const run = requireTool(probe('openssl', 'openssl', ['version']));
const DAY = 86_400_000;
const readme = readFileSync(join(PACKAGE_ROOT, 'README.md'), 'utf8');
/** The README's regeneration commands, in order: the backticked commands of its example-material line. */
const regenerate = [...(/^- (`examples\/make-certs\.sh[^\n]*\n?[^\n]*)regenerate the example material/m.exec(readme)?.[1] ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

/** What a certificate file says, to compare with the committed one. */
const shape = (file: string) => {
  const c = new X509Certificate(readFileSync(file));
  return { subject: c.subject, issuer: c.issuer, san: c.subjectAltName, ca: c.ca, key: c.publicKey.asymmetricKeyDetails?.namedCurve };
};
const verdict = async (config: string, request: string) => {
  let printed = '';
  const code = await runCheck({ config, request }, (s) => (printed += s));
  const { allowed, reason } = JSON.parse(printed) as { allowed: boolean; reason: string };
  return { code, allowed, reason };
};

let root: string;
beforeAll(async () => {
  if (!run) return;
  root = mkdtempSync(join(tmpdir(), 'zg-examples-'));
  cpSync(EXAMPLES_DIR, join(root, 'examples'), { recursive: true });
  rmSync(join(root, 'examples', 'certs'), { recursive: true });
  for (const f of readdirSync(join(root, 'examples', 'requests'))) rmSync(join(root, 'examples', 'requests', f));
  copyFileSync(MAKE_CERTS, join(root, 'examples', 'make-certs.sh'));
  for (const command of regenerate) {
    const r = await runShell(command, root);
    expect(r.code, `${command}\n${r.stdout}${r.stderr}`).toBe(0);
  }
}, 60_000);
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("the README's regeneration commands", () => {
  it('are the flat certificate layout with a 20-year validity, then the requests', () => {
    expect(regenerate).toEqual(['examples/make-certs.sh --flat --days 7300 examples/certs', 'node examples/make-requests.mjs']);
  });
});

describe.runIf(run)('examples/make-certs.sh --flat', () => {
  const committed = (...p: string[]) => join(EXAMPLES_DIR, ...p);
  const made = (...p: string[]) => join(root, 'examples', ...p);

  it('writes the files of examples/certs, each with the committed subject, issuer and SPIFFE ID; no keys', () => {
    expect(readdirSync(made('certs')).sort()).toEqual(readdirSync(committed('certs')).sort());
    for (const f of readdirSync(committed('certs'))) expect(shape(made('certs', f)), f).toEqual(shape(committed('certs', f)));
  });

  it('the leaves chain to the roots the example config binds to their trust domains; the forged one to the wrong one', () => {
    const root = (z: string) => new X509Certificate(readFileSync(made('certs', `${z}.root.pem`)));
    const leaf = (n: string) => new X509Certificate(readFileSync(made('certs', `${n}.svid.pem`)));
    expect(leaf('frontend').verify(root('zone-a').publicKey)).toBe(true);
    expect(leaf('billing').verify(root('zone-b').publicKey)).toBe(true);
    expect(leaf('forged').verify(root('zone-a').publicKey)).toBe(true);
    expect(leaf('forged').subjectAltName).toBe(leaf('billing').subjectAltName);
    expect(root('zone-a').publicKey.equals(root('zone-b').publicKey)).toBe(false);
  });

  it('--days sets the validity', () => {
    const days = (f: string) => (Date.parse(new X509Certificate(readFileSync(f)).validTo) - Date.parse(new X509Certificate(readFileSync(f)).validFrom)) / DAY;
    expect(days(made('certs', 'frontend.svid.pem'))).toBe(7300);
    const short = mkdtempSync(join(tmpdir(), 'zg-days-'));
    makeCerts('--flat', '--days', '2', short);
    expect(days(join(short, 'zone-b.root.pem'))).toBe(2);
    rmSync(short, { recursive: true });
  });

  it('make-requests.mjs writes the committed requests from it, and each gets the committed verdict', async () => {
    const names = readdirSync(committed('requests')).sort();
    expect(readdirSync(made('requests')).sort()).toEqual(names);
    for (const n of names) {
      const was = await verdict(committed('zonegate.yaml'), committed('requests', n));
      expect(await verdict(made('zonegate.yaml'), made('requests', n)), n).toEqual(was);
    }
    expect((await verdict(made('zonegate.yaml'), made('requests', 'allowed.json'))).allowed).toBe(true);
    expect((await verdict(made('zonegate.yaml'), made('requests', 'forged-trust-domain.json'))).reason).toBe('ERR_SVID_UNTRUSTED');
  }, 60_000);
});
