import { Registry } from 'prom-client';
import { emptyMeshConfig, parseMeshConfig } from '../../lib/meshconfig';
import { ConfiguredWeights } from './weights';

const VS = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - match: [{headers: {user-agent: {regex: ".*iPhone.*"}}}]
      route: [{destination: {host: reviews, subset: v2}}]
    - route:
        - {destination: {host: reviews, subset: v1}, weight: 84}
        - {destination: {host: reviews, subset: v2}, weight: 10}
        - {destination: {host: reviews, subset: v3}, weight: 6}
    - route: [{destination: {host: reviews, subset: v4}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
    - match: [{headers: {x-canary: {exact: "1"}}}]
      route: [{destination: {host: ratings, subset: v2}}]
`;

async function samples(registry: Registry): Promise<Array<{ labels: Record<string, string | number>; value: number }>> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'meshlens_subset_configured_weight_ratio');
  return ((m?.values ?? []) as Array<{ labels: Record<string, string | number>; value: number }>).map((v) => ({ labels: v.labels, value: v.value }));
}

describe('meshlens_subset_configured_weight_ratio', () => {
  it('publishes the default route\'s weights per subset, as shares; match-conditioned and later routes are left out', async () => {
    const registry = new Registry();
    const { config } = parseMeshConfig([{ name: 'vs.yaml', text: VS }]);
    new ConfiguredWeights(registry).set(config);
    const got = await samples(registry);
    const labels = (subset: string) => ({
      destination_service: 'reviews.default.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_subset: subset,
    });
    // Once per host although the host is indexed under several keys; ratings has only a match-conditioned route.
    expect(got).toEqual([
      { labels: labels('v1'), value: 0.84 },
      { labels: labels('v2'), value: 0.1 },
      { labels: labels('v3'), value: 0.06 },
    ]);
  });

  it('replaces every series when set again', async () => {
    const registry = new Registry();
    const weights = new ConfiguredWeights(registry);
    weights.set(parseMeshConfig([{ name: 'vs.yaml', text: VS }]).config);
    weights.set(emptyMeshConfig());
    expect(await samples(registry)).toEqual([]);
  });
});
