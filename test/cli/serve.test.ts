/**
 * `zonegate serve` as a real process: it comes up on the embedded default, decides over gRPC,
 * reports readiness, and drains in-flight calls on SIGTERM. (`npm start` runs the demo:
 * test/cli/demo.test.ts.)
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { checkMethod, loadProtos } from '../../src/envoy/proto.js';
import { BIN, serve } from '../helpers/cli.js';
import { checkRequest, exampleCert } from '../helpers/zonegate.js';

function client(port: number) {
  const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const m = checkMethod();
  const check = (req: unknown) =>
    new Promise<{ code: number } | { error: number }>((resolve) =>
      c.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, req, new grpc.Metadata(), (e, r) =>
        resolve(e ? { error: e.code } : { code: (r as { status: { code: number } }).status.code }),
      ),
    );
  return { c, check };
}

describe('serving processes', () => {
  it('zonegate serve runs on the embedded default', async () => {
    const s = await serve(process.execPath, [BIN, 'serve']);
    try {
      expect(s.lines.find((l) => l.msg === 'zonegate started')).toMatchObject({ config: '<embedded default>', ready: true });
      const { c, check } = client(s.grpcPort);
      expect(await check(checkRequest({ certificate: exampleCert('frontend') }))).toEqual({ code: 0 });
      expect(await check(checkRequest({ certificate: exampleCert('forged') }))).toEqual({ code: 16 });
      c.close();
      expect((await fetch(`http://127.0.0.1:${s.opsPort}/readyz`)).status).toBe(200);
    } finally {
      s.signal('SIGTERM');
      await s.exited();
    }
  });

  it('SIGTERM drains: NOT_SERVING at once, every call sent before and during the drain gets its verdict, exit 0', async () => {
    const s = await serve(process.execPath, [BIN, 'serve']);
    const { c, check } = client(s.grpcPort);
    // warm the connection so every call below is on the wire before the signal
    expect(await check(checkRequest({ certificate: exampleCert('frontend') }))).toEqual({ code: 0 });
    const calls = Array.from({ length: 300 }, (_, i) =>
      check(checkRequest({ certificate: exampleCert(i % 2 ? 'frontend' : 'billing'), path: '/api/orders' })),
    );
    await new Promise((r) => setImmediate(r));
    s.signal('SIGTERM');
    // while draining: health says NOT_SERVING (so proxies move away) and Checks are still answered
    await new Promise((r) => setTimeout(r, 300));
    expect((await fetch(`http://127.0.0.1:${s.opsPort}/readyz`)).status).toBe(503);
    expect(await check(checkRequest({ certificate: exampleCert('frontend') }))).toEqual({ code: 0 });
    const results = await Promise.all(calls);
    const exitCode = await s.exited();
    c.close();
    expect(results.filter((r) => 'error' in r)).toEqual([]);
    expect(results.every((r) => 'code' in r && r.code === 0)).toBe(true);
    expect(exitCode).toBe(0);
    expect(s.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['draining in-flight calls', 'zonegate stopped']));
  });
});
