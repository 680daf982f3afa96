/**
 * No single decision holds the event loop for more than 10 ms, on the worst inputs of each
 * expensive class within the configured limits: a token whose x5c carries huge-exponent RSA
 * intermediates, re-spelled (cache-busting) certificates and x5c, same-name intermediates, wrong
 * passwords and unknown users, XFCC full of unterminated PEM markers, deeply nested claims.
 * Measured through the pipeline (prepare, then authorize) and through the real gRPC server, as
 * the longest event-loop delay while one call is decided (monitorEventLoopDelay), best of
 * several runs, each with a fresh input so no cache answers. The signature checks and scrypt
 * run on the thread pool; what is left on the loop is parsing, hashing and lookups.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { toAuthRequest } from '../../src/envoy/request.js';
import type { DecisionState } from '../../src/pipeline/state.js';
import { hashPassword } from '../../src/identity/basic.js';
import { createCarriedPhase } from '../../src/identity/phase.js';
import { buildDecisionState } from '../../src/pipeline/state.js';
import { MemoryCA, type Issued } from '../../src/demo/pki.js';
import { rsaSpki } from '../helpers/x509.js';
import { loopDelay } from '../helpers/wait.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

const A = 'zone-a.test';
const B = 'zone-b.test';
const FRONTEND = `spiffe://${A}/ns/web/sa/frontend`;
const LIMIT_MS = 10;
/**
 * Runs per case, at most: the best one counts. On a loaded machine the process is also
 * descheduled, which shows as loop delay too; the minimum over several runs is the code's cost.
 * Stops early once a run is under the limit.
 */
const RUNS = 12;
const dir = mkdtempSync(join(tmpdir(), 'zg-loop-'));

let caA: MemoryCA;
let caB: MemoryCA;
let hugeIms: MemoryCA[];
let sameName: MemoryCA[];
let frontend: Issued;
let certServer: Started;
let xfccServer: Started;
let certConfig: Record<string, unknown>;

beforeAll(async () => {
  caA = await MemoryCA.create(A, { sharedLeafKeys: true });
  caB = await MemoryCA.create(B, { sharedLeafKeys: true });
  const n = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey.export({ format: 'jwk' }).n!, 'base64url');
  hugeIms = await Promise.all([1, 2, 3, 4].map(() => caA.intermediate({ keyType: 'RSA', subject: 'CN=same name', spki: rsaSpki(n, 2n ** 3070n + 1n) })));
  sameName = await Promise.all([1, 2, 3, 4].map(() => caA.intermediate({ subject: 'CN=same name too' })));
  frontend = await caA.issue(FRONTEND);
  const own = await caB.issue(`spiffe://${B}/ns/default/sa/billing`);
  writeFileSync(join(dir, 'a.pem'), caA.certPem);
  writeFileSync(join(dir, 'b.pem'), caB.certPem);
  writeFileSync(join(dir, 'svid.pem'), own.chainPem);
  writeFileSync(join(dir, 'svid.key'), own.keyPem);
  writeFileSync(join(dir, 'users.yaml'), stringify({ users: [{ name: 'bob', password: hashPassword('correct horse'), roles: ['admin'] }] }));
  const base = {
    identity: { cert: 'svid.pem', key: 'svid.key' },
    trust: [
      { trustDomain: A, bundle: 'a.pem' },
      { trustDomain: B, bundle: 'b.pem' },
    ],
    commonIdentity: { jwtSvid: true, egress: { defaultAudience: `spiffe://${A}`, basic: { usersFile: 'users.yaml' } } },
    rules: [
      { name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } },
      { name: 'ingress', action: 'allow', from: { trustDomains: [A] } },
    ],
  };
  certConfig = base;
  certServer = await startWith(base, dir);
  xfccServer = await startWith({ ...base, peer: { source: 'xfcc' } }, dir);
}, 120_000);
afterAll(async () => {
  await certServer?.close();
  await xfccServer?.close();
});

/** Best of at least three and at most RUNS runs, each with a fresh input from `make(run)`. */
async function bestOf(make: (run: number) => Promise<Record<string, unknown>>, decide: (req: Record<string, unknown>) => Promise<string>, expected: RegExp): Promise<number> {
  let best = Infinity;
  for (let run = 0; run < RUNS; run++) {
    const req = await make(run);
    let verdict = '';
    const ms = await loopDelay(async () => {
      verdict = await decide(req);
    });
    expect(verdict).toMatch(expected);
    best = Math.min(best, ms);
    if (best < LIMIT_MS && run >= 2) break;
  }
  return best;
}

const viaServer = (s: () => Started) => async (req: Record<string, unknown>) => {
  const r = await s().check(req);
  if (!r.ok) return `error ${r.error.code} ${r.error.details}`;
  const st = r.response.status as { code: number; message?: string };
  return st.code === 0 ? 'allow' : String(st.message);
};

const states = new Map<Started, DecisionState>();
/** The same decision state a server builds, driven directly: prepare() off the loop, then authorize(). */
const viaPipeline = (server: () => Started, extra: Record<string, unknown> = {}) => async (req: Record<string, unknown>) => {
  let state = states.get(server());
  if (!state) {
    const { config } = parseConfig(stringify({ ...certConfig, ...extra, server: { grpc: { address: '127.0.0.1', port: 0 }, ops: { address: '127.0.0.1', port: 0 } } }), 'loop', dir);
    const zg = server().zg;
    state = buildDecisionState(config, zg.trust, zg.identity, createCarriedPhase(config, zg.trust.bundles, zg.identity));
    states.set(server(), state);
  }
  const auth = toAuthRequest(req, state.limits);
  await state.prepare?.(auth);
  const o = state.pipeline.authorize(auth);
  return o.allowed ? 'allow' : o.reason;
};

