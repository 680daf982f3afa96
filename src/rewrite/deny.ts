/**
 * What a denied client receives, in both modes (gRPC DeniedHttpResponse and the HTTP mode):
 * the status (401 when no valid identity was presented, 403 otherwise, both configurable), the
 * reason header, and a JSON body {"reason", "message"?, "decisionId"}. The message is the
 * reason's fixed summary from the code table — never request data, tokens or keys.
 */
import { REASONS, type ReasonCode } from '../errors.js';
import type { DenyConfig } from './schema.js';

export interface DenyResponse {
  readonly status: number;
  /** [name, value] in order; content-type only when there is a body. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

/** The deny response for a reason code of kind `deny`. */
export function denyResponse(reason: ReasonCode, decisionId: string, o: DenyConfig): DenyResponse {
  const info = REASONS[reason];
  const status = info.http === 401 ? o.status.unauthenticated : o.status.forbidden;
  const headers: [string, string][] = [];
  let body = '';
  if (o.body) {
    headers.push(['content-type', 'application/json']);
    body = JSON.stringify(o.message ? { reason, message: info.summary, decisionId } : { reason, decisionId });
  }
  if (o.reasonHeader) headers.push([o.reasonHeader, reason]);
  return { status, headers, body };
}
