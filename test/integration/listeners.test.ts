/** The gRPC listener variants: Unix domain socket (sidecar), TLS, and mTLS (client cert required). */
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMethod, loadProtos } from '../../src/envoy/proto.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';
import { probe, requireTool } from '../helpers/tools.js';

const dir = mkdtempSync(join(tmpdir(), 'zg-tls-'));
const haveOpenssl = requireTool(probe('openssl', 'openssl', ['version']));

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
function makePki() {
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=test ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  for (const [name, san] of [['server', 'DNS:localhost,IP:127.0.0.1'], ['client', 'URI:spiffe://client.test/envoy']]) {
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
