/**
 * HCL as HashiCorp's own parser reads it (@cdktf/hcl2json: hashicorp/hcl compiled to WebAssembly),
 * as JSON: a block becomes an array of its bodies (a block may repeat: `template { … }
 * template { … }`), an attribute its value. A syntax error (a stray brace, a missing `=`, an
 * attribute set twice) rejects with the parser's message and position.
 *
 * Consul's service definitions are HCL 2; consul-template reads its config with HCL 1, whose
 * syntax for these files is the same except that a number with a leading 0 is octal there
 * (`perms = 0644`), where HCL 2 gives the decimal digits (644).
 */
import { createRequire } from 'node:module';

// Loaded without its type declarations: they pull the DOM library into the whole type check.
const { parse } = createRequire(import.meta.url)('@cdktf/hcl2json') as { parse(name: string, text: string): Promise<unknown> };

type Value = string | number | boolean | null | Value[] | { [k: string]: Value };
export type HclBody = Record<string, Value>;

export async function parseHcl(text: string, name = 'config.hcl'): Promise<HclBody> {
  return (await parse(name, text)) as HclBody;
}
