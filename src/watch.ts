/**
 * Watching files that something else replaces: the config file and the secrets it names, the
 * local SVID and its key, a bundle file. The one way zonegate does it:
 * - each file's directory is watched, not the file: Kubernetes updates a mounted ConfigMap or
 *   Secret by swapping a "..data" symlink, which a watch on the file never sees, and editors and
 *   rotating agents replace a file by rename;
 * - events are debounced: a rotation writes a certificate and its key one after the other, an
 *   editor writes a file in steps;
 * - a slow poll is the backstop where watching is not supported or misses an event (network file
 *   systems, some container runtimes), for callers that have no refresh of their own.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

export interface FileWatchOptions {
  /** Quiet time after the last event before `onChange` runs. */
  readonly debounceMs: number;
  /** The backstop: every `pollMs`, `poll()` says whether to run `onChange` (absent: no poll). */
  readonly pollMs?: number;
  /** What the poll checks; true runs `onChange`. Default: always (for an `onChange` that compares for itself). */
  readonly poll?: () => boolean;
}

interface Directory {
  readonly watcher: FSWatcher;
  /** The watched files in it, as the caller named them. */
  files: string[];
}

/**
 * Runs `onChange(file)` once events settle after a watched file may have changed. `file` is the
 * watched path the last event named, as given; an event that names no file, or the directory's
 * "..data" swap, names the first file watched in that directory; the poll names none (undefined).
 */
export class FileWatch {
  private readonly dirs = new Map<string, Directory>();
  private debounce: NodeJS.Timeout | undefined;
  private readonly poll: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    files: readonly string[],
    private readonly onChange: (file: string | undefined) => void,
    private readonly opts: FileWatchOptions,
  ) {
    this.watch(files);
    if (opts.pollMs !== undefined) {
      this.poll = setInterval(() => {
        if (opts.poll?.() ?? true) this.changed(undefined);
      }, opts.pollMs);
      this.poll.unref();
    }
  }

  /** Watches these files from now on: new directories are watched, those no longer named are let go. */
  watch(files: readonly string[]): void {
    if (this.closed) return;
    const wanted = new Map<string, string[]>();
    for (const f of files) {
      const dir = dirname(resolve(f));
      const names = wanted.get(dir) ?? [];
      if (!names.includes(f)) names.push(f);
      wanted.set(dir, names);
    }
    for (const [dir, d] of this.dirs)
      if (!wanted.has(dir)) {
        d.watcher.close();
        this.dirs.delete(dir);
      }
    for (const [dir, names] of wanted) {
      const known = this.dirs.get(dir);
      if (known) known.files = names;
      else this.watchDirectory(dir, names);
    }
  }

  private watchDirectory(dir: string, files: string[]): void {
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        const n = name?.toString();
        const file = !n || n.startsWith('..') ? d.files[0] : d.files.find((f) => basename(f) === n);
        if (file !== undefined) this.changed(file);
      });
    } catch {
      // no watch support here, or no such directory yet: the poll (or the caller's own refresh)
      // still sees a change, and the next watch() tries again
      return;
    }
    watcher.on('error', () => undefined);
    const d: Directory = { watcher, files };
    this.dirs.set(dir, d);
  }

  private changed(file: string | undefined): void {
    if (this.closed) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.onChange(file), this.opts.debounceMs);
    this.debounce.unref();
  }

  close(): void {
    this.closed = true;
    for (const d of this.dirs.values()) d.watcher.close();
    this.dirs.clear();
    clearTimeout(this.debounce);
    clearInterval(this.poll);
  }
}
