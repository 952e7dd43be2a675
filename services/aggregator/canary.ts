/**
 * The canary judge (issue 4): for every service with two or more subsets carrying traffic, each subset is
 * compared with the service's baseline — the subset the mesh config names stable (`meshlens.io/stable-subset`
 * on its DestinationRule), else the one with the most requests.
 *
 * Three checks, each judged the same way, as Kayenta judges metrics one by one:
 * - `errors`: application errors (5xx the application answered) per request;
 * - `mesh_failures`: failures the proxy generated (no healthy upstream, connect failure, retries exhausted, no
 *   route...) per request — a separate check, so a mesh problem is named as such and not as the app's 5xx;
 * - `latency`: Mann-Whitney U of request durations (ClickHouse `mannWhitneyUTest`) plus an effect size.
 * Policy denials are reported, not judged: a refusal is the policy working.
 *
 * Error-type checks use the Farrington-Manning score test of "canary ratio − baseline ratio = margin":
 * `fail` when the canary is worse by more than the margin at one-sided α = 1 % / 3 (Bonferroni over the three
 * checks, so a canary equal to its baseline fails at most 1 % of judgements); `pass` when it is shown to be
 * worse by less than the margin at 95 % confidence; otherwise `inconclusive`, the honest answer while data is
 * thin. Below `minRequests` on either side the verdict is `inconclusive` without testing.
 */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import { CANARY_VERDICTS, LABELS, METRICS } from '../../lib/catalogue';
import type { CanaryVerdict } from '../../lib/catalogue';
import type { MeshConfig } from '../../lib/meshconfig';
import { orUnknown } from '../../lib/model';
import { stableSubset } from '../../lib/meshconfig';
import type { CanaryConfig, Logger } from '../../lib/runtime';
import { countableScope, queryLatencyShifts, querySubsets } from '../../lib/store';
import type { Connection, LatencyPair, LatencyShiftRow, QueryLimits, QueryScope, SubsetRow } from '../../lib/store';
import { fisherOneSidedP, normalCdf, normalQuantile, riskDifferenceZ } from './canary-stats';

/** The `verdict` label values of `meshlens_canary_verdict`, hence the catalogue's. */
export type Verdict = CanaryVerdict;
export const VERDICTS: readonly Verdict[] = CANARY_VERDICTS;

/** False-fail bound per judgement of a canary equal to its baseline, shared by the checks (Bonferroni). */
export const FALSE_FAIL_RATE = 0.01;
const CHECKS = 3;
const Z_FAIL = normalQuantile(1 - FALSE_FAIL_RATE / CHECKS);
/** Confidence needed to call a canary no worse than its baseline plus the margin. */
export const PASS_CONFIDENCE = 0.95;
const Z_PASS = normalQuantile(PASS_CONFIDENCE);
/** A slower canary fails only when its median latency is also this many times the baseline's (Kayenta's effect size). */
export const LATENCY_RATIO = 1.2;

export type JudgeOptions = Pick<CanaryConfig, 'minRequests' | 'margin'>;

interface SideStats {
  subset: string;
  requests: number;
  /** Application errors (CONTRACT.md §6 canary shape: `errors`, `error_ratio`). */
  errors: number;
  error_ratio: number;
  mesh_failures: number;
  mesh_failure_ratio: number;
  denied: number;
  /** Nearest-rank median; null when no duration is known. */
  latency_p50_ms: number | null;
}

export interface RatioCheck {
  signal: 'errors' | 'mesh_failures';
  verdict: Verdict;
  baseline_ratio: number;
  canary_ratio: number;
  margin: number;
  /** Farrington-Manning z of "canary − baseline = margin". */
  z: number;
  /**
   * One-sided p-value of "the canary is worse by more than the margin" (score test); once that test rejects,
   * the larger of it and Fisher's exact p-value of "worse at all".
   */
  p_value: number;
}

export interface LatencyCheck {
  signal: 'latency';
  verdict: Verdict;
  baseline_median_ms: number;
  canary_median_ms: number;
  ratio: number;
  allowed_ratio: number;
  /** Mann-Whitney U one-sided p-value of "the canary's durations are stochastically greater". */
  p_value: number;
}

