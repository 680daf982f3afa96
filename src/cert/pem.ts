/**
 * PEM blocks in one linear pass. A lazy regular expression (BEGIN, anything, END) rescans the
 * rest of the text for every BEGIN marker without an END: a header full of unterminated markers
 * then costs quadratic time (≈ 100 ms for 64 KiB). Here every marker is found once, and each
 * BEGIN is paired with the first END of the same label after it, which is exactly what
 * /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g matches.
 */

export interface PemBlock {
  readonly label: string;
  /** The text between the BEGIN and END lines, as found (whitespace included). */
  readonly body: string;
}

const BEGIN = '-----BEGIN ';
const END = '-----END ';
const DASHES = '-----';

/** The label after a marker prefix: a run of [A-Z0-9 ] followed by five dashes; undefined when there is none. */
function labelAt(text: string, from: number): { label: string; end: number } | undefined {
  let i = from;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x20;
    if (!ok) break;
  }
  if (i === from || !text.startsWith(DASHES, i)) return undefined;
  return { label: text.slice(from, i), end: i + DASHES.length };
}

/**
 * Every PEM block of `text`, in order (with `only`, just the blocks of that label, as a regex
 * naming the label would find them). Linear in the length of the text.
 */
export function pemBlocks(text: string, only?: string): PemBlock[] {
  // END markers by label, in order of position; each BEGIN takes the first one past its line.
  const ends = new Map<string, { at: number; end: number }[]>();
  for (let at = text.indexOf(END); at !== -1; at = text.indexOf(END, at + 1)) {
    const l = labelAt(text, at + END.length);
    if (!l) continue;
    let list = ends.get(l.label);
    if (!list) ends.set(l.label, (list = []));
    list.push({ at, end: l.end });
  }
  const next = new Map<string, number>();
  const out: PemBlock[] = [];
  let from = 0;
  for (let at = text.indexOf(BEGIN, from); at !== -1; at = text.indexOf(BEGIN, from)) {
    const l = labelAt(text, at + BEGIN.length);
    const list = l && (only === undefined || l.label === only) ? ends.get(l.label) : undefined;
    if (!l || !list) {
      from = at + 1;
      continue;
    }
    // BEGIN positions only grow, so each label's cursor only moves forward
    let k = next.get(l.label) ?? 0;
    while (k < list.length && list[k]!.at < l.end) k++;
    next.set(l.label, k);
    const close = list[k];
    if (!close) {
      from = at + 1;
      continue;
    }
    out.push({ label: l.label, body: text.slice(l.end, close.at) });
    from = close.end;
  }
  return out;
}
