/**
 * The terminal summary from canned query-API answers (typed by the API's own schemas, and checked against them),
 * and the refresh loop against a scripted fetch.
 */
import { PassThrough } from 'node:stream';
import { Value } from '@sinclair/typebox/value';
import { CanariesAnswer, FlowsAnswer, SubsetsAnswer } from '../services/aggregator';
import { renderSummary, startSummaryLoop } from './summary';

const FROM = '2026-03-14T09:26:53.000Z';
const TO = '2026-03-14T09:27:23.000Z';

const subset = (service: string, sub: string, requests: number, errors: number, p99: number, extra: object = {}) => ({
  // The query API spells a destination outside the cluster's namespace `unknown`, as /metrics does.
  namespace: service === 'BlackHoleCluster' ? 'unknown' : 'default',
  service,
  host: service === 'BlackHoleCluster' ? service : `${service}.default.svc.cluster.local`,
  subset: sub,
  requests,
  errors,
  error_ratio: requests ? errors / requests : 0,
  denied: 0,
  app_errors: errors,
  mesh_failures: 0,
  rps: requests / 30,
  latency_ms: { p50: p99 / 4, p90: p99 / 2, p99 },
  latency_samples: requests,
  traffic_share: 100,
  configured_weight: null,
  ...extra,
});

const SUBSETS: SubsetsAnswer = {
  from: FROM,
  to: TO,
  reporter: 'all',
  subsets: [
    subset('reviews', 'v3', 30, 3, 231.4, { traffic_share: 5.1 }),
    subset('reviews', 'v1', 402, 2, 41.2, { traffic_share: 69.8 }),
    subset('productpage', 'v1', 576, 2, 143.7),
    subset('reviews', 'v2', 144, 0, 52, { traffic_share: 25.1 }),
    subset('BlackHoleCluster', '', 6, 0, 0.4, { denied: 6 }),
  ],
};

const FLOWS: FlowsAnswer = {
  from: FROM,
  to: TO,
  reporter: 'all',
  flows: [
    {
      source: { namespace: 'istio-system', workload: 'istio-ingressgateway' },
      destination: { namespace: 'default', service: 'productpage', host: 'productpage.default.svc.cluster.local', subset: 'v1', port: 9080 },
      layer: 'L7',
      allowed: 576,
      denied: 0,
      deny_reasons: {},
      policies: [],
    },
    {
      source: { namespace: 'default', workload: 'sleep' },
      destination: { namespace: 'unknown', service: 'BlackHoleCluster', host: 'BlackHoleCluster', subset: '', port: 0 },
      layer: 'L7',
      allowed: 0,
      denied: 6,
      deny_reasons: { blackhole: 6 },
      policies: [],
    },
    {
      source: { namespace: 'default', workload: 'sleep' },
      destination: { namespace: 'default', service: 'ratings', host: 'ratings.default.svc.cluster.local', subset: 'v1', port: 9080 },
      layer: 'L7',
      allowed: 0,
      denied: 12,
      deny_reasons: { rbac: 12 },
      policies: [{ policy: 'default/deny-sleep', rule: 0, count: 12 }],
    },
    {
      source: { namespace: 'default', workload: 'sleep' },
      destination: { namespace: 'default', service: 'mysqldb', host: 'mysqldb.default.svc.cluster.local', subset: '', port: 3306 },
      layer: 'L4',
      allowed: 0,
      denied: 5,
      deny_reasons: { network_policy: 5 },
      policies: [],
    },
  ],
};

const side = (subset: string, requests: number, errors: number) => ({
  subset,
  requests,
  errors,
  error_ratio: requests ? errors / requests : 0,
  mesh_failures: 0,
  mesh_failure_ratio: 0,
  denied: 0,
  latency_p50_ms: 10,
});
const canary = (sub: string, requests: number, errors: number, verdict: 'pass' | 'fail' | 'inconclusive', confidence: number, reason: string, share: number) => ({
  namespace: 'default',
  service: 'reviews',
  host: 'reviews.default.svc.cluster.local',
  baseline: side('v1', 4020, 8),
  canary: side(sub, requests, errors),
  baseline_source: 'mesh_config' as const,
  traffic_share: share,
  verdict,
  confidence,
  reason,
  checks: [],
});

