/**
 * The demo's Envoys, one per zone, when an Envoy binary is found: the bootstrap (ingress with
 * mTLS and ext_authz to the zone's zonegate, egress where the zone's app calls out) and the
 * process, which never outlives the demo: a small shell watchdog starts it and ends it when the
 * demo's process is gone, however the demo ended.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { EnvoyBinary } from '../envoy-binary.js';
import type { PreparedZone } from './setup.js';
import { DEMO_ADDRESS, type Zone } from './zones.js';

const START_TIMEOUT_MS = 60_000;

const TLS = 'envoy.transport_sockets.tls';
const tlsType = (t: string) => `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${t}`;
const socket = (port: number) => ({ socket_address: { address: DEMO_ADDRESS, port_value: port } });
const staticCluster = (name: string, port: number, extra: object = {}) => ({
  name,
  type: 'STATIC',
  connect_timeout: '1s',
  load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(port) } }] }] },
  ...extra,
});

/** The ext_authz filter both listeners use: fail closed, an outage answered 503 (not a deny's 403). */
const extAuthz = {
  name: 'envoy.filters.http.ext_authz',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
    transport_api_version: 'V3',
    // generous for a demo on a busy laptop; production configs say 0.25–0.5 s (envoy/README.md)
    grpc_service: { envoy_grpc: { cluster_name: 'zonegate' }, timeout: '2s' },
    failure_mode_allow: false,
    status_on_error: { code: 'ServiceUnavailable' },
    include_peer_certificate: true,
  },
};
const router = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };

function httpManager(prefix: string, route: object, context: Record<string, string>, extra: object = {}) {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: prefix,
      // Decide on the path the app acts on: Envoy normalizes as zonegate does (docs/policy.md).
      normalize_path: true,
      merge_slashes: true,
      path_with_escaped_slashes_action: 'REJECT_REQUEST',
      ...extra,
      route_config: {
        virtual_hosts: [
          {
            name: prefix,
            domains: ['*'],
            routes: [
              {
                match: { prefix: '/' },
                route,
                typed_per_filter_config: {
                  'envoy.filters.http.ext_authz': {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
                    check_settings: { context_extensions: context },
                  },
                },
              },
            ],
          },
        ],
      },
      http_filters: [extAuthz, router],
    },
  };
}

/** The zone's SVID, the certificate its Envoy presents on both sides. */
const svid = (z: PreparedZone) => ({ certificate_chain: { filename: join(z.files.dir, 'svid.pem') }, private_key: { filename: join(z.files.dir, 'svid.key') } });

/**
 * The bootstrap of `self`'s Envoy. Ingress: mTLS requiring a client certificate whose chain Envoy
 * leaves to zonegate (ACCEPT_UNTRUSTED: zonegate verifies it against the bundle of the caller's
 * own trust domain, live), every route through ext_authz. `clientRoots` (both zones' roots) is
 * there for one reason: without a trusted_ca Envoy never demands a certificate, whatever
 * require_client_certificate says, and a caller without one would reach ext_authz. Egress: the
 * app's plain HTTP, ext_authz direction egress (zonegate mints the common identity for the other
 * zone), then mTLS with the zone's SVID to the other zone's ingress, whose certificate must be a
 * SPIFFE ID of the other trust domain, chained to its root.
 */
