/**
 * Every query of the generated dashboards against real data (issue 11 "Done when"): the all-in-one, fed by the
 * Bookinfo simulator in real time, is scraped by the real `prometheus` binary loading the generated rules with short
 * windows; every PromQL query (panels, variables, annotations) must return data, with "All" selected and with one
 * service and subset selected (reviews v3, the faulty canary). Then the all-in-one stops and every ClickHouse panel's
 * SQL, macros expanded as the grafana-clickhouse-datasource plugin expands them (test/support/grafana.ts), runs on
 * embedded chDB over the same data dir (real schema, migrations applied by the run) and must return rows.
 */
import { connect } from '../lib/store';
import { grafanaDashboards } from '../services/provisioner';
import { startFedAllInOne, type FedAllInOne } from './support/fed-all-in-one';
import { dashboardQueries, expandClickHouseMacros, interpolate, labelValuesQuery, type Selection } from './support/grafana';
import { binaryOrSkip, type RunningPrometheus } from './support/prometheus';

const PROMETHEUS = binaryOrSkip('prometheus', 'the dashboard query test (test/dashboards.e2e.test.ts)');
const RPS = 100;
const RULES = { rateWindow: '30s', canaryWindow: '30s', forDuration: '5s', verdictForDuration: '5s', minRequests: 100 };
/** Grafana's $__rate_interval for a 1 s scrape and a ~10 s panel interval: max(10 s + 1 s, 4 × 1 s). */
const RATE_INTERVAL = '11s';
const SELECTIONS: Record<string, Selection> = {
  all: { namespace: 'ALL', service: 'ALL', subset: 'ALL' },
  'reviews v3': { namespace: 'default', service: 'reviews', subset: 'v3' },
};
const DS_BUILTINS = { datasource: 'meshlens-prometheus', clickhouse: 'meshlens-clickhouse', jaeger: 'meshlens-jaeger', __rate_interval: RATE_INTERVAL };

/**
 * Queries whose data needs a condition the simulator does not create, with why. Each is still run (it must parse
 * and execute); it is only excused from returning data. Keyed `<dashboard> / <panel> / <refId> / <selection>`.
 */
const NO_REVIEWS_DENIALS =
  'the simulator denies calls to other services (its AuthorizationPolicy, NetworkPolicy and BlackHoleCluster cases), never to reviews; the "all" selection returns data';
const NO_DATA_EXPECTED: Record<string, string> = {
  'meshlens / Mesh overview / Denials per second by service / A / reviews v3': NO_REVIEWS_DENIALS,
  'meshlens / Mesh overview / Denials per second by service / B / reviews v3': NO_REVIEWS_DENIALS,
  'meshlens / Flows / Denials over time by layer and reason / A / reviews v3': NO_REVIEWS_DENIALS,
  'meshlens / Flows / Denials by policy, rule and reason / A / reviews v3': NO_REVIEWS_DENIALS,
};

(PROMETHEUS ? describe : describe.skip)('dashboard queries on real data', () => {
  const dashboards = Object.values(grafanaDashboards());
  const queries = dashboards.flatMap((d) => dashboardQueries(d).map((q) => ({ q, d })));
  let fed: FedAllInOne | undefined;
  let prom: RunningPrometheus;
  const startedMs = Date.now();

  beforeAll(async () => {
    fed = await startFedAllInOne({ prometheus: PROMETHEUS as string, dataDirPrefix: 'meshlens-dashboards-', seed: 11, rps: RPS, rules: RULES, spans: true });
    ({ prom } = fed);
  }, 60_000);

  afterAll(async () => {
    await fed?.close();
  });

  it('every PromQL query (panels, variables, annotations) returns data on Prometheus scraping the all-in-one', async () => {
    const prometheusQueries = queries.filter(({ q }) => q.type === 'prometheus');
    expect(prometheusQueries.length).toBeGreaterThanOrEqual(20);
    const pending = new Map<string, { expr: string; label?: string; match?: string }>();
    for (const { q, d } of prometheusQueries) {
      for (const [name, sel] of Object.entries(SELECTIONS)) {
        const text = interpolate(q.text, d, sel, DS_BUILTINS);
        const lv = labelValuesQuery(text);
        pending.set(`${q.dashboard} / ${q.panel} / ${q.refId} / ${name}`, lv ? { expr: text, label: lv.label, match: lv.match } : { expr: text });
      }
    }
    const errors: string[] = [];
    const run = async (key: string, p: { expr: string; label?: string; match?: string }): Promise<boolean> => {
      try {
        if (p.label !== undefined) return (await prom.api<string[]>(`/api/v1/label/${p.label}/values`, { 'match[]': p.match as string })).length > 0;
        return (await prom.query(p.expr)).length > 0;
      } catch (err) {
        errors.push(`${key}: ${(err as Error).message}\n${p.expr}`);
        pending.delete(key);
        return false;
      }
    };
    // The canary verdict needs a judged window and the canary alerts their `for:`: poll until every query has data.
    const deadline = Date.now() + 150_000;
    const waiting = () => [...pending.keys()].some((k) => !(k in NO_DATA_EXPECTED));
    while (waiting() && Date.now() < deadline) {
      for (const [key, p] of [...pending]) if (await run(key, p)) pending.delete(key);
      if (waiting()) await new Promise((r) => setTimeout(r, 2_000));
    }
    expect(errors).toEqual([]);
    const empty = [...pending.keys()].filter((k) => !(k in NO_DATA_EXPECTED)).map((k) => `${k}\n  ${pending.get(k)?.expr}`);
    expect(empty).toEqual([]);
  }, 200_000);

  it('every ClickHouse query (panels and variables), macros expanded as the plugin does, returns rows on chDB', async () => {
    const { dataDir } = fed as FedAllInOne;
    await fed?.stopMeshlens();
    const conn = connect({ clickhouseUrl: undefined, dataDir });
    try {
      const chQueries = queries.filter(({ q }) => q.type === 'grafana-clickhouse-datasource');
      expect(chQueries.length).toBeGreaterThanOrEqual(8);
      const fromMs = startedMs - 60_000;
      const toMs = Date.now() + 60_000;
      const failures: string[] = [];
      for (const { q, d } of chQueries) {
        for (const [name, sel] of Object.entries(SELECTIONS)) {
          const sql = expandClickHouseMacros(interpolate(q.text, d, sel, DS_BUILTINS), fromMs, toMs, 60);
          expect(sql).not.toMatch(/\$/);
          const key = `${q.dashboard} / ${q.panel} / ${q.refId} / ${name}`;
          try {
            // ClickHouse's own default, not the one meshlens's sessions set: what Grafana's connection has.
            const rows = await (await conn.client.query({ query: sql, format: 'JSONEachRow', clickhouse_settings: { prefer_column_name_to_alias: 0 } })).json();
            if (rows.length === 0 && !(key in NO_DATA_EXPECTED)) failures.push(`${key}: no rows\n${sql}`);
          } catch (err) {
            failures.push(`${key}: ${(err as Error).message.slice(0, 500)}\n${sql}`);
          }
        }
      }
      expect(failures).toEqual([]);
    } finally {
      await conn.client.close();
    }
  }, 120_000);
});
