import { describe, expect, it } from 'vitest';
import { normalizeHost } from '../../src/pipeline/host.js';

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
    ['::1', { name: '::1' }],
    ['127.0.0.1:80', { name: '127.0.0.1', port: 80 }],
    ['host:notaport', { name: 'host:notaport' }],
    ['', { name: '' }],
    ['.', { name: '' }],
  ])('%j → %j', (raw, want) => {
    expect(normalizeHost(raw)).toEqual(want);
  });

  it('a long host costs one pass', () => {
    const long = `${'a.'.repeat(50_000)}example.${'.'.repeat(50_000)}:443`;
    expect(normalizeHost(long)).toEqual({ name: `${'a.'.repeat(50_000)}example`, port: 443 });
  });
});
