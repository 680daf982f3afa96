/**
 * The keys that sign re-issued JWTs, and the JWKS that publishes them.
 *
 * A generated key ring rotates with overlap, so an upstream that caches the JWKS never meets a
 * token whose key it has not seen:
 *   - key N+1 is generated when N starts signing and is published `publishAhead` before it
 *     signs (upstreams that refresh at least that often learn it in time);
 *   - N+1 signs from `activeFrom(N) + every`;
 *   - N stays published until its last token has expired: `activeFrom(N+1) + retain`, where
 *     retain is the token lifetime plus a clock-skew margin.
 * A key loaded from a file signs forever and is the only key published.
 * Time is passed in (milliseconds), so the schedule is tested with a controlled clock.
 */
import { createHash, createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { keyFits } from '../identity/jws.js';

export type ReissueAlgorithm = 'ES256' | 'EdDSA';

export interface SigningKey {
  readonly kid: string;
  readonly alg: ReissueAlgorithm;
  readonly key: KeyObject;
  /** The public JWK as published (kid, alg, use). */
  readonly jwk: Readonly<Record<string, string>>;
  readonly publishAt: number;
  readonly activeFrom: number;
}

export interface KeyRingOptions {
  readonly algorithm: ReissueAlgorithm;
  /** PKCS#8 (or SEC1) PEM private key; no rotation when given. */
  readonly keyFile?: string;
  readonly everyMs: number;
  readonly publishAheadMs: number;
  /** How long a key stays published after its successor starts signing. */
  readonly retainMs: number;
}

/** RFC 7638 thumbprint of a public EC or OKP JWK: a kid that names the key itself. */
function thumbprint(jwk: Record<string, string>): string {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

function signingKey(key: KeyObject, alg: ReissueAlgorithm, publishAt: number, activeFrom: number): SigningKey {
  const pub = key.export({ format: 'jwk' }) as Record<string, string>;
  const publicJwk: Record<string, string> = pub.kty === 'EC' ? { kty: 'EC', crv: pub.crv!, x: pub.x!, y: pub.y! } : { kty: 'OKP', crv: pub.crv!, x: pub.x! };
  const kid = thumbprint(publicJwk);
  return { kid, alg, key, jwk: Object.freeze({ ...publicJwk, kid, alg, use: 'sig' }), publishAt, activeFrom };
}

function generate(alg: ReissueAlgorithm): KeyObject {
  return alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey : generateKeyPairSync('ed25519').privateKey;
}

export class KeyRing {
  /** Ordered by activeFrom; the last one is the next key (not yet signing) for a generated ring. */
  private keys: SigningKey[];
  private readonly rotating: boolean;

  constructor(
    private readonly o: KeyRingOptions,
    now: number,
  ) {
    if (o.keyFile) {
      const key = createPrivateKey(readFileSync(o.keyFile));
      if (!keyFits(o.algorithm, key)) throw new Error(`upstream.jwt.keyFile: the key does not fit ${o.algorithm} (${key.asymmetricKeyType})`);
      this.keys = [signingKey(key, o.algorithm, 0, 0)];
      this.rotating = false;
    } else {
      const first = signingKey(generate(o.algorithm), o.algorithm, now, now);
      this.keys = [first, this.successor(first, now)];
      this.rotating = true;
    }
  }

  private successor(k: SigningKey, now: number): SigningKey {
    // After a long pause (suspended host, clock jump) the successor still gets its full lead time.
    const activeFrom = Math.max(k.activeFrom + this.o.everyMs, now + this.o.publishAheadMs);
    return signingKey(generate(this.o.algorithm), this.o.algorithm, activeFrom - this.o.publishAheadMs, activeFrom);
  }

  /** Moves the schedule to `now`: promotes the next key when due, retires old ones. Cheap when nothing is due. */
  maintain(now: number): void {
    if (!this.rotating) return;
    let next = this.keys[this.keys.length - 1]!;
    while (now >= next.activeFrom) {
      next = this.successor(next, now);
      this.keys.push(next);
    }
    // A key goes once its successor has signed for longer than a token lives (its last token expired).
    while (this.keys.length > 2 && now >= this.keys[1]!.activeFrom + this.o.retainMs) this.keys.shift();
  }

  /** The key that signs at `now`. */
  current(now: number): SigningKey {
    this.maintain(now);
    let cur = this.keys[0]!;
    for (const k of this.keys) if (k.activeFrom <= now) cur = k;
    return cur;
  }

  /** The JWKS at `now`: every key whose tokens may be in flight, and the next one once announced. */
  jwks(now: number): { keys: Record<string, string>[] } {
    const cur = this.current(now);
    // (the signing key is always published, even if the clock stepped back past its publishAt)
    return { keys: this.keys.filter((k) => k.publishAt <= now || k === cur).map((k) => ({ ...k.jwk })) };
  }

  /** Cache-Control max-age for the JWKS: short enough that a cached copy learns the next key before it signs. */
  get maxAgeSeconds(): number {
    return this.rotating ? Math.floor(this.o.publishAheadMs / 2000) : 300;
  }
}
