/**
 * Parses Envoy's x-forwarded-client-cert header: elements separated by ",", key=value pairs by
 * ";", values optionally double-quoted (a quoted value may contain "," ";" "=" and \" escapes).
 * Keys: By, Hash, Cert, Chain, Subject, URI, DNS. Returns undefined when the header is malformed.
 *
 * One pass over the header, each character read once: a tokenizer with a cursor that never
 * moves back (the header is attacker-shaped up to limits.maxHeaderBytes, so no step may rescan).
 */
export type XfccElement = Readonly<Record<string, string>> & {
  readonly uri?: readonly string[];
  readonly dns?: readonly string[];
};

export interface XfccEntry {
  by?: string;
  hash?: string;
  cert?: string;
  chain?: string;
  subject?: string;
  uri: string[];
  dns: string[];
}

const KEYS: Record<string, keyof XfccEntry> = {
  by: 'by', hash: 'hash', cert: 'cert', chain: 'chain', subject: 'subject', uri: 'uri', dns: 'dns',
};

const SPACE = 0x20;
const TAB = 0x09;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SEMICOLON = 0x3b;
const COMMA = 0x2c;

class Tokenizer {
  i = 0;
  constructor(readonly s: string) {}

  get done(): boolean {
    return this.i >= this.s.length;
  }

  skipSpaces(): void {
    const s = this.s;
    while (this.i < s.length && (s.charCodeAt(this.i) === SPACE || s.charCodeAt(this.i) === TAB)) this.i++;
  }

  /** The key up to "=" (trimmed, lower-cased); undefined when there is no "=". */
  key(): string | undefined {
    const eq = this.s.indexOf('=', this.i);
    if (eq === -1) return undefined;
    const key = this.s.slice(this.i, eq).trim().toLowerCase();
    this.i = eq + 1;
    return key;
  }

  /** A value: quoted (escapes resolved) when it starts with a quote, else up to ";" or "," (trimmed). */
  value(): string | undefined {
    const s = this.s;
    if (s.charCodeAt(this.i) !== QUOTE) {
      const start = this.i;
      while (this.i < s.length && s.charCodeAt(this.i) !== SEMICOLON && s.charCodeAt(this.i) !== COMMA) this.i++;
      return s.slice(start, this.i).trim();
    }
    this.i++;
    const parts: string[] = [];
    let start = this.i;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === BACKSLASH && this.i + 1 < s.length) {
        parts.push(s.slice(start, this.i), s[this.i + 1]!);
        this.i += 2;
        start = this.i;
      } else if (c === QUOTE) {
        parts.push(s.slice(start, this.i));
        this.i++;
        return parts.join('');
      } else this.i++;
    }
    return undefined; // no closing quote
  }

  /** The separator after a pair: ";" or ","; undefined at the end; "bad" for anything else. */
  separator(): ';' | ',' | 'bad' | undefined {
    this.skipSpaces();
    if (this.done) return undefined;
    const c = this.s.charCodeAt(this.i++);
    return c === SEMICOLON ? ';' : c === COMMA ? ',' : 'bad';
  }
}

/**
 * Elements accepted in one header: Envoy adds one per proxy hop, so a real header holds a few.
 * More is malformed (each element costs an object: thousands would cost milliseconds).
 */
export const MAX_XFCC_ELEMENTS = 32;

/** Parses the whole header into its elements, in order (the last one was added by the nearest proxy). */
export function parseXfcc(header: string, maxElements = MAX_XFCC_ELEMENTS): XfccEntry[] | undefined {
  const out: XfccEntry[] = [];
  const t = new Tokenizer(header);
  let entry: XfccEntry = { uri: [], dns: [] };
  for (;;) {
    t.skipSpaces();
    const key = t.key();
    if (key === undefined) return undefined;
    const value = t.value();
    if (value === undefined) return undefined;
    const field = Object.hasOwn(KEYS, key) ? KEYS[key] : undefined;
    if (!field) return undefined;
    if (field === 'uri' || field === 'dns') entry[field].push(value);
    else if (entry[field] !== undefined) return undefined;
    else entry[field] = value;
    const sep = t.separator();
    if (sep === undefined) {
      out.push(entry);
      return out;
    }
    if (sep === 'bad') return undefined;
    if (sep === ',') {
      if (out.length + 1 >= maxElements) return undefined;
      out.push(entry);
      entry = { uri: [], dns: [] };
    }
  }
}
