/**
 * BundleSet: trust domain → Bundle, never merged across trust domains. Every change bumps that
 * trust domain's generation (and the set's), which keys the verification caches: a bundle
 * change invalidates cached results for its trust domain only.
 */
import type { X509Certificate } from 'node:crypto';
import type { TrustDomain } from '../spiffe/id.js';
import type { Bundle, JwtAuthority } from './bundle.js';

/** The one-method source X.509 verifiers see. */
export interface X509BundleSource {
  /** The X.509 authorities of exactly this trust domain; undefined when none is held. */
  x509Authorities(td: TrustDomain): readonly X509Certificate[] | undefined;
  /** Intermediates configured beside the bundle (the proxy forwards only the leaf). */
  intermediates?(td: TrustDomain): readonly X509Certificate[];
  /** Changes whenever the trust domain's material changes. */
  generation?(td: TrustDomain): number;
  /** True when the trust domain's bundle is too old to be trusted (it fails closed). */
  isStale?(td: TrustDomain): boolean;
}

/** The one-method source JWT verifiers see. */
export interface JwtBundleSource {
  /** The JWT authorities (by kid) of exactly this trust domain; undefined when none is held. */
  jwtAuthorities(td: TrustDomain): ReadonlyMap<string, JwtAuthority> | undefined;
}

/** Trust domain → Bundle, with generations that key the verification caches. */
export class BundleSet implements X509BundleSource, JwtBundleSource {
  private readonly bundles = new Map<string, Bundle>();
  private readonly extra = new Map<string, readonly X509Certificate[]>();
  private readonly generations = new Map<string, number>();
  private readonly stale = new Set<string>();
  private global = 0;

  private bump(name: string): void {
    this.global++;
    this.generations.set(name, this.global);
  }

  /** Sets (replaces) the bundle of its trust domain. */
  set(bundle: Bundle): void {
    this.bundles.set(bundle.trustDomain.name, bundle);
    this.bump(bundle.trustDomain.name);
  }

  /** Forgets a trust domain: its SVIDs become ERR_TRUST_DOMAIN_UNKNOWN. */
  delete(td: TrustDomain): void {
    const had = this.bundles.delete(td.name);
    if (this.stale.delete(td.name) || had) this.bump(td.name);
  }

  /** The bundle held for `td`, stale or not. */
  get(td: TrustDomain): Bundle | undefined {
    return this.bundles.get(td.name);
  }

  /** Names of the trust domains with a bundle. */
  trustDomains(): string[] {
    return [...this.bundles.keys()];
  }

  /** Intermediates configured beside `td`'s bundle; they help build paths but are never trust anchors. */
  setIntermediates(td: TrustDomain, certs: readonly X509Certificate[]): void {
    this.extra.set(td.name, Object.freeze([...certs]));
    this.bump(td.name);
  }

  /** The intermediates configured for `td` (empty when none). */
  intermediates(td: TrustDomain): readonly X509Certificate[] {
    return this.extra.get(td.name) ?? [];
  }

  /** Marks a trust domain stale (its authorities are withheld: fail closed) or fresh again. */
  setStale(td: TrustDomain, stale: boolean): void {
    if (stale === this.stale.has(td.name)) return;
    if (stale) this.stale.add(td.name);
    else this.stale.delete(td.name);
    this.bump(td.name);
  }

  /** True while `td` is marked stale. */
  isStale(td: TrustDomain): boolean {
    return this.stale.has(td.name);
  }

  /** `td`'s X.509 authorities; undefined when unknown or stale (fail closed). */
  x509Authorities(td: TrustDomain): readonly X509Certificate[] | undefined {
    return this.stale.has(td.name) ? undefined : this.bundles.get(td.name)?.x509Authorities;
  }

  /** `td`'s JWT authorities by kid; undefined when unknown or stale (fail closed). */
  jwtAuthorities(td: TrustDomain): ReadonlyMap<string, JwtAuthority> | undefined {
    return this.stale.has(td.name) ? undefined : this.bundles.get(td.name)?.jwtAuthorities;
  }

  /** Generation of one trust domain (0 when it never had material). */
  generation(td: TrustDomain): number {
    return this.generations.get(td.name) ?? 0;
  }

  /** Generation of the whole set: changes on any change. */
  get setGeneration(): number {
    return this.global;
  }
}
