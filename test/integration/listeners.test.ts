/**
 * The gRPC listener variants: Unix domain socket (sidecar), TLS, mTLS (client cert required) and
 * mTLS with a client allowlist; and the exposure rules: loopback by default, a non-loopback
 * listener without mTLS refused (at load, in `config validate`, by `serve`) unless insecure.
 */
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { checkMethod, loadProtos } from '../../src/envoy/proto.js';
import { createLogger } from '../../src/log.js';
import { startZonegate } from '../../src/main.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { zonegate } from '../helpers/cli.js';
import { probe, requireTool } from '../helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'zg-tls-'));
const haveOpenssl = requireTool(probe('openssl', 'openssl', ['version']));

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
function makePki() {
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=test ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  for (const [name, san] of [
    ['server', 'DNS:localhost,IP:127.0.0.1'],
    ['client', 'URI:spiffe://client.test/envoy'],
    ['workload', 'URI:spiffe://client.test/ns/shop/sa/frontend'],
    ['gateway', 'URI:spiffe://client.test/gateway/east'],
    ['dnsonly', 'DNS:envoy.client.test'],
    ['twouris', 'URI:spiffe://client.test/envoy,URI:spiffe://client.test/other'],
  ]) {
    o(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n`);
    o(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.pem`]);
  }
}

const rules = [{ name: 'any', action: 'allow', from: { principals: [{ prefix: 'spiffe://' }] } }];
const read = (n: string) => readFileSync(join(dir, n));

function call(target: string, creds: grpc.ChannelCredentials): Promise<number | string> {
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const c = new Client(target, creds);
  const m = checkMethod();
  return new Promise((resolve) => {
    c.makeUnaryRequest(
      m.path, m.requestSerialize, m.responseDeserialize,
      checkRequest({ principal: 'spiffe://a.test/x' }), new grpc.Metadata(), { deadline: Date.now() + 3000 },
      (e, r) => {
        c.close();
        resolve(e ? `error ${grpc.status[e.code]}` : (r as { status: { code: number } }).status.code);
      },
    );
  });
}

describe('Unix domain socket', () => {
  let s: Started;
  const sock = join(dir, 'zonegate.sock');
  beforeAll(async () => {
    s = await startWith({ server: { grpc: { unixSocket: sock } }, peer: { source: 'principal' }, rules });
  });
  afterAll(async () => s?.close());

  it('answers Check on the socket as on TCP', async () => {
    expect(await call(`unix:${sock}`, grpc.credentials.createInsecure())).toBe(0);
    expect(await call(s.target, grpc.credentials.createInsecure())).toBe(0);
  });
});

describe.runIf(haveOpenssl)('TLS and mTLS listeners', () => {
  let tls: Started;
  let mtls: Started;
  beforeAll(async () => {
    makePki();
    const base = { peer: { source: 'principal' }, rules };
    tls = await startWith({ ...base, server: { grpc: { tls: { cert: 'server.pem', key: 'server.key' } } } }, dir);
    mtls = await startWith({ ...base, server: { grpc: { tls: { cert: 'server.pem', key: 'server.key', clientCa: 'ca.pem' } } } }, dir);
  });
  afterAll(async () => {
    await tls?.close();
    await mtls?.close();
  });

  it('TLS: a client trusting the CA gets a verdict; a plaintext client does not', async () => {
    expect(await call(tls.target, grpc.credentials.createSsl(read('ca.pem')))).toBe(0);
    expect(await call(tls.target, grpc.credentials.createInsecure())).toMatch(/^error /);
  });

  it('mTLS: a client certificate from the CA is required', async () => {
    expect(await call(mtls.target, grpc.credentials.createSsl(read('ca.pem'), read('client.key'), read('client.pem')))).toBe(0);
    expect(await call(mtls.target, grpc.credentials.createSsl(read('ca.pem')))).toMatch(/^error UNAVAILABLE/);
  });
});

