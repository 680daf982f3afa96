/**
 * Config reload in process, through the real gRPC server: a valid change is swapped in (file
 * watch, ConfigMap symlink swap), an invalid one keeps the running config and readiness and is
 * reported with its line and key path (never a secret), a missing referenced file is refused,
 * a listener change is reported as needing a restart, and Checks in flight during reloads all
 * get a verdict of either the old config or the new one.
 */
import * as grpc from '@grpc/grpc-js';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { checkMethod, loadProtos } from '../../src/envoy/proto.js';
import { createLogger } from '../../src/log.js';
import { startZonegate, type Zonegate } from '../../src/main.js';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { verifyProof } from '../../src/rewrite/verify.js';
import { testServer } from '../helpers/http.js';
import { until, sleep } from '../helpers/wait.js';
import { MemoryCA } from '../../src/demo/pki.js';
import { createPrivateKey } from 'node:crypto';
import { mintWirePact } from '../../src/identity/wirepact.js';
import { hashPassword } from '../../src/identity/basic.js';
import { checkRequest, exampleCert } from '../helpers/zonegate.js';
import { EGRESS_TTL_SECONDS } from '../helpers/identity.js';
import { mintCommonIdentity } from '../../src/identity/mint.js';
import { loadX509Svid } from '../../src/svid/local.js';

const allowFrontend = { name: 'frontend-calls-api', action: 'allow', from: { principals: ['spiffe://zone-a.example/ns/shop/sa/frontend'] }, to: { paths: [{ prefix: '/api/' }] } };
const denyFrontend = { name: 'frontend-blocked', action: 'deny', from: { principals: ['spiffe://zone-a.example/ns/shop/sa/frontend'] } };

function configYaml(rules: object[], extra: Record<string, unknown> = {}): string {
  return stringify({
    server: { grpc: { address: '127.0.0.1', port: 0 }, ops: { address: '127.0.0.1', port: 0 }, drainDelaySeconds: 0, shutdownGraceSeconds: 2 },
    trust: [
      { trustDomain: 'zone-a.example', bundle: 'zone-a.root.pem' },
      { trustDomain: 'zone-b.example', bundle: 'zone-b.root.pem' },
    ],
    rules,
    ...extra,
  });
}

function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'zg-reload-'));
  for (const f of ['zone-a.root.pem', 'zone-b.root.pem']) copyFileSync(join(EXAMPLES_DIR, 'certs', f), join(dir, f));
  return dir;
}

interface Running {
  zg: Zonegate;
  logs: Record<string, unknown>[];
  /** allow, the deny reason or the gRPC error of `request` (default: the example frontend's certificate alone). */
  verdict(request?: Record<string, unknown>): Promise<string>;
  /** The headers an allowed Check sets for the upstream (of the route's destination). */
  upstreamHeaders(destination?: string): Promise<Record<string, string>>;
  metrics(): Promise<string>;
  close(): Promise<void>;
}

const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

async function start(file: string): Promise<Running> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _e, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const zg = await startZonegate(loadConfig(file, {}), { log: createLogger('info', sink), configFile: file });
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const client = new Client(`127.0.0.1:${zg.grpc.port}`, grpc.credentials.createInsecure());
  const m = checkMethod();
  const r: Running = {
    zg,
    logs,
    verdict: (request = checkRequest({ certificate: exampleCert('frontend') })) =>
      new Promise((resolve) =>
        client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, request, new grpc.Metadata(), (e, res) => {
          const st = (res as { status?: { code: number; message?: string } } | undefined)?.status;
          resolve(e ? `error ${e.code}` : st?.code === 0 ? 'allow' : String(st?.message));
        }),
      ),
    upstreamHeaders: (destination) =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          m.path,
          m.requestSerialize,
          m.responseDeserialize,
          checkRequest({ certificate: exampleCert('frontend'), ...(destination ? { context: { destination } } : {}) }),
          new grpc.Metadata(),
          (e, res) => {
            const ok = (res as { ok_response?: { headers: { header: { key: string; value: string } }[] } } | undefined)?.ok_response;
            if (e || !ok) reject(e ?? new Error('not allowed'));
            else resolve(Object.fromEntries(ok.headers.map((h) => [h.header.key, h.header.value])));
          },
        ),
      ),
    metrics: async () => (await fetch(`http://127.0.0.1:${zg.ops.port}/metrics`)).text(),
    close: async () => {
      client.close();
      await zg.stop();
    },
  };
  running.push(r);
  return r;
}

