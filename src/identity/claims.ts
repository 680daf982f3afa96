/**
 * Bounds on claims: how deeply objects and arrays nest, and how many JSON bytes they take.
 * JSON.parse handles any depth, but JSON.stringify (minting, rewriting) and every recursive
 * reader after it overflow the stack on a claim nested some thousands deep: such a token is
 * refused where it enters (ERR_CLAIMS_TOO_LARGE), and so are claims about to be signed.
 */

/** Why `value` nests deeper than `maxDepth` (the claims object itself is depth 1); undefined when it does not. Iterative: no recursion to overflow. */
export function claimsProblem(value: unknown, maxDepth: number): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > maxDepth) return `claims nest deeper than ${maxDepth} levels (commonIdentity.maxClaimDepth)`;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
  }
  return undefined;
}

/** Why claims about to be signed are refused (depth, then size as JSON); undefined when they are within the limits. */
export function mintClaimsProblem(claims: object, maxDepth: number, maxBytes: number): string | undefined {
  const deep = claimsProblem(claims, maxDepth);
  if (deep) return deep;
  const bytes = Buffer.byteLength(JSON.stringify(claims));
  return bytes > maxBytes ? `claims are ${bytes} bytes as JSON (limit ${maxBytes}, commonIdentity.maxClaimBytes)` : undefined;
}
