import { parseCalicoFlow } from './calico';
import { accepted, records, rejection } from './flows.testutil';

const [CLINIC_DENY, FRONTEND_TO_CART_PROFILE, DOCS_AGGR_ALLOW, DOCS_DENY, DOCS_PROFILE_ALLOW] = records('calico-enterprise.ndjson');
const [ALLOW_AFTER_PASS, PASS_ACTION, GLOBAL_DENY_EXTERNAL, KNP_ALLOW] = records('calico-enterprise-derived.ndjson');
const [WEB_GUARD_DENY, END_OF_TIER_DENY, PASS_THEN_PROFILE_ALLOW] = records('calico-goldmane.ndjson');
const [GOLDMANE_PASS, GOLDMANE_PROTOJSON] = records('calico-goldmane-derived.ndjson');

describe('parseCalicoFlow: Calico Enterprise flow logs', () => {
  it('reads the denied flow of the observability clinic: end-of-tier deny by the tier`s last policy', () => {
    const f = accepted(parseCalicoFlow(CLINIC_DENY!));
    expect(f).toMatchObject({
      startTimeMs: 1659621542000, // epoch seconds
      reporter: 'destination',
      verdict: 'denied',
      denyReason: 'network_policy',
      detail: 'deny',
      // `1|app-hipstershop|hipstershop/app-hipstershop.checkoutservice|deny|-1`, after a `pass` at index 0
      policy: 'hipstershop/checkoutservice',
      rule: -1,
      sourceWorkload: 'multitool',
      sourceNamespace: 'default',
      sourceAddress: '10.48.116.157',
      destinationWorkload: 'checkoutservice',
      destinationNamespace: 'hipstershop',
      destinationService: 'checkoutservice',
      destinationAddress: '10.48.127.224',
      destinationPort: 5050,
      transport: 'tcp',
      count: 1,
      bytes: 300,
      packets: 5,
    });
    expect(f.attributes).toMatchObject({ end_of_tier: 'true', tier: 'app-hipstershop' });
  });

  it('reads an aggregated allow by the namespace profile: no policy named, workload from the aggregated name', () => {
    const f = accepted(parseCalicoFlow(FRONTEND_TO_CART_PROFILE!));
    expect(f).toMatchObject({
      startTimeMs: 1699375161000,
      reporter: 'source',
      verdict: 'allowed',
      denyReason: '',
      detail: 'allow',
      policy: '',
      rule: -1,
      sourceWorkload: 'frontend', // frontend-755cdc7957-* with pod-template-hash=755cdc7957
      destinationWorkload: 'cartservice',
      destinationService: 'cartservice',
      destinationNamespace: 'default',
      destinationHost: 'cartservice.default.svc.cluster.local',
      destinationPort: 7070,
      sourceAddress: '',
      bytes: 133612 + 196245,
      packets: 1417 + 2418,
    });
    expect(f.attributes.profile).toBe('kns.default');
    expect(f.attributes.service_inferred).toBeUndefined();
  });

  // Issue 9: the 4-field strings `index|tier|name|action` (no rule index) of older Calico Enterprise lost their
  // policy name. Real records of the Calico Enterprise docs (SOURCES.md, calico-enterprise.ndjson 3–5).
  it('reads a 4-field policy string: the allowing policy named, rule -1, not taken for an end-of-tier hit', () => {
    const f = accepted(parseCalicoFlow(DOCS_AGGR_ALLOW!));
    expect(f).toMatchObject({
      startTimeMs: 1597086849000,
      reporter: 'destination',
      verdict: 'allowed',
      policy: 'policy-demo/access-nginx', // `0|default|policy-demo/default.access-nginx|allow`
      rule: -1,
      sourceWorkload: 'access', // access-6b687c8dcb-*
      sourceNamespace: 'policy-demo',
      destinationWorkload: 'nginx',
      destinationService: 'nginx',
      destinationNamespace: 'policy-demo',
      destinationPort: 80,
      count: 47,
      bytes: 18236 + 52519,
      packets: 282 + 239,
    });
    expect(f.attributes).toMatchObject({ tier: 'default', node: 'bz-n8kf-kadm-node-1' });
    expect(f.attributes.end_of_tier).toBeUndefined();
  });

  it('reads a 4-field deny: the denying policy named', () => {
    const f = accepted(parseCalicoFlow(DOCS_DENY!));
    expect(f).toMatchObject({
      reporter: 'destination',
      verdict: 'denied',
      denyReason: 'network_policy',
      policy: 'policy-demo/deny-access-nginx', // `0|default|policy-demo/default.deny-access-nginx|deny`
      rule: -1,
      sourceAddress: '192.168.47.9',
      destinationAddress: '192.168.213.223',
      sourceWorkload: 'access',
      destinationWorkload: 'nginx',
      count: 50,
    });
    expect(f.attributes.end_of_tier).toBeUndefined();
  });

  it('reads a 4-field profile allow: no policy, the profile named', () => {
    const f = accepted(parseCalicoFlow(DOCS_PROFILE_ALLOW!));
    expect(f).toMatchObject({ reporter: 'source', verdict: 'allowed', policy: '', rule: -1, destinationWorkload: 'nginx', count: 50 });
    expect(f.attributes.profile).toBe('kns.policy-demo');
  });

  it('reads the rule index `-` (unknown, as Calico re-prints 4-field strings) as rule -1 without end of tier', () => {
    // projectcalico/calico lma PolicyHit: `4|tierName|namespaceName/tierName.policyName|allow` → `…|allow|-`; only `-1` is end of tier.
    const all_policies = ['0|default|policy-demo/default.deny-access-nginx|deny|-'];
    const f = accepted(parseCalicoFlow({ ...DOCS_DENY!, policies: { all_policies } }));
    expect(f).toMatchObject({ policy: 'policy-demo/deny-access-nginx', rule: -1 });
    expect(f.attributes.end_of_tier).toBeUndefined();
    const explicit = accepted(parseCalicoFlow({ ...DOCS_DENY!, policies: { all_policies: ['0|default|policy-demo/default.deny-access-nginx|deny|3'] } }));
    expect(explicit.rule).toBe(3);
  });

  it('ignores policy strings with 3 or 6 fields rather than guessing', () => {
    for (const bad of ['0|default|policy-demo/default.deny-access-nginx', '0|default|policy-demo/default.deny-access-nginx|deny|0|x']) {
      expect(accepted(parseCalicoFlow({ ...DOCS_DENY!, policies: { all_policies: [bad] } }))).toMatchObject({ verdict: 'denied', policy: '' });
    }
  });

  it('takes the terminal allow after a pass, its rule index, and num_flows as the count', () => {
    const f = accepted(parseCalicoFlow(ALLOW_AFTER_PASS!));
    expect(f).toMatchObject({ verdict: 'allowed', policy: 'hipstershop/checkoutservice', rule: 0, count: 3, reporter: 'source', sourceWorkload: 'frontend' });
    expect(f.attributes.end_of_tier).toBeUndefined();
  });

  it('rejects a record whose own action is pass: it holds no final verdict', () => {
    expect(rejection(parseCalicoFlow(PASS_ACTION!))).toBe('unsupported_record');
  });

  it('names global policies without a namespace and external destinations by their domain', () => {
    const f = accepted(parseCalicoFlow(GLOBAL_DENY_EXTERNAL!));
    expect(f).toMatchObject({
      verdict: 'denied',
      policy: 'block-external',
      rule: 2,
      destinationHost: 'kubernetes.io',
      destinationService: 'kubernetes.io',
      destinationNamespace: '',
      destinationWorkload: 'pub',
      destinationPort: 443,
    });
  });

  it('strips the knp.default. prefix of Kubernetes NetworkPolicies', () => {
    const f = accepted(parseCalicoFlow(KNP_ALLOW!));
    expect(f).toMatchObject({ verdict: 'allowed', policy: 'hipstershop/allow-multitool' });
    expect(f.attributes.policy_kind).toBe('NetworkPolicy');
  });
});