const reloads = (metrics: string, result: string) => Number(new RegExp(`zonegate_config_reload_total\\{result="${result}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);

describe('config reload', () => {
  it('a valid change to the file is swapped in without a restart', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    writeFileSync(file, configYaml([allowFrontend]));
    const r = await start(file);
    expect(await r.verdict()).toBe('allow');
    writeFileSync(file, configYaml([allowFrontend, denyFrontend]));
    await until(async () => (await r.verdict()) === 'ERR_POLICY_DENIED', 10_000, 'the new policy');
    expect(reloads(await r.metrics(), 'ok')).toBe(1);
    expect(await r.metrics()).toMatch(/zonegate_config_last_reload_successful 1/);
    expect(r.logs.some((l) => l.msg === 'config reloaded' && l.reason === 'file changed')).toBe(true);
  });

  it('an invalid file keeps the running config and readiness, and says where the problem is (no secrets)', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    writeFileSync(file, configYaml([allowFrontend]));
    const r = await start(file);
    const secret = 'c2VjcmV0LWtleS1tYXRlcmlhbC1uZXZlci1sb2dnZWQ';
    // line 1: server …; the bad rule action sits on a known line
    const bad = configYaml([{ ...allowFrontend, action: 'permit' }], { identity: { cert: 'x.pem', key: 'x.key', keyPem: secret } });
    writeFileSync(file, bad);
    await until(async () => reloads(await r.metrics(), 'error') >= 1, 10_000, 'the refused reload');
    expect(await r.verdict()).toBe('allow');
    expect((await fetch(`http://127.0.0.1:${r.zg.ops.port}/readyz`)).status).toBe(200);
    expect(await r.metrics()).toMatch(/zonegate_config_last_reload_successful 0/);
    const failed = r.logs.find((l) => l.msg === 'config reload failed: keeping the running config')!;
    expect(failed).toBeDefined();
    const problems = (failed.problems as string[]).join('\n');
    const actionLine = bad.split('\n').findIndex((l) => l.includes('permit')) + 1;
    expect(problems).toContain(`${file}:${actionLine}: rules[0].action`);
    expect(problems).toMatch(/identity\.keyPem: unknown key/);
    expect(JSON.stringify(r.logs)).not.toContain(secret);
    // an explicit reload (SIGHUP's path) of the same bad file is refused again
    expect(await r.zg.reload()).toMatchObject({ result: 'error' });
    // fixed: applied
    writeFileSync(file, configYaml([denyFrontend]));
    await until(async () => (await r.verdict()) === 'ERR_POLICY_DENIED', 10_000, 'the fixed config');
    expect(await r.metrics()).toMatch(/zonegate_config_last_reload_successful 1/);
  });

  it('a config whose bundle file cannot be read is refused before anything is swapped', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    writeFileSync(file, configYaml([allowFrontend]));
    const r = await start(file);
    writeFileSync(file, configYaml([denyFrontend]).replace('zone-b.root.pem', 'missing.pem'));
    const res = await r.zg.reload();
    expect(res).toMatchObject({ result: 'error' });
    expect(JSON.stringify(res)).toMatch(/zonegate\.yaml:\d+: trust\[1\]\.bundle: cannot read .*missing\.pem: ENOENT/);
    expect(await r.verdict()).toBe('allow'); // the deny rule of the refused config never applied
    expect(r.zg.trust.status().map((s) => s.trustDomain)).toEqual(['zone-a.example', 'zone-b.example']);
  });

  it('a reload re-reads the files the carried identity names: a WirePact CA replaced in place no longer vouches for its tokens', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    const oldCa = await MemoryCA.create('wirepact.invalid', { subject: 'O=WirePact PKI, CN=old CA' });
    const newCa = await MemoryCA.create('wirepact.invalid', { subject: 'O=WirePact PKI, CN=new CA' });
    const translator = await oldCa.issue(undefined, { keyType: 'RSA', subject: 'O=WirePact PKI, CN=translator' });
    writeFileSync(join(dir, 'wirepact-ca.pem'), oldCa.certPem);
    writeFileSync(file, configYaml([allowFrontend], { commonIdentity: { audiences: ['spiffe://zone-a.example'], wirepact: { ca: 'wirepact-ca.pem' } } }));
    const r = await start(file);
    const token = () => mintWirePact({ key: createPrivateKey(translator.keyPem), chain: [translator.cert, oldCa.cert], issuer: 'wp', sub: 'alice', ttlSeconds: 60, now: Date.now() });
    const check = (headers: Record<string, string>) =>
      new Promise<string>((resolve) => {
        const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
        const client = new Client(`127.0.0.1:${r.zg.grpc.port}`, grpc.credentials.createInsecure());
        const m = checkMethod();
        client.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, checkRequest({ certificate: exampleCert('frontend'), headers }), new grpc.Metadata(), (e, res) => {
          client.close();
          const st = (res as { status?: { code: number; message?: string } } | undefined)?.status;
          resolve(e ? `error ${e.code}` : st?.code === 0 ? 'allow' : String(st?.message));
        });
      });
    expect(await check({ 'x-wirepact-identity': token() })).toBe('allow');
    // the CA is rotated in place (the config text is the same) and zonegate is told to reload (SIGHUP's path)
    writeFileSync(join(dir, 'wirepact-ca.pem'), newCa.certPem);
    expect(await r.zg.reload('SIGHUP')).toMatchObject({ result: 'ok' });
    expect(await check({ 'x-wirepact-identity': token() })).toBe('ERR_TOKEN_CHAIN');
  });

  it('the carried phase\'s files are watched like the config: a user removed from the Basic user store in place is denied without SIGHUP', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    const own = await MemoryCA.create('zone-c.example');
    const svid = await own.issue('spiffe://zone-c.example/ns/shop/sa/frontend');
    writeFileSync(join(dir, 'own.pem'), own.certPem);
    writeFileSync(join(dir, 'svid.pem'), svid.chainPem);
    writeFileSync(join(dir, 'svid.key'), svid.keyPem);
    const user = (name: string) => ({ name, password: hashPassword(`${name}'s password`, 1024) });
    const users = join(dir, 'users.yaml');
    writeFileSync(users, stringify({ users: [user('alice'), user('bob')] }));
    writeFileSync(
      file,
      configYaml([{ name: 'egress', action: 'allow', to: { context: { direction: 'egress' } } }], {
        identity: { cert: 'svid.pem', key: 'svid.key' },
        trust: [{ trustDomain: 'zone-c.example', bundle: 'own.pem' }],
        commonIdentity: { egress: { defaultAudience: 'spiffe://zone-b.example', workload: false, basic: { usersFile: 'users.yaml' } } },
      }),
    );
    const r = await start(file);
    const as = (name: string) => r.verdict(checkRequest({ headers: { authorization: `Basic ${Buffer.from(`${name}:${name}'s password`).toString('base64')}` }, context: { direction: 'egress' } }));
    expect([await as('alice'), await as('bob')]).toEqual(['allow', 'allow']);
    // bob leaves: the file is rewritten in place (same name, same inode), the config file is untouched
    writeFileSync(users, stringify({ users: [user('alice')] }));
    await until(async () => (await as('bob')) === 'ERR_USER_CREDENTIAL', 5_000, 'bob denied');
    expect(await as('alice')).toBe('allow');
    expect(r.logs.some((l) => l.msg === 'config reloaded' && l.reason === 'carried file changed')).toBe(true);
    // a store that no longer parses refuses the reload: the running store stays
    const before = reloads(await r.metrics(), 'error');
    writeFileSync(users, 'users: [');
    await until(async () => reloads(await r.metrics(), 'error') > before, 5_000, 'the refused reload');
    expect([await as('alice'), await as('bob')]).toEqual(['allow', 'ERR_USER_CREDENTIAL']);
  });

  it('the upstream HMAC secret and Basic credentials files reload like the config: a change applies, a broken one keeps the running values', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    // a Kubernetes Secret volume: the files are links into ..data, swapped as a whole
    const secretDir = join(dir, 'secret');
    mkdirSync(secretDir);
    const FRONTEND = 'spiffe://zone-a.example/ns/shop/sa/frontend';
    const secretA = 'a'.repeat(48);
    const secretB = 'b'.repeat(48);
    let version = 0;
    const publish = (hmac: string, creds: string) => {
      const v = join(dir, `..secret-v${++version}`);
      mkdirSync(v);
      writeFileSync(join(v, 'hmac.secret'), `${hmac}\n`);
      writeFileSync(join(v, 'creds.yaml'), creds);
      symlinkSync(`../..secret-v${version}`, join(secretDir, '..data_tmp'));
      renameSync(join(secretDir, '..data_tmp'), join(secretDir, '..data'));
    };
    publish(secretA, `"${FRONTEND}": "frontend:one"\n`);
    symlinkSync('..data/hmac.secret', join(secretDir, 'hmac.secret'));
    symlinkSync('..data/creds.yaml', join(secretDir, 'creds.yaml'));
    writeFileSync(
      file,
      configYaml([allowFrontend], {
        upstream: {
          default: { mode: 'basic' },
          destinations: { proofed: { mode: 'hmac' } },
          hmac: { secretFile: 'secret/hmac.secret', keyId: 'k1' },
          basic: { credentialsFile: 'secret/creds.yaml' },
        },
      }),
    );
    const r = await start(file);
    const basic = async () => (await r.upstreamHeaders()).authorization;
    const proofKey = async () => {
      const headers = await r.upstreamHeaders('proofed');
      const check = (secret: string) => verifyProof({ headers, method: 'GET', path: '/api/items', secrets: { k1: Buffer.from(secret) } }).ok;
      return check(secretA) ? 'A' : check(secretB) ? 'B' : 'neither';
    };
    const b64 = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
    expect(await basic()).toBe(b64('frontend:one'));
    expect(await proofKey()).toBe('A');

    // both files change (the config file does not): the watch reloads, the new values apply
    publish(secretB, `"${FRONTEND}": "frontend:two"\n`);
    await until(async () => (await basic()) === b64('frontend:two'), 10_000, 'the new credentials');
    expect(await proofKey()).toBe('B');
    expect(r.logs.some((l) => l.msg === 'config reloaded' && l.reason === 'secret file changed')).toBe(true);

    // a secret that is too short (beside valid credentials), then credentials that are not a
    // mapping (beside a valid secret): each reload is refused as a whole, the running values stay
    const refused = async (hmac: string, creds: string, why: RegExp) => {
      const before = reloads(await r.metrics(), 'error');
      publish(hmac, creds);
      await until(async () => reloads(await r.metrics(), 'error') > before, 10_000, 'the refused reload');
      expect(await basic()).toBe(b64('frontend:two'));
      expect(await proofKey()).toBe('B');
      const failed = r.logs.filter((l) => l.msg === 'config reload failed: keeping the running config').pop()!;
      expect(JSON.stringify(failed.problems)).toMatch(why);
    };
    await refused('short', `"${FRONTEND}": "frontend:x"\n`, /upstream\.hmac\.secretFile: .*hmac\.secret holds 5 bytes/);
    await refused(secretB, '- not a mapping\n', /upstream\.basic\.credentialsFile: .*creds\.yaml must be a mapping/);
    // an unreadable file: refused on SIGHUP's path too, and the contents never reach the logs
    rmSync(join(secretDir, 'creds.yaml'));
    expect(await r.zg.reload()).toMatchObject({ result: 'error', problems: [expect.stringMatching(/upstream\.basic\.credentialsFile: cannot read .*creds\.yaml: ENOENT/)] });
    expect(await basic()).toBe(b64('frontend:two'));
    expect(JSON.stringify(r.logs)).not.toMatch(/frontend:(one|two|x)|aaaaaaaa|bbbbbbbb/);

    // repaired: applies
    symlinkSync('..data/creds.yaml', join(secretDir, 'creds.yaml'));
    publish(secretA, `"${FRONTEND}": "frontend:three"\n`);
    await until(async () => (await basic()) === b64('frontend:three'), 10_000, 'the repaired files');
    expect(await proofKey()).toBe('A');
  });

  it('the https_spiffe bundle endpoint serves the SVID a reload names, and follows its rotation', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    const ca = await MemoryCA.create('zone-a.example');
    writeFileSync(join(dir, 'own.pem'), ca.certPem);
    const ID = 'spiffe://zone-a.example/zonegate';
    const write = async (name: string) => {
      const svid = await ca.issue(ID);
      writeFileSync(join(dir, `${name}.pem`), svid.chainPem);
      writeFileSync(join(dir, `${name}.key`), svid.keyPem);
      return svid.cert.fingerprint256;
    };
    const config = (name: string) =>
      stringify({
        server: { grpc: { address: '127.0.0.1', port: 0 }, ops: { address: '127.0.0.1', port: 0 }, drainDelaySeconds: 0, shutdownGraceSeconds: 2 },
        trust: [{ trustDomain: 'zone-a.example', bundle: 'own.pem' }],
        identity: { cert: `${name}.pem`, key: `${name}.key` },
        federation: { endpoint: { trustDomain: 'zone-a.example', address: '127.0.0.1', port: 0, profile: 'https_spiffe' } },
        rules: [allowFrontend],
      });
    const first = await write('svid-1');
    writeFileSync(file, config('svid-1'));
    const r = await start(file);
    const port = r.zg.bundleEndpoint!.port;
    /** A fresh TLS connection (no session reuse) to the endpoint: the certificate it is served, checked against the root. */
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port, path: '/', ca: ca.certPem, agent: false, checkServerIdentity: () => undefined },
          (res) => {
            const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
            res.resume();
            res.on('end', () => resolve(fp));
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await served()).toBe(first);

    // the config names other SVID files: the endpoint serves that SVID, not the one it started with
    const second = await write('svid-2');
    writeFileSync(file, config('svid-2'));
    await until(async () => (await served()) === second, 10_000, 'the SVID the reloaded config names');
    expect(r.logs.some((l) => l.msg === 'config reloaded')).toBe(true);

    // and it follows that identity's rotation in place (the first identity's watcher is gone)
    const rotated = await write('svid-2');
    await until(async () => (await served()) === rotated, 10_000, 'the rotated SVID');
    await write('svid-1');
    await sleep(300);
    expect(await served()).toBe(rotated);
  });

  it('a listener change is reported as needing a restart; the rest applies and the port stays', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    writeFileSync(file, configYaml([allowFrontend]));
    const r = await start(file);
    const port = r.zg.grpc.port;
    writeFileSync(file, configYaml([denyFrontend]).replace('maxMessageBytes', 'x').replace(/port: 0\n(\s+)ops/, 'port: 1\n$1ops'));
    expect(await r.zg.reload()).toEqual({ result: 'ok', restartNeeded: ['server.grpc'] });
    expect(await r.verdict()).toBe('ERR_POLICY_DENIED');
    expect(r.zg.grpc.port).toBe(port);
    expect(r.logs.find((l) => Array.isArray(l.keys))?.msg).toMatch(/server\.grpc changed: listeners are not rebound, restart to apply/);
  });

  it('a Kubernetes ConfigMap update (the ..data symlink swapped) is picked up', async () => {
    const dir = workdir();
    const v1 = join(dir, '..v1');
    mkdirSync(v1);
    writeFileSync(join(v1, 'zonegate.yaml'), configYaml([allowFrontend]).replaceAll('zone-a.root.pem', '../zone-a.root.pem').replaceAll('zone-b.root.pem', '../zone-b.root.pem'));
    const cm = join(dir, 'cm');
    mkdirSync(cm);
    symlinkSync('../..v1', join(cm, '..data'));
    symlinkSync('..data/zonegate.yaml', join(cm, 'zonegate.yaml'));
    const r = await start(join(cm, 'zonegate.yaml'));
    expect(await r.verdict()).toBe('allow');
    const v2 = join(dir, '..v2');
    mkdirSync(v2);
    writeFileSync(join(v2, 'zonegate.yaml'), configYaml([denyFrontend]).replaceAll('zone-a.root.pem', '../zone-a.root.pem').replaceAll('zone-b.root.pem', '../zone-b.root.pem'));
    // what the kubelet does: a new ..data link, renamed over the old one in one step
    symlinkSync('../..v2', join(cm, '..data_tmp'));
    renameSync(join(cm, '..data_tmp'), join(cm, '..data'));
    await until(async () => (await r.verdict()) === 'ERR_POLICY_DENIED', 10_000, 'the swapped ConfigMap');
  });

  it('Checks in flight while the config flips back and forth all get a verdict of one config or the other', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    const a = configYaml([allowFrontend]);
    const b = configYaml([allowFrontend, denyFrontend]);
    writeFileSync(file, a);
    const r = await start(file);
    const results: string[] = [];
    let go = true;
    const load = (async () => {
      while (go) results.push(...(await Promise.all(Array.from({ length: 20 }, () => r.verdict()))));
    })();
    for (let i = 0; i < 6; i++) {
      writeFileSync(file, i % 2 ? a : b);
      expect(await r.zg.reload()).toMatchObject({ result: 'ok' });
    }
    go = false;
    await load;
    expect(results.length).toBeGreaterThan(0);
    expect(results.filter((v) => v !== 'allow' && v !== 'ERR_POLICY_DENIED')).toEqual([]);
    expect(reloads(await r.metrics(), 'ok')).toBeGreaterThanOrEqual(6);
  });

  it('a trust domain whose source did not change keeps its bundle across a reload, even while its endpoint is down', async () => {
    const B = 'zone-b.test';
    const root = await MemoryCA.create(B);
    const web = await MemoryCA.create('web.test');
    const tls = await web.server();
    let down = false;
    const body = JSON.stringify({ keys: [{ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [root.cert.raw.toString('base64')] }] });
    const endpoint = await testServer({ cert: tls.chainPem, key: tls.keyPem }, (_q, res) => (down ? res.socket?.destroy() : res.writeHead(200).end(body)));
    try {
      const dir = workdir();
      writeFileSync(join(dir, 'web-ca.pem'), web.certPem);
      const file = join(dir, 'zonegate.yaml');
      const svid = encodeURIComponent((await root.issue(`spiffe://${B}/w`)).certPem);
      const yaml = (extraTrust: boolean, maxSeconds: number) =>
        stringify({
          server: { grpc: { address: '127.0.0.1', port: 0 }, ops: { address: '127.0.0.1', port: 0 }, drainDelaySeconds: 0 },
          federation: { refresh: { defaultSeconds: 300, minSeconds: 30, maxSeconds } },
          trust: [
            { trustDomain: B, source: { https_web: { url: endpoint.url, ca: 'web-ca.pem' } } },
            ...(extraTrust ? [{ trustDomain: 'zone-a.example', bundle: 'zone-a.root.pem' }] : []),
          ],
          rules: [{ name: 'b', action: 'allow', from: { trustDomains: [B, 'zone-a.example'] } }],
        });
      writeFileSync(file, yaml(false, 3600));
      const r = await start(file);
      const check = async (cert: string) => {
        const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
        const c = new Client(`127.0.0.1:${r.zg.grpc.port}`, grpc.credentials.createInsecure());
        const m = checkMethod();
        const v = await new Promise<number | string>((resolve) =>
          c.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, checkRequest({ certificate: cert }), new grpc.Metadata(), (e, res) =>
            resolve(e ? `error ${e.code}` : (res as { status: { code: number } }).status.code),
          ),
        );
        c.close();
        return v;
      };
      expect(await check(svid)).toBe(0);
      down = true;
      const fetches = endpoint.requests;
      // trust changes (a new trust domain, other refresh bounds): B's source is unchanged, so it is adopted
      writeFileSync(file, yaml(true, 1800));
      expect(await r.zg.reload()).toMatchObject({ result: 'ok' });
      expect(endpoint.requests).toBe(fetches);
      expect(await check(svid)).toBe(0);
      expect(await check(exampleCert('frontend'))).toBe(0);
      expect(r.zg.trust.status().find((t) => t.trustDomain === B)).toMatchObject({ hasBundle: true, stale: false });
      expect((await fetch(`http://127.0.0.1:${r.zg.ops.port}/readyz`)).status).toBe(200);
    } finally {
      await endpoint.close();
    }
  });

  it('the carried identity phase follows a reload of the limits it reads, not only of commonIdentity', async () => {
    const A = 'zone-a.test';
    const ca = await MemoryCA.create(A);
    const intermediate = await ca.intermediate();
    const frontend = await intermediate.issue(`spiffe://${A}/ns/web/sa/frontend`);
    const dir = workdir();
    writeFileSync(join(dir, 'a.pem'), ca.certPem);
    writeFileSync(join(dir, 'a-intermediates.pem'), intermediate.certPem);
    const file = join(dir, 'zonegate.yaml');
    const yaml = (limits: Record<string, number>) =>
      stringify({
        server: { grpc: { address: '127.0.0.1', port: 0 }, ops: { address: '127.0.0.1', port: 0 }, drainDelaySeconds: 0 },
        trust: [{ trustDomain: A, bundle: 'a.pem', intermediates: 'a-intermediates.pem' }],
        commonIdentity: { audiences: [`spiffe://${A}`] },
        limits,
        rules: [{ name: 'users', action: 'allow', from: { actors: [{ prefix: 'user:' }] } }],
      });
    // the token's x5c is the leaf and its intermediate; the peer sends its leaf alone (the intermediate is configured)
    const svid = loadX509Svid(Buffer.from(frontend.chainPem), Buffer.from(frontend.keyPem));
    expect(svid.chain).toHaveLength(2);
    const token = mintCommonIdentity(svid, { sub: 'user:alice', aud: `spiffe://${A}`, ttlSeconds: EGRESS_TTL_SECONDS });
    const x5cChars = svid.chain.reduce((n, c) => n + c.raw.toString('base64').length, 0);
    const peerOnly = checkRequest({ certificate: encodeURIComponent(frontend.certPem) });
    const request = checkRequest({ certificate: encodeURIComponent(frontend.certPem), headers: { 'x-common-identity': token } });
    writeFileSync(file, yaml({ maxChainBytes: 64 * 1024 }));
    const r = await start(file);
    expect(await r.verdict(request)).toBe('allow');
    // only limits.maxChainBytes changes: the token's x5c no longer fits, the peer's certificate still does
    writeFileSync(file, yaml({ maxChainBytes: x5cChars - 1 }));
    expect(await r.zg.reload()).toMatchObject({ result: 'ok' });
    expect(await r.verdict(peerOnly)).toBe('ERR_NO_CARRIED_IDENTITY'); // the peer passed; it carries no token
    expect(await r.verdict(request)).toMatch(/^ERR_TOKEN/);
    // and back: the limit applies both ways
    writeFileSync(file, yaml({ maxChainBytes: 64 * 1024 }));
    expect(await r.zg.reload()).toMatchObject({ result: 'ok' });
    expect(await r.verdict(request)).toBe('allow');
  });

  it('the HTTP authorization mode decides with the reloaded policy and limits', async () => {
    const dir = workdir();
    const file = join(dir, 'zonegate.yaml');
    const http = { server: { grpc: { address: '127.0.0.1', port: 0 }, ops: { address: '127.0.0.1', port: 0 }, http: { address: '127.0.0.1', port: 0, proxy: 'envoy' } } };
    writeFileSync(file, configYaml([allowFrontend], http));
    const r = await start(file);
    const ask = async (extra: Record<string, string> = {}) => {
      const res = await fetch(`http://127.0.0.1:${r.zg.httpAuthz!.port}/api/items`, { headers: { 'x-ssl-client-cert': exampleCert('frontend'), ...extra } });
      return `${res.status} ${res.headers.get('x-zonegate-reason') ?? ''}`.trim();
    };
    const many = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`x-h${i}`, 'v']));
    expect(await ask(many)).toBe('200');
    writeFileSync(file, configYaml([allowFrontend], { ...http, limits: { maxHeaders: 20 }, deny: { reasonHeader: 'x-why' } }));
    expect(await r.zg.reload()).toMatchObject({ result: 'ok' });
    const res = await fetch(`http://127.0.0.1:${r.zg.httpAuthz!.port}/api/items`, { headers: { 'x-ssl-client-cert': exampleCert('frontend'), ...many } });
    expect([res.status, res.headers.get('x-why')]).toEqual([403, 'ERR_HEADERS_TOO_LARGE']);
    expect(await ask()).toBe('200');
  });
});

