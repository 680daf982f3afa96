/**
 * Loopback HTTP in the tests: a programmable HTTP(S) server (a bundle endpoint, Consul's API, a
 * misbehaving server), an echo app that answers with the request it received, one client for
 * HTTP(S) calls (over TCP or a Unix socket), and ports chosen before a config names them.
 */
import { X509Certificate } from 'node:crypto';
import { createServer as createHttp, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { freePorts } from '../../src/demo/ports.js';

export { freePorts };

/** One port nothing listens on now, on 127.0.0.1 (see freePorts). */
export const freePort = async (): Promise<number> => (await freePorts(1))[0]!;

// ---- servers ---------------------------------------------------------------------------------

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface TestServer {
  readonly url: string;
  readonly port: number;
  handler: Handler;
  requests: number;
  /** Replaces the TLS certificate for new connections (HTTPS only). */
  setCert(tls: { cert: string; key: string }): void;
  close(): Promise<void>;
}

/**
 * Starts an HTTPS server (or plain HTTP when no cert is given) on 127.0.0.1:0 with a replaceable handler.
 * `ciphers` may lower OpenSSL's security level for a server that must present a weak key on
 * purpose: from OpenSSL 3.2 on (Node 24 has 3.5) the default level 2 refuses to load a 1024-bit RSA key.
 */
export async function testServer(tls: { cert: string; key: string; ciphers?: string } | undefined, handler: Handler): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const self: TestServer = {
    url: '',
    port: 0,
    handler,
    requests: 0,
    setCert: (t) => (server as Server).setSecureContext(t),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    self.requests++;
    self.handler(req, res);
  };
  const server: Server | ReturnType<typeof createHttp> = tls ? createServer(tls, onRequest) : createHttp(onRequest);
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  server.on('connection', track);
  server.on('secureConnection', track);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(self, { port, url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/bundle` });
}

/** A request as the echo app received it (and as it answers it, in JSON). */
export interface Seen {
  readonly method: string;
  /** The request target as received (path and query). */
  readonly path: string;
  /** Node's view: names in lower case, a repeated header joined. */
  readonly headers: IncomingHttpHeaders;
  /** Every header line as received, in order, names in lower case: a repeated header is several lines. */
  readonly lines: readonly (readonly [string, string])[];
}

export interface EchoApp {
  readonly port: number;
  /** Every request received, in order. */
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** Every value the app received for `name`, in order (a header sent twice gives two). */
export const valuesOf = (seen: Seen, name: string): string[] => seen.lines.filter(([n]) => n === name).map(([, v]) => v);

/** An HTTP/1.1 app on 127.0.0.1:0 that answers 200 with the request it received as JSON (a Seen) and `x-echo: <name>`. */
export async function echoApp(name = 'upstream'): Promise<EchoApp> {
  const seen: Seen[] = [];
  const server = await testServer(undefined, (req, res) => {
    const lines: [string, string][] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) lines.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
    const s: Seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, lines };
    seen.push(s);
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': name }).end(JSON.stringify(s));
  });
  return { port: server.port, seen, close: () => server.close() };
}

// ---- the client ------------------------------------------------------------------------------

export interface CallOptions {
  /** A TCP port on 127.0.0.1, or a Unix socket path. */
  readonly to: number | string;
  readonly method?: string;
  /** Default "/". */
  readonly path?: string;
  /** Header values; an array sends the header once per value. */
  readonly headers?: Record<string, string | string[]>;
  /**
   * HTTPS, with this client certificate (chain) and key when given. With `ca` the server's
   * certificate must chain to it and, with `spiffePrefix`, carry a URI SAN starting so (an
   * X509-SVID names a SPIFFE ID, not a host), else its host name must be localhost; without
   * `ca` it is not checked.
   */
  readonly tls?: { readonly cert?: string | Buffer; readonly key?: string | Buffer; readonly ca?: string | Buffer; readonly spiffePrefix?: string };
  /** Default 10 s. */
  readonly timeoutMs?: number;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The body as JSON (undefined when it is not). */
  readonly json: any;
  /** zonegate's x-zonegate-reason header, when there is one. */
  readonly reason?: string;
  /** What an echo app received, when the request reached one. */
  readonly seen?: Seen;
}

/** One HTTP/1.1 request over a fresh connection; resolves with the reply, rejects on a connection, TLS or time-out failure. */
export function call(o: CallOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const target = typeof o.to === 'number' ? { host: '127.0.0.1', port: o.to } : { socketPath: o.to };
    const common = { ...target, method: o.method ?? 'GET', path: o.path ?? '/', headers: o.headers ?? {}, agent: false as const };
    const onRes = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          json = undefined;
        }
        const reason = res.headers['x-zonegate-reason'];
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json,
          ...(typeof reason === 'string' ? { reason } : {}),
          ...(res.headers['x-echo'] !== undefined && json ? { seen: json as Seen } : {}),
        });
      });
    };
    const t = o.tls;
    const tls = t && {
      ...(t.cert !== undefined ? { cert: t.cert } : {}),
      ...(t.key !== undefined ? { key: t.key } : {}),
      ...(t.ca === undefined ? { rejectUnauthorized: false } : { ca: t.ca, servername: 'localhost' }),
      ...(t.spiffePrefix === undefined
        ? {}
        : {
            checkServerIdentity: (_host: string, cert: { raw: Buffer }) =>
              (new X509Certificate(cert.raw).subjectAltName ?? '').includes(`URI:${t.spiffePrefix}`) ? undefined : new Error(`the server is not ${t.spiffePrefix}…`),
          }),
    };
    const req = tls ? httpsRequest({ ...common, ...tls }, onRes) : httpRequest(common, onRes);
    req.setTimeout(o.timeoutMs ?? 10_000, () => req.destroy(new Error(`call: no answer in ${(o.timeoutMs ?? 10_000) / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}