export interface CanaryResult {
  namespace: string;
  service: string;
  host: string;
  baseline: SideStats;
  canary: SideStats;
  /** Where the baseline came from: the DestinationRule's stable-subset annotation, or traffic. */
  baseline_source: 'mesh_config' | 'most_requests';
  /** The canary's share of the service's requests, in percent (as `traffic_share` in /api/v1/subsets). */
  traffic_share: number;
  verdict: Verdict;
  /** How sure the verdict is, 0..1: fail → 1 − p of the failing check; pass → the weakest check's confidence; inconclusive → 0. */
  confidence: number;
  /** Why, in a sentence. */
  reason: string;
  checks: (RatioCheck | LatencyCheck)[];
}

/** The baseline of every host with two or more subsets carrying traffic, and its canaries. */
export function canaryPairs(subsets: readonly SubsetRow[], meshConfig: MeshConfig): (LatencyPair & { fromConfig: boolean })[] {
  const byHost = new Map<string, SubsetRow[]>();
  for (const s of subsets) {
    // '' is "no subset known": nothing to compare it with.
    if (s.subset === '' || s.requests === 0) continue;
    const list = byHost.get(s.host) ?? [];
    list.push(s);
    byHost.set(s.host, list);
  }
  const pairs: (LatencyPair & { fromConfig: boolean })[] = [];
  for (const [host, list] of byHost) {
    if (list.length < 2) continue;
    const stable = stableSubset(meshConfig, host);
    const configured = list.find((s) => s.subset === stable);
    const baseline = configured ?? [...list].sort((a, b) => b.requests - a.requests || a.subset.localeCompare(b.subset))[0];
    if (!baseline) continue;
    for (const s of list) {
      if (s !== baseline) pairs.push({ host, baseline: baseline.subset, canary: s.subset, fromConfig: configured !== undefined });
    }
  }
  return pairs.sort((a, b) => a.host.localeCompare(b.host) || a.canary.localeCompare(b.canary));
}

function side(s: SubsetRow): SideStats {
  const ratio = (n: number): number => (s.requests === 0 ? 0 : n / s.requests);
  return {
    subset: s.subset,
    requests: s.requests,
    errors: s.appErrors,
    error_ratio: ratio(s.appErrors),
    mesh_failures: s.meshFailures,
    mesh_failure_ratio: ratio(s.meshFailures),
    denied: s.denied,
    latency_p50_ms: s.latencyMs.p50,
  };
}

/** The score test of one error-type signal. */
export function ratioCheck(
  signal: RatioCheck['signal'],
  canary: { count: number; requests: number },
  baseline: { count: number; requests: number },
  margin: number,
): RatioCheck {
  const z = riskDifferenceZ(canary.count, canary.requests, baseline.count, baseline.requests, margin);
  let pValue = 1 - normalCdf(z);
  let verdict: Verdict = z < -Z_PASS ? 'pass' : 'inconclusive';
  if (z > Z_FAIL) {
    // The score test says "worse by more than the margin"; Fisher's exact test must agree that it is worse at
    // all, which keeps the false-fail bound when failures are rare (test/canary.statistics.test.ts).
    pValue = Math.max(pValue, fisherOneSidedP(canary.count, canary.requests, baseline.count, baseline.requests));
    verdict = pValue < FALSE_FAIL_RATE / CHECKS ? 'fail' : 'inconclusive';
  }
  return {
    signal,
    verdict,
    baseline_ratio: baseline.count / baseline.requests,
    canary_ratio: canary.count / canary.requests,
    margin,
    z,
    p_value: pValue,
  };
}

function latencyCheck(shift: LatencyShiftRow, minRequests: number): LatencyCheck {
  const ratio = shift.baselineMedianMs > 0 ? shift.canaryMedianMs / shift.baselineMedianMs : shift.canaryMedianMs > 0 ? Infinity : 1;
  const enough = shift.baselineCount >= minRequests && shift.canaryCount >= minRequests;
  const slower = shift.pValue < FALSE_FAIL_RATE / CHECKS && ratio >= LATENCY_RATIO;
  return {
    signal: 'latency',
    verdict: !enough ? 'inconclusive' : slower ? 'fail' : 'pass',
    baseline_median_ms: shift.baselineMedianMs,
    canary_median_ms: shift.canaryMedianMs,
    ratio,
    allowed_ratio: LATENCY_RATIO,
    p_value: shift.pValue,
  };
}

