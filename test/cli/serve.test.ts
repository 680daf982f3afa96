/**
 * `zonegate serve` as a real process: it comes up on the embedded default, decides over gRPC,
 * reports readiness, and drains in-flight calls on SIGTERM. (`npm start` runs the demo:
 * test/cli/demo.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { BIN, serve } from '../helpers/cli.js';
import { checkClient, checkRequest, exampleCert } from '../helpers/zonegate.js';
import { sleep } from '../helpers/wait.js';

describe('serving processes', () => {
  it('zonegate serve runs on the embedded default', async () => {
    const s = await serve(process.execPath, [BIN, 'serve']);
    try {
      expect(s.lines.find((l) => l.msg === 'zonegate started')).toMatchObject({ config: '<embedded default>', ready: true });
      const { c, check } = checkClient(s.grpcPort);
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
    const { c, check } = checkClient(s.grpcPort);
    // warm the connection so every call below is on the wire before the signal
    expect(await check(checkRequest({ certificate: exampleCert('frontend') }))).toEqual({ code: 0 });
    const calls = Array.from({ length: 300 }, (_, i) =>
      check(checkRequest({ certificate: exampleCert(i % 2 ? 'frontend' : 'billing'), path: '/api/orders' })),
    );
    await new Promise((r) => setImmediate(r));
    s.signal('SIGTERM');
    // while draining: health says NOT_SERVING (so proxies move away) and Checks are still answered
    await sleep(300);
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
