/**
 * A real `zonegate serve --config FILE` process: SIGHUP with an invalid file keeps it serving the
 * running config and ready, with the error logged (line and key path) and counted; SIGHUP with a
 * valid one applies it; so does simply replacing the file.
 */
import * as grpc from '@grpc/grpc-js';
import { copyFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { checkMethod, loadProtos } from '../../src/envoy/proto.js';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { until } from '../helpers/wait.js';
import { BIN, serve } from '../helpers/cli.js';
import { checkRequest, exampleCert } from '../helpers/zonegate.js';

const rules = (deny: boolean) => [
  { name: 'frontend-calls-api', action: 'allow', from: { principals: ['spiffe://zone-a.example/ns/shop/sa/frontend'] } },
  ...(deny ? [{ name: 'maintenance', action: 'deny', to: { paths: [{ prefix: '/api/' }] } }] : []),
];
const config = (deny: boolean) =>
  stringify({
    server: { drainDelaySeconds: 0 },
    trust: [{ trustDomain: 'zone-a.example', bundle: 'zone-a.root.pem' }],
    rules: rules(deny),
  });

describe('zonegate serve reloads its config file', () => {
  it('SIGHUP: an invalid file is refused (still serving, still ready), a valid one applies; a replaced file applies too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-hup-'));
    copyFileSync(join(EXAMPLES_DIR, 'certs', 'zone-a.root.pem'), join(dir, 'zone-a.root.pem'));
    const file = join(dir, 'zonegate.yaml');
    writeFileSync(file, config(false));
    // one process: what a reload does inside it (workers each run the same reloader)
    const s = await serve(process.execPath, [BIN, 'serve', '--config', file, '--workers', '1']);
    const Client = grpc.makeGenericClientConstructor(loadProtos().authService, 'Authorization');
    const c = new Client(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    const m = checkMethod();
    const verdict = () =>
      new Promise<string>((resolve) =>
        c.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, checkRequest({ certificate: exampleCert('frontend') }), new grpc.Metadata(), (e, r) => {
          const st = (r as { status?: { code: number; message?: string } } | undefined)?.status;
          resolve(e ? `error ${e.code}` : st?.code === 0 ? 'allow' : String(st?.message));
        }),
      );
    const ops = (path: string) => fetch(`http://127.0.0.1:${s.opsPort}${path}`);
    const logged = (msg: string, reason: string) => s.lines.filter((l) => l.msg === msg && l.reason === reason).length;
    try {
      expect(await verdict()).toBe('allow');

      // an invalid file, renamed in place (as editors and config tools write), and a SIGHUP
      writeFileSync(join(dir, 'next.tmp'), 'rules:\n  - name: x\n    action: allow\n    from: { trustDomains: 7 }\n');
      renameSync(join(dir, 'next.tmp'), file);
      process.kill(s.proc.pid!, 'SIGHUP');
      await until(() => logged('config reload failed: keeping the running config', 'SIGHUP') === 1, 10_000, 'the refused reload');
      const failed = s.lines.find((l) => l.reason === 'SIGHUP')!;
      expect((failed.problems as string[]).join('\n')).toContain(`${file}:4: rules[0].from.trustDomains`);
      expect(await verdict()).toBe('allow');
      expect((await ops('/readyz')).status).toBe(200);
      expect(await (await ops('/metrics')).text()).toMatch(/zonegate_config_reload_total\{result="error"\} [1-9]/);
      expect(s.proc.exitCode).toBeNull();

      writeFileSync(file, config(true));
      process.kill(s.proc.pid!, 'SIGHUP');
      await until(() => logged('config reloaded', 'SIGHUP') === 1, 10_000, 'the SIGHUP reload');
      expect(await verdict()).toBe('ERR_POLICY_DENIED');

      // no signal: the watch sees the file replaced
      writeFileSync(join(dir, 'next.tmp'), config(false));
      renameSync(join(dir, 'next.tmp'), file);
      await until(async () => (await verdict()) === 'allow', 10_000, 'the watched change');
      expect(await (await ops('/metrics')).text()).toMatch(/zonegate_config_last_reload_successful 1/);
    } finally {
      c.close();
      s.signal('SIGTERM');
      await s.exited();
    }
  });
});
