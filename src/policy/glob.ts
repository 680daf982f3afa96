/**
 * Globs matched in time linear in the input: `*` any run of characters except `/`, `**` any run
 * including `/`, `?` one character other than `/`; everything else is literal.
 *
 * A glob compiled to a backtracking RegExp (`/static/*.*` → `[^/]*\.[^/]*`) takes quadratic time
 * on a path of many dots; this one simulates the glob's automaton instead. Its states are the
 * glob's tokens, held as a bit set: each input character costs a few word operations per 32
 * tokens, and the scan stops as soon as no state is left. The literal text before the first and
 * after the last wildcard is checked with startsWith / endsWith first.
 */

const STAR = -1; // `*`: any run without `/`
const GLOBSTAR = -2; // `**`: any run
const ANY = -3; // `?`: one character other than `/`
const SLASH = 0x2f;

/** The glob's tokens: a character code, or one of the wildcards above. Runs of stars collapse. */
function tokenize(glob: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charCodeAt(i);
    if (c === 0x2a /* * */) {
      let t = STAR;
      if (glob.charCodeAt(i + 1) === 0x2a) {
        t = GLOBSTAR;
        i++;
      }
      const last = out[out.length - 1];
      // `*` then `**`, `**` then `*`, `*` then `*`: one star of the wider kind.
      if (last === STAR || last === GLOBSTAR) out[out.length - 1] = last === GLOBSTAR || t === GLOBSTAR ? GLOBSTAR : STAR;
      else out.push(t);
    } else if (c === 0x3f /* ? */) out.push(ANY);
    else out.push(c);
  }
  return out;
}

/**
 * Compiles a glob into a predicate on whole strings.
 *
 *   compileGlob('spiffe://*.consul/ns/*\/dc/*\/svc/web')('spiffe://1a.consul/ns/default/dc/dc1/svc/web') // true
 */
export function compileGlob(glob: string): Glob {
  const tokens = tokenize(glob);
  const wild = tokens.findIndex((t) => t < 0);
  if (wild === -1) return cheap((v) => v === glob); // no wildcard: an exact match
  // Literal head and tail: cheap rejections before any simulation.
  const head = String.fromCharCode(...tokens.slice(0, wild));
  let lastWild = tokens.length - 1;
  while (tokens[lastWild]! >= 0) lastWild--;
  const tail = String.fromCharCode(...tokens.slice(lastWild + 1));
  const minLength = tokens.filter((t) => t >= 0 || t === ANY).length;
  const middle = tokens.slice(wild, lastWild + 1);
  if (middle.length === 1 && middle[0] === GLOBSTAR)
    return cheap((v) => v.length >= minLength && v.startsWith(head) && v.endsWith(tail)); // prefix/**/suffix
  const run = simulator(middle);
  return Object.assign((v: string) => v.length >= minLength && v.startsWith(head) && v.endsWith(tail) && run(v, head.length, v.length - tail.length), {
    scans: true,
  });
}

/**
 * A compiled glob. `scans`: it walks the value character by character (the automaton); false when
 * it only compares its literal ends, which costs no more than an exact or prefix matcher.
 */
export type Glob = ((value: string) => boolean) & { readonly scans: boolean };

const cheap = (test: (value: string) => boolean): Glob => Object.assign(test, { scans: false });

/**
 * The automaton of a token list that starts and ends with a wildcard. State k means "the first k
 * tokens have matched"; state n (all tokens) is accepting. Per character: literal and `?` tokens
 * advance (shift left), stars stay (self-loop); then each star lets its state skip ahead for free
 * (stars never follow each other after tokenize, so one closure step suffices).
 */
function simulator(tokens: readonly number[]): (v: string, from: number, to: number) => boolean {
  const n = tokens.length;
  const words = ((n + 1) >>> 5) + 1; // states 0..n
  const mask = (pred: (t: number) => boolean): Uint32Array => {
    const m = new Uint32Array(words);
    tokens.forEach((t, k) => {
      if (pred(t)) m[k >>> 5]! |= 1 << (k & 31);
    });
    return m;
  };
  const starAny = mask((t) => t === GLOBSTAR); // self-loop on every character
  const starSeg = mask((t) => t === STAR); // self-loop on every character but `/`
  const stars = mask((t) => t === STAR || t === GLOBSTAR); // epsilon: state k → k+1
  const anyOne = mask((t) => t === ANY); // advance on every character but `/`
  const byChar = new Map<number, Uint32Array>(); // advance on this literal character
  for (const t of new Set(tokens)) if (t >= 0) byChar.set(t, mask((u) => u === t));
  if (n < 31) return simulator32(n, byChar, starAny[0]!, starSeg[0]!, stars[0]!, anyOne[0]!);
  const cur = new Uint32Array(words);
  const next = new Uint32Array(words);
  const acceptWord = n >>> 5;
  const acceptBit = 1 << (n & 31);

  const close = (s: Uint32Array): void => {
    // s |= (s & stars) << 1, across words
    let carry = 0;
    for (let w = 0; w < words; w++) {
      const x = s[w]! & stars[w]!;
      const shifted = ((x << 1) | carry) >>> 0;
      carry = x >>> 31;
      s[w] = (s[w]! | shifted) >>> 0;
    }
  };

  return (v, from, to) => {
    cur.fill(0);
    cur[0] = 1;
    close(cur);
    for (let i = from; i < to; i++) {
      const c = v.charCodeAt(i);
      const lit = byChar.get(c);
      const slash = c === SLASH;
      let carry = 0;
      let alive = 0;
      for (let w = 0; w < words; w++) {
        const s = cur[w]!;
        let adv = lit ? s & lit[w]! : 0;
        if (!slash) adv |= s & anyOne[w]!;
        const stay = (s & starAny[w]!) | (slash ? 0 : s & starSeg[w]!);
        const out = (((adv << 1) | carry) | stay) >>> 0;
        carry = adv >>> 31;
        next[w] = out;
        alive |= out;
      }
      if (alive === 0) return false;
      close(next);
      cur.set(next);
    }
    return (cur[acceptWord]! & acceptBit) !== 0;
  };
}

/** The same automaton in one machine word (globs of up to 30 tokens between the literal ends). */
function simulator32(
  n: number,
  byChar: ReadonlyMap<number, Uint32Array>,
  starAny: number,
  starSeg: number,
  stars: number,
  anyOne: number,
): (v: string, from: number, to: number) => boolean {
  const ascii = new Int32Array(128); // literal advance masks for ASCII, the common case
  const other = new Map<number, number>();
  for (const [c, m] of byChar) if (c < 128) ascii[c] = m[0]!;
  else other.set(c, m[0]!);
  const accept = 1 << n;
  return (v, from, to) => {
    let s = 1 | ((1 & stars) << 1);
    for (let i = from; i < to; i++) {
      const c = v.charCodeAt(i);
      const lit = c < 128 ? ascii[c]! : (other.get(c) ?? 0);
      let next: number;
      if (c === SLASH) next = ((s & lit) << 1) | (s & starAny);
      else next = ((s & (lit | anyOne)) << 1) | (s & (starAny | starSeg));
      if (next === 0) return false;
      s = next | ((next & stars) << 1);
    }
    return (s & accept) !== 0;
  };
}
