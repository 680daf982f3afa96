/**
 * SPIFFE ID and trust domain value types (SPIFFE-ID.md). Parse once at the edge; pass the value
 * types, not strings. Validation follows go-spiffe exactly (the reference implementation), which
 * is also the strict reading of the spec: scheme and trust domain must already be lower case
 * (see docs/spiffe.md for why zonegate does not normalize mixed case). On top of go-spiffe, the
 * §2.3 lengths are limits: 255 bytes of trust domain, 2048 bytes of ID.
 */
import { ZonegateError } from '../errors.js';

const SCHEME = 'spiffe://';
/** SPIFFE-ID.md §2.3: the host part of a URI, hence a trust domain name, is at most 255 bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255;
/**
 * SPIFFE-ID.md §2.3: implementations MUST support IDs up to 2048 bytes and SHOULD NOT generate
 * longer ones. zonegate refuses longer ones: no conforming issuer produces them, and an ID ends up
 * in headers, logs and policy keys (docs/spiffe.md).
 */
export const MAX_SPIFFE_ID_BYTES = 2048;

const invalid = (input: string, why: string) =>
  new ZonegateError('ERR_SPIFFE_ID_INVALID', `spiffe: "${printable(input)}": ${why}`);

function printable(s: string): string {
  const cut = s.length > 80 ? `${s.slice(0, 80)}…` : s;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\u0000-\u001f\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const isTdChar = (c: number) =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;
const isPathChar = (c: number) =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;

function checkTrustDomainName(input: string, name: string): void {
  if (name.length === 0) throw invalid(input, 'trust domain is missing');
  for (let i = 0; i < name.length; i++)
    if (!isTdChar(name.charCodeAt(i)))
      throw invalid(input, 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores');
  if (name.length > MAX_TRUST_DOMAIN_BYTES) throw invalid(input, `trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
}

function checkPath(input: string, path: string): void {
  if (path === '') return;
  if (path.charCodeAt(0) !== 0x2f) throw invalid(input, 'path must have a leading slash');
  let segStart = 1;
  for (let i = 1; i <= path.length; i++) {
    if (i === path.length || path.charCodeAt(i) === 0x2f) {
      const seg = path.slice(segStart, i);
      if (seg === '') throw invalid(input, i === path.length ? 'path cannot have a trailing slash' : 'path cannot contain empty segments');
      if (seg === '.' || seg === '..') throw invalid(input, 'path cannot contain dot segments');
      segStart = i + 1;
    } else if (!isPathChar(path.charCodeAt(i))) {
      throw invalid(input, 'path segment characters are limited to letters, numbers, dots, dashes, and underscores');
    }
  }
}

let trustDomainOf: (validatedName: string) => TrustDomain;

/** A trust domain name, e.g. `zone-a.example`. */
export class TrustDomain {
  private constructor(readonly name: string) {}

  /** Accepts a bare name (`example.org`) or a SPIFFE ID (`spiffe://example.org/…`, path ignored). */
  static parse(input: string): TrustDomain {
    if (input === '') throw invalid(input, 'trust domain is missing');
    if (input.includes(':/')) return SpiffeId.parse(input).trustDomain;
    checkTrustDomainName(input, input);
    return new TrustDomain(input);
  }

  static {
    // Only SpiffeId.parse, after validating the name, may skip the checks.
    trustDomainOf = (name) => new TrustDomain(name);
  }

  /** `spiffe://<name>`, the ID of the trust domain itself. */
  get idString(): string {
    return `${SCHEME}${this.name}`;
  }

  /** Same trust domain name. */
  equals(other: TrustDomain): boolean {
    return this.name === other.name;
  }

  /** The bare name. */
  toString(): string {
    return this.name;
  }
}

/** A validated SPIFFE ID: `spiffe://<trust domain><path>`. */
export class SpiffeId {
  private constructor(
    readonly value: string,
    readonly trustDomain: TrustDomain,
    readonly path: string,
  ) {}

  /** Parses and validates a SPIFFE ID string. Throws ZonegateError(ERR_SPIFFE_ID_INVALID). */
  static parse(input: string): SpiffeId {
    if (input === '') throw invalid(input, 'cannot be empty');
    if (!input.startsWith(SCHEME)) throw invalid(input, 'scheme is missing or invalid');
    // Every valid character is ASCII, so UTF-16 length is the byte length of any ID that can pass.
    if (input.length > MAX_SPIFFE_ID_BYTES) throw invalid(input, `SPIFFE ID is longer than ${MAX_SPIFFE_ID_BYTES} bytes`);
    const rest = input.slice(SCHEME.length);
    const slash = rest.indexOf('/');
    const name = slash === -1 ? rest : rest.slice(0, slash);
    const path = slash === -1 ? '' : rest.slice(slash);
    checkTrustDomainName(input, name);
    checkPath(input, path);
    return new SpiffeId(input, trustDomainOf(name), path);
  }

  /** Like parse, but returns undefined instead of throwing. */
  static tryParse(input: string): SpiffeId | undefined {
    try {
      return SpiffeId.parse(input);
    } catch {
      return undefined;
    }
  }

  /** True for `spiffe://td` with no path (a trust domain's own ID, never a workload's). */
  get isRoot(): boolean {
    return this.path === '';
  }

  /** True when this ID belongs to `td`. */
  memberOf(td: TrustDomain): boolean {
    return this.trustDomain.name === td.name;
  }

  /** Same ID (string equality: IDs are canonical once parsed). */
  equals(other: SpiffeId): boolean {
    return this.value === other.value;
  }

  /** The ID as a string (`spiffe://…`). */
  toString(): string {
    return this.value;
  }
}
