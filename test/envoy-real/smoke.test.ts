/**
 * The Envoy helper itself: every pinned Envoy starts on loopback with an ephemeral port, answers a
 * direct_response route, reports its version, and stops.
 */
import { describe, expect, it } from 'vitest';
import { envoyMatrix, startEnvoy } from '../helpers/envoy.js';
import { pinnedEnvoyVersions } from '../../src/envoy-binary.js';
import { IN_CI } from '../helpers/tools.js';

const matrix = envoyMatrix();

const config = {
  static_resources: {
    listeners: [
      {
        name: 'plain',
        address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
        filter_chains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                  stat_prefix: 'plain',
                  route_config: {
                    virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } }] }],
                  },
                  http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
                },
              },
            ],
          },
        ],
      },
    ],
  },
};

describe.skipIf(matrix.length === 0)('real Envoy', () => {
  if (IN_CI) {
    it('CI runs every version pinned in envoy/versions.txt', () => {
      expect(matrix.map((b) => b.version).sort()).toEqual(pinnedEnvoyVersions().sort());
    });
  }
  for (const bin of matrix) {
    it(`envoy ${bin.version} starts, answers on an ephemeral port, and stops`, async () => {
      const envoy = await startEnvoy(bin, config);
      try {
        expect(envoy.ports.plain).toBeGreaterThan(0);
        const r = await fetch(`http://127.0.0.1:${envoy.ports.plain}/`);
        expect(r.status).toBe(200);
        expect(await r.text()).toBe('ok');
        const info = (await (await fetch(`${envoy.admin}/server_info`)).json()) as { version: string };
        expect(info.version).toContain(`/${bin.version}/`);
      } finally {
        await envoy.stop();
      }
    });
  }
});
