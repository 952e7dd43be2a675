/**
 * The canary judge over many seeded simulations (issue 4): how often it fails a canary that is as good as its
 * baseline, and how many requests it needs to catch one with 3× the baseline's error ratio at 5 % of traffic.
 * The README's "Canary judgement" section states the numbers this test holds the judge to.
 *
 * Each simulated request goes to the canary with probability 5 % and fails with its subset's probabilities
 * (application 5xx, mesh-generated failure), drawn from the simulator's seeded generator; the judge sees the
 * cumulative counts at every checkpoint, as it sees a window's counts in production.
 */
import { emptyMeshConfig } from '../lib/meshconfig';
import { CANARY_DEFAULTS } from '../lib/runtime';
import type { SubsetRow } from '../lib/store';
import { FALSE_FAIL_RATE, judgeCanaries } from '../services/aggregator';
import type { JudgeOptions, Verdict } from '../services/aggregator';
import { Rng } from '../simulator';

const CANARY_SHARE = 0.05;
const BASELINE_ERRORS = 0.01;
const MESH_FAILURES = 0.002;
const CHECKPOINT = 1_000;

/** The README's promise: a 3× canary at 5 % of traffic is caught within this many requests in 95 % of runs. */
const CAUGHT_WITHIN = 30_000;

interface Counts {
  requests: number;
  appErrors: number;
  meshFailures: number;
}

const row = (subset: string, c: Counts): SubsetRow => ({
  namespace: 'default',
  service: 'reviews',
  host: 'reviews.default.svc.cluster.local',
  subset,
  requests: c.requests,
  errors: c.appErrors + c.meshFailures,
  denied: 0,
  appErrors: c.appErrors,
  meshFailures: c.meshFailures,
  latencyMs: { p50: 0, p90: 0, p99: 0 },
});

/** Verdicts at every checkpoint of one seeded run of `total` requests. */
function run(seed: number, total: number, canaryErrors: number, options: JudgeOptions): Verdict[] {
  const rng = new Rng(seed);
  const base: Counts = { requests: 0, appErrors: 0, meshFailures: 0 };
  const canary: Counts = { requests: 0, appErrors: 0, meshFailures: 0 };
  const verdicts: Verdict[] = [];
  const config = emptyMeshConfig();
  for (let i = 1; i <= total; i++) {
    const isCanary = rng.chance(CANARY_SHARE);
    const c = isCanary ? canary : base;
    c.requests++;
    const u = rng.next();
    if (u < (isCanary ? canaryErrors : BASELINE_ERRORS)) c.appErrors++;
    else if (u > 1 - MESH_FAILURES) c.meshFailures++;
    if (i % CHECKPOINT === 0) {
      const [r] = judgeCanaries([row('v1', base), row('v2', canary)], config, options);
      verdicts.push(r?.verdict ?? 'inconclusive');
    }
  }
  return verdicts;
}

function falseFailRate(runs: number, total: number, options: JudgeOptions): { perJudgement: number; runsWithAnyFail: number; passedAtEnd: number } {
  let judgements = 0;
  let fails = 0;
  let runsWithFail = 0;
  let passed = 0;
  for (let seed = 1; seed <= runs; seed++) {
    const verdicts = run(seed, total, BASELINE_ERRORS, options);
    judgements += verdicts.length;
    const f = verdicts.filter((v) => v === 'fail').length;
    fails += f;
    if (f > 0) runsWithFail++;
    if (verdicts[verdicts.length - 1] === 'pass') passed++;
  }
  return { perJudgement: fails / judgements, runsWithAnyFail: runsWithFail / runs, passedAtEnd: passed / runs };
}

describe('canary judge over seeded simulations', () => {
  const defaults = { minRequests: CANARY_DEFAULTS.minRequests, margin: CANARY_DEFAULTS.margin };

  it(`fails an equal canary in at most ${100 * FALSE_FAIL_RATE} % of judgements, and passes it by 100,000 requests`, () => {
    const r = falseFailRate(1000, 100_000, defaults);
    console.log(`equal canary, default margin: false fails ${(100 * r.perJudgement).toFixed(3)} % of judgements, ${(100 * r.runsWithAnyFail).toFixed(1)} % of runs; pass at 100k: ${(100 * r.passedAtEnd).toFixed(1)} %`);
    expect(r.perJudgement).toBeLessThanOrEqual(FALSE_FAIL_RATE);
    expect(r.passedAtEnd).toBeGreaterThan(0.9);
  });

  it('keeps the bound without a margin too (the test alone, at its nominal level)', () => {
    const r = falseFailRate(1000, 40_000, { ...defaults, margin: 0 });
    console.log(`equal canary, margin 0: false fails ${(100 * r.perJudgement).toFixed(3)} % of judgements, ${(100 * r.runsWithAnyFail).toFixed(1)} % of runs`);
    expect(r.perJudgement).toBeLessThanOrEqual(FALSE_FAIL_RATE);
  });

  it(`catches a canary with 3× the baseline error ratio at 5 % of traffic within ${CAUGHT_WITHIN} requests in 95 % of runs`, () => {
    const runs = 500;
    const caughtAt: number[] = [];
    for (let seed = 1; seed <= runs; seed++) {
      const verdicts = run(10_000 + seed, 2 * CAUGHT_WITHIN, 3 * BASELINE_ERRORS, defaults);
      const first = verdicts.indexOf('fail');
      caughtAt.push(first < 0 ? Infinity : (first + 1) * CHECKPOINT);
    }
    caughtAt.sort((a, b) => a - b);
    const q = (p: number): number => caughtAt[Math.ceil(p * runs) - 1] as number;
    console.log(`3× canary (1 % → 3 %) at 5 %: caught by ${q(0.5)} requests in half the runs, ${q(0.95)} in 95 %`);
    expect(q(0.95)).toBeLessThanOrEqual(CAUGHT_WITHIN);
  });
});
