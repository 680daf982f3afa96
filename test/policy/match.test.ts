import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/schema.js';
import { compileMatchers } from '../../src/policy/match.js';
import { compileGlob } from '../../src/policy/glob.js';

describe('globs', () => {
  it.each([
    ['spiffe://*.consul/ns/*/dc/*/svc/web', 'spiffe://1a.consul/ns/default/dc/dc1/svc/web', true],
    ['spiffe://*.consul/ns/*/dc/*/svc/web', 'spiffe://1a.consul/ap/p/ns/default/dc/dc1/svc/web', false],
    ['spiffe://*.consul/**/svc/web', 'spiffe://1a.consul/ap/p/ns/default/dc/dc1/svc/web', true],
    ['/api/*', '/api/items', true],
    ['/api/*', '/api/items/1', false],
    ['/api/**', '/api/items/1', true],
    ['/api/**', '/api/', true],
    ['/api/**', '/api', false],
    ['/v?/x', '/v1/x', true],
    ['/v?/x', '/v//x', false],
    ['/a.b', '/aXb', false],
    ['/a+(b)', '/a+(b)', true],
    ['**', '', true],
  ])('%s vs %s → %s', (glob, value, expected) => {
    expect(compileGlob(glob)(value)).toBe(expected);
    expect(compileMatchers([{ glob }])(value)).toBe(expected);
  });

  it('regexes match the whole value', () => {
    const m = compileMatchers([{ regex: '/items/[0-9]+' }]);
    expect(m('/items/42')).toBe(true);
    expect(m('/items/42/x')).toBe(false);
    expect(m('x/items/42')).toBe(false);
    expect(compileMatchers([{ regex: 'a|b' }])('ab')).toBe(false);
  });

  it('any matcher of a list may match', () => {
    const m = compileMatchers(['/exact', { prefix: '/p/' }, { suffix: '.json' }, { glob: '/g/*/x' }]);
    expect(['/exact', '/p/1', '/a.json', '/g/1/x'].map(m)).toEqual([true, true, true, true]);
    expect(['/exact/', '/p', '/a.jsonx', '/g/1/2/x'].map(m)).toEqual([false, false, false, false]);
  });

  it('an invalid regex is a config error', () => {
    expect(() => ConfigSchema.parse({ rules: [{ name: 'r', action: 'allow', to: { paths: [{ regex: '(' }] } }] })).toThrow('not a regular expression RE2 can run');
  });
});
