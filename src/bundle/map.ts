/**
 * SPIFFE bundle maps (`{"trust_domains": {"<td>": <bundle>, …}}`, as gRPC and SPIRE use them).
 * JSON.parse silently keeps the last of two equal keys; a bundle map with a duplicate trust domain
 * must be rejected (SPIFFE_Trust_Domain_and_Bundle.md §5.1.1), so the text is scanned for
 * duplicate object keys before it is parsed.
 */
import { ZonegateError } from '../errors.js';
import { TrustDomain } from '../spiffe/id.js';
import { Bundle, bundleFromDocument, type BundleParseOptions } from './bundle.js';

const invalid = (msg: string) => new ZonegateError('ERR_BUNDLE_INVALID', `bundle map: ${msg}`);

/** Returns the first key that appears twice in one JSON object, or undefined. Assumes valid JSON. */
export function findDuplicateKey(text: string): string | undefined {
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top && expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') {
      stack.push(null);
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      expectKey = stack[stack.length - 1] !== null && stack.length > 0;
    }
  }
  return undefined;
}

/** Parses a bundle map into one Bundle per trust domain, each within `opts`. Throws ZonegateError(ERR_BUNDLE_INVALID). */
export function parseBundleMap(input: string | Uint8Array, opts: BundleParseOptions): Map<string, Bundle> {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(`not JSON: ${(err as Error).message}`);
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) throw invalid(`key "${dup}" appears twice`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('the document is not a JSON object');
  const tds = (doc as Record<string, unknown>).trust_domains;
  if (typeof tds !== 'object' || tds === null || Array.isArray(tds)) throw invalid('"trust_domains" is missing or not an object');
  const out = new Map<string, Bundle>();
  for (const [name, bundleDoc] of Object.entries(tds)) {
    let td: TrustDomain;
    try {
      td = TrustDomain.parse(name);
    } catch (err) {
      throw invalid(`trust domain "${name}": ${(err as Error).message}`);
    }
    if (td.name !== name) throw invalid(`key "${name}" must be a bare trust domain name`);
    out.set(name, bundleFromDocument(bundleDoc, td, opts));
  }
  return out;
}
