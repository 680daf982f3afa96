/** The README's nginx recipe, as printed (test/http/nginx.test.ts runs it; nginx-recipe.test.ts reads it). */
import { readFileSync } from 'node:fs';

export function readmeRecipe(): string {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const block = /```nginx\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error('README.md: no nginx block');
  return block;
}

/** The body of `location <name> { … }` in an nginx config (no nested blocks in the recipes). */
export function locationBody(conf: string, name: string): string {
  const at = conf.indexOf(`location ${name} {`);
  if (at === -1) throw new Error(`no location ${name}`);
  const open = conf.indexOf('{', at);
  return conf.slice(open + 1, conf.indexOf('\n}', open));
}

/** `proxy_set_header NAME VALUE;` lines of a block: lower-cased name → value. */
export function proxySetHeaders(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of block.matchAll(/^\s*proxy_set_header\s+(\S+)\s+(.+?);/gm)) out.set(m[1]!.toLowerCase(), m[2]!);
  return out;
}

/** `auth_request_set $var $upstream_http_x;` lines: variable → the response header it copies. */
export function authRequestSets(block: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of block.matchAll(/^\s*auth_request_set\s+(\$\w+)\s+\$upstream_http_(\w+);/gm)) out.set(m[1]!, m[2]!.replaceAll('_', '-'));
  return out;
}
