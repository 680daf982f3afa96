/**
 * At egress the upstream is another zone: no rewrite mode applies, the local app's own headers go
 * out (the carried phase decides about authorization), and only identity headers and the guard
 * list are cleared — whatever modes the ingress destinations use.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createPipeline } from '../../src/pipeline/authorize.js';
import { compilePolicy } from '../../src/policy/rules.js';
import { SpiffeId } from '../../src/spiffe/id.js';

describe('rewrite at egress', () => {
  it('sets the decision id, clears identity headers and the guard list, leaves authorization and mode headers alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-egress-'));
    writeFileSync(join(dir, 'basic.yaml'), '"user:alice": "alice:pw"\n');
    writeFileSync(join(dir, 'secret'), 'x'.repeat(40));
    const { config } = parseConfig(
      stringify({
        peer: { source: 'principal' },
        rules: [{ name: 'out', action: 'allow', to: { context: { direction: 'egress' } } }],
        upstream: {
          guard: ['x-user-id'],
          destinations: { a: { mode: 'basic' }, b: { mode: 'jwt' }, c: { mode: 'hmac' } },
          basic: { credentialsFile: 'basic.yaml' },
          hmac: { secretFile: 'secret', keyId: 'k' },
        },
      }),
      'egress-test',
      dir,
    );
    const self = SpiffeId.parse('spiffe://zone-a.test/ns/web/sa/frontend');
    const pipeline = createPipeline({ config, policy: compilePolicy(config.rules), peer: () => ({ ok: false, code: 'ERR_NO_IDENTITY', message: 'unused' }), self: () => self });
    const o = pipeline.authorize({
      id: 'e-1',
      method: 'GET',
      path: '/',
      query: '',
      host: 'remote.test',
      scheme: 'https',
      protocol: 'HTTP/1.1',
      headers: new Map([
        ['authorization', 'Bearer app-token'],
        ['x-zonegate-actor', 'spoofed'],
      ]),
      nonUtf8Headers: new Set(),
      duplicateHeaders: new Set(),
      source: { principal: '', certificate: '', address: '', port: 0 },
      destination: { principal: '', certificate: '', address: '', port: 0 },
      contextExtensions: new Map([
        ['direction', 'egress'],
        ['destination', 'a'],
      ]),
    });
    if (!o.allowed) throw new Error(o.reason);
    expect(o.rewrite).toBe('egress');
    expect(o.headersToSet).toEqual([{ name: 'x-zonegate-decision-id', value: 'e-1' }]);
    expect(o.headersToRemove).toContain('x-zonegate-actor');
    expect(o.headersToRemove).toContain('x-user-id');
    for (const h of ['authorization', 'x-zonegate-jwt', 'x-zonegate-proof']) expect(o.headersToRemove).not.toContain(h);
  });
});
