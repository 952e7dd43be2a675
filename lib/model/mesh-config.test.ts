import fc from 'fast-check';
import {
  MESH_CONFIG_PROBLEM_CODES,
  configuredWeights,
  emptyMeshConfig,
  parseMeshConfig,
  stableSubset,
  subsetForVersion,
  type MeshConfigProblem,
} from './mesh-config';

// ---------------------------------------------------------------------------------------------------------------
// Real documents, verbatim.

/** istio/istio samples/bookinfo/networking/destination-rule-all.yaml (commit 595f0326). */
const DESTINATION_RULE_ALL = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: productpage
spec:
  host: productpage
  subsets:
  - name: v1
    labels:
      version: v1
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v2-mysql
    labels:
      version: v2-mysql
  - name: v2-mysql-vm
    labels:
      version: v2-mysql-vm
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: details
spec:
  host: details
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
`;

/** istio/istio samples/bookinfo/networking/virtual-service-reviews-90-10.yaml (commit d929cf5b). */
const VS_REVIEWS_90_10 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 90
    - destination:
        host: reviews
        subset: v2
      weight: 10
`;

/** istio/istio samples/bookinfo/networking/virtual-service-reviews-jason-v2-v3.yaml (commit d929cf5b). */
const VS_REVIEWS_JASON_V2_V3 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v3
`;

/** istio/istio samples/bookinfo/networking/virtual-service-all-v1.yaml (commit 960e9bab), v1alpha3. */
const VS_ALL_V1 = `apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: productpage
spec:
  hosts:
  - productpage
  http:
  - route:
    - destination:
        host: productpage
        subset: v1
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - route:
    - destination:
        host: ratings
        subset: v1
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: details
spec:
  hosts:
  - details
  http:
  - route:
    - destination:
        host: details
        subset: v1
---
`;

/** istio/istio samples/bookinfo/networking/egress-rule-google-apis.yaml (commit 86057475): a ServiceEntry beside a VS and DR. */
const EGRESS_GOOGLE_APIS = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: googleapis
spec:
  hosts:
  - www.googleapis.com
  ports:
  - number: 80
    name: http
    protocol: HTTP
  - number: 443
    name: https
    protocol: HTTPS
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: rewrite-port-for-googleapis
spec:
  hosts:
  - www.googleapis.com
  http:
  - match:
    - port: 80
    route:
    - destination:
        host: www.googleapis.com
        port:
          number: 443
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: originate-tls-for-googleapis
spec:
  host: www.googleapis.com
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
    portLevelSettings:
    - port:
        number: 443
      tls:
        mode: SIMPLE # initiates HTTPS when accessing www.googleapis.com
`;

/**
 * istio/istio.io content/en/docs/tasks/security/authorization/authz-http/snips.sh (commit dffd74a3), the
 * `allow-nothing` and `productpage-viewer` policies; and authz-deny/snips.sh (commit ef9bad77), `deny-method-get`.
 */
const AUTHZ = `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: allow-nothing
  namespace: default
spec:
  {}
---
apiVersion: "security.istio.io/v1beta1"
kind: "AuthorizationPolicy"
metadata:
  name: "productpage-viewer"
  namespace: default
spec:
  selector:
    matchLabels:
      app: productpage
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
---
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: deny-method-get
  namespace: foo
spec:
  selector:
    matchLabels:
      app: httpbin
  action: DENY
  rules:
  - to:
    - operation:
        methods: ["GET"]
`;

/** kubernetes/website content/en/examples/service/networking/networkpolicy.yaml (commit af06f26b). */
const NETWORK_POLICY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: test-network-policy
  namespace: default
spec:
  podSelector:
    matchLabels:
      role: db
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - from:
        - ipBlock:
            cidr: 172.17.0.0/16
            except:
              - 172.17.1.0/24
        - namespaceSelector:
            matchLabels:
              project: myproject
        - podSelector:
            matchLabels:
              role: frontend
      ports:
        - protocol: TCP
          port: 6379
  egress:
    - to:
        - ipBlock:
            cidr: 10.0.0.0/24
      ports:
        - protocol: TCP
          port: 5978

`;

/** kubernetes/website content/en/examples/service/networking/network-policy-default-deny-ingress.yaml (commit 57121873): YAML flow style. */
const NP_DEFAULT_DENY_INGRESS = `---
{
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: {
    name: "default-deny-ingress",
  },
  spec: {
    podSelector: {},
    policyTypes: [
      "Ingress",
    ],
  },
}
`;

// ---------------------------------------------------------------------------------------------------------------

const REVIEWS = 'reviews.default.svc.cluster.local';

function parse(...texts: [string, string][]) {
  return parseMeshConfig(texts.map(([name, text]) => ({ name, text })));
}

function codes(problems: MeshConfigProblem[]): string[] {
  return problems.map((p) => p.code);
}

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

describe('match-conditioned routes', () => {
  it('the jason route: default 100 % v3, v2 reachable for end-user jason', () => {
    const { config, problems } = parse(['d.yaml', DESTINATION_RULE_ALL], ['v.yaml', VS_REVIEWS_JASON_V2_V3]);
    expect(problems).toEqual([]);
    expect(configuredWeights(config, REVIEWS)).toEqual([{ subset: 'v3', weight: 100 }]);
    expect(config.hosts.get(REVIEWS)?.routing?.conditional).toEqual([
      { subset: 'v2', weight: 100, virtualService: 'default/reviews', protocol: 'http', conditions: ['headers[end-user] exact "jason"'] },
    ]);
    expect(config.virtualServices[0]?.routes.map((r) => r.conditions.length)).toEqual([1, 0]);
  });

  it('weighted default route after header and URI matches; `uri prefix /` counts as the default', () => {
    const text = `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts:
  - reviews
  http:
  - name: iphone
    match:
    - headers:
        user-agent:
          regex: ".*iPhone.*"
    - uri:
        prefix: /beta
      queryParams:
        canary:
          exact: "1"
    route:
    - destination:
        host: reviews
        subset: v2
  - match:
    - uri:
        prefix: /
    route:
    - destination:
        host: reviews
        subset: v1
      weight: 95
    - destination:
        host: reviews.shop.svc.cluster.local
        subset: v2
      weight: 5
