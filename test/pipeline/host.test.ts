import { describe, expect, it } from 'vitest';
import { normalizeHost } from '../../src/request/host.js';

describe('host normalization', () => {
  it.each([
    ['admin.zone-a.example', { name: 'admin.zone-a.example' }],
    ['admin.zone-a.example.', { name: 'admin.zone-a.example' }],
    ['admin.zone-a.example..', { name: 'admin.zone-a.example' }],
    ['ADMIN.Zone-A.Example.', { name: 'admin.zone-a.example' }],
    ['admin.zone-a.example.:8443', { name: 'admin.zone-a.example', port: 8443 }],
    ['Admin.Zone-A.Example:443', { name: 'admin.zone-a.example', port: 443 }],
    ['admin.zone-a.example:', { name: 'admin.zone-a.example' }],
    [' admin.zone-a.example ', { name: 'admin.zone-a.example' }],
    ['[::1]', { name: '[::1]' }],
    ['[::1]:8080', { name: '[::1]', port: 8080 }],
    ['[2001:DB8::1]:443', { name: '[2001:db8::1]', port: 443 }],
    ['127.0.0.1:80', { name: '127.0.0.1', port: 80 }],
    ['', { name: '' }],
    ['.', { name: '' }],
  ])('%j → %j', (raw, want) => {
    expect(normalizeHost(raw)).toEqual({ ok: true, ...want });
  });

  // Each of these reaches the upstream through Envoy as sent, and upstreams read them as another
  // host: nginx cuts at the first colon, Go's ServeMux drops a non-numeric port, WHATWG URL
  // parsers decode %2e; a host rule must not match them as text.
  it.each([
    'admin.example:abc',
    'admin.example::80',
    'admin.example:80:80',
    'admin.example:+80',
    'admin.example:-1',
    'admin.example:999999',
    'admin.example:65536',
    'admin.example:443.',
    'admin.example,b.example', // two Host headers, as Envoy joins them
    'a.example, admin.example',
    'admin.example;',
    'admin%2eexample',
    'user@admin.example',
    '*.example',
    '[admin.example]',
    'admin.example :80',
    'admin.exampl\u00e9',
    'admin.example\u3002',
    '\u212aey.example', // KELVIN SIGN: "k" once lower-cased, other bytes to the upstream
    '\u0130nternal.example', // U+0130: "i" and a combining dot once lower-cased
    'KEY.EXAMPLE\u212a',
    '::1',
    '[::1]x',
  ])('%j is refused (ERR_HOST_INVALID)', (raw) => {
    expect(normalizeHost(raw)).toMatchObject({ ok: false, code: 'ERR_HOST_INVALID' });
  });

  it('a long host costs one pass', () => {
    const long = `${'a.'.repeat(50_000)}example.${'.'.repeat(50_000)}:443`;
    expect(normalizeHost(long)).toEqual({ ok: true, name: `${'a.'.repeat(50_000)}example`, port: 443 });
  });
});
