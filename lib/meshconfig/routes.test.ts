import { configuredWeights } from './index';
import { codes, DESTINATION_RULE_ALL, EGRESS_GOOGLE_APIS, parse, REVIEWS, VS_REVIEWS_JASON_V2_V3 } from './samples.testutil';

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
