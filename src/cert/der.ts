/**
 * A minimal DER reader: just enough to read the X.509 extensions node:crypto does not expose
 * (basicConstraints with pathLen, keyUsage bits, URI SANs, criticality). Throws on malformed input.
 */
export interface Tlv {
  readonly tag: number;
  /** Offset of the contents in the buffer. */
  readonly start: number;
  readonly end: number;
}

export class DerError extends Error {}

/** Reads the TLV at `pos`. */
export function readTlv(buf: Uint8Array, pos: number, limit = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError('der: truncated');
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('der: high tag numbers are not supported');
  let len = buf[pos + 1]!;
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('der: unsupported length');
    if (p + n > limit) throw new DerError('der: truncated length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i]!;
    p += n;
  }
  if (p + len > limit) throw new DerError('der: content runs past its container');
  return { tag, start: p, end: p + len };
}

/** The TLVs directly inside a constructed TLV. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.start;
  while (p < parent.end) {
    const t = readTlv(buf, p, parent.end);
    out.push(t);
    p = t.end;
  }
  return out;
}

/** Dotted OID string from an OBJECT IDENTIFIER's contents. */
export function oid(buf: Uint8Array, t: Tlv): string {
  if (t.tag !== 0x06 || t.end <= t.start) throw new DerError('der: expected an OID');
  const parts: number[] = [];
  let v = 0;
  for (let i = t.start; i < t.end; i++) {
    v = v * 128 + (buf[i]! & 0x7f);
    if (!(buf[i]! & 0x80)) {
      if (parts.length === 0) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** Non-negative INTEGER (small). */
export function int(buf: Uint8Array, t: Tlv): number {
  if (t.tag !== 0x02 || t.end <= t.start || t.end - t.start > 6) throw new DerError('der: expected a small INTEGER');
  if (buf[t.start]! & 0x80) throw new DerError('der: negative INTEGER');
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + buf[i]!;
  return v;
}
