/**
 * Mode basic: `authorization: Basic …` for a legacy upstream that only knows passwords
 * (WirePact's Basic translator). A secret file maps each actor to the upstream's credentials:
 *
 *   # YAML: actor → "username:password"
 *   "spiffe://zone-a.example/ns/shop/sa/frontend": "frontend:s3cret"
 *   "user:alice": "alice:other-secret"
 *
 * The header values are built when the config is loaded or reloaded (a change of the file reloads
 * the config: src/config/reload.ts); the file's contents are never logged.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { isHeaderValue } from './identity.js';

export class BasicCredentials {
  private readonly byActor = new Map<string, string>();

  constructor(file: string) {
    let doc: unknown;
    try {
      doc = parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`upstream.basic.credentialsFile: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`, { cause: err });
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      throw new Error(`upstream.basic.credentialsFile: ${file} must be a mapping of actor to "username:password"`);
    for (const [actor, cred] of Object.entries(doc as Record<string, unknown>)) {
      // RFC 7617: the user-id cannot contain a colon; the password may.
      const colon = typeof cred === 'string' ? cred.indexOf(':') : -1;
      if (typeof cred !== 'string' || colon < 1 || !isHeaderValue(cred))
        throw new Error(`upstream.basic.credentialsFile: the entry for actor "${actor}" is not "username:password"`);
      this.byActor.set(actor, `Basic ${Buffer.from(cred, 'utf8').toString('base64')}`);
    }
  }

  /** The header value for an actor, or undefined when the file has no entry for it. */
  header(actor: string): string | undefined {
    return this.byActor.get(actor);
  }

  get size(): number {
    return this.byActor.size;
  }
}
