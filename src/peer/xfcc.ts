/**
 * Parses Envoy's x-forwarded-client-cert header: elements separated by ",", key=value pairs by
 * ";", values optionally double-quoted (a quoted value may contain "," ";" "=" and \" escapes).
 * Keys: By, Hash, Cert, Chain, Subject, URI, DNS. Returns undefined when the header is malformed.
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

/** Parses the whole header into its elements, in order (the last one was added by the nearest proxy). */
export function parseXfcc(header: string): XfccEntry[] | undefined {
  const out: XfccEntry[] = [];
  let entry: XfccEntry = { uri: [], dns: [] };
  let i = 0;
  const n = header.length;
  const skipSpaces = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  while (i <= n) {
    skipSpaces();
    const eq = header.indexOf('=', i);
    if (eq === -1) return undefined;
    const key = header.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    let value = '';
    if (header[i] === '"') {
      i++;
      let closed = false;
      while (i < n) {
        const c = header[i];
        if (c === '\\' && i + 1 < n) {
          value += header[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return undefined;
    } else {
      const start = i;
      while (i < n && header[i] !== ';' && header[i] !== ',') i++;
      value = header.slice(start, i).trim();
    }
    const field = KEYS[key];
    if (!field) return undefined;
    if (field === 'uri' || field === 'dns') entry[field].push(value);
    else if (entry[field] !== undefined) return undefined;
    else entry[field] = value;
    skipSpaces();
    if (i >= n) {
      out.push(entry);
      break;
    }
    const sep = header[i];
    i++;
    if (sep === ',') {
      out.push(entry);
      entry = { uri: [], dns: [] };
    } else if (sep !== ';') return undefined;
  }
  return out;
}
