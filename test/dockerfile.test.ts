/** The image runs zonegate on Node 24 LTS with the V8 flags the benchmark measures it with. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../', import.meta.url);
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');

describe('Dockerfile', () => {
  it('both stages are Node 24; the entry point bounds the young and the old generation as bench/run.ts does', () => {
    expect([...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])).toEqual(['node:24-bookworm-slim', 'node:24-bookworm-slim']);
    const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(entry).toEqual(['node', '--max-semi-space-size=16', '--heap-growing-percent=100', 'bin/zonegate.js']);
    const bench = readFileSync(new URL('bench/run.ts', root), 'utf8');
    for (const flag of entry.slice(1, -1)) expect(bench, flag).toContain(`'${flag}'`);
  });
});