/** As the canary judge answers over its 10-minute window (reasons in the judge's words). */
const CANARIES: CanariesAnswer = {
  from: '2026-03-14T09:17:23.000Z',
  to: TO,
  reporter: 'source',
  settings: { min_requests: 200, margin: 0.005, false_fail_rate: 0.01, pass_confidence: 0.95, latency_ratio: 1.2 },
  canaries: [
    canary('v3', 150, 15, 'inconclusive', 0, 'v3 has 150 of the 200 requests needed', 5.1),
    canary('v2', 1440, 2, 'pass', 0.9712, 'within 0.50 % of the baseline', 25.1),
  ],
};

describe('renderSummary', () => {
  const text = renderSummary(SUBSETS, FLOWS, CANARIES);
  const lines = text.split('\n');
  const cells = (line: string | undefined) => (line ?? '').trim().split(/\s{2,}/);

  it('draws one row per service and subset, sorted, with RPS, error %, p99, requests, denied and share', () => {
    expect(lines[0]).toBe('window 09:26:53 → 09:27:23 UTC (event time) · joined view: each request once, denials as the server decided');
    const header = lines.findIndex((l) => l.startsWith('SERVICE'));
    expect(cells(lines[header])).toEqual(['SERVICE', 'SUBSET', 'RPS', 'ERR %', 'P99 ms', 'REQUESTS', 'DENIED', 'SHARE']);
    expect(lines.slice(header + 1, header + 6).map(cells)).toEqual([
      ['productpage.default', 'v1', '19.2', '0.3', '144', '576', '0'],
      ['reviews.default', 'v1', '13.4', '0.5', '41', '402', '0', '69.8 %'],
      ['reviews.default', 'v2', '4.8', '0.0', '52', '144', '0', '25.1 %'],
      ['reviews.default', 'v3', '1.0', '10.0', '231', '30', '0', '5.1 %'],
      ['BlackHoleCluster', '-', '0.20', '0.0', '0.4', '6', '6'],
    ]);
  });

  it('lists denied flows, most denied first, with reason and policy, and leaves allowed-only flows out', () => {
    const header = lines.findIndex((l) => l.startsWith('SOURCE'));
    expect(lines[header - 1]).toBe('DENIED FLOWS');
    const end = lines.indexOf('', header);
    expect(lines.slice(header + 1, end).map(cells)).toEqual([
      ['default/sleep', '→', 'ratings.default v1 :9080', 'L7', '12', '0', 'rbac', 'default/deny-sleep rule 0'],
      ['default/sleep', '→', 'BlackHoleCluster', 'L7', '6', '0', 'blackhole', '-'],
      ['default/sleep', '→', 'mysqldb.default :3306', 'L4', '5', '0', 'network_policy', '-'],
    ]);
    expect(text).not.toContain('istio-ingressgateway');
  });

  it('aligns columns', () => {
    const header = lines.findIndex((l) => l.startsWith('SERVICE'));
    const at = lines[header]!.indexOf('REQUESTS') + 'REQUESTS'.length;
    for (const l of lines.slice(header + 1, header + 6)) expect(l.slice(0, at)).toMatch(/\d$/);
  });

  it('shows "-" for a p99 the API could not know', () => {
    const unknown = { ...SUBSETS, subsets: [{ ...subset('details', 'v1', 10, 0, 0), latency_ms: { p50: null, p90: null, p99: null } }] };
    const table = renderSummary(unknown, { ...FLOWS, flows: [] }).split('\n');
    expect(cells(table[table.findIndex((l) => l.startsWith('SERVICE')) + 1])).toEqual(['details.default', 'v1', '0.33', '0.0', '-', '10', '0']);
  });

  it('says so when there is nothing to show yet', () => {
    const [from, to] = ['1970-01-01T00:00:00.000Z', '1970-01-01T00:00:30.000Z'];
    const empty = renderSummary({ from, to, reporter: 'all', subsets: [] }, { from, to, reporter: 'all', flows: [] }, { ...CANARIES, from, to, canaries: [] });
    expect(empty).toBe(
      'window 00:00:00 → 00:00:30 UTC (event time) · joined view: each request once, denials as the server decided\n\n' +
        'no requests in this window yet\n\nDENIED FLOWS: none in this window\n\n' +
        'CANARIES (judged over the last 30s, as the source sidecars reported; verdicts need 200 requests per side): none yet (a service needs two subsets carrying traffic)\n',
    );
  });

  it("shows each canary's verdict, its confidence and the judge's reason; inconclusive too", () => {
    const title = lines.findIndex((l) => l.startsWith('CANARIES'));
    expect(lines[title]).toBe('CANARIES (judged over the last 10m, as the source sidecars reported; verdicts need 200 requests per side)');
    expect(cells(lines[title + 1])).toEqual(['SERVICE', 'CANARY', 'BASELINE', 'SHARE', 'REQUESTS', 'ERR % (BASE)', 'VERDICT', 'CONFIDENCE', 'REASON']);
    expect(lines.slice(title + 2, title + 4).map(cells)).toEqual([
      ['reviews.default', 'v2', 'v1', '25.1 %', '1440', '0.1 (0.2)', 'PASS', '97.1 %', 'within 0.50 % of the baseline'],
      ['reviews.default', 'v3', 'v1', '5.1 %', '150', '10.0 (0.2)', 'INCONCLUSIVE', '-', 'v3 has 150 of the 200 requests needed'],
    ]);
    const failing = renderSummary(SUBSETS, FLOWS, {
      ...CANARIES,
      canaries: [canary('v3', 300, 30, 'fail', 0.99993, 'errors: 10.00 % vs 0.20 %, more than 0.50 % above', 5.1)],
    }).split('\n');
    const row = failing[failing.findIndex((l) => l.startsWith('CANARIES')) + 2];
    expect(cells(row)).toEqual(['reviews.default', 'v3', 'v1', '5.1 %', '300', '10.0 (0.2)', 'FAIL', '100.0 %', 'errors: 10.00 % vs 0.20 %, more than 0.50 % above']);
  });

  it('reads answers of the shapes the query API declares', () => {
    expect([Value.Check(SubsetsAnswer, SUBSETS), Value.Check(FlowsAnswer, FLOWS), Value.Check(CanariesAnswer, CANARIES)]).toEqual([true, true, true]);
  });
});

