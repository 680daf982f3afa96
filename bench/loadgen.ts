/**
 * A load generator for requests that change one by one, which h2load cannot send (it repeats one
 * body and one set of headers). One process of several (bench/run.ts starts them), node:http2
 * sessions, in one of two modes:
 * - gRPC (the default): pre-serialized, length-prefixed CheckRequest frames, either from a frames
 *   file (this process takes every Kth) or minted here (a distinct common identity per request,
 *   spliced into a template frame);
 * - HTTP (`http`): a GET to `http.path` carrying a token in the header `http.tokenHeader`, minted
 *   here from the template (distinct per request) or one fixed `token`; the status is `:status`,
 *   and a request succeeds on 200 (the Envoy path: a client in front of Envoy).
 * With `presign`, every token is signed before the clock starts.
 *
 * Protocol: the job is JSON in argv[2]; the process prints "ready", waits for a line on stdin,
 * runs, and prints one JSON result line. Closed loop: `connections × streams` requests in flight
 * until `requests` are done. Fixed rate: requests started on a 1 ms tick at `rate`/s for
 * `seconds`, latency measured from each request's start.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { createInterface } from 'node:readline';

export interface Job {
  readonly port: number;
  readonly connections: number;
  readonly streams: number;
  readonly requests?: number;
  readonly rate?: number;
  readonly seconds?: number;
  /** This process's index and the number of processes sharing the work. */
  readonly index: number;
  readonly of: number;
  readonly frames?: string;
  /** Reuse frames from the start when they run out (the floor and hot ceilings). */
  readonly repeat?: boolean;
  readonly template?: string;
  readonly presign?: boolean;
  /** HTTP mode: GET `path` with the token in `tokenHeader` (instead of gRPC Check frames). */
  readonly http?: { readonly path: string; readonly tokenHeader: string };
  /** HTTP mode: this token on every request (the generator's ceiling with a repeated request). */
  readonly token?: string;
  /** Leave latencies out of the result (long runs). */
  readonly noLatencies?: boolean;
}

export interface Result {
  readonly done: number;
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly latenciesUs?: number[];
  readonly statuses: Record<string, number>;
  readonly error?: string;
}

const MAX_IN_FLIGHT = 800;
const PATH = '/envoy.service.auth.v3.Authorization/Check';
const HEADERS = { ':method': 'POST', ':path': PATH, 'content-type': 'application/grpc', te: 'trailers' };

function readFrames(file: string, index: number, of: number): Buffer[] {
  const all = readFileSync(file);
  const out: Buffer[] = [];
  let i = 0;
  for (let pos = 0; pos < all.length; i++) {
    const len = 5 + all.readUInt32BE(pos + 1);
    if (i % of === index) out.push(all.subarray(pos, pos + len));
    pos += len;
  }
  return out;
}

interface Template {
  alg: 'ES256' | 'EdDSA' | 'RS256';
  keyPem: string;
  prefix: string;
  suffix: string;
  header: string;
  claims: Record<string, unknown>;
  tokenLength: number;
}

/** Distinct tokens: jti = "<process>-<counter>", zero-padded to the template's width. */
function minter(file: string, index: number): { token: () => string; frame: (token: string) => Buffer } {
  const t = JSON.parse(readFileSync(file, 'utf8')) as Template;
  const key: KeyObject = createPrivateKey(t.keyPem);
  const prefix = Buffer.from(t.prefix, 'base64');
  const suffix = Buffer.from(t.suffix, 'base64');
  const width = (t.claims.jti as string).length;
  const hash = t.alg === 'EdDSA' ? null : 'sha256';
  const opts = t.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key;
  let n = 0;
  const next = () => {
    const jti = `${index}-${n++}`.padStart(width, '0');
    const input = `${t.header}.${Buffer.from(JSON.stringify({ ...t.claims, jti })).toString('base64url')}`;
    const token = `${input}.${sign(hash, Buffer.from(input), opts).toString('base64url')}`;
    if (token.length !== t.tokenLength) throw new Error(`token length ${token.length}, template ${t.tokenLength}`);
    return token;
  };
  return { token: next, frame: (token) => Buffer.concat([prefix, Buffer.from(token), suffix]) };
}

/** What one request carries: a gRPC frame, or (HTTP mode) a token. */
type Payload = Buffer | string;

