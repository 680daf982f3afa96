/**
 * Building blocks several config sections share. src/config/schema.ts composes the sections;
 * each concept keeps its own (src/federation/schema.ts, src/identity/schema.ts,
 * src/policy/schema.ts, src/rewrite/schema.ts, src/config/server.ts for the listeners).
 */
import { z } from 'zod';
import { configPath } from './paths.js';

/** The longest delay a Node timer can hold (2^31 − 1 ms); a longer one fires after 1 ms. */
export const MAX_TIMER_SECONDS = 2_147_483;

export const port = z.number().int().min(0).max(65535);

/** A header zonegate sets or reads by configured name: lower case, not a pseudo-header, not host. */
export const headerName = z
  .string()
  .regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a lower-case HTTP header name')
  .refine((n) => !n.startsWith(':') && n !== 'host', 'must not be a pseudo-header or host');

/** A file named by the config, resolved against the config file's directory (src/paths.ts). */
export const filePath = configPath;

export const url = z.string().url();

/** A value `parse` must accept (a SPIFFE ID, a trust domain), checked here so the problem gets a file, line and key path. */
export const parsedBy = (parse: (s: string) => unknown) =>
  z.string().min(1).superRefine((v, ctx) => {
    try {
      parse(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
