/**
 * HTTP Basic credentials against a user store file (YAML):
 *   users:
 *     - name: alice
 *       password: "scrypt$16384$8$1$<salt base64>$<hash base64>"   # zonegate user hash
 *       roles: [orders.read]
 * Hashes are salted scrypt (node:crypto). A successful check is remembered for a few minutes
 * (keyed by a hash of the credentials, never the password) so the request path does not pay
 * scrypt on every call.
 *
 * scrypt costs tens of milliseconds and 128·N·r bytes by design, so:
 * - it runs on the thread pool (crypto.scrypt), never on the event loop of a serving process;
 * - every check has the same shape: an unknown user name runs scrypt against a dummy hash with
 *   the store's parameters, and hashes are compared with timingSafeEqual, so the time taken
 *   does not say whether a user exists;
 * - at most `maxConcurrent` run at once and `maxQueued` wait; past that a check is answered
 *   ERR_OVERLOADED at once, so a flood of wrong passwords cannot take memory without bound;
 * - hash parameters are bounded when the file is read (N a power of two from 2^10 to 2^20, r up
 *   to 32, p up to 16, at most 64 MiB per computation).
 */
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { sha256 } from '../hash.js';
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { parse } from 'yaml';
import { z } from 'zod';
import { authCredentials } from '../request/headers.js';

/** Largest memory one scrypt computation may take (128·N·r bytes). */
export const MAX_SCRYPT_BYTES = 64 * 1024 * 1024;

interface Params {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** The parameters of a zonegate scrypt hash, or why they are refused. */
function params(stored: string): Params | string {
  const [, n, r, p, salt, hash] = stored.split('$');
  const N = Number(n);
  const R = Number(r);
  const P = Number(p);
  if (!Number.isInteger(Math.log2(N)) || N < 1024 || N > 2 ** 20) return 'scrypt N must be a power of two from 1024 to 1048576';
  if (!Number.isInteger(R) || R < 1 || R > 32) return 'scrypt r must be from 1 to 32';
  if (!Number.isInteger(P) || P < 1 || P > 16) return 'scrypt p must be from 1 to 16';
  if (128 * N * R > MAX_SCRYPT_BYTES) return `scrypt N and r need ${128 * N * R} bytes (limit ${MAX_SCRYPT_BYTES})`;
  const h = Buffer.from(hash!, 'base64');
  if (h.length < 16 || h.length > 64) return 'the hash must be 16 to 64 bytes';
  return { N, r: R, p: P, salt: Buffer.from(salt!, 'base64'), hash: h };
}

const UsersFile = z.strictObject({
  users: z.array(
    z.strictObject({
      name: z.string().min(1).regex(/^[^:]+$/, 'a user name cannot contain ":"'),
      password: z
        .string()
        .regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, 'must be a zonegate scrypt hash')
        .superRefine((v, ctx) => {
          const p = params(v);
          if (typeof p === 'string') ctx.addIssue({ code: 'custom', message: p });
        }),
      roles: z.array(z.string()).default([]),
    }),
  ),
});

export interface BasicUser {
  readonly name: string;
  readonly roles: readonly string[];
}

export type BasicCheck =
  | { readonly ok: true; readonly user: BasicUser }
  | { readonly ok: false; readonly code: 'ERR_USER_CREDENTIAL' | 'ERR_OVERLOADED'; readonly message: string };

/** commonIdentity.egress.basic.maxConcurrent and .maxQueued. */
export interface BasicLimits {
  /** scrypt computations at once. */
  readonly maxConcurrent: number;
  /** Checks waiting for a turn; past it: ERR_OVERLOADED. */
  readonly maxQueued: number;
}

/** Hashes a password for the user store: scrypt with a random 16-byte salt. */
export function hashPassword(password: string, N = 16384, r = 8, p = 1): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N, r, p, maxmem: 256 * N * r });
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** The credentials of the Basic scheme (RFC 7617 §2): base64 of user-id ":" password. */
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MISMATCH: BasicCheck = { ok: false, code: 'ERR_USER_CREDENTIAL', message: 'carried: Basic credentials do not match the user store' };

interface Account {
  readonly name: string;
  readonly roles: readonly string[];
  readonly params: Params;
}

