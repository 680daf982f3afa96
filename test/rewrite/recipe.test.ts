/**
 * The verification recipe docs/rewrite.md gives upstreams in other languages is run as printed
 * (Python 3, standard library only) against proofs zonegate made: it must accept a genuine one
 * and refuse a changed header — so the document and the code cannot drift apart.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatProof, proofSignature } from '../../src/rewrite/verify.js';
import { PYTHON, probe, requireTool } from '../helpers/tools.js';

const doc = readFileSync(new URL('../../docs/rewrite.md', import.meta.url), 'utf8');
const recipe = /```python\n([\s\S]*?)```/.exec(doc)?.[1];
const run = requireTool(probe('python3', PYTHON, ['-c', 'import hmac']));

describe.runIf(run)('the documented Python recipe', () => {
  it('verifies a proof zonegate made, and refuses a changed header', () => {
    expect(recipe).toContain('def verify(');
    const secret = 'a-shared-secret-of-at-least-32-bytes!!';
    const t = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = { 'x-zonegate-peer': 'spiffe://zone-a.example/ns/shop/sa/frontend', 'x-zonegate-actor': 'user:alice' };
    const names = [':method', ':path', 'x-zonegate-peer', 'x-zonegate-actor', 'x-zonegate-roles'];
    const lines = names.map((n): [string, string] => [n, n === ':method' ? 'GET' : n === ':path' ? '/a?b=1' : (headers[n] ?? '')]);
    headers['x-zonegate-proof'] = formatProof('k1', t, names, proofSignature(secret, 'k1', t, lines));
    const script = `${recipe}
import json, sys
h = json.loads(sys.argv[1])
print(json.dumps([verify(h, "GET", "/a?b=1", {"k1": b"${secret}"}),
                  verify(dict(h, **{"x-zonegate-actor": "user:root"}), "GET", "/a?b=1", {"k1": b"${secret}"}),
                  verify(h, "GET", "/a?b=2", {"k1": b"${secret}"})]))`;
    const out = spawnSync(PYTHON, ['-c', script, JSON.stringify(headers)], { encoding: 'utf8' });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toEqual([{ 'x-zonegate-peer': headers['x-zonegate-peer'], 'x-zonegate-actor': 'user:alice', 'x-zonegate-roles': '' }, null, null]);
  });
});
