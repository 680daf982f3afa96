/** SPIFFE value types: `import { SpiffeId, TrustDomain } from '../spiffe/index.js'`. */
export { MAX_SPIFFE_ID_BYTES, MAX_TRUST_DOMAIN_BYTES, SpiffeId, TrustDomain } from './id.js';
