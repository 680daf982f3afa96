/** The image runs zonegate on Node 24 LTS with the V8 flag the benchmark measures it with. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');

describe('Dockerfile', () => {
  it('both stages are Node 24; the entry point bounds the young and the old generation as the benchmark does (bench/harness.ts)', () => {
    expect([...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1])).toEqual(['node:24-bookworm-slim', 'node:24-bookworm-slim']);
    const entry = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
    expect(entry).toEqual(['node', '--max-semi-space-size=16', '--heap-growing-percent=100', 'bin/zonegate.js']);
    const bench = readFileSync(new URL('bench/harness.ts', root), 'utf8');
    const flags = /IMAGE_NODE_FLAGS = (\[.*\]);/.exec(bench)![1]!;
    expect(JSON.parse(flags.replaceAll("'", '"'))).toEqual(entry.slice(1, -1));
  });
});
