import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REASONS } from '../src/errors.js';

const doc = readFileSync(new URL('../docs/reasons.md', import.meta.url), 'utf8');
const rows = [...doc.matchAll(/^\| `(ERR_[A-Z0-9_]+)` \| (deny|error) \| ([A-Z_]+) \| (\d{3}) \|/gm)];

describe('docs/reasons.md', () => {
  it('lists every code exactly once, with its kind and HTTP status', () => {
    const documented = rows.map((r) => r[1]);
    expect(new Set(documented).size).toBe(documented.length);
    expect(documented.sort()).toEqual(Object.keys(REASONS).sort());
    for (const [, code, kind, , http] of rows) {
      const info = REASONS[code as keyof typeof REASONS];
      expect({ code, kind, http: Number(http) }).toEqual({ code, kind: info.kind, http: info.http });
    }
  });

  it('401 goes with UNAUTHENTICATED and 403 with PERMISSION_DENIED', () => {
    for (const info of Object.values(REASONS)) {
      if (info.kind !== 'deny') continue;
      expect([info.http, info.grpc]).toEqual(info.http === 401 ? [401, 16] : [403, 7]);
    }
  });
});
