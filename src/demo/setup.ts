/**
 * Sets up the demo's two zones in a temporary directory: a root CA per zone (in memory), the
 * files a zonegate config needs (its own SVID and key, its zone's root, the other zone's root as
 * the one-time federation bootstrap) and the config itself, which `zonegate check --config` can
 * read too. Everything is removed when the demo stops.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MemoryCA, type IssuedSvid } from './pki.js';
import { DEMO_RULES } from './policy.js';
import { DEMO_ADDRESS, type Zone, type ZoneKey } from './zones.js';

export interface ZoneFiles {
  readonly dir: string;
  readonly config: string;
  readonly log: string;
  readonly requests: string;
  /** The other zone's root, handed over once so the first https_spiffe fetch can be trusted. */
  readonly bootstrap: string;
}

export interface PreparedZone {
  readonly zone: Zone;
  readonly ca: MemoryCA;
  readonly files: ZoneFiles;
}

const HOUR = 3_600_000;

/**
 * An X509-SVID the demo hands out, signed by `ca` whatever the ID's trust domain says (the demo
 * forges one that way): for TLS client and server alike (Envoy presents it both ways), valid from
 * an hour ago for a day unless told otherwise.
 */
export function issueDemoSvid(ca: MemoryCA, spiffeId: string, o: { notBefore?: Date; notAfter?: Date } = {}): Promise<IssuedSvid> {
  return ca.issue(spiffeId, {
    subject: `O=zonegate demo, CN=${spiffeId.slice(spiffeId.lastIndexOf('/') + 1)}`,
    notBefore: o.notBefore ?? new Date(Date.now() - HOUR),
    notAfter: o.notAfter ?? new Date(Date.now() + 24 * HOUR),
    extKeyUsage: ['serverAuth', 'clientAuth'],
  });
}

/** The zone's own root as its mesh would hand it to zonegate. */
const OWN_ROOT: Record<ZoneKey, string> = { a: 'root-cert.pem', b: 'connect-ca-root.pem' };

/** Each mesh's naming template, so rules speak of zones, namespaces and services (docs/policy.md). */
const naming = (z: Zone) => ({ zone: z.zone, naming: z.naming === 'Istio' ? 'istio' : 'consul' });

function configText(self: Zone, other: Zone): string {
  const own =
    self.naming === 'Istio'
      ? // as Istio mounts it from the istio-ca-root-cert ConfigMap
        { trustDomain: self.trustDomain, ...naming(self), source: { istio: { rootCert: OWN_ROOT[self.key] } } }
      : // in a Consul cluster: source: {consul: {url: …}} (Consul's CA roots API)
        { trustDomain: self.trustDomain, ...naming(self), bundle: OWN_ROOT[self.key] };
  const config = {
    server: {
      grpc: { address: DEMO_ADDRESS, port: self.ports.grpc },
      ops: { address: DEMO_ADDRESS, port: self.ports.ops },
      drainDelaySeconds: 0,
      shutdownGraceSeconds: 2,
    },
    log: { level: 'info' },
    identity: { cert: 'svid.pem', key: 'svid.key' },
    trust: [
      own,
      {
        trustDomain: other.trustDomain,
        ...naming(other),
        source: {
          https_spiffe: {
            url: `https://${DEMO_ADDRESS}:${other.ports.bundle}/`,
            endpointSpiffeId: other.zonegateId,
            bootstrap: 'peer-bootstrap.pem',
          },
        },
      },
    ],
    federation: {
      endpoint: { trustDomain: self.trustDomain, address: DEMO_ADDRESS, port: self.ports.bundle, profile: 'https_spiffe' },
    },
    // verify the common identity at ingress; accepted audience: spiffe://<our trust domain>
    commonIdentity: {},
    rules: DEMO_RULES[self.key],
  };
  return [
    `# ${self.label} of \`zonegate demo\`: ${self.naming}-style names in trust domain ${self.trustDomain}.`,
    `# It publishes its bundle on https://${DEMO_ADDRESS}:${self.ports.bundle}/ and federates ${other.label}'s (${other.trustDomain}).`,
    `# Written for this run only; removed when the demo stops.`,
    stringify(config),
  ].join('\n');
}

/** Creates both zones' CAs and files under `root` (an empty, private directory). */
export async function prepareZones(root: string, zones: Record<ZoneKey, Zone>): Promise<Record<ZoneKey, PreparedZone>> {
  const cas = {
    a: await MemoryCA.create(zones.a.trustDomain, { subject: `O=zonegate demo, CN=${zones.a.trustDomain} root (${zones.a.naming})`, keyIdentifiers: true }),
    b: await MemoryCA.create(zones.b.trustDomain, { subject: `O=zonegate demo, CN=${zones.b.trustDomain} root (${zones.b.naming})`, keyIdentifiers: true }),
  };
  const prepare = async (key: ZoneKey, otherKey: ZoneKey): Promise<PreparedZone> => {
    const zone = zones[key];
    const dir = join(root, `zone-${key}`);
    const files: ZoneFiles = {
      dir,
      config: join(dir, 'zonegate.yaml'),
      log: join(dir, 'zonegate.log'),
      requests: join(dir, 'requests'),
      bootstrap: join(dir, 'peer-bootstrap.pem'),
    };
    mkdirSync(files.requests, { recursive: true, mode: 0o700 });
    const svid = await issueDemoSvid(cas[key], zone.zonegateId);
    writeFileSync(join(dir, 'svid.pem'), svid.certPem);
    writeFileSync(join(dir, 'svid.key'), svid.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, OWN_ROOT[key]), cas[key].certPem);
    writeFileSync(files.bootstrap, cas[otherKey].certPem);
    writeFileSync(files.config, configText(zone, zones[otherKey]));
    return { zone, ca: cas[key], files };
  };
  return { a: await prepare('a', 'b'), b: await prepare('b', 'a') };
}