describe('gRPC health Watch', () => {
  it('streams SERVING, then NOT_SERVING as soon as a drain starts', async () => {
    const s = await startWith({ peer: { source: 'principal' }, rules });
    const Health = grpc.makeGenericClientConstructor(loadProtos().healthService, 'Health');
    const h = new Health(s.target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Watch: (req: unknown) => grpc.ClientReadableStream<{ status: string }>;
    };
    const seen: string[] = [];
    const stream = h.Watch({ service: '' });
    stream.on('error', () => undefined);
    await new Promise<void>((resolve) =>
      stream.on('data', (m: { status: string }) => {
        seen.push(m.status);
        if (seen.length === 1) void s.zg.stop(200);
        if (seen.length === 2) resolve();
      }),
    );
    stream.cancel();
    h.close();
    await s.close();
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
  });
});

describe('gRPC health Watch, many streams', () => {
  // EventEmitter warns past 10 listeners for one event: one listener per stream would warn at the 11th
  const STREAMS = 25;
  it.each(['grpc-js', 'http2'] as const)(`%s: ${STREAMS} streams, no MaxListenersExceededWarning, every one sees the drain`, async (transport) => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    const s = await startWith({ server: { grpc: { transport } }, peer: { source: 'principal' }, rules });
    const Health = grpc.makeGenericClientConstructor(loadProtos().healthService, 'Health');
    const h = new Health(s.target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Watch: (req: unknown) => grpc.ClientReadableStream<{ status: string }>;
    };
    try {
      const seen: string[][] = [];
      const serving: Promise<void>[] = [];
      const drained: Promise<void>[] = [];
      const streams: grpc.ClientReadableStream<{ status: string }>[] = [];
      for (let i = 0; i < STREAMS; i++) {
        const mine: string[] = [];
        seen.push(mine);
        const stream = h.Watch({ service: i % 2 ? '' : 'envoy.service.auth.v3.Authorization' });
        streams.push(stream);
        stream.on('error', () => undefined);
        stream.on('data', (m: { status: string }) => mine.push(m.status));
        serving.push(new Promise((resolve) => stream.on('data', () => mine.length === 1 && resolve())));
        drained.push(new Promise((resolve) => stream.on('data', () => mine.length === 2 && resolve())));
      }
      await Promise.all(serving);
      // every stream is subscribed now; a process warning is emitted on the next tick
      await new Promise((resolve) => setImmediate(resolve));
      const stopped = s.zg.stop(300);
      await Promise.all(drained);
      for (const stream of streams) stream.cancel(); // the client goes: the drain need not wait for its grace period
      await stopped;
      expect(seen).toEqual(Array.from({ length: STREAMS }, () => ['SERVING', 'NOT_SERVING']));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      h.close();
      await s.close();
    }
  });
});

/** The config problems of a YAML text (none: []), as load and `config validate` report them. */
function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'z.yaml', dir, env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
}