const now = () => Math.floor(Date.now() / 1000);
const b64 = (s: string) => Buffer.from(s).toString('base64url');
/** Every case here is refused before the token's own signature: any RSA key signs it. */
const signer = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
function token(x5c: readonly string[], payload: string): string {
  const input = `${b64(JSON.stringify({ alg: 'RS256', typ: 'ci+jwt', x5c }))}.${b64(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), signer).toString('base64url')}`;
}
const claims = (extra = '') => `{"iss":"${FRONTEND}","sub":"${FRONTEND}","aud":"spiffe://${B}","iat":${now()},"exp":${now() + 60}${extra}}`;
const ingress = (headers: Record<string, string>, peer: Issued = frontend) => checkRequest({ certificate: encodeURIComponent(peer.certPem), headers });

/** Each worst case: a fresh request per run, and the verdict it must get. */
const cases: [string, (run: number) => Promise<Record<string, unknown>>, RegExp][] = [
  [
    'x5c with four same-name huge-exponent RSA intermediates',
    async () => {
      const leaf = await hugeIms[0]!.issue(FRONTEND);
      return ingress({ 'x-common-identity': token([leaf.der, ...hugeIms.map((i) => i.cert.raw)].map((d) => d.toString('base64')), claims()) });
    },
    /^ERR_KEY_TOO_WEAK$/,
  ],
  [
    'a new peer chain under four same-name intermediates (signatures on the pool)',
    async () => {
      const leaf = await sameName[3]!.issue(FRONTEND);
      return checkRequest({ certificate: encodeURIComponent([leaf.certPem, ...sameName.map((i) => i.certPem)].map((p) => p.trim()).join('\n')) });
    },
    /^ERR_NO_CARRIED_IDENTITY$/,
  ],
  [
    'a known peer certificate re-spelled (line length, URL-encoding) to bust the cache',
    async (run) => {
      const body = frontend.der.toString('base64').match(new RegExp(`.{1,${40 + run}}`, 'g'))!.join('\n');
      const pem = `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
      return checkRequest({ certificate: [...pem].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('') });
    },
    /^ERR_NO_CARRIED_IDENTITY$/,
  ],
  [
    'x5c with an unused base64 bit flipped (or, without unused bits, a character too many)',
    async (run) => {
      const good = frontend.der.toString('base64');
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const at = good.replace(/=+$/, '').length - 1;
      const flipped = good.endsWith('=') ? good.slice(0, at) + alphabet[alphabet.indexOf(good[at]!) ^ ((run % 3) + 1)]! + good.slice(at + 1) : `${good}A`;
      return ingress({ 'x-common-identity': token([flipped], claims()) });
    },
    /^ERR_TOKEN_X5C$/,
  ],
  // a fresh token each run: the same token would be a cached failure after the first
  ['claims nested 5000 deep', async (run) => ingress({ 'x-common-identity': token([frontend.der.toString('base64')], claims(`,"n":${run},"x":${'['.repeat(5000)}${']'.repeat(5000)}`)) }), /^ERR_CLAIMS_TOO_LARGE$/],
  ['a wrong password (scrypt N = 16384)', async (run) => checkRequest({ headers: { authorization: `Basic ${Buffer.from(`bob:wrong${run}`).toString('base64')}` }, context: { direction: 'egress' } }), /^ERR_USER_CREDENTIAL$/],
  ['an unknown user', async (run) => checkRequest({ headers: { authorization: `Basic ${Buffer.from(`nobody${run}:x`).toString('base64')}` }, context: { direction: 'egress' } }), /^ERR_USER_CREDENTIAL$/],
];

describe(`no decision holds the event loop over ${LIMIT_MS} ms (best of several runs, fresh input each run)`, () => {
  it.each(cases)('through the pipeline: %s', async (_n, make, expected) => {
    expect(await bestOf(make, viaPipeline(() => certServer), expected)).toBeLessThan(LIMIT_MS);
  });

  it.each(cases)('through the real gRPC server: %s', async (_n, make, expected) => {
    expect(await bestOf(make, viaServer(() => certServer), expected)).toBeLessThan(LIMIT_MS);
  });

  const xfccJunk = async (run: number) => {
    const junk = '-----BEGIN CERTIFICATE-----'.repeat(Math.floor((60 * 1024) / 27) - run);
    return checkRequest({ headers: { 'x-forwarded-client-cert': `Hash=a;Cert="${junk}";URI=${FRONTEND}` } });
  };

  it('through the pipeline: XFCC of 60 KiB of unterminated PEM markers', async () => {
    expect(await bestOf(xfccJunk, viaPipeline(() => xfccServer, { peer: { source: 'xfcc' } }), /^ERR_SVID_MALFORMED$/)).toBeLessThan(LIMIT_MS);
  });

  it('through the real gRPC server: XFCC of 60 KiB of unterminated PEM markers', async () => {
    expect(await bestOf(xfccJunk, viaServer(() => xfccServer), /^ERR_SVID_MALFORMED$/)).toBeLessThan(LIMIT_MS);
  });
});
