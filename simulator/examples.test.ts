/**
 * examples/bookinfo/ is the mesh config the simulator simulates: meshlens reads it without problems, and its
 * subsets, weights, route names and policies are the ones the simulated traffic shows.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { configuredWeights, loadMeshConfig, stableSubset, subsetForVersion } from '../lib/meshconfig';
import { parseAccessLogLine } from '../services/ingest';
import { simulate } from './generator';
import { DENY_SLEEP, IPHONE_USER_AGENTS, MYSQLDB_POLICY, OTHER_USER_AGENTS, REVIEWS_ROUTING } from './mesh';

const DIR = join(__dirname, '../examples/bookinfo');

interface K8sObject<Spec = unknown> {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: Spec;
}

interface HttpRoute {
  name: string;
  match?: { headers: Record<string, { regex: string }> }[];
  route: unknown[];
}

/** Every document of every YAML file, as plain objects. */
function documents(): K8sObject[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => d.toJS() as K8sObject));
}

/** The object of that kind and name; its spec typed as the test reads it. */
function find<Spec>(kind: string, name: string): K8sObject<Spec> {
  const doc = documents().find((d) => d.kind === kind && d.metadata.name === name);
  if (!doc) throw new Error(`no ${kind} ${name} in examples/bookinfo`);
  return doc as K8sObject<Spec>;
}

