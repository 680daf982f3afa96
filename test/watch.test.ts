/**
 * The one file-watch helper (src/watch.ts) that the config reload, the local SVID and file bundle
 * sources use: directory watches (Kubernetes' "..data" symlink swap included), one debounced call
 * per burst of events, the poll as a backstop, and nothing after close().
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileWatch } from '../src/watch.js';

const dirs: string[] = [];
const watches: FileWatch[] = [];
afterEach(() => {
  for (const w of watches.splice(0)) w.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'zg-watch-'));
  dirs.push(d);
  return d;
}

/** A FileWatch that records what it reported. */
function recorder(files: string[], opts: ConstructorParameters<typeof FileWatch>[2]) {
  const calls: (string | undefined)[] = [];
  const w = new FileWatch(files, (f) => calls.push(f), opts);
  watches.push(w);
  return { w, calls };
}

const settle = (ms = 250) => new Promise((r) => setTimeout(r, ms));

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  for (let t = 0; t < ms && !ok(); t += 20) await new Promise((r) => setTimeout(r, 20));
}

describe('FileWatch', () => {
  it('reports a burst of writes to a watched file once, naming the file; other files in the directory are ignored', async () => {
    const d = tmp();
    const f = join(d, 'a.pem');
    writeFileSync(f, '1');
    const { calls } = recorder([f], { debounceMs: 100 });
    writeFileSync(join(d, 'unrelated.txt'), 'x');
    await settle();
    expect(calls).toEqual([]);
    for (let i = 0; i < 5; i++) writeFileSync(f, String(i));
    await until(() => calls.length > 0);
    await settle();
    expect(calls).toEqual([f]);
  });

  it('sees a replacement by rename and a "..data" symlink swap (how Kubernetes updates a mounted Secret)', async () => {
    const d = tmp();
    const f = join(d, 'cert.pem');
    const g = join(d, 'key.pem');
    writeFileSync(f, 'old');
    writeFileSync(g, 'old');
    const { calls } = recorder([f, g], { debounceMs: 30 });
    writeFileSync(join(d, '.key.tmp'), 'new');
    renameSync(join(d, '.key.tmp'), g);
    await until(() => calls.length > 0);
    expect(calls).toEqual([g]);
    // the swap names "..data" (or "..2024_…"), no watched file: reported as the directory's first file
    mkdirSync(join(d, '..v2'));
    symlinkSync('..v2', join(d, '..data_tmp'));
    renameSync(join(d, '..data_tmp'), join(d, '..data'));
    await until(() => calls.length > 1);
    expect(calls[1]).toBe(f);
  });

  it('polls as a backstop: reports (naming no file) only when poll() says the files changed', async () => {
    const d = tmp();
    let changed = false;
    const { calls } = recorder([join(d, 'missing-dir', 'x.yaml')], { debounceMs: 10, pollMs: 40, poll: () => changed });
    await settle(200);
    expect(calls).toEqual([]);
    changed = true;
    await until(() => calls.length > 0);
    expect(calls[0]).toBeUndefined();
  });

  it('watch() moves to the files named now: a directory no longer named is let go', async () => {
    const a = tmp();
    const b = tmp();
    const fa = join(a, 'secret');
    const fb = join(b, 'secret');
    writeFileSync(fa, '1');
    writeFileSync(fb, '1');
    const { w, calls } = recorder([fa], { debounceMs: 20 });
    w.watch([fb]);
    writeFileSync(fa, '2');
    await settle(200);
    expect(calls).toEqual([]);
    writeFileSync(fb, '2');
    await until(() => calls.length > 0);
    expect(calls).toEqual([fb]);
  });

  it('reports nothing after close(), not even a change already being debounced', async () => {
    const d = tmp();
    const f = join(d, 'x');
    writeFileSync(f, '1');
    const { w, calls } = recorder([f], { debounceMs: 150, pollMs: 20 });
    writeFileSync(f, '2');
    await settle(50);
    w.close();
    writeFileSync(f, '3');
    await settle(300);
    expect(calls).toEqual([]);
  });
});
