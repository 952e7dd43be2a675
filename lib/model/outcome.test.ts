/**
 * The outcome and deny-reason rules of CONTRACT.md §4, with the details strings of
 * shared/reference/telemetry-formats.md §4 (Envoy's `rbac_access_denied_matched_policy[...]`, envoyproxy/envoy#12912;
 * Istio's `ns[..]-policy[..]-rule[..]` id, istio/proxy#3100; ext_authz, envoy's ext_authz filter).
 */
import { applyOutcome, classifyOutcome, parseRbacDenial, type OutcomeInput } from './outcome';
import { emptyRequest } from './request';

function input(over: Partial<OutcomeInput>): OutcomeInput {
  return {
    responseCode: 200,
    responseFlags: '',
    responseCodeDetails: 'via_upstream',
    connectionTerminationDetails: '',
    upstreamCluster: 'outbound|7070||checkout.shop.svc.cluster.local',
    routeName: 'default',
    ...over,
  };
}

describe('parseRbacDenial', () => {
  it('reads namespace, policy and rule from Istio policy ids', () => {
    expect(parseRbacDenial('rbac_access_denied_matched_policy[ns[shop]-policy[deny-legacy]-rule[1]]')).toEqual({ policy: 'shop/deny-legacy', rule: 1 });
    expect(parseRbacDenial('rbac_access_denied_matched_policy[ns[shop]-policy[db-lockdown]-rule[0]]')).toEqual({ policy: 'shop/db-lockdown', rule: 0 });
  });

  it('names no policy for `[none]` (no ALLOW policy matched) and for an empty id', () => {
    expect(parseRbacDenial('rbac_access_denied_matched_policy[none]')).toEqual({ policy: '', rule: -1 });
    expect(parseRbacDenial('rbac_access_denied_matched_policy[]')).toEqual({ policy: '', rule: -1 });
  });

  it('keeps non-Istio Envoy RBAC policy names whole', () => {
    expect(parseRbacDenial('rbac_access_denied_matched_policy[deny-admin-paths]')).toEqual({ policy: 'deny-admin-paths', rule: -1 });
  });

  it('keeps the policy when the rule index is not a number', () => {
    expect(parseRbacDenial('rbac_access_denied_matched_policy[ns[shop]-policy[deny-legacy]-rule[x]]')).toEqual({ policy: 'shop/deny-legacy', rule: -1 });
  });

  it('is undefined for anything that is not an RBAC denial', () => {
    for (const s of ['', '-', 'via_upstream', 'ext_authz_denied', 'rbac_access_denied_matched_policy[', 'rbac_access_denied_matched_policy[none', 'rbac_access_denied']) {
      expect(parseRbacDenial(s)).toBeUndefined();
    }
  });
});

