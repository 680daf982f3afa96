/** `zonegate policy lint|import` and `check --explain` on dry run, as a user runs them. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ConfigSchema } from '../../src/config/schema.js';
import { PolicyFile } from '../../src/policy/schema.js';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { zonegate } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'zg-policy-cli-'));
const write = (name: string, content: unknown) => {
  const f = join(dir, name);
  writeFileSync(f, typeof content === 'string' ? content : stringify(content));
  return f;
};
const example = (f: string) => join(EXAMPLES_DIR, 'policy', f);

describe('zonegate policy lint', () => {
  it('a clean config: exit 0', () => {
    const r = zonegate(['policy', 'lint', join(EXAMPLES_DIR, 'zonegate.yaml')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 rule\(s\), no findings/);
  });

  it('findings: one line each, exit 1', () => {
    const f = write('findings.yaml', {
      rules: [
        { name: 'deny-b', action: 'DENY', from: { trustDomains: ['b.test'] } },
        { name: 'b-admin', action: 'ALLOW', from: { trustDomains: ['b.test'] }, to: { paths: ['/admin'] } },
        { name: 'api', action: 'allow', to: { paths: [{ prefix: '/api/' }] } },
        { name: 'api-get', action: 'allow', to: { methods: ['GET'], paths: [{ prefix: '/api/v1/' }] } },
      ],
    });
    const r = zonegate(['policy', 'lint', f]);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n')).toEqual([
      `${f}: rules[1] "b-admin": unreachable: every request it matches is denied by rules[0] "deny-b"`,
      `${f}: rules[3] "api-get": shadowed: rules[2] "api" already allows every request it matches`,
      `${f}: 2 finding(s) in 4 rule(s)`,
    ]);
  });

  it('a config whose rules use canonical names without naming templates', () => {
    const f = write('cfg.yaml', { trust: [{ trustDomain: 'a.test', bundle: 'a.pem' }], rules: [{ name: 'svc', action: 'allow', from: { zones: ['a.test'], services: ['web'] } }] });
    const r = zonegate(['policy', 'lint', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('rules[0] "svc": unreachable: it matches on canonical names, but no trust domain has a naming template');
  });

  it('an invalid policy file: exit 2 with file, line and key', () => {
    const f = write('bad.yaml', 'rules:\n  - name: x\n    action: maybe\n');
    const r = zonegate(['policy', 'lint', f]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}:3: rules[0].action`);
  });
});

describe('zonegate policy import', () => {
  it.each([
    ['istio', 'istio-allow-info.yaml', 'default/allow-info'],
    ['istio', 'istio-todos-viewer-allow.yaml', 'todos/todos-viewer-allow'],
    ['consul', 'consul-allow-backend.yaml', 'default/backend<-default/frontend#0'],
    ['consul', 'consul-allow-backend.json', 'default/backend<-default/frontend#0'],
  ])('%s %s: a valid policy file on stdout, exit 0', (kind, file, rule) => {
    const r = zonegate(['policy', 'import', kind, example(file), '--zone', 'mesh-a']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const policy = PolicyFile.parse(parse(r.stdout));
    expect(policy.rules.map((x) => x.name)).toEqual([rule]);
    // usable as inline rules of a config, and as an included file that lint accepts
    expect(ConfigSchema.parse({ rules: policy.rules }).rules).toHaveLength(1);
    const out = write(`${kind}-${file}.out.yaml`, r.stdout);
    expect(zonegate(['policy', 'lint', out]).code).toBe(0);
  });

  it('--destination and --zone narrow the import', () => {
    const r = zonegate(['policy', 'import', 'consul', example('consul-allow-backend.yaml'), '--destination', 'backend', '--zone', 'mesh-consul']);
    expect(r.code).toBe(0);
    expect(PolicyFile.parse(parse(r.stdout)).rules[0]).toMatchObject({ destinations: ['backend'], from: { zones: ['mesh-consul'], services: ['frontend'] } });
  });

  it('a source that names callers by service or namespace needs --zone: exit 2 saying so; several zones may be given', () => {
    const r = zonegate(['policy', 'import', 'consul', example('consul-allow-backend.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('any federated CA can mint');
    expect(r.stderr).toContain('--zone');
    expect(r.stdout).toBe('');
    const two = zonegate(['policy', 'import', 'consul', example('consul-allow-backend.yaml'), '--zone', 'mesh-a', '--zone', 'mesh-b']);
    expect(two.code).toBe(0);
    expect(PolicyFile.parse(parse(two.stdout)).rules[0]).toMatchObject({ from: { zones: ['mesh-a', 'mesh-b'], services: ['frontend'] } });
  });

  it('what cannot be expressed is on stderr and in the output: exit 1', () => {
    const f = write('jwt.yaml', 'kind: AuthorizationPolicy\nmetadata: {name: p, namespace: ns}\nspec:\n  rules:\n    - from: [{source: {requestPrincipals: ["*"]}}]\n    - to: [{operation: {methods: [GET]}}]\n');
    const r = zonegate(['policy', 'import', 'istio', f]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not expressible: ns/p[0]: source.requestPrincipals: not imported');
    expect(r.stdout).toContain('# NOT EXPRESSIBLE: ns/p[0]: source.requestPrincipals');
    expect(PolicyFile.parse(parse(r.stdout)).rules.map((x) => x.name)).toEqual(['ns/p[1]']);
  });

  it('istio on a Consul file names what it found and what it expected', () => {
    const r = zonegate(['policy', 'import', 'istio', example('consul-allow-backend.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/document 1: found kind "service-intentions" \(Consul service intentions: use `zonegate policy import consul`\), expected kind AuthorizationPolicy/);
    expect(r.stderr).not.toMatch(/undefined/);
    const bare = zonegate(['policy', 'import', 'istio', write('nokind.yaml', 'metadata: {name: x}\nspec: {}\n')]);
    expect(bare.stderr).toMatch(/found a document without kind \(keys: metadata, spec\), expected kind AuthorizationPolicy/);
  });

  it('the output is plain YAML: a value shared by several rules is written out each time, no anchors or aliases', () => {
    const f = write('two-sources.yaml', [
      'kind: AuthorizationPolicy',
      'metadata: {name: p, namespace: shop}',
      'spec:',
      '  rules:',
      '    - from: [{source: {principals: [cluster.local/ns/a/sa/x]}}, {source: {namespaces: [b]}}]',
      '      to: [{operation: {methods: [GET]}}]',
    ].join('\n'));
    const r = zonegate(['policy', 'import', 'istio', f, '--zone', 'cluster.local']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/[&*]a\d/);
    const rules = PolicyFile.parse(parse(r.stdout)).rules;
    expect(rules).toHaveLength(2);
    expect(rules.map((x) => x.destinations)).toEqual([[{ glob: 'shop/*' }], [{ glob: 'shop/*' }]]);
  });

  it('an unknown source or unreadable input: exit 2', () => {
    expect(zonegate(['policy', 'import', 'linkerd', example('istio-allow-info.yaml')]).code).toBe(2);
    expect(zonegate(['policy', 'import', 'istio', join(dir, 'missing.yaml')]).code).toBe(2);
    expect(zonegate(['policy', 'import', 'istio', write('broken.yaml', 'a: [')]).code).toBe(2);
  });
});

describe('zonegate check --explain with dry run', () => {
  it('a deny of a dry-run rule set is allowed, and the policy step says which rule would have denied', () => {
    const cfg = write('dry.yaml', {
      trust: [
        { trustDomain: 'zone-a.example', bundle: join(EXAMPLES_DIR, 'certs/zone-a.root.pem') },
        { trustDomain: 'zone-b.example', bundle: join(EXAMPLES_DIR, 'certs/zone-b.root.pem'), zone: 'b', naming: 'consul' },
      ],
      policy: { dryRun: true },
      rules: [{ name: 'no-admin-from-outside', action: 'deny', from: { trustDomains: ['zone-b.example'] }, to: { paths: [{ prefix: '/admin/' }] } }],
    });
    const r = zonegate(['check', '--config', cfg, '--request', join(EXAMPLES_DIR, 'requests', 'denied-admin.json'), '--explain']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.allowed).toBe(true);
    const policy = out.steps.find((st: { phase: string }) => st.phase === 'policy');
    expect(policy.detail).toBe('no allow rule matched; dry run: deny rule "no-admin-from-outside" would have denied (ERR_POLICY_DENIED), allowed');
    const peer = out.steps.find((st: { phase: string }) => st.phase === 'peer');
    expect(peer.detail).toMatch(/canonical: zone b/);
  });
});
