/**
 * A strict reader for the HCL the Consul guide ships (service registrations, consul-template
 * configs): attributes `key = value`, blocks `key ["label"…] { … }`, strings, numbers, booleans,
 * lists and objects, `#`, `//` and `/* *\/` comments. Anything else is an error with its line, so
 * a stray brace or a missing `=` fails the test instead of passing as text.
 *
 * Blocks become arrays of their bodies (a block may repeat: `template { … } template { … }`), with
 * labels, when present, under `__labels`; a repeated attribute is an error.
 */
type Value = string | number | boolean | Value[] | { [k: string]: Value };
export type HclBody = Record<string, Value>;

export function parseHcl(text: string): HclBody {
  let i = 0;
  const line = () => text.slice(0, i).split('\n').length;
  const fail = (what: string): never => {
    throw new Error(`hcl: line ${line()}: ${what}`);
  };

  /** Skips blanks and comments; with `newlines` false, stops at a newline (attribute ends). */
  const skip = (newlines = true) => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\r' || (newlines && c === '\n')) i++;
      else if (c === '#' || (c === '/' && text[i + 1] === '/')) while (i < text.length && text[i] !== '\n') i++;
      else if (c === '/' && text[i + 1] === '*') {
        const end = text.indexOf('*/', i + 2);
        if (end < 0) fail('unterminated comment');
        i = end + 2;
      } else return;
    }
  };

  const ident = (): string => {
    const m = /^[A-Za-z_][\w-]*/.exec(text.slice(i));
    if (!m) return fail(`expected a name, found ${JSON.stringify(text.slice(i, i + 10))}`);
    i += m[0].length;
    return m[0];
  };

  const string = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      const c = text[i++];
      if (c === undefined || c === '\n') return fail('unterminated string');
      if (c === '"') return out;
      if (c === '\\') {
        const e = text[i++];
        const map: Record<string, string> = { n: '\n', t: '\t', '"': '"', '\\': '\\' };
        if (e === undefined || !(e in map)) return fail(`unknown escape \\${e ?? ''}`);
        out += map[e];
      } else out += c;
    }
  };

  const value = (): Value => {
    skip();
    const c = text[i];
    if (c === '"') return string();
    if (c === '[') {
      i++;
      const list: Value[] = [];
      for (;;) {
        skip();
        if (text[i] === ']') return i++, list;
        list.push(value());
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== ']') fail('expected , or ] in a list');
      }
    }
    if (c === '{') {
      i++;
      const obj = body('}');
      i++;
      return obj;
    }
    const m = /^(true|false|-?\d+(\.\d+)?)\b/.exec(text.slice(i));
    if (!m) return fail(`expected a value, found ${JSON.stringify(text.slice(i, i + 10))}`);
    i += m[0].length;
    if (m[1] === 'true' || m[1] === 'false') return m[1] === 'true';
    // HCL reads a leading 0 as octal (consul-template's perms = 0644)
    return /^0\d+$/.test(m[1]!) ? parseInt(m[1]!, 8) : Number(m[1]);
  };

  /** Items until `close` (a `}`, or the end of the text for the top level). */
  const body = (close: '}' | ''): HclBody => {
    const out: HclBody = {};
    for (;;) {
      skip();
      if (close === '' ? i >= text.length : text[i] === close) return out;
      if (i >= text.length) fail('unexpected end: missing }');
      const key = ident();
      skip(false);
      if (text[i] === '=') {
        i++;
        if (key in out) fail(`"${key}" is set twice`);
        out[key] = value();
        skip(false);
        if (text[i] === ',') i++; // object items inside lists may be comma-separated
        else if (text[i] !== '\n' && text[i] !== close && i < text.length) fail(`expected the end of "${key}"`);
      } else {
        const labels: string[] = [];
        while (text[i] === '"') {
          labels.push(string());
          skip(false);
        }
        if (text[i] !== '{') fail(`expected = or { after "${key}"`);
        i++;
        const b = body('}');
        i++;
        if (labels.length > 0) b.__labels = labels;
        const prev = out[key];
        if (prev !== undefined && !Array.isArray(prev)) fail(`"${key}" is both an attribute and a block`);
        out[key] = [...((prev as Value[] | undefined) ?? []), b];
      }
    }
  };

  return body('');
}