export class BasicUserStore {
  private readonly users: Map<string, Account>;
  /** What an unknown user name is checked against: the same parameters, a hash nobody has. */
  private readonly dummy: Params;
  private readonly ok = new LRUCache<string, BasicUser>({ max: 10_000, ttl: 5 * 60_000 });
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** scrypt computations performed (tests). */
  computations = 0;

  constructor(file: string, limits: BasicLimits) {
    const doc = UsersFile.parse(parse(readFileSync(file, 'utf8')));
    this.users = new Map(doc.users.map((u) => [u.name, { name: u.name, roles: u.roles, params: params(u.password) as Params }]));
    const first = this.users.values().next().value?.params;
    // An unknown name is checked against the first user's parameters: users hashed with other
    // parameters would take another time, and the time would tell which names exist.
    const shape = (q: Params) => `N=${q.N} r=${q.r} p=${q.p}, ${q.salt.length}-byte salt, ${q.hash.length}-byte hash`;
    const odd = first && [...this.users.values()].find((u) => shape(u.params) !== shape(first));
    if (first && odd)
      throw new Error(
        `${file}: user "${odd.name}": scrypt parameters (${shape(odd.params)}) differ from the first user's (${shape(first)}); every password must be hashed with the same parameters (zonegate user hash), or response times would tell which user names exist`,
      );
    this.dummy = { N: first?.N ?? 16384, r: first?.r ?? 8, p: first?.p ?? 1, salt: randomBytes(first?.salt.length ?? 16), hash: randomBytes(first?.hash.length ?? 32) };
    this.maxConcurrent = limits.maxConcurrent;
    this.maxQueued = limits.maxQueued;
  }

  /** Checks an `authorization: Basic …` value on the thread pool. Never rejects. */
  async check(authorization: string): Promise<BasicCheck> {
    const c = this.credentials(authorization);
    if ('ok' in c) return c;
    if (this.running >= this.maxConcurrent) {
      if (this.waiting.length >= this.maxQueued)
        return { ok: false, code: 'ERR_OVERLOADED', message: `carried: ${this.running + this.waiting.length} Basic credential checks already under way (commonIdentity.egress.basic.maxConcurrent / maxQueued)` };
      // the slot is handed over by the check that finishes (running stays as it is)
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else this.running++;
    try {
      const got = await new Promise<Buffer>((resolve, reject) =>
        scrypt(c.password, c.params.salt, c.params.hash.length, this.options(c.params), (err, key) => (err ? reject(err) : resolve(key))),
      );
      return this.conclude(c, got);
    } catch {
      return MISMATCH;
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** The same check on the calling thread: for callers that cannot wait (a one-shot CLI check). */
  verifySync(authorization: string): BasicCheck {
    const c = this.credentials(authorization);
    if ('ok' in c) return c;
    try {
      return this.conclude(c, scryptSync(c.password, c.params.salt, c.params.hash.length, this.options(c.params)));
    } catch {
      return MISMATCH;
    }
  }

  /** A remembered success, or what to compute: the same shape for known and unknown names. */
  private credentials(authorization: string): BasicCheck | { key: string; password: string; account: Account | undefined; params: Params } {
    const c = authCredentials(authorization);
    if (c?.scheme !== 'basic' || !BASE64.test(c.token)) return MISMATCH;
    const key = sha256(c.token, 'base64');
    const hit = this.ok.get(key);
    if (hit) return { ok: true, user: hit };
    const decoded = Buffer.from(c.token, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return MISMATCH;
    const account = this.users.get(decoded.slice(0, colon));
    return { key, password: decoded.slice(colon + 1), account, params: account?.params ?? this.dummy };
  }

  private options(p: Params) {
    this.computations++;
    return { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r };
  }

  private conclude(c: { key: string; account: Account | undefined; params: Params }, got: Buffer): BasicCheck {
    // compared whatever the name was: the dummy's hash never matches
    const same = timingSafeEqual(got, c.params.hash);
    if (!same || !c.account) return MISMATCH;
    const user = { name: c.account.name, roles: c.account.roles };
    this.ok.set(c.key, user);
    return { ok: true, user };
  }
}
