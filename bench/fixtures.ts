/**
 * The benchmark's own trust domain, config and request frames, built in code: a root and an
 * intermediate CA, one X509-SVID per token algorithm (same SPIFFE ID), a config that verifies the
 * peer certificate and a common identity token on every request, and pre-serialized,
 * length-prefixed CheckRequest frames.
 *
 * Distinct tokens are produced by splicing: every token of one template has the same length (a
 * fixed-width jti, fixed iat/exp, fixed-size signatures), so a frame is `prefix + token + suffix`
 * with every protobuf length unchanged. The load generator signs them (bench/loadgen.ts).
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryCA, type KeyType } from '../src/demo/pki.js';
import { checkMethod } from '../src/envoy/proto.js';
import { mintCommonIdentity } from '../src/identity/mint.js';
import { parseCertificates } from '../src/cert/parse.js';
import { SpiffeId } from '../src/spiffe/id.js';
import type { LocalSvid } from '../src/svid/local.js';

export const TRUST_DOMAIN = 'zone-a.bench';
export const PEER_ID = `spiffe://${TRUST_DOMAIN}/ns/shop/sa/frontend`;
export const AUDIENCE = `spiffe://${TRUST_DOMAIN}`;
export const TOKEN_HEADER = 'x-common-identity';
/** Tokens live this long, so a long run (1M tokens) never sees one expire. */
const TTL_SECONDS = 3000;

export type TokenAlg = 'ES256' | 'EdDSA' | 'RS256';
const KEY_TYPE: Record<TokenAlg, KeyType> = { ES256: 'P-256', EdDSA: 'Ed25519', RS256: 'RSA' };

export interface BenchPki {
  readonly dir: string;
  readonly inter: MemoryCA;
  readonly svids: Record<TokenAlg, LocalSvid & { certPemEncoded: string }>;
}

function localSvid(certPem: string, chainPem: string, keyPem: string): LocalSvid & { certPemEncoded: string } {
  return {
    id: SpiffeId.parse(PEER_ID),
    chain: parseCertificates(chainPem),
    key: createPrivateKey(keyPem),
    certPem: chainPem,
    keyPem,
    // Envoy forwards the leaf only, URL-encoded; the config supplies the intermediate
    certPemEncoded: encodeURIComponent(certPem),
  };
}

/** Builds the CAs and SVIDs and writes root.pem, intermediate.pem and zonegate.yaml into `dir`. */
export async function createPki(dir: string): Promise<BenchPki> {
  const root = await MemoryCA.create(TRUST_DOMAIN, { keyType: 'P-256', sharedLeafKeys: true });
  const inter = await root.intermediate();
  writeFileSync(join(dir, 'root.pem'), root.certPem);
  writeFileSync(join(dir, 'intermediate.pem'), inter.certPem);
  const svids = {} as BenchPki['svids'];
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
    const s = await inter.issue(PEER_ID, { keyType: KEY_TYPE[alg] });
    svids[alg] = localSvid(s.certPem, s.chainPem, s.keyPem);
  }
  return { dir, inter, svids };
}

/**
 * The zonegate config of every zonegate scenario (ports from the environment). `transport` picks
 * the Check server's transport (server.grpc.transport), left to zonegate's default when unset.
 */