describe('parseCalicoFlow: Calico OSS Goldmane / Whisker flows', () => {
  it('reads a deny by a Calico NetworkPolicy rule', () => {
    const f = accepted(parseCalicoFlow(WEB_GUARD_DENY!));
    expect(f).toMatchObject({
      startTimeMs: Date.UTC(2026, 8, 27, 11, 32, 15),
      reporter: 'destination',
      verdict: 'denied',
      denyReason: 'network_policy',
      detail: 'deny',
      policy: 'storefront/web-guard',
      rule: 0,
      sourceWorkload: 'scraper',
      sourceNamespace: 'storefront',
      destinationWorkload: 'web',
      destinationNamespace: 'storefront',
      destinationPort: 80,
      transport: 'tcp',
      bytes: 592,
      packets: 8,
    });
  });

  it('names the policy that triggered an end-of-tier deny', () => {
    const f = accepted(parseCalicoFlow(END_OF_TIER_DENY!));
    expect(f).toMatchObject({ verdict: 'denied', policy: 'payments/ledger-api-isolation', rule: -1, destinationWorkload: 'ledger-api' });
    expect(f.attributes).toMatchObject({ end_of_tier: 'true', policy_kind: 'EndOfTier' });
  });

  it('decides on the profile allow after a pass: no policy, profile named', () => {
    const f = accepted(parseCalicoFlow(PASS_THEN_PROFILE_ALLOW!));
    expect(f).toMatchObject({ verdict: 'allowed', policy: '', rule: -1, transport: 'udp', destinationPort: 53, destinationWorkload: 'coredns' });
    expect(f.attributes.profile).toBe('kns.kube-system');
  });

  it('rejects Pass as the record`s own action', () => {
    expect(rejection(parseCalicoFlow(GOLDMANE_PASS!))).toBe('unsupported_record');
  });

  it('reads the protojson form with the identity under key', () => {
    const f = accepted(parseCalicoFlow(GOLDMANE_PROTOJSON!));
    expect(f).toMatchObject({
      startTimeMs: 1790335935000,
      verdict: 'denied',
      policy: 'storefront/web-guard',
      rule: 0,
      sourceWorkload: 'scraper',
      destinationWorkload: 'web',
      destinationPort: 80,
      count: 2,
      bytes: 592,
    });
  });

  it('strips the tier prefix Goldmane keeps in names', () => {
    const o = structuredClone(PASS_THEN_PROFILE_ALLOW!) as { action: string; policies: { enforced: Record<string, unknown>[] } };
    o.action = 'Deny';
    o.policies.enforced[0]!.action = 'Deny';
    expect(accepted(parseCalicoFlow(o)).policy).toBe('kube-system/cluster-dns');
  });
});

