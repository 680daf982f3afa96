import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GrpcCode, REASONS } from '../src/errors.js';

const doc = readFileSync(new URL('../docs/reasons.md', import.meta.url), 'utf8');
/** Every row of the code table, however it is written: a row this test cannot read fails below. */
const tableRows = doc.split('\n').filter((l) => l.startsWith('| `ERR_'));
const rows = tableRows.map((l) => /^\| `(ERR_[A-Z0-9_]+)` \| (deny|error) \| ([A-Z_]+) \| (\d{3}) \|/.exec(l));
const grpcName = (code: number) => Object.entries(GrpcCode).find(([, n]) => n === code)?.[0];

describe('docs/reasons.md', () => {
  it('lists every code exactly once, with its kind, gRPC status and HTTP status', () => {
    expect(tableRows.filter((_, i) => rows[i] === null), 'rows not of the form | `CODE` | kind | GRPC_STATUS | HTTP |').toEqual([]);
    const documented = rows.map((r) => r![1]!);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual(Object.keys(REASONS).sort());
    const table = Object.entries(REASONS).map(([code, info]) => ({ code, kind: info.kind, grpc: grpcName(info.grpc), http: info.http }));
    const docTable = rows.map((r) => ({ code: r![1]!, kind: r![2]!, grpc: r![3]!, http: Number(r![4]) }));
    expect(docTable.sort((a, b) => a.code.localeCompare(b.code))).toEqual(table.sort((a, b) => a.code.localeCompare(b.code)));
  });

  it('401 goes with UNAUTHENTICATED and 403 with PERMISSION_DENIED', () => {
    const denies = Object.values(REASONS).filter((info) => info.kind === 'deny');
    expect(denies.length).toBeGreaterThan(20);
    for (const info of denies) expect([info.http, info.grpc]).toEqual(info.http === 401 ? [401, 16] : [403, 7]);
  });
});
