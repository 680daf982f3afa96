/**
 * zonegate's side of the importer equivalence tests: an imported policy file, parsed and compiled
 * as the config does, deciding one request of the oracles' grid (oracles.ts holds the other side).
 */
import { parse } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import { compileNamer } from '../../src/policy/naming.js';
import { compilePolicy } from '../../src/policy/rules.js';
import { PolicyFile } from '../../src/policy/schema.js';
import { normalizeHost } from '../../src/request/host.js';
import type { Req } from './oracles.js';

/** The normalized host of a valid authority (the pipeline refuses the others before the policy). */
const hostOf = (raw: string) => {
  const h = normalizeHost(raw);
  if (!h.ok) throw new Error(h.message);
  return { host: h.name, hostPort: h.port };
};

const istioNames = compileNamer('istio', 'istio');
const consulNames = compileNamer('consul', 'consul');

/** Parses the imported policy as the config does and decides a request with it. */
export function zonegateAllows(text: string): (r: Req) => boolean {
  const file = PolicyFile.parse(parse(text));
  // the importer's output is a valid config too
  const policy = compilePolicy(ConfigSchema.parse({ rules: file.rules }).rules);
  return (r) => {
    const td = /^spiffe:\/\/([^/]+)/.exec(r.id)![1]!;
    const path = r.id.slice(`spiffe://${td}`.length);
    return policy.evaluate({
      principal: r.id,
      trustDomain: td,
      canonical: td.endsWith('.consul') ? consulNames(path) : istioNames(path),
      method: r.method,
      path: r.path,
      // as the pipeline does before the policy phase
      ...hostOf(r.host),
      port: r.port,
      headers: new Map(Object.entries(r.headers)),
      claims: r.claims,
      context: new Map([['destination', r.destination]]),
    }).allowed;
  };
}
