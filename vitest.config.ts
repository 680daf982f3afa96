import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // needs a Docker engine: `npm run test:containers` (vitest.containers.config.ts)
    exclude: [...configDefaults.exclude, 'test/containers/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
});
