/** Reading the integration guides and the files they ship (docs/integrations/). */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PACKAGE_ROOT } from '../../src/paths.js';

export const INTEGRATIONS = join(PACKAGE_ROOT, 'docs/integrations');

/** Every YAML document of every .yaml file in a directory, by file. */
export function yamlDocs(dir: string): Map<string, Record<string, any>[]> {
  const out = new Map<string, Record<string, any>[]>();
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort()) {
    const docs = parseAllDocuments(readFileSync(join(dir, name), 'utf8'), { uniqueKeys: true });
    const list = (Array.isArray(docs) ? docs : [docs]).map((d) => {
      if (d.errors.length > 0) throw new Error(`${name}: ${d.errors[0]!.message}`);
      return d.toJS() as Record<string, any>;
    });
    out.set(name, list);
  }
  return out;
}

/** The repository-relative paths a guide names (docs/integrations/…, scripts/…), and whether each exists. */
export function namedFiles(guide: string): { path: string; exists: boolean }[] {
  const text = readFileSync(join(INTEGRATIONS, guide), 'utf8');
  const paths = new Set([...text.matchAll(/\b((?:docs\/integrations|scripts)\/[\w./-]+\.(?:yaml|json|hcl|mjs|sh))\b/g)].map((m) => m[1]!));
  return [...paths].sort().map((path) => ({ path, exists: existsSync(join(PACKAGE_ROOT, path)) }));
}

/** Every fenced code block of a guide, in order: its info string ('' when none) and its text, de-indented like the fence. */
export function fences(guide: string): { lang: string; text: string }[] {
  const text = readFileSync(join(INTEGRATIONS, guide), 'utf8');
  return [...text.matchAll(/^( *)```(\S*)\n([\s\S]*?)^\1```$/gm)].map((m) => ({
    lang: m[2]!,
    text: m[3]!.split('\n').map((l) => (l.startsWith(m[1]!) ? l.slice(m[1]!.length) : l)).join('\n'),
  }));
}
