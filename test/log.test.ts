/** Credential headers never reach a log line, including the configured token header. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { sleep } from './helpers/wait.js';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('log redaction', () => {
  it('redacts the WirePact header and a configured token header beside the built-in ones', () => {
    const out = capture();
    const log = createLogger('info', out.stream, ['X-Zone-Token']);
    log.info({ req: { headers: { 'x-zone-token': 'secret-1', 'x-wirepact-identity': 'secret-2', authorization: 'secret-3', 'x-request-id': 'r1' } } }, 'request');
    const line = out.text();
    expect(line).toContain('"x-request-id":"r1"');
    for (const s of ['secret-1', 'secret-2', 'secret-3']) expect(line).not.toContain(s);
    expect(line.match(/\[redacted\]/g)).toHaveLength(3);
  });
});

describe('log time', () => {
  it('writes the ISO time of the moment of the line, as pino does, also when formatted once per millisecond', async () => {
    const { isoTime } = await import('../src/log.js');
    const { pino } = await import('pino');
    const before = Date.now();
    const a = isoTime();
    const b = isoTime();
    const after = Date.now();
    expect(a).toMatch(/^,"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"$/);
    const t = Date.parse(a.slice(9, -1));
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after);
    expect(Date.parse(b.slice(9, -1))).toBeGreaterThanOrEqual(t);
    expect(pino.stdTimeFunctions.isoTime().slice(0, 9)).toBe(a.slice(0, 9));
    // a later millisecond gives a later time, not the cached one
    await sleep(5);
    expect(Date.parse(isoTime().slice(9, -1))).toBeGreaterThan(t);
    const out = capture();
    createLogger('info', out.stream).info('x');
    expect(Date.parse(JSON.parse(out.text()).time)).toBeGreaterThan(t);
  });
});
