import { emptyMeshConfig, parseMeshConfig } from '../../lib/meshconfig';
import type { LatencyShiftRow, SubsetRow } from '../../lib/store';
import { canaryPairs, judgeCanaries, LATENCY_RATIO } from './canary';
import { fisherOneSidedP, logGamma, normalCdf, normalQuantile, restrictedMle, riskDifferenceZ } from './canary-stats';

const HOST = 'reviews.default.svc.cluster.local';
const OPTIONS = { minRequests: 200, margin: 0.005 };

function subset(name: string, requests: number, appErrors = 0, over: Partial<SubsetRow> = {}): SubsetRow {
  return {
    namespace: 'default',
    service: 'reviews',
    host: HOST,
    subset: name,
    requests,
    errors: appErrors + (over.meshFailures ?? 0),
    denied: 0,
    appErrors,
    meshFailures: 0,
    latencyMs: { p50: 10, p90: 20, p99: 40 },
    ...over,
  };
}

describe('canary statistics', () => {
  it('computes the normal CDF to 1e-7', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-2.326348)).toBeCloseTo(0.01, 6);
    expect(normalQuantile(0.99)).toBeCloseTo(2.326348, 4);
  });

  it('finds the constrained maximum likelihood (Farrington-Manning) that a brute-force search finds', () => {
    const loglik = (x1: number, n1: number, x2: number, n2: number, p1: number, p2: number): number => {
      const t = (x: number, n: number, p: number): number => (x > 0 ? x * Math.log(p) : 0) + (n - x > 0 ? (n - x) * Math.log(1 - p) : 0);
      return t(x1, n1, p1) + t(x2, n2, p2);
    };
    const cases: [number, number, number, number, number][] = [
      [30, 1000, 100, 19000, 0.005],
      [0, 500, 0, 9500, 0.005],
      [3, 200, 190, 19000, 0.01],
      [200, 200, 19000, 19000, 0.005],
      [17, 400, 9, 600, 0.02],
      [5, 300, 40, 4000, -0.01],
    ];
    for (const [x1, n1, x2, n2, d] of cases) {
      const [r1, r2] = restrictedMle(x1, n1, x2, n2, d);
      if (r2 > 0 && r1 < 1) expect(r1 - r2).toBeCloseTo(d, 9);
      let best = -Infinity;
      for (let i = 0; i <= 20_000; i++) {
        const q2 = Math.max(0, -d) + ((Math.min(1, 1 - d) - Math.max(0, -d)) * i) / 20_000;
        const q1 = q2 + d;
        if (q1 <= 0 || q1 >= 1 || q2 <= 0 || q2 >= 1) continue;
        best = Math.max(best, loglik(x1, n1, x2, n2, q1, q2));
      }
      const clampP = (p: number): number => Math.min(1 - 1e-12, Math.max(1e-12, p));
      expect(loglik(x1, n1, x2, n2, clampP(r1), clampP(r2))).toBeGreaterThanOrEqual(best - 1e-6);
    }
  });

  it("computes Fisher's exact one-sided p-value", () => {
    // 3 of 200 against 8 of 3800: P(X >= 3), X hypergeometric(N = 4000, K = 11, n = 200), summed by hand.
    let want = 0;
    const lfact = (n: number): number => { let r = 0; for (let i = 2; i <= n; i++) r += Math.log(i); return r; };
    const lchoose = (n: number, k: number): number => lfact(n) - lfact(k) - lfact(n - k);
    for (let x = 3; x <= 11; x++) want += Math.exp(lchoose(11, x) + lchoose(3989, 200 - x) - lchoose(4000, 200));
    expect(fisherOneSidedP(3, 200, 8, 3800)).toBeCloseTo(want, 10);
    expect(fisherOneSidedP(0, 200, 8, 3800)).toBe(1);
    expect(logGamma(10)).toBeCloseTo(Math.log(362880), 10);
  });

  it('reduces to the pooled two-proportion z without a margin, and stays finite at zero counts', () => {
    const [x1, n1, x2, n2] = [30, 1000, 100, 19000];
    const p = (x1 + x2) / (n1 + n2);
    const pooled = (x1 / n1 - x2 / n2) / Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
    expect(riskDifferenceZ(x1, n1, x2, n2, 0)).toBeCloseTo(pooled, 9);
    // No errors anywhere: the canary is below baseline + margin, and says so by a finite amount.
    const z = riskDifferenceZ(0, 1000, 0, 19000, 0.005);
    expect(Number.isFinite(z)).toBe(true);
    expect(z).toBeLessThan(-2);
  });
});