describe('listener exposure', () => {
  it('defaults: gRPC and the HTTP mode on loopback; ops on 0.0.0.0 for probes', () => {
    const { config } = parseConfig('server: { http: {} }', 'z.yaml', dir);
    expect(config.server.grpc.address).toBe('127.0.0.1');
    expect(config.server.http?.address).toBe('127.0.0.1');
    expect(config.server.ops.address).toBe('0.0.0.0');
  });

  it.each([
    ['0.0.0.0', 'grpc: { address: 0.0.0.0 }'],
    ['::', 'grpc: { address: "::" }'],
    ['a LAN address', 'grpc: { address: 10.1.2.3 }'],
    ['a host name', 'grpc: { address: zonegate.internal }'],
    ['TLS without clientCa', 'grpc: { address: 0.0.0.0, tls: { cert: server.pem, key: server.key } }'],
    ['insecure: false said out loud', 'grpc: { address: 0.0.0.0, insecure: false }'],
  ])('gRPC on %s without mTLS is a config error naming server.grpc.address and its line', (_title, server) => {
    const p = problems(`log: { level: info }\nserver:\n  ${server}\n`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^z\.yaml:3: server\.grpc\.address: .*not loopback.*insecure: true/);
  });

  it('the HTTP mode on a non-loopback address without insecure is a config error naming server.http.address', () => {
    expect(problems('server:\n  http: { address: 0.0.0.0 }\n').join('\n')).toMatch(/server\.http\.address: .*not loopback/);
    expect(problems('server:\n  http: { address: 0.0.0.0, insecure: true }\n')).toEqual([]);
  });

  it.each(['127.0.0.1', '127.10.0.1', '::1', 'localhost'])('%s is loopback: no TLS needed, no warning', (address) => {
    const { warnings } = parseConfig(`server: { grpc: { address: "${address}" } }\nrules: [{ name: r, action: deny }]\ntrust: [{ trustDomain: a.test, bundle: ca.pem }]`, 'z.yaml', dir);
    expect(warnings).toEqual([]);
  });

  it('with mTLS or insecure: true it loads; insecure is a warning, and so is mTLS without allowedClients', () => {
    const tls = 'tls: { cert: server.pem, key: server.key, clientCa: ca.pem }';
    expect(parseConfig(`server: { grpc: { address: 0.0.0.0, ${tls} } }`, 'z.yaml', dir).warnings.join('\n')).toMatch(/allowedClients is not set/);
    expect(parseConfig(`server: { grpc: { address: 0.0.0.0, tls: { cert: server.pem, key: server.key, clientCa: ca.pem, allowedClients: [spiffe://client.test/envoy] } } }`, 'z.yaml', dir).warnings.join('\n')).not.toMatch(/grpc/);
    expect(parseConfig('server: { grpc: { address: 0.0.0.0, insecure: true } }', 'z.yaml', dir).warnings.join('\n')).toMatch(/server\.grpc\.insecure: .*0\.0\.0\.0 has no mTLS/);
  });

  it('allowedClients needs clientCa and takes SPIFFE IDs only', () => {
    expect(problems('server: { grpc: { tls: { cert: a, key: b, allowedClients: [spiffe://x.test/envoy] } } }').join('\n')).toMatch(/server\.grpc\.tls\.allowedClients: allowedClients needs clientCa/);
    expect(problems('server: { grpc: { tls: { cert: a, key: b, clientCa: c, allowedClients: [envoy] } } }').join('\n')).toMatch(/server\.grpc\.tls\.allowedClients\[0\]: must be a SPIFFE ID/);
    expect(problems('server: { grpc: { tls: { cert: a, key: b, clientCa: c, allowedClients: [] } } }').join('\n')).toMatch(/allowedClients/);
    // spiffe:// alone is not enough: an entry that is no SPIFFE ID could never match a client
    for (const bad of ['"spiffe://"', '"spiffe://X.test/envoy"', '"spiffe://x.test/a//b"'])
      expect(problems(`server: { grpc: { tls: { cert: a, key: b, clientCa: c, allowedClients: [${bad}] } } }`).join('\n')).toMatch(/allowedClients\[0\]: must be a SPIFFE ID/);
  });

  it('env: ZONEGATE_GRPC_ADDRESS=0.0.0.0 alone is refused; with ZONEGATE_GRPC_INSECURE=true it loads', () => {
    expect(problems('{}', { ZONEGATE_GRPC_ADDRESS: '0.0.0.0' }).join('\n')).toMatch(/server\.grpc\.address/);
    expect(problems('{}', { ZONEGATE_GRPC_ADDRESS: '0.0.0.0', ZONEGATE_GRPC_INSECURE: 'true' })).toEqual([]);
    expect(problems('{}', { ZONEGATE_GRPC_INSECURE: 'yes' })).toEqual([expect.stringMatching(/ZONEGATE_GRPC_INSECURE: "yes" is not true or false/)]);
  });

  it('`config validate` and `serve` refuse a non-loopback listener without mTLS, naming the key and line', () => {
    const file = join(dir, 'exposed.yaml');
    writeFileSync(file, 'server:\n  grpc: { address: 0.0.0.0, port: 0 }\n  ops: { address: 127.0.0.1, port: 0 }\n');
    const v = zonegate(['config', 'validate', file]);
    expect(v.code).toBe(2);
    expect(v.stderr).toMatch(/exposed\.yaml:2: server\.grpc\.address: "0\.0\.0\.0" is not loopback/);
    const s = zonegate(['serve', '--workers', '1', '--config', file], { env: { ZONEGATE_GRPC_ADDRESS: '', ZONEGATE_OPS_ADDRESS: '' } });
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(/server\.grpc\.address: "0\.0\.0\.0" is not loopback/);
  });

  it('insecure: true starts the real server on 0.0.0.0 and warns at startup', async () => {
    const logs: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    const loaded = parseConfig(stringify({ server: { grpc: { address: '0.0.0.0', port: 0, insecure: true }, ops: { address: '127.0.0.1', port: 0 } }, peer: { source: 'principal' }, rules }), 'z.yaml', dir);
    const zg = await startZonegate(loaded, { log: createLogger('info', sink) });
    try {
      expect(await call(`127.0.0.1:${zg.grpc.port}`, grpc.credentials.createInsecure())).toBe(0);
      expect(logs.find((l) => l.level === 40 && /server\.grpc\.insecure/.test(String(l.msg)))).toBeDefined();
    } finally {
      await zg.stop();
    }
  });
});

