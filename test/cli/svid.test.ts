/** `zonegate svid verify` on the example material and the public conformance vectors. */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLES_DIR } from '../../src/paths.js';
import { zonegate } from '../helpers/cli.js';

const certs = (n: string) => join(EXAMPLES_DIR, 'certs', n);
const VECTORS = new URL('../../../shared/conformance/spiffe/', import.meta.url).pathname;

describe('zonegate svid verify', () => {
  it('valid: exit 0 with the SPIFFE ID and trust domain', () => {
    const r = zonegate(['svid', 'verify', certs('frontend.svid.pem'), '--bundle', `zone-a.example=${certs('zone-a.root.pem')}`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      valid: true,
      spiffeId: 'spiffe://zone-a.example/ns/shop/sa/frontend',
      trustDomain: 'zone-a.example',
      reason: null,
    });
  });

  it('a CA of one trust domain cannot vouch for another: exit 1 ERR_SVID_UNTRUSTED', () => {
    const r = zonegate([
      'svid', 'verify', certs('forged.svid.pem'),
      '--bundle', `zone-a.example=${certs('zone-a.root.pem')}`,
      '--bundle', `zone-b.example=${certs('zone-b.root.pem')}`,
    ]);
    expect(r.code).toBe(1);
    // the ID the certificate names, which the message names too (not null)
    expect(JSON.parse(r.stdout)).toMatchObject({
      valid: false,
      reason: 'ERR_SVID_UNTRUSTED',
      spiffeId: 'spiffe://zone-b.example/ns/default/dc/dc1/svc/billing',
      trustDomain: 'zone-b.example',
    });
  });

  it('--help shows no "(default: [])" for the required --bundle; without one it is a usage error', () => {
    const help = zonegate(['svid', 'verify', '--help']);
    expect(help.stdout).toMatch(/--bundle <td=file>/);
    expect(help.stdout).not.toMatch(/default: \[\]/);
    for (const cmd of [['token', 'verify'], ['token', 'mint']]) expect(zonegate([...cmd, '--help']).stdout).not.toMatch(/default: \[\]/);
    expect(zonegate(['svid', 'verify', certs('frontend.svid.pem')])).toMatchObject({ code: 2, stderr: expect.stringMatching(/--bundle/) });
  });

  it('no bundle for the trust domain: exit 1 ERR_TRUST_DOMAIN_UNKNOWN', () => {
    const r = zonegate(['svid', 'verify', certs('billing.svid.pem'), '--bundle', `zone-a.example=${certs('zone-a.root.pem')}`]);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, reason: 'ERR_TRUST_DOMAIN_UNKNOWN' });
    expect(r.code).toBe(1);
  });

  it('--at pins the clock: the go-spiffe chain verifies in its validity window and is expired after', () => {
    const args = ['svid', 'verify', join(VECTORS, 'go-spiffe/x509svid/good-leaf-and-intermediate.pem'), '--bundle', `example.org=${join(VECTORS, 'go-spiffe/spiffebundle/spiffebundle_valid_1.json')}`];
    const inside = zonegate([...args, '--at', '2020-03-24T14:30:00Z']);
    expect(JSON.parse(inside.stdout)).toMatchObject({ valid: true, spiffeId: 'spiffe://example.org/workload-1' });
    const after = zonegate([...args, '--at', '2020-03-24T15:10:00Z']);
    expect(JSON.parse(after.stdout)).toMatchObject({ valid: false, reason: 'ERR_SVID_EXPIRED' });
  });

  it('usage errors exit 2', () => {
    for (const args of [
      ['svid', 'verify', certs('frontend.svid.pem')],
      ['svid', 'verify', certs('frontend.svid.pem'), '--bundle', 'no-equals-sign'],
      ['svid', 'verify', certs('frontend.svid.pem'), '--bundle', `BAD_TD=${certs('zone-a.root.pem')}`],
      ['svid', 'verify', certs('frontend.svid.pem'), '--bundle', `zone-a.example=${certs('missing.pem')}`],
      ['svid', 'verify', certs('frontend.svid.pem'), '--bundle', `zone-a.example=${certs('zone-a.root.pem')}`, '--at', 'yesterday'],
      ['svid', 'verify', certs('nope.pem'), '--bundle', `zone-a.example=${certs('zone-a.root.pem')}`],
    ]) {
      const r = zonegate(args);
      expect({ args: args.slice(2), code: r.code }).toEqual({ args: args.slice(2), code: 2 });
    }
  });
});
