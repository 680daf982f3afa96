/**
 * What only the node:http2 transport (src/envoy/h2.ts) has: its grpc-timeout parser, a request
 * reassembled from many DATA frames into one buffer of its own, and the bound on the bytes that
 * requests still arriving hold together (released when a call ends, however it ends). The
 * behaviour both transports share is test/envoy-real/transport-conformance.test.ts.
 */
import { connect, type ClientHttp2Session } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkMethod } from '../../src/envoy/proto.js';
import { timeoutMs } from '../../src/envoy/h2.js';
import { checkRequest, startWith, type Started } from '../helpers/zonegate.js';

describe('grpc-timeout', () => {
  it.each([
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3000],
    ['200m', 200],
    ['5000u', 5],
    ['1000000n', 1],
    ['99999999S', 99_999_999_000],
  ])('%s is %d ms', (v, ms) => {
    expect(timeoutMs(v)).toBeCloseTo(ms, 6);
  });

  it.each(['', '1', 'S', '123456789S', '1s', '1 S', ' 1S', '1S ', '-1S', '1.5S', '1S1'])('"%s" is malformed', (v) => {
    expect(timeoutMs(v)).toBeUndefined();
  });
});

describe('the http2 transport on the wire', () => {
  let s: Started;
  beforeAll(async () => {
    s = await startWith({ server: { grpc: { transport: 'http2' } }, peer: { source: 'principal' }, rules: [{ name: 'any', action: 'allow', from: { principals: [{ prefix: 'spiffe://' }] } }] });
  });
  afterAll(async () => s?.close());

  const body = (extra: Record<string, string> = {}) => {
    const b = checkMethod().requestSerialize(checkRequest({ principal: 'spiffe://a.test/x', headers: extra }));
    const f = Buffer.alloc(5 + b.length);
    f.writeUInt32BE(b.length, 1);
    b.copy(f, 5);
    return f;
  };
  const session = () =>
    new Promise<ClientHttp2Session>((resolve, reject) => {
      const c = connect(`http://${s.target}`, { settings: { initialWindowSize: 4 << 20 } });
      c.once('connect', () => resolve(c));
      c.once('error', reject);
    });
  const ping = (c: ClientHttp2Session) => new Promise<void>((resolve, reject) => c.ping((e) => (e ? reject(e) : resolve())));
  /** A call; resolves with grpc-status (and grpc-message) once the server has answered. */
  const open = (c: ClientHttp2Session, headers: Record<string, string> = {}) => {
    const st = c.request({ ':method': 'POST', ':path': '/envoy.service.auth.v3.Authorization/Check', 'content-type': 'application/grpc', ...headers });
    const done = new Promise<{ status: number; message: string }>((resolve) => {
      let status = -1;
      let message = '';
      const take = (h: Record<string, unknown>) => {
        if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
        if (h['grpc-message'] !== undefined) message = decodeURIComponent(String(h['grpc-message']));
      };
      st.on('response', take);
      st.on('trailers', take);
      st.on('data', () => undefined);
      st.on('error', () => undefined);
      st.on('end', () => resolve({ status, message }));
      st.on('close', () => resolve({ status, message }));
    });
    return { st, done };
  };

  it('a message arriving in many DATA frames, the length prefix itself split, is decided as one', async () => {
    const c = await session();
    const f = body({ 'x-pad': 'p'.repeat(20_000) });
    const { st, done } = open(c);
    // a PING round-trip between writes: each piece leaves in a DATA frame of its own
    st.write(f.subarray(0, 2));
    await ping(c);
    for (let at = 2; at < f.length; at += 997) {
      st.write(f.subarray(at, Math.min(f.length, at + 997)));
      if (at % 5 === 0 || at < 5000) await ping(c);
    }
    st.end();
    expect(await done).toEqual({ status: 0, message: '' });
    c.close();
  });

  it('requests still arriving hold at most 64 MiB together: past it RESOURCE_EXHAUSTED; the bytes are let go when a call ends by deadline or reset', async () => {
    const c = await session();
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(1_000_000, 1); // a message of 1 000 000 bytes (the default bound is 1 MiB)
    const fill = Buffer.alloc(990_000, 0x41);
    /** Calls that send all but the last 10 000 bytes of their message; resolves once every byte has left. */
    const partial = async (n: number, headers: Record<string, string> = {}) => {
      const calls: ReturnType<typeof open>[] = [];
      const flushed: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) {
        const call = open(c, headers);
        call.st.write(prefix);
        flushed.push(new Promise((r) => call.st.write(fill, r)));
        calls.push(call);
      }
      await Promise.all(flushed);
      await ping(c);
      return calls;
    };
    const count = (rs: { status: number }[]) => rs.reduce<Record<number, number>>((o, r) => ((o[r.status] = (o[r.status] ?? 0) + 1), o), {});

    // 72 × 990 KB: over the bound; those past it refused at once, the rest end at their deadline
    const first = await partial(72, { 'grpc-timeout': '3S' });
    const over = await Promise.race([Promise.any(first.map((x) => x.done)), new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
    expect(over).toEqual({ status: 8, message: 'requests still arriving hold more than 67108864 bytes' });
    const firstDone = count(await Promise.all(first.map((x) => x.done)));
    expect(Object.keys(firstDone).sort()).toEqual(['4', '8']); // DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED
    for (const x of first) x.st.close();

    // the deadline let go of those bytes (the client never finished them): 60 more fit
    const second = await partial(60);
    expect(await Promise.race([Promise.any(second.map((x) => x.done)), new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))])).toBeUndefined();
    // reset by the client: let go as well, so 60 more still fit
    for (const x of second) x.st.close();
    await Promise.all(second.map((x) => x.done));
    await ping(c);
    const third = await partial(60);
    expect(await Promise.race([Promise.any(third.map((x) => x.done)), new Promise<undefined>((r) => setTimeout(() => r(undefined), 500))])).toBeUndefined();
    // completed, each is decided (1 MB of 'A' is no CheckRequest: INTERNAL), then a small call is allowed
    for (const x of third) x.st.end(Buffer.alloc(10_000, 0x41));
    expect(count(await Promise.all(third.map((x) => x.done)))).toEqual({ 13: 60 });
    const small = open(c);
    small.st.end(body());
    expect(await small.done).toEqual({ status: 0, message: '' });
    c.close();
  }, 60_000);

  it('a call without grpc-timeout whose message never finishes holds its bytes 10 s, not for ever; a Health Watch stays open', async () => {
    const c = await session();
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(1_000_000, 1);
    const fill = Buffer.alloc(990_000, 0x41);
    // the Watch on a connection of its own: the one that holds 64 MiB is past what node:http2 lets
    // one session buffer, and its other streams may be reset (ENHANCE_YOUR_CALM) by the runtime
    const watcher = await session();
    const watch = watcher.request({ ':method': 'POST', ':path': '/grpc.health.v1.Health/Watch', 'content-type': 'application/grpc' });
    let watchEnded = false;
    let watchError: string | undefined;
    watch.on('data', () => undefined);
    watch.on('close', () => (watchEnded = true));
    watch.on('error', (e: Error & { code?: string }) => (watchError ??= e.code ?? e.message));
    watch.end(Buffer.from([0, 0, 0, 0, 0]));
    const started = Date.now();
    // 67 × 990 KB and one call with the rest, without a deadline: the 64 MiB are held to the byte,
    // and nothing would ever free them
    const calls = Array.from({ length: 68 }, () => open(c));
    const rest = Buffer.alloc(64 * 1024 * 1024 - 67 * (5 + fill.length) - 5, 0x41);
    await Promise.all(calls.map((x, i) => (x.st.write(prefix), new Promise((r) => x.st.write(i < 67 ? fill : rest, r)))));
    await ping(c);
    const other = await session();
    const starved = open(other);
    starved.st.end(body());
    expect(await starved.done).toEqual({ status: 8, message: 'requests still arriving hold more than 67108864 bytes' });
    const ended = await Promise.all(calls.map((x) => x.done));
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(ended).toEqual(calls.map(() => ({ status: 4, message: 'the request message did not arrive within 10 s' })));
    // their bytes are let go: another client's call is decided again
    const after = open(other);
    after.st.end(body());
    expect(await after.done).toEqual({ status: 0, message: '' });
    expect({ watchEnded, watchError }).toEqual({ watchEnded: false, watchError: undefined });
    watch.close();
    c.close();
    other.close();
    watcher.close();
  }, 30_000);
});
