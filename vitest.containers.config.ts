import { defineConfig } from 'vitest/config';

// `npm run test:containers`: the suites that need a Docker engine (kept out of `npm test`).
export default defineConfig({
  test: {
    include: ['test/containers/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 900_000, // image pulls and the Dockerfile build on a cold machine
    pool: 'forks',
  },
});
