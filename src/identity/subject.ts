/**
 * What a token may name as its subject. The `sub` of every verified token becomes a header value
 * for the upstream (x-zonegate-actor) and a policy input: a control character could split or
 * corrupt that header, and a proxy that drops an invalid header mutation would let the client's
 * own copy through. So a subject with one is refused at verification (ERR_TOKEN_CLAIMS), as is
 * one longer than the longest SPIFFE ID.
 */
import { MAX_SPIFFE_ID_BYTES } from '../spiffe/id.js';

export const MAX_SUBJECT_BYTES = MAX_SPIFFE_ID_BYTES;

// C0 controls (CR, LF, NUL, TAB, …), DEL and C1 controls
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why `sub` cannot be a subject; undefined when it can. */
export function subjectProblem(sub: unknown): string | undefined {
  if (typeof sub !== 'string' || sub === '') return 'sub is missing';
  if (Buffer.byteLength(sub, 'utf8') > MAX_SUBJECT_BYTES) return `sub is longer than ${MAX_SUBJECT_BYTES} bytes`;
  if (CONTROL.test(sub)) return 'sub contains a control character';
  return undefined;
}
