/**
 * A protobuf writer for the one message zonegate sends, the CheckResponse (response.ts says what
 * goes in it). protobufjs spends ≈ 13 µs per cached allow in `fromObject` and `encode`, about a
 * tenth of zonegate's CPU per Check; this writes the fields straight into one shared buffer, with
 * no objects in between. Like protobufjs it writes every field it is given, defaults included,
 * in field-number order: test/envoy/response.test.ts compares its bytes with protobufjs' and
 * decodes them with @bufbuild/protobuf.
 *
 * State is module-level (one buffer, one position) because a response is written synchronously,
 * start to end, inside written(); nothing else runs in between.
 *
 * The writers never check for room. A write past the end of a typed array is dropped by the
 * language, and the position counts on regardless, so a pass that overflows the buffer ends with
 * the exact size of the response; written() then runs it again in a buffer of that size. Only
 * buf.write, which throws past the end, is guarded (utf8()). A per-write bound against a variable
 * length measured ≈ 10–25 % slower per response than no check at all.
 */

const SIZE = 64 * 1024;
/** Larger than any response grpc-js would send (server.grpc.maxMessageBytes is at most this). */
const MAX = 64 * 1024 * 1024;
const shared = Buffer.allocUnsafe(SIZE);
let buf = shared;
let pos = 0;

export function varint(n: number): void {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
}

export function tag(field: number, wire: 0 | 2): void {
  varint((field << 3) | wire);
}

/** Starts a length-delimited part: one byte reserved for its length, widened by end() when needed. */
export function begin(): number {
  return pos++;
}

/** Ends the part begin() started at `at`, writing its length. */
export function end(at: number): void {
  const start = at + 1;
  const len = pos - start;
  if (len < 128) {
    buf[at] = len;
    return;
  }
  const extra = len < 1 << 14 ? 1 : len < 1 << 21 ? 2 : 3;
  buf.copyWithin(start + extra, start, pos); // clamped to the buffer; an overflowing pass is discarded
  pos = at;
  varint(len);
  pos = start + extra + len;
}

/** `s` as UTF-8 at `at`; returns the position after it, also when it does not fit (then unwritten). */
function utf8(s: string, at: number): number {
  if (at + s.length * 3 <= buf.length) return at + buf.write(s, at, 'utf8');
  const n = Buffer.byteLength(s, 'utf8');
  if (at + n <= buf.length) buf.write(s, at, 'utf8');
  return at + n;
}

/**
 * Most strings of a response are short ASCII (header names, codes, principals): copied in JS,
 * which costs less than a call into buf.write (≈ 0.15 µs each, some twenty per response).
 */
const SHORT = 64;
function writeShort(s: string, at: number): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return utf8(s, at); // rewrites from the start, as UTF-8
    buf[at + i] = c;
  }
  return at + n;
}

/** A string field, written even when empty. */
export function string(field: number, s: string): void {
  tag(field, 2);
  const at = begin();
  pos = s.length <= SHORT ? writeShort(s, pos) : utf8(s, pos);
  end(at);
}

/** A non-negative int32 field (codes, HTTP statuses), written even when 0. */
export function uint(field: number, v: number): void {
  tag(field, 0);
  varint(v);
}

/** A bool field, written even when false. */
export function bool(field: number, v: boolean): void {
  tag(field, 0);
  varint(v ? 1 : 0);
}

/**
 * Runs `write(a, b)` from the start of the shared buffer and returns a copy of what it wrote. A
 * response that does not fit is written again into a buffer of its exact size, which is returned.
 */
export function written<A, B>(write: (a: A, b: B) => void, a: A, b: B): Buffer {
  pos = 0;
  write(a, b);
  return pos <= SIZE ? Buffer.from(shared.subarray(0, pos)) : writtenLarge(write, a, b, pos);
}

function writtenLarge<A, B>(write: (a: A, b: B) => void, a: A, b: B, size: number): Buffer {
  if (size > MAX) throw new Error(`wire: a CheckResponse of ${size} bytes, over ${MAX}`);
  const own = Buffer.allocUnsafe(size);
  buf = own;
  pos = 0;
  try {
    write(a, b);
  } finally {
    buf = shared;
  }
  if (pos !== size) throw new Error(`wire: a CheckResponse measured ${size} bytes and wrote ${pos}`);
  return own;
}
