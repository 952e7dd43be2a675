/**
 * The demo's terminal summary: per-subset RED, the denied flows and the canary verdicts, from the query API
 * (CONTRACT.md §6). Subsets and flows in the joined view (the API's default reporter, `all`: each request once,
 * a denial as the server decided), canaries as their judge sees them (what clients saw, over its window).
 * `renderSummary` is pure (answers in, text out); `startSummaryLoop` fetches the answers every few seconds and
 * redraws the terminal. The answers' types are the query API's own schemas (services/aggregator/api-schema.ts).
 */
import type { CanariesAnswer, FlowsAnswer, SubsetsAnswer } from '../services/aggregator';

/** Left- or right-aligned columns, two spaces apart. */
function table(header: readonly string[], rows: readonly string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/**
 * `reviews.default`; external destinations (BlackHoleCluster, hosts outside the cluster) by themselves: the API
 * spells their namespace `unknown` (older versions said '').
 */
function serviceLabel(service: string, namespace: string): string {
  return namespace && namespace !== 'unknown' ? `${service}.${namespace}` : service;
}

function fixed(x: number, digits: number): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '-';
}

function rate(rps: number): string {
  return fixed(rps, rps > 0 && rps < 1 ? 2 : 1);
}

function millis(ms: number): string {
  return fixed(ms, ms < 10 ? 1 : 0);
}

function clock(t: string): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString().slice(11, 19);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function percent(x: number): string {
  return `${fixed(100 * x, 1)} %`;
}

/** `10m`, `1h30m`, `45s`: a period's length as the demo's reader would write it. */
function span(fromIso: string, toIso: string): string {
  let s = Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 1000);
  if (!Number.isFinite(s) || s <= 0) return '?';
  const parts: string[] = [];
  for (const [unit, n] of [['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)}${unit}`);
      s %= n;
    }
  }
  return parts.join('');
}

/** What the answer's reporter counted, in a few words. */
function reporterNote(reporter: string): string {
  if (reporter === 'all') return 'joined view: each request once, denials as the server decided';
  return `as the ${reporter} sidecars reported`;
}

/**
 * The summary as plain text: a table of subsets (RPS, error %, p99, requests, denied, share of the service's
 * traffic), one of denied flows by source → destination with their reasons and policies, and, given the
 * canaries answer, one row per canary with its verdict, confidence and the judge's reason.
 */
export function renderSummary(subsets: SubsetsAnswer, flows: FlowsAnswer, canaries?: CanariesAnswer): string {
  const out: string[] = [`window ${clock(subsets.from)} → ${clock(subsets.to)} UTC (event time) · ${reporterNote(subsets.reporter)}`, ''];

  const rows = [...subsets.subsets].sort(
    (a, b) => compare(a.namespace, b.namespace) || compare(a.service, b.service) || compare(a.subset, b.subset),
  );
  const perHost = new Map<string, number>();
  for (const s of rows) perHost.set(s.host, (perHost.get(s.host) ?? 0) + 1);
  if (rows.length === 0) {
    out.push('no requests in this window yet');
  } else {
    out.push(
      ...table(
        ['SERVICE', 'SUBSET', 'RPS', 'ERR %', 'P99 ms', 'REQUESTS', 'DENIED', 'SHARE'],
        rows.map((s) => [
          serviceLabel(s.service, s.namespace),
          s.subset || '-',
          rate(s.rps),
          fixed(100 * s.error_ratio, 1),
          millis(s.latency_ms.p99 ?? NaN),
          String(s.requests),
          String(s.denied),
          // A share says something only beside the service's other subsets.
          (perHost.get(s.host) ?? 0) > 1 ? `${fixed(s.traffic_share, 1)} %` : '',
        ]),
        new Set([2, 3, 4, 5, 6, 7]),
      ),
    );
  }

  out.push('');
  const denied = flows.flows
    .filter((f) => f.denied > 0)
    .sort((a, b) => b.denied - a.denied || compare(a.source.workload, b.source.workload) || compare(a.destination.service, b.destination.service));
  if (denied.length === 0) {
    out.push('DENIED FLOWS: none in this window');
  } else {
    out.push('DENIED FLOWS');
    out.push(
      ...table(
        ['SOURCE', '', 'DESTINATION', 'LAYER', 'DENIED', 'ALLOWED', 'REASON', 'POLICY'],
        denied.map((f) => {
          const d = f.destination;
          const dest = `${serviceLabel(d.service, d.namespace)}${d.subset ? ` ${d.subset}` : ''}${d.port ? ` :${d.port}` : ''}`;
          const reasons = Object.entries(f.deny_reasons)
            .sort((a, b) => b[1] - a[1])
            .map(([reason]) => reason)
            .join(', ');
          const policies = f.policies.map((p) => (p.rule >= 0 ? `${p.policy} rule ${p.rule}` : p.policy)).join(', ');
          return [`${f.source.namespace}/${f.source.workload}`, '→', dest, f.layer, String(f.denied), String(f.allowed), reasons, policies || '-'];
        }),
        new Set([4, 5]),
      ),
    );
  }
  if (canaries !== undefined) out.push('', ...renderCanaries(canaries));
  return out.join('\n') + '\n';
}

