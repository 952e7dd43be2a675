import fc from 'fast-check';
import { MESH_CONFIG_PROBLEM_CODES, configuredWeights, emptyMeshConfig, parseMeshConfig, stableSubset, subsetForVersion } from './index';
import { AUTHZ, codes, DESTINATION_RULE_ALL, NETWORK_POLICY, parse, REVIEWS, VS_ALL_V1, VS_REVIEWS_90_10, VS_REVIEWS_JASON_V2_V3 } from './samples.testutil';

describe('parseMeshConfig on the Bookinfo samples', () => {
  const { config, problems } = parse(
    ['destination-rule-all.yaml', DESTINATION_RULE_ALL],
    ['virtual-service-reviews-90-10.yaml', VS_REVIEWS_90_10],
  );

  it('reads every document of a multi-document file, trailing --- included', () => {
    expect(problems).toEqual([]);
    expect(config.destinationRules.map((d) => d.ref)).toEqual(['default/productpage', 'default/reviews', 'default/ratings', 'default/details']);
    expect(config.destinationRules.map((d) => d.line)).toEqual([1, 12, 29, 49]);
  });

  it('resolves short hosts against the namespace (default when absent)', () => {
    expect(config.destinationRules[1]).toMatchObject({ declaredHost: 'reviews', host: REVIEWS, wildcard: false });
    expect(config.hosts.get(REVIEWS)?.subsets.map((s) => s.name)).toEqual(['v1', 'v2', 'v3']);
    expect(config.hosts.get('reviews')).toBeUndefined();
  });

  it('maps a version label to the one subset it selects', () => {
    expect(subsetForVersion(config, REVIEWS, { version: 'v2' })).toBe('v2');
    expect(subsetForVersion(config, 'ratings.default.svc.cluster.local', { version: 'v2-mysql' })).toBe('v2-mysql');
    expect(subsetForVersion(config, REVIEWS, { version: 'v9' })).toBeUndefined();
    expect(subsetForVersion(config, REVIEWS, { version: '' })).toBeUndefined();
    expect(subsetForVersion(config, REVIEWS, {})).toBeUndefined();
    expect(subsetForVersion(config, 'reviews.other.svc.cluster.local', { version: 'v2' })).toBeUndefined();
    // Extra known labels take the general path and agree.
    expect(subsetForVersion(config, REVIEWS, { version: 'v2', app: 'reviews' })).toBe('v2');
  });

  it('gives the configured weights of the default route', () => {
    expect(configuredWeights(config, REVIEWS)).toEqual([
      { subset: 'v1', weight: 90 },
      { subset: 'v2', weight: 10 },
    ]);
    expect(config.hosts.get(REVIEWS)?.routing).toMatchObject({ virtualService: 'default/reviews', protocol: 'http', conditional: [] });
    // A DestinationRule without VirtualService: Istio balances over every endpoint, no configured weights.
    expect(configuredWeights(config, 'ratings.default.svc.cluster.local')).toBeUndefined();
    expect(configuredWeights(config, 'nowhere')).toBeUndefined();
  });

  it('takes the v1alpha3 API as well: every service 100 % to v1', () => {
    const all = parse(['d.yaml', DESTINATION_RULE_ALL], ['v.yaml', VS_ALL_V1]);
    expect(all.problems).toEqual([]);
    for (const s of ['productpage', 'reviews', 'ratings', 'details']) {
      expect(configuredWeights(all.config, `${s}.default.svc.cluster.local`)).toEqual([{ subset: 'v1', weight: 100 }]);
    }
  });
});