describe.runIf(haveOpenssl)('mTLS with allowedClients: only the proxy\'s identity may ask', () => {
  let s: Started;
  let prefixed: Started;
  beforeAll(async () => {
    if (!existsSync(join(dir, 'workload.pem'))) makePki();
    const base = { peer: { source: 'principal' }, rules };
    const tls = { cert: 'server.pem', key: 'server.key', clientCa: 'ca.pem' };
    s = await startWith({ ...base, server: { grpc: { tls: { ...tls, allowedClients: ['spiffe://client.test/envoy'] } } } }, dir);
    prefixed = await startWith({ ...base, server: { grpc: { tls: { ...tls, allowedClients: [{ prefix: 'spiffe://client.test/gateway/' }, 'spiffe://client.test/envoy'] } } } }, dir);
  });
  afterAll(async () => {
    await s?.close();
    await prefixed?.close();
  });
  const as = (name: string) => grpc.credentials.createSsl(read('ca.pem'), read(`${name}.key`), read(`${name}.pem`));

  it('the allowed client identity gets a verdict', async () => {
    expect(await call(s.target, as('client'))).toBe(0);
    expect(await call(prefixed.target, as('client'))).toBe(0);
    expect(await call(prefixed.target, as('gateway'))).toBe(0);
  });

  it.each([
    ['another SVID of the same CA', 'workload'],
    ['a certificate without a URI SAN', 'dnsonly'],
    ['a certificate with two URI SANs (one of them allowed)', 'twouris'],
  ])('%s: connection refused, nothing decided, the refusal logged', async (_title, name) => {
    const before = s.logs.filter((l) => l.msg === 'decision').length;
    expect(await call(s.target, as(name))).toMatch(/^error UNAVAILABLE/);
    expect(s.logs.filter((l) => l.msg === 'decision').length).toBe(before);
    expect(s.logs.some((l) => /not in server\.grpc\.tls\.allowedClients/.test(String(l.msg)))).toBe(true);
  });

  it('a prefix admits only the IDs under it; no certificate and plaintext are refused', async () => {
    expect(await call(prefixed.target, as('workload'))).toMatch(/^error UNAVAILABLE/);
    expect(await call(s.target, grpc.credentials.createSsl(read('ca.pem')))).toMatch(/^error UNAVAILABLE/);
    expect(await call(s.target, grpc.credentials.createInsecure())).toMatch(/^error /);
  });
});