type CanaryPair = ReturnType<typeof canaryPairs>[number];

/**
 * Judges every canary of `subsets`. `shifts` holds latency tests of pairs (matched by host, baseline and
 * canary); a pair without one (or without raw rows) is judged without latency.
 */
export function judgeCanaries(
  subsets: readonly SubsetRow[],
  meshConfig: MeshConfig,
  options: JudgeOptions,
  shifts: readonly LatencyShiftRow[] = [],
): CanaryResult[] {
  return judgePairs(subsets, canaryPairs(subsets, meshConfig), options, shifts);
}

function judgePairs(
  subsets: readonly SubsetRow[],
  pairs: readonly CanaryPair[],
  options: JudgeOptions,
  shifts: readonly LatencyShiftRow[],
): CanaryResult[] {
  const find = (host: string, subset: string): SubsetRow | undefined => subsets.find((s) => s.host === host && s.subset === subset);
  const hostTotal = new Map<string, number>();
  for (const s of subsets) hostTotal.set(s.host, (hostTotal.get(s.host) ?? 0) + s.requests);
  const out: CanaryResult[] = [];
  for (const pair of pairs) {
    const b = find(pair.host, pair.baseline) as SubsetRow;
    const c = find(pair.host, pair.canary) as SubsetRow;
    const shift = shifts.find((x) => x.host === pair.host && x.baseline === pair.baseline && x.canary === pair.canary);
    const result: CanaryResult = {
      namespace: c.namespace,
      service: c.service,
      host: c.host,
      baseline: side(b),
      canary: side(c),
      baseline_source: pair.fromConfig ? 'mesh_config' : 'most_requests',
      traffic_share: Math.round((10_000 * c.requests) / (hostTotal.get(c.host) || 1)) / 100,
      verdict: 'inconclusive',
      confidence: 0,
      reason: '',
      checks: [],
    };
    out.push(result);
    const short = [b, c].filter((s) => s.requests < options.minRequests);
    if (short.length > 0) {
      result.reason = short.map((s) => `${s.subset} has ${s.requests} of the ${options.minRequests} requests needed`).join('; ');
      continue;
    }
    const checks: (RatioCheck | LatencyCheck)[] = [
      ratioCheck('errors', { count: c.appErrors, requests: c.requests }, { count: b.appErrors, requests: b.requests }, options.margin),
      ratioCheck('mesh_failures', { count: c.meshFailures, requests: c.requests }, { count: b.meshFailures, requests: b.requests }, options.margin),
    ];
    if (shift && shift.baselineCount > 0 && shift.canaryCount > 0) checks.push(latencyCheck(shift, options.minRequests));
    result.checks = checks;
    decide(result, options.margin);
  }
  return out;
}

/** Fail if any check fails; pass when the error-type checks pass and latency does not fail; else inconclusive. */
function decide(r: CanaryResult, margin: number): void {
  const failed = r.checks.filter((c) => c.verdict === 'fail');
  const points = (x: number): string => `${(100 * x).toFixed(2)} %`;
  if (failed.length > 0) {
    r.verdict = 'fail';
    r.confidence = Math.max(...failed.map((c) => 1 - c.p_value));
    r.reason = failed
      .map((c) =>
        c.signal === 'latency'
          ? `latency: median ${c.canary_median_ms.toFixed(1)} ms vs ${c.baseline_median_ms.toFixed(1)} ms (${c.ratio.toFixed(2)}×)`
          : `${c.signal.replace('_', ' ')}: ${points(c.canary_ratio)} vs ${points(c.baseline_ratio)}, more than ${points(margin)} above`,
      )
      .join('; ');
    return;
  }
  const ratios = r.checks.filter((c): c is RatioCheck => c.signal !== 'latency');
  if (ratios.every((c) => c.verdict === 'pass')) {
    r.verdict = 'pass';
    r.confidence = Math.min(...ratios.map((c) => normalCdf(-c.z)));
    r.reason = `within ${points(margin)} of the baseline`;
    return;
  }
  r.reason = `not yet shown to be within ${points(margin)} of the baseline nor worse: more requests needed`;
}