describe('problems are values', () => {
  it('a syntax error names the file and line; the other documents are used', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: broken
spec:
  hosts: [reviews
  http: x: y
`;
    const { config, problems } = parse(['broken.yaml', text]);
    expect(problems.map((p) => [p.code, p.source, p.line])).toEqual([['yaml_syntax', 'broken.yaml', 18]]);
    expect(problems[0]?.message).toMatch(/^broken\.yaml:18: /);
    expect(config.virtualServices).toEqual([]);
    expect(subsetForVersion(config, REVIEWS, { version: 'v1' })).toBe('v1');
  });

  it('duplicate keys are syntax errors, as for kubectl', () => {
    const { problems } = parse(['dup.yaml', 'kind: DestinationRule\nkind: VirtualService\n']);
    expect(problems[0]).toMatchObject({ code: 'yaml_syntax', line: 2 });
  });

  it('unknown kinds are counted, not reported; non-objects are reported', () => {
    const text = `apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1}
---
apiVersion: v1
kind: Service
metadata: {name: reviews}
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: calico}
---
# only a comment
---
just a string
---
metadata: {name: kindless}
`;
    const { config, problems } = parse(['mixed.yaml', text]);
    expect(config.ignoredKinds).toEqual(
      new Map([
        ['Deployment.apps', 1],
        ['Service', 2],
        ['NetworkPolicy.projectcalico.org', 1],
      ]),
    );
    expect(problems.map((p) => [p.code, p.line])).toEqual([
      ['invalid_object', 19],
      ['invalid_object', 21],
    ]);
  });

  it('missing host, nameless subset, bad weights, unreachable routes, unknown subsets', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: nohost}
spec:
  subsets: [{name: v1}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - labels: {version: v0}
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: 2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 30
    - destination: {host: reviews, subset: v2}
      weight: 30
    - destination: {host: reviews, subset: v3}
  - route:
    - destination: {host: reviews, subset: v1}
`;
    const { config, problems } = parse(['bad.yaml', text]);
    expect(problems.map((p) => [p.code, p.line, p.object])).toEqual([
      ['missing_field', 1, 'DestinationRule default/nohost'],
      ['missing_field', 7, 'DestinationRule default/reviews'],
      ['invalid_field', 7, 'DestinationRule default/reviews'],
      ['weights_not_100', 17, 'VirtualService default/reviews'],
      ['unreachable_route', 17, 'VirtualService default/reviews'],
      ['unknown_subset', 17, 'VirtualService default/reviews'],
    ]);
    // Istio >= 1.15 sends weight/sum: 30/60 each, and v3 (weight absent = 0) nothing.
    expect(configuredWeights(config, REVIEWS)).toEqual([
      { subset: 'v1', weight: 50 },
      { subset: 'v2', weight: 50 },
      { subset: 'v3', weight: 0 },
    ]);
    expect(config.virtualServices[0]?.routes.map((r) => r.unreachable)).toEqual([false, true]);
    // `version: 2` is read as the string Kubernetes would need.
    expect(subsetForVersion(config, REVIEWS, { version: '2' })).toBe('v2');
  });

  it('kind: List (kubectl get -o yaml) with item lines; a later definition of an object wins', () => {
    const list = `apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata: {name: reviews, namespace: default}
  spec:
    hosts: [reviews]
    http: [{route: [{destination: {host: reviews, subset: v1}}]}]
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: reviews, namespace: default}
  spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
metadata: {resourceVersion: ""}
`;
    const { config, problems } = parse(['list.yaml', list], ['90-10.yaml', VS_REVIEWS_90_10]);
    expect(problems.map((p) => [p.code, p.source, p.line])).toEqual([['duplicate_object', '90-10.yaml', 1]]);
    expect(problems[0]?.message).toContain('list.yaml:4');
    expect(config.destinationRules[0]?.line).toBe(10);
    expect(configuredWeights(config, REVIEWS)).toEqual([
      { subset: 'v1', weight: 90 },
      { subset: 'v2', weight: 10 },
    ]);
  });

  it('two VirtualServices for one host: the first wins', () => {
    const other = VS_REVIEWS_JASON_V2_V3.replace('name: reviews', 'name: reviews-jason');
    const { config, problems } = parse(['d.yaml', DESTINATION_RULE_ALL], ['a.yaml', VS_REVIEWS_90_10], ['b.yaml', other]);
    expect(codes(problems)).toEqual(['conflicting_hosts']);
    expect(config.hosts.get(REVIEWS)?.routing?.virtualService).toBe('default/reviews');
    expect(configuredWeights(config, REVIEWS)?.map((w) => w.subset)).toEqual(['v1', 'v2']);
  });

  it('JSON (kubectl get -o json) parses too', () => {
    const json = JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [{ apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'reviews', namespace: 'default' }, spec: { host: 'reviews', subsets: [{ name: 'v1', labels: { version: 'v1' } }] } }] }, null, '\t');
    const { config, problems } = parse(['dr.json', json]);
    expect(problems).toEqual([]);
    expect(subsetForVersion(config, REVIEWS, { version: 'v1' })).toBe('v1');
  });

  it('an unknown API version of a known kind is read and reported', () => {
    const { config, problems } = parse(['v.yaml', VS_REVIEWS_90_10.replace('networking.istio.io/v1', 'networking.istio.io/v2')]);
    expect(codes(problems)).toEqual(['unsupported_api_version', 'unknown_subset', 'unknown_subset']);
    expect(configuredWeights(config, REVIEWS)).toHaveLength(2);
  });

  it('never throws, whatever the text; every problem code is in the vocabulary', () => {
    const pieces = [DESTINATION_RULE_ALL, VS_REVIEWS_JASON_V2_V3, AUTHZ, NETWORK_POLICY];
    const truncated = fc.tuple(fc.constantFrom(...pieces), fc.nat()).map(([t, n]) => t.slice(0, n % (t.length + 1)));
    const spliced = fc.tuple(fc.constantFrom(...pieces), fc.nat(), fc.string()).map(([t, n, s]) => {
      const i = n % (t.length + 1);
      return t.slice(0, i) + s + t.slice(i);
    });
    fc.assert(
      fc.property(fc.oneof(fc.string(), truncated, spliced), (text) => {
        const { config, problems } = parseMeshConfig([{ name: 'x.yaml', text }]);
        for (const p of problems) expect(MESH_CONFIG_PROBLEM_CODES).toContain(p.code);
        for (const h of config.hosts.values()) subsetForVersion(config, h.host, { version: 'v1' });
      }),
      { numRuns: 300 },
    );
  });
});

describe('emptyMeshConfig', () => {
  it('answers undefined to everything', () => {
    const c = emptyMeshConfig();
    expect(subsetForVersion(c, REVIEWS, { version: 'v1' })).toBeUndefined();
    expect(configuredWeights(c, REVIEWS)).toBeUndefined();
    expect(stableSubset(c, REVIEWS)).toBeUndefined();
    expect(parseMeshConfig([])).toEqual({ config: c, problems: [] });
  });
});
