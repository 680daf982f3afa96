#!/usr/bin/env node
// The installed command. The TypeScript sources are compiled to dist/ by `npm run build`
// (run by `npm ci` through the prepare script).
import { main } from '../dist/cli/index.js';

main(process.argv).catch((err) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
});
