import { parseMeshConfig, stableSubset, subsetForVersion } from './index';
import { codes, DESTINATION_RULE_ALL, parse, REVIEWS } from './samples.testutil';

describe('hosts', () => {
  const dr = (name: string, ns: string | undefined, host: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${name}
${ns === undefined ? '' : `  namespace: ${ns}\n`}spec:
  host: "${host}"
  subsets:
  - name: v1
    labels: {version: v1}
---
`;

  it('short, name.namespace, FQDN, external and wildcard hosts', () => {
    const text =
      dr('a', 'bookinfo', 'reviews') +
      dr('b', 'bookinfo', 'ratings.prod') +
      dr('c', undefined, 'details.default.svc.cluster.local') +
      dr('d', 'bookinfo', 'httpbin.org') +
      dr('e', 'bookinfo', '*.bookinfo.svc.cluster.local') +
      dr('f', 'bookinfo', 'mongo.db.svc') +
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: prod}\n';
    const { config, problems } = parse(['hosts.yaml', text]);
    expect(problems).toEqual([]);
    expect(config.destinationRules.map((d) => [d.declaredHost, d.host, d.wildcard])).toEqual([
      ['reviews', 'reviews.bookinfo.svc.cluster.local', false],
      ['ratings.prod', 'ratings.prod.svc.cluster.local', false],
      ['details.default.svc.cluster.local', 'details.default.svc.cluster.local', false],
      ['httpbin.org', 'httpbin.org', false],
      ['*.bookinfo.svc.cluster.local', '*.bookinfo.svc.cluster.local', true],
      ['mongo.db.svc', 'mongo.db.svc.cluster.local', false],
    ]);
    // `ratings.prod` is indexed under both spellings (Istio itself only expands names without dots).
    expect(config.hosts.get('ratings.prod')).toBe(config.hosts.get('ratings.prod.svc.cluster.local'));
    expect(config.hosts.get('ratings.prod.svc.cluster.local')?.keys).toEqual(['ratings.prod.svc.cluster.local', 'ratings.prod']);
    // An external host keeps its name; `org` is no namespace of the config.
    expect(config.hosts.get('httpbin.org')?.host).toBe('httpbin.org');
    expect(subsetForVersion(config, 'httpbin.org', { version: 'v1' })).toBe('v1');
    // Wildcards are recorded, never used for mapping.
    expect([...config.hosts.keys()].some((k) => k.includes('*'))).toBe(false);
    expect(subsetForVersion(config, 'anything.bookinfo.svc.cluster.local', { version: 'v1' })).toBeUndefined();
    expect(config.ignoredKinds.get('Namespace')).toBe(1);
  });

  it('a custom cluster domain', () => {
    const { config } = parseMeshConfig([{ name: 'x', text: dr('a', 'shop', 'cart') }], { clusterDomain: 'corp.example' });
    expect(config.destinationRules[0]?.host).toBe('cart.shop.svc.corp.example');
  });

  it('DestinationRules of one host merge; a repeated subset keeps the first', () => {
    const second = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-canary, namespace: default}
spec:
  host: reviews.default.svc.cluster.local
  subsets:
  - {name: v2, labels: {version: v2-other}}
  - {name: v4, labels: {version: v4}}
`;
    const { config, problems } = parse(['d.yaml', DESTINATION_RULE_ALL], ['c.yaml', second]);
    expect(codes(problems)).toEqual(['duplicate_subset']);
    expect(problems[0]).toMatchObject({ source: 'c.yaml', line: 1, object: 'DestinationRule default/reviews-canary' });
    const h = config.hosts.get(REVIEWS);
    expect(h?.subsets.map((s) => `${s.destinationRule}:${s.name}`)).toEqual([
      'default/reviews:v1',
      'default/reviews:v2',
      'default/reviews:v3',
      'default/reviews-canary:v4',
    ]);
    expect(subsetForVersion(config, REVIEWS, { version: 'v4' })).toBe('v4');
    expect(subsetForVersion(config, REVIEWS, { version: 'v2-other' })).toBeUndefined();
  });
});

describe('subsetForVersion with ambiguous or partial labels', () => {
  const text = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: cart, namespace: shop}
spec:
  host: cart
  subsets:
  - name: stable
    labels: {app: cart, version: v1}
  - name: v2
    labels: {version: v2}
  - name: v2-zone-a
    labels: {version: v2, zone: a}
  - name: canary
    labels: {track: canary}
`;
  const { config, problems } = parse(['cart.yaml', text]);
  const host = 'cart.shop.svc.cluster.local';

  it('a subset whose other labels are unknown still matches on version', () => {
    expect(problems).toEqual([]);
    expect(subsetForVersion(config, host, { version: 'v1' })).toBe('stable');
  });

  it('two subsets selecting version v2 → undefined', () => {
    expect(subsetForVersion(config, host, { version: 'v2' })).toBeUndefined();
    expect(config.hosts.get(host)?.subsetByVersion.get('v2')).toBe('');
  });

  it('more labels decide: zone b contradicts v2-zone-a; zone a is in both subsets', () => {
    expect(subsetForVersion(config, host, { version: 'v2', zone: 'b' })).toBe('v2');
    expect(subsetForVersion(config, host, { version: 'v2', zone: 'a' })).toBeUndefined();
  });

  it('a subset without version label needs positive evidence', () => {
    expect(subsetForVersion(config, host, { version: 'v3' })).toBeUndefined();
    expect(subsetForVersion(config, host, { version: 'v3', track: 'canary' })).toBe('canary');
  });

  it('a subset without labels is the whole service: alone it always matches, beside others it makes every version ambiguous', () => {
    const all = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all}
spec:
  host: svc
  subsets:
  - name: all
`;
    const one = parse(['a.yaml', all]).config;
    expect(subsetForVersion(one, 'svc.default.svc.cluster.local', { version: 'v7' })).toBe('all');
    const both = parse(['a.yaml', all + '  - {name: v1, labels: {version: v1}}\n']).config;
    expect(subsetForVersion(both, 'svc.default.svc.cluster.local', { version: 'v1' })).toBeUndefined();
  });
});

describe('stable subset annotation', () => {
  const annotated = (value: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  annotations:
    meshlens.io/stable-subset: ${value}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;

  it('names the baseline subset', () => {
    const { config, problems } = parse(['r.yaml', annotated('v1')]);
    expect(problems).toEqual([]);
    expect(stableSubset(config, REVIEWS)).toBe('v1');
    expect(config.destinationRules[0]?.stableSubset).toBe('v1');
  });

  it('a subset the rule does not define is reported and ignored', () => {
    const { config, problems } = parse(['r.yaml', annotated('v9')]);
    expect(codes(problems)).toEqual(['unknown_stable_subset']);
    expect(problems[0]?.message).toContain('v1, v2');
    expect(stableSubset(config, REVIEWS)).toBeUndefined();
  });

  it('absent: undefined', () => {
    expect(stableSubset(parse(['d.yaml', DESTINATION_RULE_ALL]).config, REVIEWS)).toBeUndefined();
  });
});
