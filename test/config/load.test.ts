import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'c.yaml', '/etc/zonegate', env);
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe('config', () => {
  it('secure defaults: certificate peer source, default deny, documented ports', () => {
    const { config, warnings } = parseConfig('{}', 'c.yaml', '/x');
    expect(config.server.grpc.port).toBe(50051);
    expect(config.server.ops.port).toBe(8181);
    expect(config.peer.source).toBe('certificate');
    expect(config.rules).toEqual([]);
    expect(warnings.join('\n')).toMatch(/every request will be denied/);
    expect(Object.isFrozen(config.server.grpc)).toBe(true);
  });

  it('cache sizes: bounded defaults, whole positive numbers only', () => {
    expect(parseConfig('{}', 'c.yaml', '/x').config.cache).toEqual({ svids: 10_000, tokens: 10_000, chains: 10_000, certificates: 1_000 });
    expect(parseConfig('cache: { tokens: 500 }', 'c.yaml', '/x').config.cache.tokens).toBe(500);
    expect(problems('cache: { tokens: 0 }')).toContainEqual(expect.stringMatching(/cache\.tokens/));
    expect(problems('cache: { keys: 5 }')).toContainEqual(expect.stringMatching(/keys/));
  });

  it('names the key path and the line of a wrong value', () => {
    const text = ['server:', '  grpc:', '    port: "fifty"', 'rules:', '  - name: r', '    action: permit'].join('\n');
    const p = problems(text);
    expect(p).toContainEqual(expect.stringMatching(/^c\.yaml:3: server\.grpc\.port: /));
    expect(p).toContainEqual(expect.stringMatching(/^c\.yaml:6: rules\[0\]\.action: /));
  });

  it('rejects unknown keys, naming them and their line', () => {
    const p = problems(['log:', '  level: info', 'peers:', '  source: x'].join('\n'));
    expect(p).toEqual(['c.yaml:3: peers: unknown key (did you mean peer?)']);
    const q = problems(['rules:', '  - name: a', '    action: allow', '    from:', '      principal: [x]'].join('\n'));
    expect(q).toEqual(['c.yaml:5: rules[0].from.principal: unknown key (did you mean principals?)']);
  });

  it('an unknown key suggests the nearest known one at its place, through unions and arrays', () => {
    expect(problems('peer:\n  clockSkewSecond: 3\n')).toEqual(['c.yaml:2: peer.clockSkewSecond: unknown key (did you mean clockSkewSeconds?)']);
    expect(problems('trust:\n  - trustDomain: a.test\n    source:\n      file: b\n      fil: c\n')).toContainEqual(
      expect.stringMatching(/^c\.yaml:5: trust\[0\]\.source\.fil: unknown key \(did you mean file\?\)/),
    );
    // nothing near: no guess
    expect(problems('zzzzqqq: 1\n')).toEqual(['c.yaml:1: zzzzqqq: unknown key']);
  });

  it('schema problems come in the order of the file, whatever their kind', () => {
    const p = problems(['trust:', '  - trustDomain: Zone_B!', '    bundle: b.pem', 'peer:', '  clockSkewSecond: 30', 'log:', '  level: loud'].join('\n'));
    expect(p.map((x) => x.split(':').slice(0, 3).join(':'))).toEqual(['c.yaml:2: trust[0].trustDomain', 'c.yaml:5: peer.clockSkewSecond', 'c.yaml:7: log.level']);
  });

  it('trust domain names are checked where they are written (serve refuses them)', () => {
    expect(problems('trust:\n  - trustDomain: Zone_B!\n    bundle: b.pem\n')).toEqual([
      expect.stringMatching(/^c\.yaml:2: trust\[0\]\.trustDomain: spiffe: "Zone_B!": trust domain characters/),
    ]);
    expect(problems('federation:\n  endpoint: {trustDomain: "a b", profile: https_spiffe}\n')).toContainEqual(
      expect.stringMatching(/^c\.yaml:2: federation\.endpoint\.trustDomain: /),
    );
  });

  it('reports YAML syntax errors and duplicate keys with a line', () => {
    expect(problems('a: [\n')).toEqual([expect.stringMatching(/^c\.yaml:\d+: /)]);
    expect(problems('log:\n  level: info\nlog:\n  level: debug\n')).toEqual([expect.stringMatching(/^c\.yaml:3: .*unique/i)]);
  });

  it('rejects duplicate rule names and trust domains', () => {
    const text = [
      'rules: [{name: a, action: allow}, {name: a, action: deny}]',
      'trust: [{trustDomain: t.test, bundle: b}, {trustDomain: t.test, bundle: c}]',
    ].join('\n');
    expect(problems(text)).toEqual([
      expect.stringMatching(/rules\[1\]\.name: duplicate rule name "a"/),
      expect.stringMatching(/trust\[1\]\.trustDomain: "t\.test" is listed twice/),
    ]);
  });

  it('applies environment overrides and validates them', () => {
    const env = { ZONEGATE_GRPC_PORT: '6000', ZONEGATE_OPS_ADDRESS: '127.0.0.1', ZONEGATE_LOG_LEVEL: 'debug' };
    const { config } = parseConfig('server: {grpc: {port: 1}}', 'c.yaml', '/x', env);
    expect(config.server.grpc.port).toBe(6000);
    expect(config.server.ops.address).toBe('127.0.0.1');
    expect(config.log.level).toBe('debug');
    expect(problems('{}', { ZONEGATE_GRPC_PORT: '70000' })).toEqual([expect.stringMatching(/ZONEGATE_GRPC_PORT/)]);
    expect(problems('{}', { ZONEGATE_LOG_LEVEL: 'loud' })).toEqual([expect.stringMatching(/log\.level/)]);
  });

  it('server.grpc.transport: grpc-js by default, http2 by file or ZONEGATE_GRPC_TRANSPORT, nothing else', () => {
    expect(parseConfig('{}', 'c.yaml', '/x').config.server.grpc.transport).toBe('grpc-js');
    expect(parseConfig('server: {grpc: {transport: http2}}', 'c.yaml', '/x').config.server.grpc.transport).toBe('http2');
    expect(parseConfig('{}', 'c.yaml', '/x', { ZONEGATE_GRPC_TRANSPORT: 'http2' }).config.server.grpc.transport).toBe('http2');
    expect(problems('server: {grpc: {transport: h2}}')).toEqual([expect.stringMatching(/^c\.yaml:1: server\.grpc\.transport: /)]);
    expect(problems('{}', { ZONEGATE_GRPC_TRANSPORT: 'grpc' })).toEqual([expect.stringMatching(/server\.grpc\.transport/)]);
  });

  it('resolves relative paths against the config file directory', () => {
    const { config } = parseConfig('trust: [{trustDomain: t.test, bundle: b.pem}]', 'c.yaml', '/etc/zonegate');
    expect(config.trust[0]?.bundle).toBe('/etc/zonegate/b.pem');
  });

  it('resolves every file path the config names, in every section, and leaves absolute ones alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-paths-'));
    try {
      mkdirSync(join(dir, 'rel'));
      writeFileSync(join(dir, 'rel', 'policy.yaml'), 'rules: []\n');
      const f = (name: string) => `rel/${name}`;
      const config = parseConfig(
        stringify({
          server: { grpc: { tls: { cert: f('grpc.pem'), key: f('grpc.key'), clientCa: f('client-ca.pem') } } },
          trust: [
            { trustDomain: 'a.test', bundle: f('a.pem'), intermediates: f('a-im.pem') },
            { trustDomain: 'b.test', source: { file: f('b.json') } },
            { trustDomain: 'c.test', source: { istio: { rootCert: f('root-cert.pem') } } },
            { trustDomain: 'd.test', source: { https_web: { url: 'https://d.test/b', ca: f('d-ca.pem') } } },
            { trustDomain: 'e.test', source: { https_spiffe: { url: 'https://e.test/b', endpointSpiffeId: 'spiffe://e.test/b', bootstrap: f('e-boot.pem') } } },
            { trustDomain: 'f.test', source: { consul: { url: 'https://f.test', tokenFile: f('consul-token'), ca: f('consul-ca.pem') } } },
          ],
          federation: { endpoint: { trustDomain: 'a.test', profile: 'https_web', cert: f('ep.pem'), key: f('ep.key') } },
          identity: { cert: f('svid.pem'), key: f('svid.key') },
          commonIdentity: {
            wirepact: { ca: f('wp-ca.pem'), emit: { cert: f('wp.pem'), key: f('wp.key'), issuer: 'me' } },
            egress: { basic: { usersFile: f('users') }, oidc: { issuer: 'https://idp.test', audiences: ['x'], ca: f('idp-ca.pem') } },
          },
          policy: { include: [f('policy.yaml')] },
          upstream: { jwt: { keyFile: f('jwt.key') }, hmac: { secretFile: f('hmac'), keyId: 'k1' }, basic: { credentialsFile: f('basic') } },
        }),
        'c.yaml',
        dir,
      ).config;
      const text = JSON.stringify(config);
      expect(text).not.toContain('"rel/');
      expect(text.split(`"${join(dir, 'rel')}/`).length - 1).toBe(24);
      // an absolute path is kept as written
      expect(parseConfig('identity: {cert: /abs/s.pem, key: s.key}', 'c.yaml', dir).config.identity).toEqual({ cert: '/abs/s.pem', key: join(dir, 's.key') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('warns about principal-only mode', () => {
    const { warnings } = parseConfig('peer: {source: principal}', 'c.yaml', '/x');
    expect(warnings.join('\n')).toMatch(/without verifying/);
  });

  it('loads a file, and the embedded default without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zg-'));
    writeFileSync(join(dir, 'z.yaml'), 'log: {level: warn}\n');
    expect(loadConfig(join(dir, 'z.yaml'), {}).config.log.level).toBe('warn');
    expect(() => loadConfig(join(dir, 'missing.yaml'), {})).toThrow(/cannot read: ENOENT/);
    const def = loadConfig(undefined, {});
    expect(def.origin).toBe('<embedded default>');
    expect(def.config.rules.length).toBeGreaterThan(0);
    expect(def.config.trust.length).toBe(2);
  });

  it('trust sources: exactly one of bundle or source; endpoint and identity requirements', () => {
    expect(problems('trust: [{trustDomain: a.test}]')).toEqual([expect.stringMatching(/trust\[0\]: give exactly one of "bundle"/)]);
    expect(problems('trust: [{trustDomain: a.test, bundle: b, source: {file: c}}]')).toEqual([expect.stringMatching(/exactly one/)]);
    expect(problems('trust: [{trustDomain: a.test, source: {https_web: {url: "not a url"}}}]')).not.toEqual([]);
    expect(problems('trust: [{trustDomain: a.test, source: {https_spiffe: {url: "https://x", bootstrap: b}}}]')).not.toEqual([]);
    expect(
      problems('trust: [{trustDomain: a.test, bundle: b}]\nfederation: {endpoint: {trustDomain: a.test, profile: https_spiffe}}'),
    ).toEqual([expect.stringMatching(/https_spiffe profile serves with the local SVID/)]);
    expect(problems('trust: [{trustDomain: a.test, bundle: b}]\nfederation: {endpoint: {trustDomain: a.test, profile: https_web}}')).toEqual([
      expect.stringMatching(/https_web profile needs cert and key/),
    ]);
    expect(problems('trust: [{trustDomain: a.test, bundle: b}]\nfederation: {endpoint: {trustDomain: z.test, profile: https_web, cert: c, key: k}}')).toEqual([
      expect.stringMatching(/"z\.test" is not a trust domain under trust\[\]/),
    ]);
    const { config } = parseConfig(
      'trust: [{trustDomain: a.test, source: {https_spiffe: {url: "https://h/b", endpointSpiffeId: "spiffe://a.test/s", bootstrap: boot.pem}}}]\nidentity: {cert: s.pem, key: s.key}',
      'c.yaml',
      '/etc/zg',
    );
    expect(config.trust[0]?.source).toEqual({ https_spiffe: { url: 'https://h/b', endpointSpiffeId: 'spiffe://a.test/s', bootstrap: '/etc/zg/boot.pem' } });
    expect(config.identity).toEqual({ cert: '/etc/zg/s.pem', key: '/etc/zg/s.key' });
  });
});