describe('examples/bookinfo', () => {
  const sim = simulate({ seed: 3, startTimeMs: Date.UTC(2026, 2, 14, 9), requests: 2000, shipper: 'none' });
  const records = [...sim.textLines, ...sim.jsonLines].map((l) => {
    const r = parseAccessLogLine(l).result;
    if (!r.ok) throw new Error(r.message);
    return r.value;
  });

  it('uses only the standard Istio and Kubernetes API versions', () => {
    const versions = new Set(documents().map((d) => `${d.apiVersion} ${d.kind}`));
    expect([...versions].sort()).toEqual([
      'networking.istio.io/v1 DestinationRule',
      'networking.istio.io/v1 Gateway',
      'networking.istio.io/v1 Sidecar',
      'networking.istio.io/v1 VirtualService',
      'networking.k8s.io/v1 NetworkPolicy',
      'security.istio.io/v1 AuthorizationPolicy',
    ]);
  });

  it('is read by meshlens without problems, with the weights, subsets and baseline the simulator uses', async () => {
    const { config, problems } = await loadMeshConfig(DIR);
    expect(problems).toEqual([]);
    const reviews = 'reviews.default.svc.cluster.local';
    expect(configuredWeights(config, reviews)).toEqual(Object.entries(REVIEWS_ROUTING.weights).map(([subset, weight]) => ({ subset, weight })));
    expect(Object.fromEntries((configuredWeights(config, reviews) ?? []).map((w) => [w.subset, w.weight]))).toEqual(sim.truth.routing.weights);
    expect(stableSubset(config, reviews)).toBe('v1');
    // Every subset the traffic reaches is defined, and the server side's `version` label maps back to it.
    const routed = sim.truth.subsets.source.filter((s) => s.namespace === 'default');
    expect(routed.length).toBeGreaterThanOrEqual(6);
    for (const s of routed) {
      expect(config.hosts.get(s.host)?.subsets.map((x) => x.name)).toContain(s.subset);
      expect(subsetForVersion(config, s.host, { version: s.subset })).toBe(s.subset);
    }
    expect(config.authorizationPolicies.get(`${DENY_SLEEP.namespace}/${DENY_SLEEP.name}`)).toMatchObject({ action: 'DENY', selector: { app: 'ratings' } });
    expect(config.networkPolicies.get(`${MYSQLDB_POLICY.namespace}/${MYSQLDB_POLICY.name}`)).toMatchObject({ selector: { app: 'mysqldb' } });
  });

  it('routes iPhones to reviews v2 by a header match the simulated user agents exercise', () => {
    const vs = find<{ http: HttpRoute[] }>('VirtualService', 'reviews');
    const [headerRoute, weightedRoute] = vs.spec.http as [HttpRoute, HttpRoute];
    expect(headerRoute.name).toBe(REVIEWS_ROUTING.headerMatchRoute);
    const regex = headerRoute.match![0]!.headers['user-agent']!.regex;
    expect(regex).toBe(REVIEWS_ROUTING.userAgentRegex);
    // Envoy matches the whole value (RE2 full match).
    const re = new RegExp(`^(?:${regex})$`);
    for (const ua of IPHONE_USER_AGENTS) expect(re.test(ua)).toBe(true);
    for (const ua of OTHER_USER_AGENTS) expect(re.test(ua)).toBe(false);
    expect(headerRoute.route).toEqual([{ destination: { host: 'reviews', subset: 'v2' } }]);
    expect(weightedRoute.name).toBe(REVIEWS_ROUTING.weightedRoute);
    // And the simulated lines carry these route names, each with the subsets its route allows.
    const routes = new Map<string, Set<string>>();
    for (const r of records) {
      if (r.reporter === 'source' && r.destinationService === 'reviews') routes.set(r.routeName, (routes.get(r.routeName) ?? new Set()).add(r.destinationSubset));
    }
    expect(routes).toEqual(new Map([[REVIEWS_ROUTING.headerMatchRoute, new Set(['v2'])], [REVIEWS_ROUTING.weightedRoute, new Set(['v1', 'v2', 'v3'])]]));
  });

  it('names the routes the client-side lines show', () => {
    const named = new Set(
      documents()
        .filter((d) => d.kind === 'VirtualService')
        .flatMap((d) => (d as K8sObject<{ http: HttpRoute[] }>).spec.http.map((h) => h.name)),
    );
    const logged = new Set(records.filter((r) => r.reporter === 'source' && r.routeName !== 'block_all' && r.routeName !== '').map((r) => r.routeName));
    expect([...logged].filter((n) => !named.has(n))).toEqual([]);
  });

  it('denies sleep at ratings with the rule the simulated 403s name', () => {
    const ap = find<{ rules: { from: { source: { principals: string[] } }[] }[] }>('AuthorizationPolicy', DENY_SLEEP.name);
    expect(ap.metadata.namespace).toBe(DENY_SLEEP.namespace);
    expect(ap.spec.rules[DENY_SLEEP.rule]!.from[0]!.source.principals).toEqual(['cluster.local/ns/default/sa/sleep']);
    const denied = records.filter((r) => r.denyReason === 'rbac');
    expect(denied.length).toBeGreaterThan(0);
    expect(new Set(denied.map((r) => `${r.policy}#${r.rule}`))).toEqual(new Set([`${DENY_SLEEP.namespace}/${DENY_SLEEP.name}#${DENY_SLEEP.rule}`]));
  });

  it('lets only ratings reach mysqldb:3306, and runs REGISTRY_ONLY', () => {
    const np = find<{ ingress: unknown }>('NetworkPolicy', MYSQLDB_POLICY.name);
    expect(np.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { app: 'ratings' } } }], ports: [{ protocol: 'TCP', port: MYSQLDB_POLICY.port }] }]);
    expect(find<{ outboundTrafficPolicy: { mode: string } }>('Sidecar', 'default').spec.outboundTrafficPolicy.mode).toBe('REGISTRY_ONLY');
    // L4 rows from flow records (the TCP connections to BlackHoleCluster in access logs are L4 rows too).
    const l4 = sim.truth.flows.filter((f) => f.layer === 'L4' && f.destination.port === MYSQLDB_POLICY.port);
    expect(l4.map((f) => [f.source.workload, f.destination.port, f.allowed > 0, f.denied > 0])).toEqual([
      ['ratings-v1', 3306, true, false],
      ['sleep', 3306, false, true],
    ]);
  });
});
