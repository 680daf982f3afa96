/**
 * HTTP Basic credentials against a user store file (YAML):
 *   users:
 *     - name: alice
 *       password: "scrypt$16384$8$1$<salt base64>$<hash base64>"   # zonegate user hash
 *       roles: [orders.read]
 * Hashes are salted scrypt (node:crypto). A successful check is remembered for a few minutes
 * (keyed by a hash of the credentials, never the password) so the request path does not pay
 * scrypt on every call.
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { parse } from 'yaml';
import { z } from 'zod';

const UsersFile = z.strictObject({
  users: z.array(
    z.strictObject({
      name: z.string().min(1).regex(/^[^:]+$/, 'a user name cannot contain ":"'),
      password: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'must be a zonegate scrypt hash'),
      roles: z.array(z.string()).default([]),
    }),
  ),
});

export interface BasicUser {
  readonly name: string;
  readonly roles: readonly string[];
}

/** Hashes a password for the user store: scrypt with a random 16-byte salt. */
export function hashPassword(password: string, N = 16384, r = 8, p = 1): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N, r, p, maxmem: 256 * N * r });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

function check(password: string, stored: string): boolean {
  const [, n, r, p, salt, hash] = stored.split('$');
  const N = Number(n);
  const want = Buffer.from(hash!, 'base64');
  const got = scryptSync(password, Buffer.from(salt!, 'base64'), want.length, { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) });
  return timingSafeEqual(got, want);
}

export class BasicUserStore {
  private readonly users: Map<string, { password: string; roles: string[] }>;
  private readonly ok = new LRUCache<string, BasicUser>({ max: 10_000, ttl: 5 * 60_000 });

  constructor(file: string) {
    const doc = UsersFile.parse(parse(readFileSync(file, 'utf8')));
    this.users = new Map(doc.users.map((u) => [u.name, { password: u.password, roles: u.roles }]));
  }

  /** Checks an `authorization: Basic …` value. Undefined when it does not authenticate. */
  verify(authorization: string): BasicUser | undefined {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
    if (!m) return undefined;
    const key = createHash('sha256').update(m[1]!).digest('base64');
    const hit = this.ok.get(key);
    if (hit) return hit;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return undefined;
    const name = decoded.slice(0, colon);
    const u = this.users.get(name);
    if (!u || !check(decoded.slice(colon + 1), u.password)) return undefined;
    const user = { name, roles: u.roles };
    this.ok.set(key, user);
    return user;
  }
}