describe('startSummaryLoop', () => {
  function fakeFetch(answers: Record<string, unknown>): { fetch: typeof fetch; urls: string[] } {
    const urls: string[] = [];
    const f = (async (url: string) => {
      urls.push(url);
      const path = new URL(url).pathname;
      const body = answers[path];
      return body === undefined ? new Response('not found', { status: 404 }) : Response.json(body);
    }) as unknown as typeof fetch;
    return { fetch: f, urls };
  }

  function collect(out: PassThrough): () => string {
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    return () => text;
  }

  it('fetches both answers for the window and draws them under the header, clearing a terminal first', async () => {
    const { fetch, urls } = fakeFetch({ '/api/v1/subsets': SUBSETS, '/api/v1/flows': FLOWS, '/api/v1/canaries': CANARIES });
    const out = Object.assign(new PassThrough(), { isTTY: true });
    const text = collect(out);
    const loop = startSummaryLoop({ httpBaseUrl: 'http://meshlens:8080/', out, fetch, intervalMs: 60_000, header: () => 'meshlens demo' });
    await loop.refresh();
    await loop.stop();
    // Subsets and flows in the API's default (joined) view; canaries over the judge's own window.
    expect(urls.slice(0, 3).sort()).toEqual([
      'http://meshlens:8080/api/v1/canaries',
      'http://meshlens:8080/api/v1/flows?window=30s',
      'http://meshlens:8080/api/v1/subsets?window=30s',
    ]);
    expect(text().startsWith('\x1b[H\x1b[2Jmeshlens demo\n\nwindow 09:26:53')).toBe(true);
    expect(text()).toContain(renderSummary(SUBSETS, FLOWS, CANARIES));
  });

  it('keeps trying while the query API does not answer, and appends when not a terminal', async () => {
    const { fetch } = fakeFetch({ '/api/v1/subsets': SUBSETS });
    const out = new PassThrough();
    const text = collect(out);
    const loop = startSummaryLoop({ httpBaseUrl: 'http://meshlens:8080', out, fetch, intervalMs: 5, window: '1m' });
    await new Promise((r) => setTimeout(r, 150));
    await loop.stop();
    const draws = text().split('waiting for the meshlens query API').length - 1;
    expect(draws).toBeGreaterThan(2);
    expect(text()).toContain('GET http://meshlens:8080/api/v1/flows?window=1m: HTTP 404 not found');
    expect(text()).not.toContain('\x1b[');
    // Stopped: no more draws.
    const after = text();
    await new Promise((r) => setTimeout(r, 30));
    expect(text()).toBe(after);
  });
});
