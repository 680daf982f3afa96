#!/usr/bin/env node
// Writes examples/requests/*.json: CheckRequests in proto3 JSON, as Envoy sends them, for
// trying `zonegate check` against examples/zonegate.yaml. Run after `make-certs.sh --flat`.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const cert = (name) => encodeURIComponent(readFileSync(join(dir, 'certs', `${name}.svid.pem`), 'utf8'));

function request({ svid, method = 'GET', path, headers = {}, extensions }) {
  return {
    attributes: {
      source: {
        address: { socketAddress: { address: '10.0.0.7', portValue: 43122 } },
        ...(svid ? { certificate: cert(svid) } : {}),
      },
      destination: { address: { socketAddress: { address: '10.0.0.9', portValue: 8443 } } },
      request: {
        time: '2026-11-23T10:00:00Z',
        http: {
          id: '8b1c6a2e-4f0d-4c3b-9a57-1e2f3d4c5b6a',
          method,
          path,
          host: 'api.zone-a.example',
          scheme: 'https',
          protocol: 'HTTP/1.1',
          headers: { ':authority': 'api.zone-a.example', ':method': method, ':path': path, ...headers },
        },
      },
      ...(extensions ? { contextExtensions: extensions } : {}),
    },
  };
}

const cases = {
  'allowed.json': request({ svid: 'frontend', path: '/api/items?page=2' }),
  'spoofed-header.json': request({
    svid: 'frontend',
    path: '/api/items',
    headers: { 'x-zonegate-peer': 'spiffe://zone-a.example/ns/shop/sa/admin', 'x-zonegate-actor': 'root' },
  }),
  'cross-zone-allowed.json': request({ svid: 'billing', path: '/api/orders/42' }),
  'denied-admin.json': request({ svid: 'billing', path: '/admin/users' }),
  'no-rule.json': request({ svid: 'frontend', method: 'DELETE', path: '/api/items/1' }),
  'no-identity.json': request({ path: '/api/items' }),
  'forged-trust-domain.json': request({ svid: 'forged', path: '/api/orders' }),
};
for (const [name, body] of Object.entries(cases))
  writeFileSync(join(dir, 'requests', name), `${JSON.stringify(body, null, 2)}\n`);
console.log(`wrote ${Object.keys(cases).join(' ')}`);
