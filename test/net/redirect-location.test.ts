/**
 * A server zonegate fetches from (a bundle endpoint, Consul, an OIDC issuer) decides what its
 * Location header says. One that is not a URL fails that fetch; it used to throw inside the
 * response's 'end' handler, where nothing catches, and end the process.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { boundedGet, FetchError } from '../../src/net/fetch.js';

const LIMITS = { connectTimeoutMs: 2000, totalTimeoutMs: 5000, maxBytes: 1024, maxKeys: 1000 };
let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

async function serving(location: string): Promise<string> {
  server = createServer((_req, res) => res.writeHead(302, { location }).end());
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`;
}

describe('boundedGet: the Location of a redirect', () => {
  it('a Location that is not a URL rejects the fetch (the process keeps running)', async () => {
    const url = await serving('http://[');
    const err = await boundedGet(url, { kind: 'http' }, LIMITS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect(err).toMatchObject({ kind: 'network', message: `fetch: ${url} redirects to a Location that is not a URL` });
  });

  it('a relative Location is resolved against the request URL', async () => {
    const url = await serving('../other/keys?x=1');
    const r = await boundedGet(url, { kind: 'http' }, LIMITS);
    expect(r.status).toBe(302);
    expect(r.location).toBe(new URL('/other/keys?x=1', url).toString());
  });
});
