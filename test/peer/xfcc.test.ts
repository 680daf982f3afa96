import { describe, expect, it } from 'vitest';
import { parseXfcc } from '../../src/peer/xfcc.js';

describe('parseXfcc', () => {
  it('parses Envoy set_current_client_cert_details output', () => {
    const h = 'By=spiffe://b.test/app;Hash=abc123;Cert="-----BEGIN%20CERTIFICATE-----%0AMII";Chain="x%2Cy";Subject="CN=a,O=b";URI=spiffe://a.test/web;DNS=a.test;DNS=b.test';
    expect(parseXfcc(h)).toEqual([
      {
        by: 'spiffe://b.test/app',
        hash: 'abc123',
        cert: '-----BEGIN%20CERTIFICATE-----%0AMII',
        chain: 'x%2Cy',
        subject: 'CN=a,O=b',
        uri: ['spiffe://a.test/web'],
        dns: ['a.test', 'b.test'],
      },
    ]);
  });

  it('splits elements on commas outside quotes; keys are case-insensitive; escapes in quotes', () => {
    const r = parseXfcc('By=x;URI=spiffe://a.test/1,by=y;uri="spiffe://b.test/2";Subject="CN=\\"q\\""');
    expect(r?.map((e) => [e.by, e.uri[0], e.subject])).toEqual([
      ['x', 'spiffe://a.test/1', undefined],
      ['y', 'spiffe://b.test/2', 'CN="q"'],
    ]);
  });

  it.each([
    ['no equals', 'garbage'],
    ['unknown key', 'Foo=bar'],
    ['unterminated quote', 'Cert="abc'],
    ['repeated single-valued key', 'Hash=a;Hash=b'],
    ['bad separator', 'Hash="a"x'],
  ])('rejects %s', (_n, h) => {
    expect(parseXfcc(h)).toBeUndefined();
  });
});