describe('parseCalicoFlow edge cases', () => {
  it('rejects records without action or start time, and unknown actions', () => {
    const o = structuredClone(CLINIC_DENY!);
    delete o.action;
    expect(rejection(parseCalicoFlow(o))).toBe('missing_field');
    expect(rejection(parseCalicoFlow({ ...CLINIC_DENY!, action: 'ActionUnspecified' }))).toBe('invalid_field');
    const p = structuredClone(CLINIC_DENY!);
    delete p.start_time;
    expect(rejection(parseCalicoFlow(p))).toBe('missing_field');
    expect(rejection(parseCalicoFlow({ ...CLINIC_DENY!, start_time: 'soon' }))).toBe('invalid_timestamp');
    expect(rejection(parseCalicoFlow({ ...CLINIC_DENY!, start_time: 0 }))).toBe('invalid_timestamp');
  });

  it('picks the entry with the highest evaluation index, whatever the array order', () => {
    const entries = ['0|security|security.quarantine|deny|4', '1|app-hipstershop|hipstershop/app-hipstershop.checkoutservice|deny|-1'];
    for (const all_policies of [entries, [...entries].reverse()]) {
      expect(accepted(parseCalicoFlow({ ...CLINIC_DENY!, policies: { all_policies } })).policy).toBe('hipstershop/checkoutservice');
    }
  });

  it('has no policy when no entry carries the flow`s action', () => {
    const f = accepted(parseCalicoFlow({ ...CLINIC_DENY!, policies: { all_policies: ['0|security|security.tenant-histershop|pass|0'] } }));
    expect(f).toMatchObject({ verdict: 'denied', policy: '', rule: -1 });
  });

  it('reads numeric protocols and a missing num_flows as one connection', () => {
    const o: Record<string, unknown> = { ...CLINIC_DENY!, proto: '17' };
    delete o.num_flows;
    expect(accepted(parseCalicoFlow(o))).toMatchObject({ transport: 'udp', count: 1 });
  });

  it('keeps host endpoint names whole (they are node names, not pods)', () => {
    const f = accepted(
      parseCalicoFlow({ ...CLINIC_DENY!, source_type: 'hep', source_name: 'ip-10-0-1-30.ca-central-1.compute.internal', source_namespace: '-' }),
    );
    expect(f).toMatchObject({ sourceWorkload: 'ip-10-0-1-30.ca-central-1.compute.internal', sourceNamespace: 'unknown' });
  });
});
