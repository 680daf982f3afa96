/** The upstream and deny config: what is refused at load, and the files the modes read at startup. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { createRewriter } from '../../src/rewrite/index.js';

const dir = mkdtempSync(join(tmpdir(), 'zg-rewrite-config-'));
const load = (o: Record<string, unknown>) => parseConfig(stringify({ peer: { source: 'principal' }, ...o }), 'z.yaml', dir).config;
const problems = (o: Record<string, unknown>): string[] => {
  try {
    load(o);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
};

describe('upstream and deny config', () => {
  it('defaults: headers everywhere, 403/401, a JSON body without message', () => {
    const c = load({});
    expect(c.upstream.default).toEqual({ mode: 'headers' });
    expect(c.upstream.jwt).toMatchObject({ header: 'x-zonegate-jwt', ttlSeconds: 5, algorithm: 'ES256', issuer: 'zonegate' });
    expect(c.deny).toEqual({ reasonHeader: 'x-zonegate-reason', status: { forbidden: 403, unauthenticated: 401 }, body: true, message: false });
  });

  it.each([
    [{ upstream: { destinations: { ledger: { mode: 'hmac' } } } }, 'upstream.destinations.ledger.mode: mode hmac needs upstream.hmac'],
    [{ upstream: { default: { mode: 'basic' } } }, 'upstream.default.mode: mode basic needs upstream.basic'],
    [{ upstream: { destinations: { x: { mode: 'hmac', identityHeaders: false } }, hmac: { secretFile: 's', keyId: 'k' } } }, 'cannot be turned off'],
    [{ upstream: { destinations: { x: { mode: 'tunnel' } } } }, 'upstream.destinations.x.mode'],
    [{ upstream: { hmac: { secretFile: 's', keyId: 'a key' } } }, 'upstream.hmac.keyId'],
    [{ upstream: { jwt: { ttlSeconds: 3600 } } }, 'upstream.jwt.ttlSeconds'],
    [{ upstream: { jwt: { algorithm: 'HS256' } } }, 'upstream.jwt.algorithm'],
    [{ deny: { status: { forbidden: 499 } } }, 'deny.status.forbidden: must be a 4xx or 5xx status Envoy knows'],
    [{ deny: { status: { unauthenticated: 200 } } }, 'deny.status.unauthenticated'],
  ])('refuses %j', (o, message) => {
    expect(problems(o).join('\n')).toContain(message);
  });

  it('refuses a short HMAC secret and malformed Basic credentials at startup, naming the file but not its contents', () => {
    writeFileSync(join(dir, 'short.secret'), 'too-short-secret\n');
    const hmac = load({ upstream: { default: { mode: 'hmac' }, hmac: { secretFile: 'short.secret', keyId: 'k1' } } });
    expect(() => createRewriter(hmac)).toThrow(/short\.secret holds 16 bytes; at least 32/);
    writeFileSync(join(dir, 'basic.yaml'), '"user:alice": "no-colon-here"\n');
    const basic = load({ upstream: { default: { mode: 'basic' }, basic: { credentialsFile: 'basic.yaml' } } });
    let message = '';
    try {
      createRewriter(basic);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('the entry for actor "user:alice" is not "username:password"');
    expect(message).not.toContain('no-colon-here');
  });

  it('a JWT key from a file must fit the algorithm', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    writeFileSync(join(dir, 'rsa.pem'), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const c = load({ upstream: { default: { mode: 'jwt' }, jwt: { keyFile: 'rsa.pem' } } });
    expect(() => createRewriter(c)).toThrow(/does not fit ES256/);
    writeFileSync(join(dir, 'ec.pem'), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const ok = createRewriter(load({ upstream: { default: { mode: 'jwt' }, jwt: { keyFile: 'ec.pem' } } }));
    // a file key does not rotate: the same single key at any time
    expect(ok.keys.jwks(0).keys).toHaveLength(1);
    expect(ok.keys.jwks(Date.now() + 10 * 86_400_000).keys).toEqual(ok.keys.jwks(0).keys);
  });
});