export function envoyBootstrap(self: PreparedZone, other: Zone, appPort: number, otherHost: string, clientRoots: string): object {
  const z = self.zone;
  return {
    node: { id: `demo-envoy-${z.key}`, cluster: z.zone },
    static_resources: {
      listeners: [
        {
          name: 'ingress',
          address: socket(z.ports.ingress),
          filter_chains: [
            {
              transport_socket: {
                name: TLS,
                typed_config: {
                  '@type': tlsType('DownstreamTlsContext'),
                  require_client_certificate: true,
                  common_tls_context: {
                    tls_certificates: [svid(self)],
                    validation_context: { trusted_ca: { filename: clientRoots }, trust_chain_verification: 'ACCEPT_UNTRUSTED' },
                  },
                },
              },
              filters: [httpManager('ingress', { cluster: 'app' }, { direction: 'ingress' }, { forward_client_cert_details: 'SANITIZE' })],
            },
          ],
        },
        {
          name: 'egress',
          address: socket(z.ports.egress),
          filter_chains: [
            {
              filters: [
                httpManager('egress', { cluster: 'other_zone', host_rewrite_literal: otherHost }, { direction: 'egress', audience: `spiffe://${other.trustDomain}` }),
              ],
            },
          ],
        },
      ],
      clusters: [
        staticCluster('app', appPort),
        staticCluster('zonegate', z.ports.grpc, {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }),
        staticCluster('other_zone', other.ports.ingress, {
          transport_socket: {
            name: TLS,
            typed_config: {
              '@type': tlsType('UpstreamTlsContext'),
              common_tls_context: {
                tls_certificates: [svid(self)],
                validation_context: {
                  custom_validator_config: {
                    name: 'envoy.tls.cert_validator.spiffe',
                    typed_config: {
                      '@type': tlsType('SPIFFECertValidatorConfig'),
                      trust_domains: [{ name: other.trustDomain, trust_bundle: { filename: self.files.bootstrap } }],
                    },
                  },
                  match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { prefix: `spiffe://${other.trustDomain}/` } }],
                },
              },
            },
          },
        }),
      ],
    },
  };
}

export interface DemoEnvoy {
  /** http://127.0.0.1:PORT of its admin API (an ephemeral port). */
  readonly admin: string;
  readonly log: string;
  /** Stops Envoy (and its watchdog). Safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Runs `$@` (Envoy) in the background, prints its pid, and ends it when the demo's pid ($1) is
 * gone or when told to stop (TERM, INT, HUP). Polling once a second bounds how long an Envoy can
 * outlive a demo that was killed outright.
 */
const WATCHDOG = [
  'parent=$1; shift',
  '"$@" & child=$!',
  'echo "$child"',
  'trap \'kill -TERM "$child" 2>/dev/null\' TERM INT HUP',
  'while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 1 & wait $!; done',
  'kill -TERM "$child" 2>/dev/null',
  'wait "$child"',
].join('\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `bin` with the bootstrap written into `dir`, its admin API on loopback `adminPort` (0: any); resolves once Envoy is ready. */
export async function startDemoEnvoy(bin: EnvoyBinary, bootstrap: object, dir: string, label: string, adminPort = 0): Promise<DemoEnvoy> {
  const config = join(dir, 'envoy.yaml');
  const adminFile = join(dir, 'envoy-admin.txt');
  const log = join(dir, 'envoy.log');
  writeFileSync(config, `# ${label}'s Envoy for this run of \`zonegate demo\`; removed when the demo stops.\n${stringify({ ...bootstrap, admin: { address: socket(adminPort) } })}`);
  const args = ['-c', config, '--admin-address-path', adminFile, '--log-path', log, '-l', 'warning', '--concurrency', '1', '--disable-hot-restart'];
  const child: ChildProcess = spawn('/bin/sh', ['-c', WATCHDOG, 'zonegate-demo-envoy', String(process.pid), bin.path, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  let envoyPid: number | undefined;
  child.stdout!.once('data', (d: Buffer) => (envoyPid = Number(String(d).trim()) || undefined));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (!exited) child.kill('SIGTERM');
      const t = setTimeout(() => {
        // Envoy did not drain in time: end both for good
        if (envoyPid) process.kill(envoyPid, 'SIGKILL');
        child.kill('SIGKILL');
      }, 5000);
      await exit;
      clearTimeout(t);
    })());
  const tail = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-5).join('\n') : '');
  try {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let admin: string | undefined;
    for (;;) {
      if (exited) throw new Error(`${label}'s Envoy exited before it was ready (log ${log}):\n${tail()}`);
      if (Date.now() > deadline) throw new Error(`${label}'s Envoy was not ready after ${START_TIMEOUT_MS / 1000} s (log ${log}):\n${tail()}`);
      if (!admin && existsSync(adminFile)) admin = readFileSync(adminFile, 'utf8').trim() || undefined;
      if (admin) {
        const ready = await fetch(`http://${admin}/ready`).then(
          (r) => r.ok,
          () => false,
        );
        if (ready) return { admin: `http://${admin}`, log, stop };
      }
      await sleep(100);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