export function writeConfig(dir: string, cache: Record<string, number> = {}, o: { transport?: string; name?: string } = {}): string {
  const yaml = `server:
${o.transport ? `  grpc:\n    transport: ${o.transport}\n` : ''}  drainDelaySeconds: 0
  shutdownGraceSeconds: 2
log:
  level: info
peer:
  source: certificate
trust:
  - trustDomain: ${TRUST_DOMAIN}
    bundle: root.pem
    intermediates: intermediate.pem
commonIdentity:
  header: ${TOKEN_HEADER}
  audiences: [${AUDIENCE}]
  maxLifetimeSeconds: 3600
rules:
  - name: frontend-calls-api
    action: allow
    from:
      principals: [${PEER_ID}]
    to:
      methods: [GET, POST]
      paths: [{ prefix: /api/ }]
${Object.keys(cache).length ? `cache:\n${Object.entries(cache).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n` : ''}`;
  const file = join(dir, o.name ?? 'zonegate.yaml');
  writeFileSync(file, yaml);
  return file;
}

/** A CheckRequest as Envoy sends it for an ingress call with a peer certificate and a token. */
export function checkRequest(peerCert: string, token: string): object {
  return {
    attributes: {
      source: { certificate: peerCert, address: { socket_address: { address: '10.0.0.7', port_value: 40000 } } },
      destination: { address: { socket_address: { address: '10.0.0.8', port_value: 8080 } } },
      request: {
        http: {
          id: 'bench',
          method: 'GET',
          path: '/api/items?page=1',
          host: 'api.zone-a.bench',
          scheme: 'https',
          protocol: 'HTTP/2',
          headers: {
            ':authority': 'api.zone-a.bench',
            ':method': 'GET',
            ':path': '/api/items?page=1',
            accept: 'application/json',
            'user-agent': 'bench/1.0',
            'x-request-id': 'bench',
            'x-forwarded-proto': 'https',
            [TOKEN_HEADER]: token,
          },
        },
      },
    },
  };
}

/** One length-prefixed gRPC message. */
export function frame(request: object): Buffer {
  const body = checkMethod().requestSerialize(request);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

export function mint(svid: LocalSvid, alg: TokenAlg, chain?: LocalSvid['chain']): string {
  return mintCommonIdentity(chain ? { ...svid, chain } : svid, { sub: 'user-42', aud: AUDIENCE, ttlSeconds: TTL_SECONDS, alg });
}

/** What bench/loadgen.ts needs to sign distinct tokens of one algorithm and splice them into a frame. */
export interface TokenTemplate {
  readonly alg: TokenAlg;
  readonly keyPem: string;
  /** base64 of the frame bytes before and after the token. */
  readonly prefix: string;
  readonly suffix: string;
  /** The token's first part (base64url header), the same for every token. */
  readonly header: string;
  /** The claims; jti is replaced by a fixed-width unique value. */
  readonly claims: Record<string, unknown>;
  readonly tokenLength: number;
}

export const JTI_WIDTH = 36;

export function tokenTemplate(svid: LocalSvid & { certPemEncoded: string }, alg: TokenAlg): TokenTemplate {
  const token = mint(svid, alg);
  const bytes = frame(checkRequest(svid.certPemEncoded, token));
  const at = bytes.indexOf(Buffer.from(token));
  if (at < 0 || bytes.indexOf(Buffer.from(token), at + 1) >= 0) throw new Error('token not found exactly once in the frame');
  const [header, payload] = token.split('.') as [string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  if (typeof claims.jti !== 'string' || claims.jti.length !== JTI_WIDTH) throw new Error('minted jti is not a UUID');
  return {
    alg,
    keyPem: (svid.key as KeyObject).export({ format: 'pem', type: 'pkcs8' }).toString(),
    prefix: bytes.subarray(0, at).toString('base64'),
    suffix: bytes.subarray(at + token.length).toString('base64'),
    header,
    claims,
    tokenLength: token.length,
  };
}

/** `count` frames, each with a new leaf certificate (same key and ID) in its token's x5c. */
export async function coldChainFrames(pki: BenchPki, count: number): Promise<Buffer> {
  const svid = pki.svids.ES256;
  const out: Buffer[] = [];
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, () => pki.inter.issue(PEER_ID, { keyType: 'P-256' })),
    );
    for (const s of batch) out.push(frame(checkRequest(svid.certPemEncoded, mint(svid, 'ES256', parseCertificates(s.chainPem)))));
  }
  return Buffer.concat(out);
}
