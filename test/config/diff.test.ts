/**
 * config/diff.ts: the one comparison of two configs that decides what a reload rebuilds, what it
 * keeps, and what needs a restart.
 */
import { describe, expect, it } from 'vitest';
import { configChanges } from '../../src/config/diff.js';
import { fetchLimits, trustSourceKey } from '../../src/federation/schema.js';
import { parseConfig } from '../../src/config/load.js';

const load = (text: string) => parseConfig(text, 'c.yaml', '/etc/zonegate').config;
const BASE = 'trust: [{trustDomain: a.test, bundle: a.pem}]\nidentity: {cert: svid.pem, key: svid.key}\ncommonIdentity: {audiences: [spiffe://a.test]}\n';

describe('configChanges', () => {
  it('the same config changes nothing', () => {
    expect(configChanges(load(BASE), load(BASE))).toEqual({ trust: false, identity: false, carried: false, restartNeeded: [] });
  });

  it('rules and log level alone rebuild nothing but the decision state', () => {
    const after = load(`${BASE}log: {level: debug}\nrules: [{name: r, action: allow}]\n`);
    expect(configChanges(load(BASE), after)).toEqual({ trust: false, identity: false, carried: false, restartNeeded: [] });
  });

  it('names each part a change touches', () => {
    expect(configChanges(load(BASE), load(BASE.replace('a.pem', 'b.pem')))).toMatchObject({ trust: true, identity: false, carried: false });
    expect(configChanges(load(BASE), load(BASE.replace('svid.key', 'other.key')))).toMatchObject({ trust: false, identity: true, carried: false });
    expect(configChanges(load(BASE), load(BASE.replace('audiences:', 'maxActDepth: 2, audiences:')))).toMatchObject({ trust: false, identity: false, carried: true });
    // the token verifiers take their x5c bounds and cache sizes from limits and cache
    expect(configChanges(load(BASE), load(`${BASE}limits: {maxChainLength: 3}\n`))).toMatchObject({ trust: false, carried: true });
    expect(configChanges(load(BASE), load(`${BASE}cache: {tokens: 10}\n`))).toMatchObject({ trust: false, carried: true });
    // fetch limits bind both the trust sources and the identity keys' fetches
    expect(configChanges(load(BASE), load(`${BASE}federation: {fetch: {maxBytes: 4096}}\n`))).toMatchObject({ trust: true, carried: true });
    // the limits and caches each part reads: the carried phase's chain limits and caches, the trust manager's bundle size
    for (const limit of ['limits: {maxChainLength: 3}', 'limits: {maxChainBytes: 2048}', 'limits: {maxSignatureChecks: 4}', 'cache: {tokens: 10}', 'cache: {chains: 10}', 'cache: {certificates: 10}'])
      expect(configChanges(load(BASE), load(`${BASE}${limit}\n`)), limit).toMatchObject({ trust: false, identity: false, carried: true });
    expect(configChanges(load(BASE), load(`${BASE}limits: {maxBundleKeys: 5}\n`))).toMatchObject({ trust: true, identity: false, carried: true });
    // a limit neither reads rebuilds neither
    expect(configChanges(load(BASE), load(`${BASE}limits: {maxHeaders: 10}\n`))).toMatchObject({ trust: false, identity: false, carried: false });
    // dropping the identity is a change too
    expect(configChanges(load(BASE), load(BASE.replace('identity: {cert: svid.pem, key: svid.key}\n', '')))).toMatchObject({ identity: true });
  });

  it('listener settings need a restart, each named by its key', () => {
    const after = load(`${BASE}server: {grpc: {port: 9}, ops: {explain: true}}\n`);
    expect(configChanges(load(BASE), after).restartNeeded).toEqual(['server.grpc', 'server.ops']);
    expect(configChanges(load(BASE), load(`${BASE}server: {drainDelaySeconds: 5}\n`)).restartNeeded).toEqual([]);
  });
});

describe('trustSourceKey', () => {
  it('changes with the source or the limits its fetches run under, not with other trust domains', () => {
    const two = load('trust: [{trustDomain: a.test, bundle: a.pem}, {trustDomain: b.test, bundle: b.pem}]\n');
    const changedB = load('trust: [{trustDomain: a.test, bundle: a.pem}, {trustDomain: b.test, bundle: c.pem}]\n');
    expect(trustSourceKey(two.trust[0]!, two)).toBe(trustSourceKey(changedB.trust[0]!, changedB));
    expect(trustSourceKey(two.trust[1]!, two)).not.toBe(trustSourceKey(changedB.trust[1]!, changedB));
    const limited = load('trust: [{trustDomain: a.test, bundle: a.pem}]\nlimits: {maxBundleKeys: 5}\n');
    expect(trustSourceKey(two.trust[0]!, two)).not.toBe(trustSourceKey(limited.trust[0]!, limited));
  });
});

describe('fetchLimits', () => {
  it('every outgoing fetch runs under federation.fetch and limits.maxBundleKeys as configured', () => {
    const c = load('trust: [{trustDomain: a.test, bundle: a.pem}]\nfederation: {fetch: {connectTimeoutMs: 111, totalTimeoutMs: 222, maxBytes: 3333}}\nlimits: {maxBundleKeys: 44}\n');
    expect(fetchLimits(c)).toEqual({ connectTimeoutMs: 111, totalTimeoutMs: 222, maxBytes: 3333, maxKeys: 44 });
    const d = load('trust: [{trustDomain: a.test, bundle: a.pem}]\n');
    expect(fetchLimits(d)).toEqual({ ...d.federation.fetch, maxKeys: d.limits.maxBundleKeys });
  });
});