describe('canary pairs', () => {
  it('takes the subset with the most requests as baseline, skips "" and services with one subset', () => {
    const pairs = canaryPairs(
      [subset('v1', 9000), subset('v2', 700), subset('v3', 300), subset('', 50), { ...subset('v1', 100), host: 'details.default.svc.cluster.local' }],
      emptyMeshConfig(),
    );
    expect(pairs.map((p) => [p.baseline, p.canary, p.fromConfig])).toEqual([
      ['v1', 'v2', false],
      ['v1', 'v3', false],
    ]);
  });

  it('uses the stable subset the mesh config names, even with less traffic', () => {
    const { config } = parseMeshConfig([
      {
        name: 'dr.yaml',
        text: `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default, annotations: {meshlens.io/stable-subset: v1}}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`,
      },
    ]);
    const pairs = canaryPairs([subset('v1', 400), subset('v2', 9600)], config);
    expect(pairs).toEqual([{ host: HOST, baseline: 'v1', canary: 'v2', fromConfig: true }]);
  });
});

describe('judgeCanaries', () => {
  const judgeOne = (rows: SubsetRow[], shifts: LatencyShiftRow[] = [], options = OPTIONS) => {
    const [r] = judgeCanaries(rows, emptyMeshConfig(), options, shifts);
    if (!r) throw new Error('no canary judged');
    return r;
  };

  it('says inconclusive, with the reason, below the minimum sample: a trickle never fails', () => {
    const r = judgeOne([subset('v1', 20_000, 200), subset('v3', 40, 20)]);
    expect(r).toMatchObject({ verdict: 'inconclusive', confidence: 0, checks: [] });
    expect(r.reason).toBe('v3 has 40 of the 200 requests needed');
  });

  it('fails a canary at 5 % of traffic with 3× the baseline error ratio, naming the check', () => {
    const r = judgeOne([subset('v1', 38_000, 380), subset('v3', 2_000, 60)]);
    expect(r.verdict).toBe('fail');
    expect(r.confidence).toBeGreaterThan(0.99);
    expect(r.checks.find((c) => c.signal === 'errors')?.verdict).toBe('fail');
    expect(r.traffic_share).toBe(5);
    expect(r.canary).toMatchObject({ subset: 'v3', requests: 2000, errors: 60, error_ratio: 0.03 });
    expect(r.reason).toMatch(/^errors: 3\.00 % vs 1\.00 %/);
  });

  it('passes an equal canary once the sample shows it within the margin', () => {
    const r = judgeOne([subset('v1', 38_000, 380), subset('v2', 2_000, 20)]);
    expect(r.verdict).toBe('pass');
    expect(r.confidence).toBeGreaterThanOrEqual(0.95);
  });

  it('does not fail a tiny but significant difference below the margin', () => {
    // 1.0 % vs 1.3 %, a million requests each: z ≈ 20 without a margin, but 0.3 points < 0.5.
    const r = judgeOne([subset('v1', 1_000_000, 10_000), subset('v2', 1_000_000, 13_000)]);
    expect(riskDifferenceZ(13_000, 1_000_000, 10_000, 1_000_000, 0)).toBeGreaterThan(15);
    expect(r.verdict).toBe('pass');
  });

  it('judges mesh-generated failures apart from application errors', () => {
    const r = judgeOne([subset('v1', 20_000, 200), subset('v2', 2_000, 20, { meshFailures: 200 })]);
    expect(r.verdict).toBe('fail');
    expect(r.checks.map((c) => [c.signal, c.verdict])).toEqual([
      ['errors', 'pass'],
      ['mesh_failures', 'fail'],
    ]);
    expect(r.canary).toMatchObject({ errors: 20, mesh_failures: 200, mesh_failure_ratio: 0.1 });
  });

  it('fails on latency only when Mann-Whitney is significant and the median grew by the allowed ratio', () => {
    const rows = [subset('v1', 20_000, 200), subset('v2', 2_000, 20)];
    const shift = (canaryMedianMs: number, pValue: number): LatencyShiftRow => ({
      host: HOST, baseline: 'v1', canary: 'v2', baselineCount: 20_000, canaryCount: 2_000, baselineMedianMs: 10, canaryMedianMs, pValue,
    });
    const slow = judgeOne(rows, [shift(10 * LATENCY_RATIO * 1.5, 1e-9)]);
    expect(slow.verdict).toBe('fail');
    expect(slow.checks.find((c) => c.signal === 'latency')).toMatchObject({ verdict: 'fail', ratio: 1.8 });
    expect(judgeOne(rows, [shift(10.5, 1e-9)]).verdict).toBe('pass'); // significant, but 5 % slower is allowed
    expect(judgeOne(rows, [shift(30, 0.2)]).verdict).toBe('pass'); // not significant
  });
});