/** Reads a window from ClickHouse and judges it: the subsets' counts, then the latency tests of the pairs. */
export async function judgeWindow(
  conn: Connection,
  meshConfig: MeshConfig,
  scope: QueryScope,
  options: JudgeOptions,
  limits?: QueryLimits,
): Promise<CanaryResult[]> {
  const subsets = await querySubsets(conn, scope, limits);
  const pairs = canaryPairs(subsets, meshConfig);
  // Latency is tested only where the canary has the minimum sample; the others stay inconclusive anyway.
  const tested = pairs.filter((p) => subsets.some((s) => s.host === p.host && s.subset === p.canary && s.requests >= options.minRequests));
  return judgePairs(subsets, pairs, options, await queryLatencyShifts(conn, scope, tested, limits));
}

/**
 * Judges the last `windowMs` every `intervalMs` and publishes `meshlens_canary_verdict` (CONTRACT.md §5): per
 * canary, one series per verdict, 1 on the current one. Canaries that stopped carrying traffic disappear.
 * When the store cannot answer, the last verdicts stay and `meshlens_canary_judge_failures_total` counts.
 */
export class CanaryJudge {
  private readonly gauge: Gauge;
  private readonly failures: Counter;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly deps: {
      conn: Connection;
      meshConfig: MeshConfig;
      registry: Registry;
      logger: Logger;
      config: CanaryConfig;
      /** Bound on each of its queries (`max_execution_time`, MESHLENS_QUERY_TIMEOUT); default 30 s. */
      queryTimeoutMs?: number;
      /** MESHLENS_RAW_REQUESTS; below 1 the window is widened to whole minutes (counted from the rollups). */
      rawRequests?: number;
      now?: () => number;
    },
  ) {
    const { canaryVerdict, canaryJudgeFailures } = METRICS;
    this.gauge = new Gauge({ name: canaryVerdict.name, help: canaryVerdict.help, labelNames: canaryVerdict.labelNames, registers: [deps.registry] });
    this.failures = new Counter({ name: canaryJudgeFailures.name, help: canaryJudgeFailures.help, registers: [deps.registry] });
  }

  start(): void {
    const tick = (): void => {
      this.running ??= this.judgeNow().finally(() => (this.running = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.deps.config.intervalMs);
    this.timer.unref();
  }

  /** One judgement of the window ending now; resolves after the gauge is updated (or the failure counted). */
  async judgeNow(): Promise<void> {
    const toMs = (this.deps.now ?? Date.now)();
    const window: QueryScope = { fromMs: toMs - this.deps.config.windowMs, toMs, namespace: '', service: '', reporter: 'source' };
    const scope = countableScope(window, this.deps.rawRequests);
    try {
      this.publish(await judgeWindow(this.deps.conn, this.deps.meshConfig, scope, this.deps.config, { timeoutMs: this.deps.queryTimeoutMs }));
    } catch (err) {
      this.failures.inc();
      this.deps.logger.warn({ err }, 'canary judgement failed; keeping the previous verdicts');
    }
  }

  private publish(results: CanaryResult[]): void {
    // reset + set run synchronously, so a scrape never sees a half-updated set.
    this.gauge.reset();
    for (const r of results) {
      for (const verdict of VERDICTS) {
        this.gauge.set(
          // Names from the catalogue, in its order (prom-client writes labels in the object's order).
          {
            [LABELS.destinationService]: orUnknown(r.host),
            [LABELS.destinationServiceName]: orUnknown(r.service),
            [LABELS.destinationServiceNamespace]: orUnknown(r.namespace),
            [LABELS.destinationSubset]: r.canary.subset,
            [LABELS.baselineSubset]: r.baseline.subset,
            [LABELS.verdict]: verdict,
          },
          verdict === r.verdict ? 1 : 0,
        );
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
