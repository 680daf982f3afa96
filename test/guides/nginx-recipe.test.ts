/**
 * The README's nginx recipe and zonegate's own list of guarded headers are one list: every header
 * zonegate sets or guards (src/rewrite/guard.ts, for the default config) is overwritten in the
 * protected location with zonegate's value, or cleared; and the auth subrequest sets every header
 * the nginx preset reads the request line from.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { PROXY_PRESETS } from '../../src/config/server.js';
import { proxyGuard } from '../../src/rewrite/guard.js';
import { authRequestSets, locationBody, proxySetHeaders, readmeRecipe } from './nginx-recipe.js';

const config = parseConfig('commonIdentity: { audiences: [spiffe://zone-b.test] }\n', 'z.yaml', '/').config;
const guarded = proxyGuard(config.upstream, config.commonIdentity?.header);

describe("the README's nginx recipe", () => {
  const recipe = readmeRecipe();
  const app = locationBody(recipe, '/');
  const auth = locationBody(recipe, '= /_zonegate');
  const sets = proxySetHeaders(app);
  const copies = authRequestSets(app);

  it('overwrites or clears every header zonegate sets or guards, and no other', () => {
    expect(guarded).toContain('x-zonegate-roles');
    expect(guarded).toContain('x-common-identity');
    expect([...sets.keys()].sort()).toEqual([...guarded].sort());
  });

  it("each identity header carries zonegate's value for that same header; the token is cleared", () => {
    for (const name of guarded) {
      const value = sets.get(name)!;
      if (name === config.commonIdentity!.header) expect(value).toBe('""');
      else expect(copies.get(value), `${name} = ${value}`).toBe(name);
    }
  });

  it('the auth subrequest sets every header the nginx preset reads the request line from', () => {
    const authSets = proxySetHeaders(auth);
    for (const name of Object.values(PROXY_PRESETS.nginx)) if (name.startsWith('x-')) expect(authSets.has(name), name).toBe(true);
    expect(authSets.get(config.server.http?.peerCertificateHeader ?? 'x-ssl-client-cert')).toBe('$ssl_client_escaped_cert');
  });
});
