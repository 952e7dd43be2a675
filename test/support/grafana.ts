/**
 * What Grafana does to a generated dashboard's queries before a datasource sees them, for the tests that run
 * those queries against real Prometheus and ClickHouse (issue 11 "Done when").
 *
 * - Template variables (Grafana's templateSrv): an "All" selection with a custom all value is inserted as it
 *   is, unformatted; a selected value is formatted — `${v:singlequote}` as `'a','b'`, a bare `$v` in PromQL as
 *   the value (regex-escaped by Grafana; the values used here have nothing to escape).
 * - `$__rate_interval` (Prometheus datasource): max($__interval + scrape interval, 4 × scrape interval).
 * - The grafana-clickhouse-datasource macros, as pkg/macros/macros.go of grafana/clickhouse-datasource expands
 *   them: `$__timeFilter(c)` → `c >= toDateTime(<from s>) AND c <= toDateTime(<to s>)`, `$__fromTime` /
 *   `$__toTime` → `toDateTime(<s>)`, `$__timeInterval(c)` → `toStartOfInterval(toDateTime(c), INTERVAL <n> second)`,
 *   `$__interval_s` → `<n>`, and the `_ms` forms with fromUnixTimestamp64Milli / toDateTime64.
 */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';

export type Selection = Record<string, string | 'ALL'>;

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  /** `prometheus`, `grafana-clickhouse-datasource`, `jaeger`. */
  type: string;
  text: string;
}

/** Every query of a dashboard: panel targets, variable queries and annotation queries. */
export function dashboardQueries(d: Dashboard): PanelQuery[] {
  const out: PanelQuery[] = [];
  const title = d.title ?? '';
  for (const p of (d.panels ?? []) as unknown as Array<Record<string, unknown>>) {
    for (const t of (p.targets ?? []) as unknown as Array<Record<string, unknown>>) {
      const ds = (t.datasource ?? p.datasource) as { type: string };
      const text = (t.expr ?? t.rawSql ?? t.service ?? '') as string;
      out.push({ dashboard: title, panel: String(p.title), refId: String(t.refId), type: ds.type, text });
    }
  }
  for (const v of (d.templating?.list ?? []) as unknown as Array<Record<string, unknown>>) {
    if (v.type !== 'query') continue;
    out.push({ dashboard: title, panel: `variable ${String(v.name)}`, refId: 'var', type: (v.datasource as { type: string }).type, text: String(v.query) });
  }
  for (const a of (d.annotations?.list ?? []) as unknown as Array<Record<string, unknown>>) {
    if (typeof a.expr === 'string') out.push({ dashboard: title, panel: `annotation ${String(a.name)}`, refId: 'ann', type: (a.datasource as { type: string }).type, text: a.expr });
  }
  return out;
}

/** The custom all value of every variable of a dashboard. */
export function allValues(d: Dashboard): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of (d.templating?.list ?? []) as unknown as Array<Record<string, unknown>>) if (typeof v.allValue === 'string') out[String(v.name)] = v.allValue;
  return out;
}

/** Grafana's variable interpolation for one selection (see the header). */
export function interpolate(text: string, d: Dashboard, sel: Selection, builtins: Record<string, string>): string {
  const all = allValues(d);
  const value = (name: string, format: string | undefined): string => {
    if (name in builtins) return builtins[name] as string;
    const s = sel[name];
    if (s === undefined) throw new Error(`variable ${name} has no value in the test's selection`);
    if (s === 'ALL') {
      const a = all[name];
      if (a === undefined) throw new Error(`variable ${name} has no custom all value`);
      return a;
    }
    if (format === 'singlequote') return `'${s.replace(/'/g, "\\'")}'`;
    return s;
  };
  return text.replace(/\$\{(\w+)(?::(\w+))?\}|\$(\w+)/g, (m, braced: string | undefined, format: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare) as string;
    if (name.startsWith('__') && !(name in builtins)) return m; // a macro, expanded by the datasource
    if (/^\d+$/.test(name)) return m; // label_replace's `$1`: no variable has that name, so Grafana leaves it
    return value(name, format);
  });
}

/** The ClickHouse plugin's macros over [from, to] with an interval in seconds. */
export function expandClickHouseMacros(sql: string, fromMs: number, toMs: number, intervalS: number): string {
  const s = (ms: number) => Math.floor(ms / 1000);
  return sql
    .replace(/\$__timeFilter_ms\(([^)]+)\)/g, (_m, c: string) => `${c} >= fromUnixTimestamp64Milli(${fromMs}) AND ${c} <= fromUnixTimestamp64Milli(${toMs})`)
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_m, c: string) => `${c} >= toDateTime(${s(fromMs)}) AND ${c} <= toDateTime(${s(toMs)})`)
    .replace(/\$__timeInterval_ms\(([^)]+)\)/g, (_m, c: string) => `toStartOfInterval(toDateTime64(${c}, 3), INTERVAL ${Math.max(intervalS * 1000, 1)} millisecond)`)
    .replace(/\$__timeInterval\(([^)]+)\)/g, (_m, c: string) => `toStartOfInterval(toDateTime(${c}), INTERVAL ${Math.max(intervalS, 1)} second)`)
    .replace(/\$__fromTime_ms\b/g, `fromUnixTimestamp64Milli(${fromMs})`)
    .replace(/\$__toTime_ms\b/g, `fromUnixTimestamp64Milli(${toMs})`)
    .replace(/\$__fromTime\b/g, `toDateTime(${s(fromMs)})`)
    .replace(/\$__toTime\b/g, `toDateTime(${s(toMs)})`)
    .replace(/\$__interval_s\b/g, String(Math.max(intervalS, 1)));
}

/** `label_values(metric{sel}, label)` → the series selector and label, as Grafana asks /api/v1/label/<l>/values. */
export function labelValuesQuery(q: string): { match: string; label: string } | undefined {
  const m = /^label_values\((.*),\s*(\w+)\)$/s.exec(q.trim());
  return m ? { match: m[1] as string, label: m[2] as string } : undefined;
}