/** One row per canary: baseline, traffic, error ratios, the verdict with its confidence, and why. */
function renderCanaries(answer: CanariesAnswer): string[] {
  const title = `CANARIES (judged over the last ${span(answer.from, answer.to)}, ${reporterNote(answer.reporter)}; verdicts need ${answer.settings.min_requests} requests per side)`;
  if (answer.canaries.length === 0) return [`${title}: none yet (a service needs two subsets carrying traffic)`];
  const rows = [...answer.canaries].sort(
    (a, b) => compare(a.namespace, b.namespace) || compare(a.service, b.service) || compare(a.canary.subset, b.canary.subset),
  );
  return [
    title,
    ...table(
      ['SERVICE', 'CANARY', 'BASELINE', 'SHARE', 'REQUESTS', 'ERR % (BASE)', 'VERDICT', 'CONFIDENCE', 'REASON'],
      rows.map((c) => [
        serviceLabel(c.service, c.namespace),
        c.canary.subset,
        c.baseline.subset,
        `${fixed(c.traffic_share, 1)} %`,
        String(c.canary.requests),
        `${fixed(100 * c.canary.error_ratio, 1)} (${fixed(100 * c.baseline.error_ratio, 1)})`,
        c.verdict.toUpperCase(),
        c.verdict === 'inconclusive' ? '-' : percent(c.confidence),
        c.reason,
      ]),
      new Set([3, 4, 5, 7]),
    ),
  ];
}

export interface SummaryLoopOptions {
  /** meshlens HTTP base URL, e.g. `http://127.0.0.1:8080`. */
  httpBaseUrl: string;
  out: NodeJS.WritableStream;
  /** Between the end of one refresh and the start of the next. Default 3000. */
  intervalMs?: number;
  /** Query window. Default `30s`. */
  window?: string;
  /** Bearer token, when meshlens requires one. */
  token?: string;
  /** Lines above the summary (e.g. what the simulator has sent). */
  header?: () => string;
  fetch?: typeof fetch;
}

export interface SummaryLoop {
  /** Fetch and draw now (the loop also does it on its timer). */
  refresh(): Promise<void>;
  /** Stop the timer; resolves once a refresh in progress has drawn. */
  stop(): Promise<void>;
}

/** Clear the screen and home the cursor (ANSI ED 2 + CUP), so each refresh redraws in place. */
const CLEAR = '\x1b[H\x1b[2J';

async function getJson<T>(doFetch: typeof fetch, url: string, token: string | undefined): Promise<T> {
  const res = await doFetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${text.slice(0, 120)}`);
  return JSON.parse(text) as T;
}

/**
 * Redraw the summary every `intervalMs`. On a terminal the screen is cleared first; into a file or pipe each
 * summary is appended. While the query API does not answer, the summary says so and the loop keeps trying.
 */
export function startSummaryLoop(options: SummaryLoopOptions): SummaryLoop {
  const doFetch = options.fetch ?? fetch;
  const base = options.httpBaseUrl.replace(/\/+$/, '');
  const window = encodeURIComponent(options.window ?? '30s');
  const intervalMs = options.intervalMs ?? 3000;
  const tty = (options.out as { isTTY?: boolean }).isTTY === true;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  async function draw(): Promise<void> {
    let body: string;
    try {
      // No reporter: the API's default, the joined view. Canaries over the judge's own window (the API's
      // default there), so the screen shows the verdict meshlens_canary_verdict carries, not one of 30 seconds.
      const [subsets, flows, canaries] = await Promise.all([
        getJson<SubsetsAnswer>(doFetch, `${base}/api/v1/subsets?window=${window}`, options.token),
        getJson<FlowsAnswer>(doFetch, `${base}/api/v1/flows?window=${window}`, options.token),
        getJson<CanariesAnswer>(doFetch, `${base}/api/v1/canaries`, options.token),
      ]);
      body = renderSummary(subsets, flows, canaries);
    } catch (err) {
      body = `waiting for the meshlens query API (${(err as Error).message})\n`;
    }
    const head = options.header ? options.header() : '';
    options.out.write(`${tty ? CLEAR : ''}${head}${head && !head.endsWith('\n') ? '\n' : ''}${head ? '\n' : ''}${body}${tty ? '' : '\n'}`);
  }

  function refresh(): Promise<void> {
    // One refresh at a time: a slow answer delays the next draw instead of interleaving two.
    running ??= draw().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      void refresh().then(schedule);
    }, intervalMs);
  }

  void refresh().then(schedule);
  return {
    refresh,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
