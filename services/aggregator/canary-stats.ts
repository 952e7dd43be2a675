/**
 * The statistics of the canary judge: a one-sided score test for a difference of two proportions with a
 * margin (Farrington & Manning, Statistics in Medicine 9:1447, 1990), the test regulators use for
 * non-inferiority of rates. It behaves at zero counts, where the Wald test divides by zero: the variance comes
 * from the proportions re-estimated under the null hypothesis, not from the observed ones.
 */

/** Standard normal CDF, from erfc (Numerical Recipes' erfcc: fractional error below 1.2e-7 everywhere). */
export function normalCdf(z: number): number {
  if (z === Infinity) return 1;
  if (z === -Infinity) return 0;
  const x = -z / Math.SQRT2;
  const ax = Math.abs(x);
  const t = 1 / (1 + 0.5 * ax);
  const r =
    t *
    Math.exp(
      -ax * ax -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return 0.5 * (x >= 0 ? r : 2 - r);
}

/** z such that normalCdf(z) = p, by bisection (only used for constants and tests). */
export function normalQuantile(p: number): number {
  let lo = -40;
  let hi = 40;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

const clamp01 = (p: number): number => Math.min(1, Math.max(0, p));

/**
 * Maximum-likelihood proportions (p1, p2) of two binomial samples under the constraint p1 − p2 = delta
 * (Farrington & Manning's closed form, the root of a cubic), with a numeric search when the closed form
 * degenerates.
 */
export function restrictedMle(x1: number, n1: number, x2: number, n2: number, delta: number): [number, number] {
  if (delta === 0) {
    const p = (x1 + x2) / (n1 + n2);
    return [p, p];
  }
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const theta = n2 / n1;
  const a = 1 + theta;
  const b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2));
  const c = delta * delta + delta * (2 * p1 + theta + 1) + p1 + theta * p2;
  const d = -p1 * delta * (1 + delta);
  const v = b ** 3 / (27 * a ** 3) - (b * c) / (6 * a * a) + d / (2 * a);
  const u = Math.sign(v) * Math.sqrt(Math.max(0, (b * b) / (9 * a * a) - c / (3 * a)));
  if (u !== 0) {
    const w = (Math.PI + Math.acos(Math.min(1, Math.max(-1, v / u ** 3)))) / 3;
    const r1 = 2 * u * Math.cos(w) - b / (3 * a);
    if (Number.isFinite(r1) && r1 >= delta - 1e-12 && r1 <= 1 + 1e-12) return [clamp01(r1), clamp01(r1 - delta)];
  }
  return numericMle(x1, n1, x2, n2, delta);
}

/** Ternary search of the (concave) log-likelihood along p1 = p2 + delta. */
function numericMle(x1: number, n1: number, x2: number, n2: number, delta: number): [number, number] {
  const ll = (q2: number): number => {
    const q1 = q2 + delta;
    const term = (x: number, n: number, q: number): number =>
      (x > 0 ? x * Math.log(Math.max(q, 1e-300)) : 0) + (n - x > 0 ? (n - x) * Math.log(Math.max(1 - q, 1e-300)) : 0);
    return term(x1, n1, q1) + term(x2, n2, q2);
  };
  let lo = Math.max(0, -delta);
  let hi = Math.min(1, 1 - delta);
  for (let i = 0; i < 200; i++) {
    const m1 = lo + (hi - lo) / 3;
    const m2 = hi - (hi - lo) / 3;
    if (ll(m1) < ll(m2)) lo = m1;
    else hi = m2;
  }
  const q2 = (lo + hi) / 2;
  return [clamp01(q2 + delta), clamp01(q2)];
}

/**
 * Farrington-Manning score statistic for H0: p1 − p2 = delta, where sample 1 (x1 of n1) is the canary and
 * sample 2 the baseline. Large positive z: the canary's ratio exceeds the baseline's by more than delta.
 */
export function riskDifferenceZ(x1: number, n1: number, x2: number, n2: number, delta: number): number {
  const diff = x1 / n1 - x2 / n2 - delta;
  const [r1, r2] = restrictedMle(x1, n1, x2, n2, delta);
  const variance = (r1 * (1 - r1)) / n1 + (r2 * (1 - r2)) / n2;
  if (!(variance > 0)) return diff === 0 ? 0 : diff > 0 ? Infinity : -Infinity;
  return diff / Math.sqrt(variance);
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos, g = 7: about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0] as number;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += (LANCZOS[i] as number) / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

const logChoose = (n: number, k: number): number => logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1);

/**
 * Fisher's exact test, one-sided: the probability, given the total count of failures, that the first sample
 * (x1 of n1) holds x1 or more of them when both samples share one ratio. Exact at any count, where the score
 * test's normal approximation is not: with rare failures (a few expected in the canary) it overstates the
 * evidence, so the judge fails a canary only when this test agrees.
 */
export function fisherOneSidedP(x1: number, n1: number, x2: number, n2: number): number {
  const total = n1 + n2;
  const failures = x1 + x2;
  const hi = Math.min(failures, n1);
  if (x1 <= Math.max(0, n1 - (total - failures))) return 1;
  let term = Math.exp(logChoose(failures, x1) + logChoose(total - failures, n1 - x1) - logChoose(total, n1));
  let sum = 0;
  for (let x = x1; x <= hi; x++) {
    sum += term;
    // P(x + 1) / P(x) for the hypergeometric distribution.
    term *= ((failures - x) * (n1 - x)) / ((x + 1) * (total - failures - n1 + x + 1));
    if (term < sum * 1e-17) break;
  }
  return Math.min(1, sum);
}
