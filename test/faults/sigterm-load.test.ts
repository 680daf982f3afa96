/**
 * SIGTERM to a real `zonegate serve` under sustained load from several connections: every Check
 * on the wire when the signal arrives, and every one sent during the drain delay, gets its
 * verdict; none is dropped or failed; the process exits 0.
 */
import * as grpc from '@grpc/grpc-js';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { checkMethod, loadProtos } from '../../src/envoy/proto.js';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { BIN, serve } from '../helpers/cli.js';
import { checkRequest, exampleCert } from '../helpers/zonegate.js';
import { sleep } from '../helpers/wait.js';

describe('SIGTERM under load', () => {
  it('drains: all calls in flight and sent during the drain delay are answered; exit 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-term-'));
    for (const f of ['zone-a.root.pem', 'zone-b.root.pem']) copyFileSync(join(EXAMPLES_DIR, 'certs', f), join(dir, f));
    writeFileSync(
      join(dir, 'zonegate.yaml'),
      stringify({
        server: { drainDelaySeconds: 1.5, shutdownGraceSeconds: 20 },
        trust: [
          { trustDomain: 'zone-a.example', bundle: 'zone-a.root.pem' },
          { trustDomain: 'zone-b.example', bundle: 'zone-b.root.pem' },
        ],
        rules: [{ name: 'a', action: 'allow', from: { trustDomains: ['zone-a.example'] } }],
      }),
    );
    const s = await serve(process.execPath, [BIN, 'serve', '--config', join(dir, 'zonegate.yaml')]);
    const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
    // four connections of their own (no shared subchannel), as several Envoy workers would have
    const clients = Array.from({ length: 4 }, () => new Client(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
    const m = checkMethod();
    const requests = [checkRequest({ certificate: exampleCert('frontend') }), checkRequest({ certificate: exampleCert('billing') }), checkRequest({ certificate: exampleCert('forged') })];
    const expected = [0, 7, 16]; // allow; zone-b has no rule; forged trust domain
    const results: Array<{ ok: boolean; detail: string }> = [];
    const call = (c: grpc.Client, i: number) =>
      new Promise<void>((resolve) =>
        c.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, requests[i % 3], new grpc.Metadata(), { deadline: Date.now() + 20_000 }, (e, r) => {
          const code = (r as { status?: { code: number } } | undefined)?.status?.code;
          results.push(e ? { ok: false, detail: `grpc error ${e.code} ${e.details}` } : { ok: code === expected[i % 3], detail: `status ${code}` });
          resolve();
        }),
      );
    let sending = true;
    let sent = 0;
    const inFlight = new Set<Promise<void>>();
    const pump = (c: grpc.Client) => {
      // keep 50 calls in flight per connection until told to stop
      const next = (): void => {
        if (!sending) return;
        const p = call(c, sent++).finally(() => {
          inFlight.delete(p);
          next();
        });
        inFlight.add(p);
      };
      for (let i = 0; i < 50; i++) next();
    };
    try {
      clients.forEach(pump);
      await sleep(1000);
      const atSignal = sent;
      s.signal('SIGTERM');
      await sleep(700); // still inside the 1.5 s drain delay
      sending = false;
      await Promise.all(inFlight);
      const code = await s.exited();
      expect(atSignal).toBeGreaterThan(200);
      expect(results.length).toBe(sent);
      expect(results.filter((r) => !r.ok)).toEqual([]);
      expect(code).toBe(0);
      expect(s.lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['draining in-flight calls', 'zonegate stopped']));
    } finally {
      for (const c of clients) c.close();
      s.signal('SIGKILL');
    }
  });
});