describe('classifyOutcome', () => {
  it('denies an HTTP 403 RBAC denial by a DENY policy, naming policy and rule', () => {
    expect(classifyOutcome(input({ responseCode: 403, responseCodeDetails: 'rbac_access_denied_matched_policy[ns[shop]-policy[deny-legacy]-rule[1]]' }))).toEqual({
      outcome: 'denied',
      denyReason: 'rbac',
      policy: 'shop/deny-legacy',
      rule: 1,
    });
  });

  it('denies `[none]` (no ALLOW policy matched) without a policy', () => {
    expect(classifyOutcome(input({ responseCode: 403, responseCodeDetails: 'rbac_access_denied_matched_policy[none]' }))).toEqual({
      outcome: 'denied',
      denyReason: 'rbac',
      policy: '',
      rule: -1,
    });
  });

  it('denies a non-Istio RBAC policy id', () => {
    expect(classifyOutcome(input({ responseCode: 403, responseCodeDetails: 'rbac_access_denied_matched_policy[deny-admin-paths]' }))).toMatchObject({
      outcome: 'denied',
      denyReason: 'rbac',
      policy: 'deny-admin-paths',
    });
  });

  it('denies a TCP connection closed by the network RBAC filter (connection termination details)', () => {
    expect(
      classifyOutcome(
        input({
          responseCode: 0,
          responseCodeDetails: '',
          connectionTerminationDetails: 'rbac_access_denied_matched_policy[ns[shop]-policy[db-lockdown]-rule[0]]',
          upstreamCluster: 'inbound|5432||',
        }),
      ),
    ).toEqual({ outcome: 'denied', denyReason: 'rbac', policy: 'shop/db-lockdown', rule: 0 });
  });

  it('denies ext_authz refusals whatever code the authorizer returned', () => {
    for (const code of [403, 401, 302]) {
      expect(classifyOutcome(input({ responseCode: code, responseFlags: 'UAEX', responseCodeDetails: 'ext_authz_denied' }))).toEqual({
        outcome: 'denied',
        denyReason: 'ext_authz',
        policy: '',
        rule: -1,
      });
    }
    // The details alone, and the UAEX flag alone (fail-closed authz error), are enough.
    expect(classifyOutcome(input({ responseCode: 403, responseCodeDetails: 'ext_authz_denied' })).denyReason).toBe('ext_authz');
    expect(classifyOutcome(input({ responseCode: 403, responseFlags: 'UAEX', responseCodeDetails: 'ext_authz_error' })).denyReason).toBe('ext_authz');
  });

  it('denies traffic sent to BlackHoleCluster (REGISTRY_ONLY), also with the alt_stat_name `;`', () => {
    for (const upstreamCluster of ['BlackHoleCluster', 'BlackHoleCluster;']) {
      expect(classifyOutcome(input({ responseCode: 0, responseFlags: 'UH', responseCodeDetails: '', upstreamCluster }))).toEqual({
        outcome: 'denied',
        denyReason: 'blackhole',
        policy: '',
        rule: -1,
      });
    }
  });

  it('denies the HTTP face of BlackHole: the block_all route`s 502 with no cluster', () => {
    expect(classifyOutcome(input({ responseCode: 502, responseCodeDetails: 'direct_response', upstreamCluster: '-', routeName: 'block_all' }))).toMatchObject({
      outcome: 'denied',
      denyReason: 'blackhole',
    });
  });

  it('counts 5xx as errors, the app`s own and the proxy`s', () => {
    expect(classifyOutcome(input({ responseCode: 500 }))).toEqual({ outcome: 'error', denyReason: '', policy: '', rule: -1 });
    expect(classifyOutcome(input({ responseCode: 503, responseFlags: 'UF,URX', responseCodeDetails: 'upstream_reset_before_response_started{connection_failure}' })).outcome).toBe('error');
    expect(classifyOutcome(input({ responseCode: 504, responseFlags: 'UT' })).outcome).toBe('error');
  });

  it('counts no response (code 0) with an upstream-failure flag as an error', () => {
    for (const responseFlags of ['UF', 'UH', 'URX', 'UF,URX']) {
      expect(classifyOutcome(input({ responseCode: 0, responseFlags, responseCodeDetails: '' })).outcome).toBe('error');
    }
  });

  it('does not count a downstream disconnect (DC) as an error', () => {
    expect(classifyOutcome(input({ responseCode: 0, responseFlags: 'DC', responseCodeDetails: 'downstream_remote_disconnect' })).outcome).toBe('ok');
    expect(classifyOutcome(input({ responseCode: 0, responseFlags: 'DC,UF' })).outcome).toBe('ok');
  });

  it('counts code 0 without flags (a TCP connection) as ok', () => {
    expect(classifyOutcome(input({ responseCode: 0, responseCodeDetails: '', upstreamCluster: 'PassthroughCluster' }))).toEqual({
      outcome: 'ok',
      denyReason: '',
      policy: '',
      rule: -1,
    });
  });

  it('counts 4xx as ok, including a 403 without RBAC details', () => {
    expect(classifyOutcome(input({ responseCode: 404, responseFlags: 'NR', responseCodeDetails: 'route_not_found', upstreamCluster: '-' })).outcome).toBe('ok');
    expect(classifyOutcome(input({ responseCode: 429, responseFlags: 'RL' })).outcome).toBe('ok');
    expect(classifyOutcome(input({ responseCode: 403, responseCodeDetails: 'via_upstream' }))).toEqual({ outcome: 'ok', denyReason: '', policy: '', rule: -1 });
  });
});

describe('applyOutcome', () => {
  it('writes the classification into the request', () => {
    const r = emptyRequest();
    r.responseCode = 403;
    r.responseCodeDetails = 'rbac_access_denied_matched_policy[ns[shop]-policy[deny-legacy]-rule[1]]';
    expect(applyOutcome(r)).toMatchObject({ outcome: 'denied', denyReason: 'rbac', policy: 'shop/deny-legacy', rule: 1 });
  });
});
