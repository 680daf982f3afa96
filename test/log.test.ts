/** Credential headers never reach a log line, including the configured token header. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';

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