`;
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`;
    const { config, problems } = parse(['vs.yaml', text], ['dr.yaml', dr]);
    expect(problems).toEqual([]);
    const host = 'reviews.shop.svc.cluster.local';
    expect(configuredWeights(config, host)).toEqual([
      { subset: 'v1', weight: 95 },
      { subset: 'v2', weight: 5 },
    ]);
    expect(config.hosts.get(host)?.routing?.conditional).toEqual([
      {
        subset: 'v2',
        weight: 100,
        virtualService: 'shop/reviews',
        protocol: 'http',
        conditions: ['headers[user-agent] regex ".*iPhone.*"', 'uri prefix "/beta" and queryParams[canary] exact "1"'],
      },
    ]);
  });

  it('a port match is a condition: the googleapis route has no default, the ServiceEntry is counted, not reported', () => {
    const { config, problems } = parse(['egress-rule-google-apis.yaml', EGRESS_GOOGLE_APIS]);
    expect(problems).toEqual([]);
    expect(config.ignoredKinds).toEqual(new Map([['ServiceEntry.networking.istio.io', 1]]));
    const h = config.hosts.get('www.googleapis.com');
    expect(h?.destinationRules).toEqual(['default/originate-tls-for-googleapis']);
    expect(h?.routing?.weights).toBeUndefined();
    expect(h?.routing?.conditional).toEqual([
      { subset: '', weight: 100, virtualService: 'default/rewrite-port-for-googleapis', protocol: 'http', conditions: ['port 80'] },
    ]);
    expect(config.virtualServices[0]?.routes[0]?.destinations).toEqual([{ host: 'www.googleapis.com', subset: '', port: 443, weight: 100 }]);
  });

  it('tcp routes: weights of the route without match', () => {
    const text = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mongo, namespace: db}
spec:
  hosts: [mongo]
  tcp:
  - match:
    - port: 27018
    route:
    - destination: {host: mongo, subset: v2}
  - route:
    - destination: {host: mongo, subset: v1, port: {number: 27017}}
      weight: 80
    - destination: {host: mongo, subset: v2, port: {number: 27017}}
      weight: 20
`;
    const { config, problems } = parse(['tcp.yaml', text]);
    expect(codes(problems)).toEqual(['unknown_subset', 'unknown_subset', 'unknown_subset']);
    const h = config.hosts.get('mongo.db.svc.cluster.local');
    expect(h?.routing?.protocol).toBe('tcp');
    expect(h?.routing?.weights).toEqual([
      { subset: 'v1', weight: 80 },
      { subset: 'v2', weight: 20 },
    ]);
    expect(h?.routing?.conditional.map((c) => [c.subset, c.conditions])).toEqual([['v2', ['port 27018']]]);
  });
});

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

describe('policies', () => {
  const { config, problems } = parse(['authz.yaml', AUTHZ], ['np.yaml', NETWORK_POLICY], ['deny.yaml', NP_DEFAULT_DENY_INGRESS]);

  it('AuthorizationPolicies by namespace/name, with action, selector and rule count', () => {
    expect(problems).toEqual([]);
    expect([...config.authorizationPolicies.keys()]).toEqual(['default/allow-nothing', 'default/productpage-viewer', 'foo/deny-method-get']);
    expect(config.authorizationPolicies.get('default/allow-nothing')).toMatchObject({ action: 'ALLOW', selector: {}, rules: 0 });
    expect(config.authorizationPolicies.get('default/productpage-viewer')).toMatchObject({
      kind: 'AuthorizationPolicy',
      action: 'ALLOW',
      selector: { app: 'productpage' },
      rules: 1,
      source: 'authz.yaml',
      line: 9,
    });
    expect(config.authorizationPolicies.get('foo/deny-method-get')).toMatchObject({ action: 'DENY', selector: { app: 'httpbin' }, rules: 1 });
  });

  it('NetworkPolicies, block and flow style', () => {
    expect(config.networkPolicies.get('default/test-network-policy')).toMatchObject({
      kind: 'NetworkPolicy',
      action: 'ALLOW',
      selector: { role: 'db' },
      rules: 2,
      policyTypes: ['Ingress', 'Egress'],
    });
    expect(config.networkPolicies.get('default/default-deny-ingress')).toMatchObject({ selector: {}, rules: 0, policyTypes: ['Ingress'] });
  });

  it('an unknown action is reported and the policy skipped; CUSTOM keeps its provider', () => {
    const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: x}
spec: {action: REJECT}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: x}
spec:
  action: CUSTOM
  provider: {name: opa}
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
`;
    const r = parse(['p.yaml', text]);
    expect(codes(r.problems)).toEqual(['invalid_field']);
    expect(r.config.authorizationPolicies.has('x/bad')).toBe(false);
    expect(r.config.authorizationPolicies.get('x/ext')).toMatchObject({ action: 'CUSTOM', provider: 'opa', targetRefs: ['Gateway/waypoint'], rules: 1 });
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
