/**
 * Ground truth (issue 3 "Done when"): the seeded simulator's records go through the real HTTP receivers of
 * the all-in-one into embedded ClickHouse; `/api/v1/subsets`, `/api/v1/flows` and `/metrics` must agree with
 * the simulator's truth exactly for counts, and within the sketch's stated error (1 %) for latency quantiles.
 * Then a restart on the same data dir must answer the same. Every answer is of the shape its schema declares
 * (the schemas Fastify serializes with, which must not drop a field the handlers return), and the joined view
 * shows the RBAC denials only the server logs in subsets, flows, graph and the demo's screen alike (issue 13).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { hasMeshFailureFlag } from '../lib/model';
import { createHttpServer, loadConfig } from '../lib/runtime';
import { start, type Running } from '../bin/start';
import { API_PATHS, CanariesAnswer, FlowsAnswer, GraphAnswer, SubsetsAnswer, TargetGroups } from '../services/aggregator';
import type { CanaryRow, FlowRow, SubsetRow } from '../services/aggregator';
import { renderSummary, simulate } from '../simulator';
import type { FlowTruth, GroundTruth, SubsetTruth } from '../simulator';
import { EPHEMERAL_PORTS } from './support/meshlens';

const logger = pino({ level: 'silent' });
const BODY_LINES = 500;
/** The query API's promise for p50/p90/p99 (README): within 1 % of the exact nearest-rank quantile. */
const QUANTILE_RELATIVE_ERROR = 0.01;

/**
 * Relative distance of `v` from the exact nearest-rank `percent`-th percentile of `sorted` — the value at rank
 * ceil(percent·n/100), counted from 1 — allowing for the API's rounding to 0.001 ms. A zero duration must be
 * answered 0 (the histogram keeps durations ≤ 0 apart).
 */
function quantileError(sorted: number[], percent: number, v: number): number {
  const exact = sorted[Math.max(1, Math.ceil((percent * sorted.length) / 100)) - 1] as number;
  if (exact === 0) return v === 0 ? 0 : Infinity;
  return Math.max(0, Math.abs(v - exact) - 0.0005) / exact;
}

async function send(url: string, lines: string[], contentType: string, join = '\n', wrap = (s: string) => s): Promise<void> {
  for (let i = 0; i < lines.length; i += BODY_LINES) {
    const body = wrap(lines.slice(i, i + BODY_LINES).join(join));
    for (;;) {
      const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': contentType } });
      if (res.status === 429 || res.status === 503) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const reply = await res.text();
      if (res.status >= 300) throw new Error(`${url}: ${res.status} ${reply}`);
      // Every simulated record must be accepted: a rejection would make the truth unreachable.
      if (reply !== '' && /"rejected":[1-9]/.test(reply)) throw new Error(`${url}: rejected records: ${reply}`);
      break;
    }
  }
}

