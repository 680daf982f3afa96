/**
 * The limit of a cold scenario: what a request must cost at least on this Node, whoever serves
 * it. It is the floor's CPU per request (gRPC, HTTP/2, decoding, answering) plus the crypto the
 * request cannot avoid: the signature checks and certificate parses a new token or a new x5c
 * leaf requires, each measured alone here with node:crypto (what zonegate uses), on the inputs
 * of the run (its own tokens, keys and certificates), on the Node that runs the harness.
 *
 * Everything else a cold request costs zonegate (parsing the token's JSON, hashing for the cache
 * keys, the thread-pool hand-over, caching, the pipeline) is zonegate's; CPU ÷ limit says how much
 * of the request that is. 1.0 is unreachable; the target is ≤ 1.2.
 */
import { X509Certificate, verify, type KeyObject } from 'node:crypto';

/** One piece of crypto a cold request cannot avoid. */
export const CRYPTO_OPS = ['verify-es256', 'verify-eddsa', 'verify-rs256', 'parse-certificate', 'verify-certificate-es256'] as const;
export type CryptoOp = (typeof CRYPTO_OPS)[number];

/** What each op is, for the results file and the tables. */
export const CRYPTO_OP_MEANING: Record<CryptoOp, string> = {
  'verify-es256': "a token's ES256 signature (P-256, SHA-256 of the signing input), key already imported",
  'verify-eddsa': "a token's EdDSA signature (Ed25519), key already imported",
  'verify-rs256': "a token's RS256 signature (RSA 2048, PKCS#1 v1.5), key already imported",
  'parse-certificate': 'new X509Certificate(der) and its public key (the key must be imported to check anything it signed)',
  'verify-certificate-es256': "a leaf certificate's ECDSA P-256 signature by its intermediate (X509Certificate.verify)",
};

export type ColdScenario = 'cold-es256' | 'cold-eddsa' | 'cold-rs256' | 'cold-chain';

/**
 * The unavoidable crypto of each cold scenario, per request. A new token under a known x5c chain
 * (the chain is the same for every token of a workload: its signatures are known) needs its own
 * signature checked; a new x5c leaf under a known intermediate needs the leaf parsed, its
 * signature by the intermediate checked, and then the token's signature with the leaf's key.
 * test/bench/crypto-limit.test.ts holds zonegate's verifier to these counts.
 */
export const COLD_CRYPTO: Record<ColdScenario, Partial<Record<CryptoOp, number>>> = {
  'cold-es256': { 'verify-es256': 1 },
  'cold-eddsa': { 'verify-eddsa': 1 },
  'cold-rs256': { 'verify-rs256': 1 },
  'cold-chain': { 'parse-certificate': 1, 'verify-certificate-es256': 1, 'verify-es256': 1 },
};

export interface Limit {
  /** The floor's CPU per request (µs). */
  readonly floorMicros: number;
  /** The unavoidable crypto of one request (µs). */
  readonly cryptoMicros: number;
  /** floor + crypto (µs). */
  readonly limitMicros: number;
}

/** floor + Σ count × cost. Throws when an op has no measured cost (a limit without it would be too low). */
export function cryptoLimit(floorMicros: number, ops: Partial<Record<CryptoOp, number>>, costs: Partial<Record<CryptoOp, number>>): Limit {
  if (!(floorMicros >= 0)) throw new Error(`floor CPU ${floorMicros} µs is not a measurement`);
  let crypto = 0;
  for (const [op, n] of Object.entries(ops) as [CryptoOp, number][]) {
    const c = costs[op];
    if (c === undefined || !(c > 0)) throw new Error(`no measured cost for ${op}`);
    crypto += n * c;
  }
  return { floorMicros, cryptoMicros: round1(crypto), limitMicros: round1(floorMicros + crypto) };
}

/** CPU per request as a multiple of the limit (2 decimals). */
export function limitMultiple(cpuMicros: number, limit: Limit): number {
  if (!(limit.limitMicros > 0)) throw new Error('the limit is not positive');
  return Math.round((cpuMicros / limit.limitMicros) * 100) / 100;
}

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The inputs of the run the ops are measured on. */
export interface CryptoInputs {
  /** One token per algorithm with its signer's public key. */
  readonly tokens: Partial<Record<'ES256' | 'EdDSA' | 'RS256', { token: string; key: KeyObject }>>;
  /** DER of distinct leaf certificates (new x5c leaves) and the public key of their issuer. */
  readonly leaves: readonly Buffer[];
  readonly issuerKey: KeyObject;
}

/**
 * CPU µs of one op: after a warm-up, `rounds` rounds of at least `roundMs` of CPU each, the
 * median round's CPU ÷ iterations (process.cpuUsage: this process, every thread).
 */
export function measureOp(fn: (i: number) => unknown, o: { rounds?: number; roundMs?: number } = {}): number {
  const rounds = o.rounds ?? 5;
  const roundUs = (o.roundMs ?? 200) * 1000;
  for (let i = 0; i < 50; i++) fn(i);
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage();
    let n = 0;
    let used: number;
    do {
      for (let k = 0; k < 20; k++) fn(n++);
      const d = process.cpuUsage(start);
      used = d.user + d.system;
    } while (used < roundUs);
    per.push(used / n);
  }
  per.sort((a, b) => a - b);
  return round1(per[Math.floor(per.length / 2)]!);
}

/** Measures every op of CRYPTO_OPS on the run's inputs; a failing check throws (the inputs are wrong). */
export function measureCrypto(inputs: CryptoInputs, o: { rounds?: number; roundMs?: number } = {}): Record<CryptoOp, number> {
  const tokenCheck = (alg: 'ES256' | 'EdDSA' | 'RS256') => {
    const t = inputs.tokens[alg];
    if (!t) throw new Error(`no ${alg} token to measure`);
    const dot = t.token.lastIndexOf('.');
    const input = Buffer.from(t.token.slice(0, dot));
    const sig = Buffer.from(t.token.slice(dot + 1), 'base64url');
    const hash = alg === 'EdDSA' ? null : 'sha256';
    const key = alg === 'ES256' ? { key: t.key, dsaEncoding: 'ieee-p1363' as const } : t.key;
    if (!verify(hash, input, key, sig)) throw new Error(`the ${alg} token does not verify with its key`);
    return () => verify(hash, input, key, sig);
  };
  const leaves = inputs.leaves;
  if (leaves.length === 0) throw new Error('no leaf certificates to measure');
  const parsed = leaves.map((d) => new X509Certificate(d));
  if (!parsed.every((c) => c.verify(inputs.issuerKey))) throw new Error('a leaf does not verify with its issuer key');
  return {
    'verify-es256': measureOp(tokenCheck('ES256'), o),
    'verify-eddsa': measureOp(tokenCheck('EdDSA'), o),
    'verify-rs256': measureOp(tokenCheck('RS256'), o),
    'parse-certificate': measureOp((i) => new X509Certificate(leaves[i % leaves.length]!).publicKey, o),
    'verify-certificate-es256': measureOp((i) => parsed[i % parsed.length]!.verify(inputs.issuerKey), o),
  };
}