function source(job: Job, total: number): () => Payload | undefined {
  if (job.http && job.token !== undefined) {
    const token = job.token;
    return () => token;
  }
  if (job.frames) {
    if (job.http) throw new Error('HTTP mode takes a token or a template, not frames');
    // a single repeated frame (floor, hot) is every process's
    let frames = readFrames(job.frames, job.index, job.of);
    if (frames.length === 0 && job.repeat) frames = readFrames(job.frames, 0, 1);
    if (frames.length === 0) throw new Error('no frames for this process');
    let i = 0;
    return () => (i < frames.length ? frames[i++] : job.repeat ? frames[i++ % frames.length] : undefined);
  }
  if (!job.template) throw new Error('job has neither frames, template nor token');
  const m = minter(job.template, job.index);
  const next: () => Payload = job.http ? m.token : () => m.frame(m.token());
  if (!job.presign) return next;
  const pre = Array.from({ length: total }, next);
  let i = 0;
  return () => pre[i++];
}

async function connect(port: number): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(`http://127.0.0.1:${port}`, { settings: { enablePush: false, initialWindowSize: 1 << 20 } });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  s.on('error', () => undefined); // counted per stream
  return s;
}

/** One call; resolves with its gRPC status (gRPC mode) or its HTTP status (HTTP mode), or an error. */
function call(s: http2.ClientHttp2Session, payload: Payload, http: Job['http']): Promise<string> {
  return new Promise((resolve) => {
    let status = 'no-status';
    let req: http2.ClientHttp2Stream;
    try {
      req = http
        ? s.request({ ':method': 'GET', ':path': http.path, [http.tokenHeader]: payload as string }, { endStream: true })
        : s.request(HEADERS);
    } catch (e) {
      resolve(`error: ${(e as Error).message.slice(0, 60)}`);
      return;
    }
    req.on('response', (h) => {
      if (http) status = String(h[':status']);
      else if (h['grpc-status'] !== undefined) status = String(h['grpc-status']);
    });
    req.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) status = String(t['grpc-status']);
    });
    req.on('data', () => undefined);
    req.on('error', (e: Error) => (status = `error: ${e.message.slice(0, 60)}`));
    req.on('close', () => resolve(status));
    if (!http) req.end(payload);
  });
}

async function run(job: Job): Promise<Result> {
  const total = job.requests ?? Math.round(((job.rate ?? 0) / job.of) * (job.seconds ?? 0));
  const next = source(job, total);
  const sessions = await Promise.all(Array.from({ length: job.connections }, () => connect(job.port)));
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => createInterface({ input: process.stdin }).once('line', () => resolve()));

  const lat = job.noLatencies ? undefined : new Float64Array(total);
  const statuses: Record<string, number> = {};
  let started = 0;
  let done = 0;
  let ok = 0;
  const success = job.http ? '200' : '0';
  const t0 = process.hrtime.bigint();
  const one = async (s: http2.ClientHttp2Session): Promise<boolean> => {
    if (started >= total) return false;
    const payload = next();
    if (payload === undefined) return false;
    const i = started++;
    const t = process.hrtime.bigint();
    const status = await call(s, payload, job.http);
    if (lat) lat[i] = Number(process.hrtime.bigint() - t) / 1000;
    statuses[status] = (statuses[status] ?? 0) + 1;
    done++;
    if (status === success) ok++;
    return true;
  };

  if (job.requests !== undefined) {
    const loops = sessions.flatMap((s) => Array.from({ length: job.streams }, async () => {
      while (await one(s));
    }));
    await Promise.all(loops);
  } else {
    const perMs = (job.rate ?? 0) / job.of / 1000;
    const inFlight = new Set<Promise<boolean>>();
    let k = 0;
    await new Promise<void>((resolve) => {
      const tick = setInterval(() => {
        const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - t0) / 1e6) * perMs));
        // Below the server's 1000 streams per connection: past that the rate is not reached, and
        // the result's rps says so.
        while (started < due && inFlight.size < MAX_IN_FLIGHT) {
          const p = one(sessions[k++ % sessions.length]!);
          inFlight.add(p);
          void p.then(() => inFlight.delete(p));
        }
        if (started >= total) {
          clearInterval(tick);
          resolve();
        }
      }, 1);
    });
    await Promise.all(inFlight);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const s of sessions) s.close();
  return { done, ok, failed: done - ok, seconds, statuses, ...(lat ? { latenciesUs: Array.from(lat.subarray(0, done)) } : {}) };
}

if (process.argv[2]) {
  run(JSON.parse(process.argv[2]) as Job).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0)),
    (err: Error) => {
      process.stdout.write(`${JSON.stringify({ done: 0, ok: 0, failed: 0, seconds: 0, statuses: {}, error: err.message })}\n`, () => process.exit(1));
    },
  );
}
