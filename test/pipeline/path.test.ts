import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizePath, removeDotSegments, type PathLevel, type PathOptions } from '../../src/request/path.js';

const at = (level: PathLevel, semicolons: PathOptions['semicolons'] = 'reject'): PathOptions => ({ level, semicolons, maxLength: 8192 });
const DECODE = at('DECODE_AND_MERGE_SLASHES');
const norm = (raw: string, o = DECODE) => {
  const r = normalizePath(raw, o);
  return r.ok ? r.path : r.code;
};

describe('path normalization', () => {
  it.each([
    // dot segments, plain and encoded in every case
    ['/api/orders/../../admin/users', '/admin/users'],
    ['/api/orders/%2e%2e/%2e%2e/admin/users', '/admin/users'],
    ['/api/orders/%2E%2E/%2E./admin', '/admin'],
    ['/api/./orders/.', '/api/orders/'],
    ['/api/%2e/orders', '/api/orders'],
    ['/..', '/'],
    ['/../../../admin', '/admin'],
    ['/a/b/..', '/a/'],
    // escaped slashes and backslashes (decoded at this level), raw backslashes
    ['/api/orders/..%2F..%2Fadmin', '/admin'],
    ['/api/orders/..%2f..%2fadmin', '/admin'],
    ['/api/..%5Cadmin', '/admin'],
    ['/api/..%5cadmin', '/admin'],
    ['/api\\..\\admin', '/admin'],
    ['\\admin'.replace('\\', '/\\'), '/admin'],
    // slashes merged
    ['//admin', '/admin'],
    ['/api//..//admin', '/admin'],
    ['/a///b////', '/a/b/'],
    // unreserved characters decoded; the rest kept, hex upper-cased
    ['/%61dmin', '/admin'],
    ['/%41%44%4D%49%4E', '/ADMIN'],
    ['/a%2Db%5Fc%7Ed%30', '/a-b_c~d0'],
    ['/a%3fb', '/a%3Fb'],
    ['/a%20b', '/a%20b'],
    ['/a%252e%252e/b', '/a%252e%252e/b'], // no double decoding
    ['/', '/'],
    ['/api/orders', '/api/orders'],
  ])('DECODE_AND_MERGE_SLASHES: %s → %s', (raw, want) => {
    expect(norm(raw)).toBe(want);
  });

  it.each([
    ['/a/../b', { NONE: '/a/../b', BASE: '/b', MERGE_SLASHES: '/b', DECODE_AND_MERGE_SLASHES: '/b' }],
    ['/a//../b', { NONE: '/a//../b', BASE: '/a/b', MERGE_SLASHES: '/b', DECODE_AND_MERGE_SLASHES: '/b' }],
    ['/a//b', { NONE: '/a//b', BASE: '/a//b', MERGE_SLASHES: '/a/b', DECODE_AND_MERGE_SLASHES: '/a/b' }],
    ['/a%2Fb', { NONE: '/a%2Fb', BASE: '/a%2Fb', MERGE_SLASHES: '/a%2Fb', DECODE_AND_MERGE_SLASHES: '/a/b' }],
    ['/a%2fb', { NONE: '/a%2fb', BASE: '/a%2Fb', MERGE_SLASHES: '/a%2Fb', DECODE_AND_MERGE_SLASHES: '/a/b' }],
    ['\\da', { NONE: 'ERR_PATH_INVALID', BASE: 'ERR_PATH_INVALID', MERGE_SLASHES: 'ERR_PATH_INVALID', DECODE_AND_MERGE_SLASHES: 'ERR_PATH_INVALID' }],
    ['/\\da', { NONE: '/\\da', BASE: '//da', MERGE_SLASHES: '/da', DECODE_AND_MERGE_SLASHES: '/da' }],
    ['/%2e%2e/x', { NONE: '/%2e%2e/x', BASE: '/x', MERGE_SLASHES: '/x', DECODE_AND_MERGE_SLASHES: '/x' }],
    ['/%61', { NONE: '/%61', BASE: '/a', MERGE_SLASHES: '/a', DECODE_AND_MERGE_SLASHES: '/a' }],
  ] as const)('the levels, as Istio defines them: %s', (raw, want) => {
    for (const level of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) expect([level, norm(raw, at(level))]).toEqual([level, want[level]]);
  });

  it.each([
    ['', 'empty'],
    ['admin', 'does not start'],
    ['*', 'does not start'],
    ['/a%zz', 'invalid percent escape'],
    ['/a%4', 'invalid percent escape'],
    ['/a%', 'invalid percent escape'],
    ['/a%00b', 'encoded control character %00'],
    ['/a%0a', 'encoded control character %0A'],
    ['/a%7F', 'encoded control character %7F'],
    ['/a\u0000b', 'control character'],
    ['/a\tb', 'control character'],
    ['/a\r\nb', 'control character'],
    ['/a b', 'space'],
    ['/caf\u00e9', 'non-ASCII'],
    ['/public#/../admin', '"#"'],
    ['/admin;x=1/users', '";"'],
    ['/api/..;/admin', '";"'],
  ])('refused at every level: %j (%s)', (raw, why) => {
    for (const level of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
      const r = normalizePath(raw, at(level));
      expect(r).toMatchObject({ ok: false, code: 'ERR_PATH_INVALID' });
      expect(r.ok ? '' : r.message).toContain(why);
    }
  });

  it('semicolons: strip decides on what Tomcat acts on (params go before dot segments); keep treats ";" as a character', () => {
    const strip = at('DECODE_AND_MERGE_SLASHES', 'strip');
    expect(norm('/admin;jsessionid=1/users', strip)).toBe('/admin/users');
    expect(norm('/api/orders/..;x/..;/admin', strip)).toBe('/admin');
    expect(norm('/api;%2F../admin', strip)).toBe('/api/admin'); // the param, encoded slash and all, goes first
    const keep = at('DECODE_AND_MERGE_SLASHES', 'keep');
    expect(norm('/a;b/c', keep)).toBe('/a;b/c');
    expect(norm('/api/..;/admin', keep)).toBe('/api/..;/admin'); // not a dot segment to an upstream that keeps ";"
  });

  it('a path over maxLength is ERR_PATH_TOO_LONG, checked before anything else is read', () => {
    expect(normalizePath(`/${'a'.repeat(100)}`, { ...DECODE, maxLength: 64 })).toMatchObject({ ok: false, code: 'ERR_PATH_TOO_LONG' });
    expect(normalizePath(`/${'a'.repeat(63)}`, { ...DECODE, maxLength: 64 })).toMatchObject({ ok: true, changed: false });
  });

  it('the query is not part of the path: "?" is never decoded into one (%3F stays escaped)', () => {
    expect(norm('/admin%3F/x')).toBe('/admin%3F/x');
  });

  it('properties: idempotent, always absolute, no dot segment or double slash left, changed iff different', () => {
    const chars = fc.constantFrom('a', 'b', '/', '.', '%2e', '%2E', '%2f', '%2F', '%5c', '\\', '%61', '%41', '%3f', '-', '~', '%25');
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 30 }), (parts) => {
        const raw = `/${parts.join('')}`;
        const r = normalizePath(raw, DECODE);
        if (!r.ok) return; // only invalid escapes could fail, and the alphabet has none
        expect(r.changed).toBe(r.path !== raw);
        expect(r.path.startsWith('/')).toBe(true);
        expect(r.path).not.toMatch(/\/\/|(^|\/)\.\.?(\/|$)|\\/);
        const again = normalizePath(r.path, DECODE);
        expect(again).toEqual({ ok: true, path: r.path, changed: false });
      }),
      { numRuns: 2000, seed: 14 },
    );
  });

  it('dot-segment removal follows RFC 3986 section 5.2.4 examples', () => {
    expect(removeDotSegments('/a/b/c/./../../g')).toBe('/a/g');
    expect(removeDotSegments('/mid/content=5/../6')).toBe('/mid/6');
    expect(removeDotSegments('/./')).toBe('/');
  });
});