function metricSamples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${name}\\{(.*)\\} (\\S+)$`, 'gm'))) out.set(m[1] as string, Number(m[2]));
  return out;
}

async function storedRows(http: string, table = 'requests'): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  return metricSamples(text, 'meshlens_store_rows_total').get(`table="${table}"`) ?? 0;
}

// Both ways raw rows can be kept: all of them (the default), and none but errors and denials (counts come from the
// rollups and the joined view the aggregator writes, windows widened to whole minutes).
describe.each(['1', '0'])('ground truth with MESHLENS_RAW_REQUESTS=%s: simulator → real receivers → embedded ClickHouse → query API and /metrics', (rawRequests) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-truth-'));
  const config = loadConfig({
    ...EPHEMERAL_PORTS,
    MESHLENS_RAW_REQUESTS: rawRequests,
    MESHLENS_DATA_DIR: dataDir,
    MESHLENS_MESH_CONFIG: join(__dirname, '..', 'examples', 'bookinfo'),
    // The run holds ~150 requests of reviews v3 (5 %), spread over the last minutes.
    MESHLENS_CANARY_MIN_REQUESTS: '100',
    MESHLENS_CANARY_WINDOW: '30m',
  });
  let running: Running;
  let http: string;
  let sim: ReturnType<typeof simulate>;
  let truth: GroundTruth;
  let period: string;

  beforeAll(async () => {
    running = await start({ config, target: 'all', logger, processMetrics: false });
    http = `http://127.0.0.1:${running.ports.http}`;
    // Event time ten minutes ago: inside the raw tables' retention, and whole minutes for the rollups to serve.
    sim = simulate({ seed: 20261125, startTimeMs: Date.now() - 10 * 60_000, requests: 3000 });
    truth = sim.truth;
    await send(`${http}/v1/accesslogs`, sim.textLines, 'application/x-ndjson');
    await send(`${http}/v1/accesslogs`, sim.jsonLines, 'application/x-ndjson');
    await send(`${http}/v1/flows`, sim.flowLines, 'application/x-ndjson');
    await send(`http://127.0.0.1:${running.ports.zipkin}/api/v2/spans`, sim.spans, 'application/json', ',', (s) => `[${s}]`);
    const records = sim.textLines.length + sim.jsonLines.length;
    const deadline = Date.now() + 20_000;
    while ((await storedRows(http)) < records && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await storedRows(http)).toBe(records);
    period = `from=${truth.fromMs}&to=${truth.toMs + 1}`;
  });
  afterAll(async () => {
    await running?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function get<T>(path: string): Promise<T> {
    const res = await fetch(`${http}${path}`);
    expect(res.status).toBe(200);
    return (await res.json()) as T;
  }

  type SubsetAnswer = SubsetRow;

  it.each(['source', 'destination'] as const)('answers /api/v1/subsets?reporter=%s exactly for counts, quantiles within 1 %%', async (reporter) => {
    const { subsets } = await get<SubsetsAnswer>(`/api/v1/subsets?${period}&reporter=${reporter}`);
    const want = truth.subsets[reporter];
    const key = (s: { namespace: string; service: string; host: string; subset: string }) => `${s.namespace}/${s.service}/${s.host}/${s.subset}`;
    expect(subsets.map((s) => ({ key: key(s), requests: s.requests, errors: s.errors, denied: s.denied }))).toEqual(
      want.map((s: SubsetTruth) => ({ key: key(s), requests: s.requests, errors: s.errors, denied: s.denied })),
    );
    for (const s of want) {
      const got = subsets.find((x) => key(x) === key(s)) as SubsetAnswer;
      expect(got.error_ratio).toBeCloseTo(s.errors / s.requests, 12);
      const sorted = [...s.durations_ms].sort((a, b) => a - b);
      expect(got.latency_samples).toBe(s.requests);
      for (const [p, v] of [[50, got.latency_ms.p50 as number], [90, got.latency_ms.p90 as number], [99, got.latency_ms.p99 as number]] as const) {
        expect([s.service, s.subset, p, quantileError(sorted, p, v) <= QUANTILE_RELATIVE_ERROR]).toEqual([s.service, s.subset, p, true]);
      }
    }
  });

  it('answers /api/v1/subsets joined by default (reporter=all): each request once, denied as the server decided', async () => {
    const answer = await get<SubsetsAnswer>(`/api/v1/subsets?${period}`);
    expect(answer.reporter).toBe('all');
    // The truth's flows count every access-logged request once with the server's verdict; the Hubble flows to
    // mysqldb are the only rows without access logs, so they are left out.
    const key = (s: { namespace: string; service: string; subset: string }) => `${s.namespace}/${s.service}/${s.subset}`;
    const want = new Map<string, { requests: number; denied: number }>();
    for (const f of truth.flows.filter((x) => x.destination.service !== 'mysqldb')) {
      const w = want.get(key(f.destination)) ?? { requests: 0, denied: 0 };
      w.requests += f.allowed + f.denied;
      w.denied += f.denied;
      want.set(key(f.destination), w);
    }
    const got = new Map(answer.subsets.map((s) => [key(s), { requests: s.requests, denied: s.denied }]));
    expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...want].sort()));
  });

  it('shows the reviews canary split and the configured weights from the mesh config', async () => {
    const { subsets } = await get<SubsetsAnswer>(`/api/v1/subsets?${period}&service=reviews`);
    expect(subsets.map((s) => s.subset)).toEqual(['v1', 'v2', 'v3']);
    for (const s of subsets) expect(s.configured_weight).toBe(truth.routing.weights[s.subset]);
    const v3 = subsets.find((s) => s.subset === 'v3') as SubsetAnswer;
    const v1 = subsets.find((s) => s.subset === 'v1') as SubsetAnswer;
    expect(v3.error_ratio).toBeGreaterThan(v1.error_ratio);
  });

  it('judges the reviews canaries against the stable subset: v3 fails on application errors, in the API and the gauge', async () => {
    type Canary = CanaryRow;
    const { canaries } = await get<CanariesAnswer>(`/api/v1/canaries?${period}&service=reviews`);
    expect(canaries.map((c) => [c.baseline.subset, c.canary.subset, c.baseline_source])).toEqual([
      ['v1', 'v2', 'mesh_config'],
      ['v1', 'v3', 'mesh_config'],
    ]);
    const v3 = canaries[1] as Canary;
    // Application errors and mesh failures by the truth's response flags (hasMeshFailureFlag: lib/model).
    const v3Series = truth.requests_total.filter(
      (s) => s.labels.reporter === 'source' && s.labels.destination_service_name === 'reviews' && s.labels.destination_subset === 'v3',
    );
    const sum = (keep: (l: (typeof v3Series)[number]['labels']) => boolean): number => v3Series.filter((s) => keep(s.labels)).reduce((n, s) => n + s.value, 0);
    const meshFlagged = (flags: string): boolean => hasMeshFailureFlag(flags === '-' ? '' : flags);
    const want = {
      requests: sum(() => true),
      errors: sum((l) => l.outcome === 'error' && !meshFlagged(l.response_flags)),
      mesh_failures: sum((l) => l.outcome !== 'denied' && meshFlagged(l.response_flags)),
    };
    expect(want.mesh_failures).toBeGreaterThan(0); // the simulator's UF,URX connection failures
    expect(v3.canary).toMatchObject(want);
    expect(v3.verdict).toBe('fail');
    expect(v3.confidence).toBeGreaterThan(0.99);
    expect(v3.checks.find((c) => c.signal === 'errors')?.verdict).toBe('fail');

    await running.aggregator?.judge.judgeNow();
    const gauge = metricSamples(await (await fetch(`${http}/metrics`)).text(), 'meshlens_canary_verdict');
    const series = (subset: string, verdict: string): number | undefined =>
      gauge.get(
        `destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",` +
          `destination_subset="${subset}",baseline_subset="v1",verdict="${verdict}"`,
      );
    expect([series('v3', 'fail'), series('v3', 'pass'), series('v3', 'inconclusive')]).toEqual([1, 0, 0]);
    const v2 = canaries[0] as Canary;
    expect(series('v2', v2.verdict)).toBe(1);
  });

  it('answers /api/v1/flows (reporter=all) exactly: each request once, the destination verdict, L4 flows beside L7', async () => {
    const { flows } = await get<FlowsAnswer>(`/api/v1/flows?${period}`);
    const norm = (f: FlowTruth) => ({
      ...f,
      policies: [...f.policies].sort((a, b) => a.policy.localeCompare(b.policy) || a.rule - b.rule),
    });
    const order = (a: FlowTruth, b: FlowTruth) => JSON.stringify([a.layer, a.source, a.destination]).localeCompare(JSON.stringify([b.layer, b.source, b.destination]));
    expect(flows.map(norm).sort(order)).toEqual(truth.flows.map(norm).sort(order));
    expect(flows.some((f) => f.denied > 0 && f.deny_reasons.rbac)).toBe(true);
    expect(flows.some((f) => f.deny_reasons.blackhole)).toBe(true);
    expect(flows.some((f) => f.layer === 'L4' && f.deny_reasons.network_policy)).toBe(true);
  });

  it('exports meshlens_requests_total on /metrics exactly as the truth counts it', async () => {
    const samples = metricSamples(await (await fetch(`${http}/metrics`)).text(), 'meshlens_requests_total');
    const want = new Map(
      truth.requests_total.map((s) => [
        Object.entries(s.labels)
          .map(([k, v]) => `${k}="${v}"`)
          .join(','),
        s.value,
      ]),
    );
    expect(Object.fromEntries([...samples].sort())).toEqual(Object.fromEntries([...want].sort()));
  });

  it('builds the graph from access logs; spans of logged hops add no edges', async () => {
    const { edges } = await get<GraphAnswer>(`/api/v1/graph?${period}`);
    expect(edges.filter((e) => e.from === 'spans')).toEqual([]);
    const v3 = edges.find((e) => e.source === 'workload:default/productpage-v1' && e.target === 'service:default/reviews' && e.subset === 'v3');
    const truthV3 = truth.subsets.source.find((s) => s.service === 'reviews' && s.subset === 'v3');
    expect(v3?.requests).toBe(truthV3?.requests);
    // The joined view takes a lone record's count back when its partner comes; what is left at zero is no edge.
    for (const reporter of ['all', 'source', 'destination']) {
      const answer = await get<GraphAnswer>(`/api/v1/graph?${period}&reporter=${reporter}`);
      expect([reporter, answer.edges.filter((e) => e.requests === 0)]).toEqual([reporter, []]);
    }
  });

  it('answers every /api route in the shape its schema declares, with every field the handlers return', async () => {
    const routes: [string, TSchema][] = [
      [`${API_PATHS.subsets}?${period}`, SubsetsAnswer],
      [`${API_PATHS.subsets}?${period}&reporter=source`, SubsetsAnswer],
      [`${API_PATHS.flows}?${period}`, FlowsAnswer],
      [`${API_PATHS.graph}?${period}`, GraphAnswer],
      [`${API_PATHS.canaries}?${period}`, CanariesAnswer],
      [API_PATHS.targets, TargetGroups],
    ];
    for (const [path, schema] of routes) {
      const answer = await get<unknown>(path);
      expect([path, [...Value.Errors(schema, answer)].slice(0, 3).map((e) => `${e.path}: ${e.message}`)]).toEqual([path, []]);
    }
    const { canaries } = await get<CanariesAnswer>(`${API_PATHS.canaries}?${period}`);
    expect(canaries.flatMap((c) => c.checks).length).toBeGreaterThan(0);

    // fast-json-stringify writes only what the response schema lists: what the handlers returned (captured
    // before serialization) must come out whole.
    const app = createHttpServer({ logger, maxBodyBytes: 1024 });
    const returned = new Map<string, unknown>();
    app.addHook('preSerialization', async (request, _reply, payload) => {
      returned.set(request.url, JSON.parse(JSON.stringify(payload)));
      return payload;
    });
    running.aggregator?.registerRoutes(app);
    await app.ready();
    for (const [path] of routes.filter(([p]) => p !== API_PATHS.targets)) {
      const res = await app.inject({ method: 'GET', url: path });
      expect([path, res.statusCode]).toEqual([path, 200]);
      expect([path, res.json()]).toEqual([path, returned.get(path)]);
    }
    await app.close();
  });

  // Issue 13 "Done when": RBAC denials are logged by the server only (the client sees a 403 like any other), so
  // the subset ratings v1 shows them as the server saw them in the joined view (the default) and in the
  // destination's, none in the source's; the flows ledger, the graph and the demo's screen agree on each.
  it.each([
    ['all (the default)', ''],
    ['destination', 'destination'],
    ['source', 'source'],
  ])('reporter=%s: subsets, flows ledger, graph and the demo screen agree on the denials of ratings v1', async (_name, reporter) => {
    const q = `${period}${reporter ? `&reporter=${reporter}` : ''}`;
    const [subsets, flows, graph, canaries] = await Promise.all([
      get<SubsetsAnswer>(`${API_PATHS.subsets}?${q}`),
      get<FlowsAnswer>(`${API_PATHS.flows}?${q}`),
      get<GraphAnswer>(`${API_PATHS.graph}?${q}`),
      get<CanariesAnswer>(`${API_PATHS.canaries}?${period}`),
    ]);
    const want = reporter || 'all';
    expect([subsets.reporter, flows.reporter, graph.reporter]).toEqual([want, want, want]);

    const ratings = subsets.subsets.find((s) => s.service === 'ratings' && s.subset === 'v1') as SubsetRow;
    expect(ratings.requests).toBeGreaterThan(0);
    // What the truth says the server decided: sleep → ratings v1, refused by default/deny-sleep rule 0.
    const truthDenied = truth.flows
      .filter((f) => f.layer === 'L7' && f.destination.service === 'ratings' && f.destination.subset === 'v1')
      .reduce((n, f) => n + f.denied, 0);
    expect(truthDenied).toBeGreaterThan(0);
    const toRatings = (f: FlowRow) => f.layer === 'L7' && f.destination.service === 'ratings' && f.destination.subset === 'v1';
    const ledgerDenied = flows.flows.filter(toRatings).reduce((n, f) => n + f.denied, 0);
    const edgeDenied = graph.edges.filter((e) => e.target === 'service:default/ratings' && e.subset === 'v1').reduce((n, e) => n + e.denied, 0);

    // The demo's screen, drawn from these very answers: the DENIED column of ratings v1, and its denied flows.
    const screen = renderSummary(subsets, flows, canaries).split('\n');
    const cells = (line: string) => line.trim().split(/\s{2,}/);
    const header = cells(screen.find((l) => l.startsWith('SERVICE  ')) as string);
    const row = cells(screen.find((l) => /^ratings\.default\s+v1\s/.test(l)) as string);
    const screenDenied = Number(row[header.indexOf('DENIED')]);
    // The screen's denied flows into ratings v1, as [source, DENIED, REASON, POLICY].
    const screenFlows = screen
      .filter((l) => /\s→\s+ratings\.default v1 :9080\s/.test(l))
      .map(cells)
      .map((c) => [c[0], Number(c[4]), c[6], c[7]]);

    if (want === 'source') {
      // The client's log has no RBAC details: nothing is denied anywhere in this view.
      expect({ subset: ratings.denied, ledger: ledgerDenied, graph: edgeDenied, screen: screenDenied, screenFlows }).toEqual({ subset: 0, ledger: 0, graph: 0, screen: 0, screenFlows: [] });
    } else {
      expect({ subset: ratings.denied, ledger: ledgerDenied, graph: edgeDenied, screen: screenDenied }).toEqual({
        subset: truthDenied,
        ledger: truthDenied,
        graph: truthDenied,
        screen: truthDenied,
      });
      const denied = flows.flows.filter((f) => toRatings(f) && f.denied > 0);
      for (const f of denied) {
        expect(f.deny_reasons).toEqual({ rbac: f.denied });
        expect(f.policies).toEqual([{ policy: 'default/deny-sleep', rule: 0, count: f.denied }]);
      }
      const sources = denied.map((f) => `${f.source.namespace}/${f.source.workload}`);
      // The joined view names the source as the client did.
      if (want === 'all') expect(sources).toEqual(['default/sleep']);
      expect(screenFlows).toEqual(denied.map((f, i) => [sources[i], f.denied, 'rbac', 'default/deny-sleep rule 0']));
    }
  });

  it('answers the same after a restart on the same data dir', async () => {
    const before = {
      subsets: await get(`/api/v1/subsets?${period}`),
      flows: await get(`/api/v1/flows?${period}`),
      graph: await get(`/api/v1/graph?${period}`),
    };
    await running.close();
    running = await start({ config, target: 'all', logger, processMetrics: false });
    http = `http://127.0.0.1:${running.ports.http}`;
    const after = {
      subsets: await get(`/api/v1/subsets?${period}`),
      flows: await get(`/api/v1/flows?${period}`),
      graph: await get(`/api/v1/graph?${period}`),
    };
    expect(after).toEqual(before);

    // The hops the access logs reported before the stop were saved with it: the same spans sent again now, after
    // the restart, still add no edge (without that state every one of them would count as a call only traced).
    await send(`http://127.0.0.1:${running.ports.zipkin}/api/v2/spans`, sim.spans, 'application/json', ',', (s) => `[${s}]`);
    const deadline = Date.now() + 20_000;
    while ((await storedRows(http, 'spans')) < sim.spans.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await storedRows(http, 'spans')).toBe(sim.spans.length);
    expect(await get(`/api/v1/graph?${period}`)).toEqual(before.graph);
  });
});
