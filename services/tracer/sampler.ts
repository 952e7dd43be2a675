/**
 * Canary-aware tail sampling, decided per trace id (issue 11, item 4).
 *
 * A trace is kept whole when any of its spans touches a canary subset (a subset of a service that is not that
 * service's baseline), carries an error, or was denied; the others are kept when their trace id falls under
 * MESHLENS_TRACE_SAMPLE_RATIO. The ratio test reads the trace id's rightmost 56 bits as a number in [0, 1), as
 * OpenTelemetry's probability sampling does (https://opentelemetry.io/docs/specs/otel/trace/tracestate-probability-sampling/),
 * so the same trace gets the same answer in every meshlens process and on every redelivery.
 *
 * Tail, not head: the spans of one trace come from several sidecars, each reporting on its own schedule, and the
 * error may be in the last of them. So a trace's spans are held `decisionWaitMs` from its first span, then the
 * decision is taken on what came. The decision is remembered (the last `rememberTraces` trace ids): a span that
 * comes later follows it at once, and a late span that would itself keep the trace (a late error) is exported
 * and turns the decision to keep for what still follows. A span of a trace already forgotten starts it anew.
 *
 * The baseline is the canary judge's (services/aggregator/canary.ts): the subset the mesh config names stable
 * (`meshlens.io/stable-subset`), else the one with the most traffic — here the most spans seen, halved every
 * `decayMs` so a promoted canary becomes the baseline within a few periods.
 */
import { classifyOutcome } from '../../lib/model';
import { stableSubset } from '../../lib/meshconfig';
import type { Span } from '../../lib/model';
import type { MeshConfig } from '../../lib/meshconfig';

export type KeepReason = 'canary' | 'error' | 'denied';

export interface SamplerOptions {
  /** MESHLENS_TRACE_SAMPLE_RATIO: share of the other traces kept. */
  ratio: number;
  meshConfig: MeshConfig;
  /** How long a trace's spans wait, from its first span, for the rest before the decision. */
  decisionWaitMs: number;
  /** Most spans held waiting; beyond it the oldest traces are decided early (memory stays bounded). */
  maxHeldSpans: number;
  /** Decisions remembered for spans that come after them. */
  rememberTraces: number;
  /** Period after which the per-subset span counts (the traffic baseline) are halved. */
  decayMs: number;
  now: () => number;
  /** Spans to export. */
  keep(spans: Span[]): void;
  /** Spans left out by the decision. */
  discard(count: number): void;
}

export const SAMPLER_DEFAULTS = Object.freeze({
  // Envoy reports a span when its request ends and flushes every second or so (tracing.zipkin / OTel batch):
  // 10 s covers the sidecars of one ordinary request; a slower trace's late spans follow the remembered decision.
  decisionWaitMs: 10_000,
  maxHeldSpans: 100_000,
  rememberTraces: 200_000,
  decayMs: 10 * 60_000,
});

const TWO_POW_56 = 2 ** 56;

/** Whether a trace id falls under `ratio`: its rightmost 56 bits (14 hex digits) as a fraction of 2^56. */
export function underRatio(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  const r = parseInt(traceId.slice(-14), 16);
  return Number.isFinite(r) && r / TWO_POW_56 < ratio;
}

interface Held {
  spans: Span[];
  firstMs: number;
}

export class TailSampler {
  private readonly held = new Map<string, Held>();
  private heldSpans = 0;
  private readonly decided = new Map<string, boolean>();
  /** host → subset → spans seen (decayed). */
  private readonly traffic = new Map<string, Map<string, number>>();
  private lastDecayMs: number;

  constructor(private readonly opts: SamplerOptions) {
    this.lastDecayMs = opts.now();
  }

  /** Spans waiting for their trace's decision. */
  get heldCount(): number {
    return this.heldSpans;
  }

  add(spans: readonly Span[]): void {
    for (const s of spans) this.countTraffic(s);
    const now = this.opts.now();
    for (const s of spans) {
      const decision = this.decided.get(s.traceId);
      if (decision === true) {
        this.opts.keep([s]);
      } else if (decision === false) {
        if (this.reason(s) !== undefined) {
          this.decided.set(s.traceId, true);
          this.opts.keep([s]);
        } else this.opts.discard(1);
      } else {
        let h = this.held.get(s.traceId);
        if (!h) this.held.set(s.traceId, (h = { spans: [], firstMs: now }));
        h.spans.push(s);
        this.heldSpans++;
      }
    }
    // Bounded: past the limit the oldest traces are decided now rather than spans being lost.
    while (this.heldSpans > this.opts.maxHeldSpans) {
      const first = this.held.keys().next();
      if (first.done) break;
      this.decide(first.value);
    }
  }

  /** Decides every trace whose wait is over; call it periodically. */
  tick(): void {
    const now = this.opts.now();
    // Insertion order is first-seen order, so the traces due are at the front.
    for (const [id, h] of this.held) {
      if (h.firstMs + this.opts.decisionWaitMs > now) break;
      this.decide(id);
    }
    if (now - this.lastDecayMs >= this.opts.decayMs) {
      this.lastDecayMs = now;
      for (const subsets of this.traffic.values()) for (const [k, n] of subsets) subsets.set(k, n / 2);
    }
  }

  /** Decides every held trace now (at a stop). */
  flush(): void {
    for (const id of [...this.held.keys()]) this.decide(id);
  }

  /** Why a span alone would keep its trace, or undefined. */
  reason(s: Span): KeepReason | undefined {
    if (s.error) return 'error';
    if (isDenied(s)) return 'denied';
    if (s.destinationHost !== '' && s.destinationSubset !== '' && s.destinationSubset !== this.baseline(s.destinationHost)) return 'canary';
    return undefined;
  }

  /** The host's baseline subset: the mesh config's stable subset, else the one with the most spans. */
  baseline(host: string): string | undefined {
    const stable = stableSubset(this.opts.meshConfig, host);
    if (stable !== undefined) return stable;
    const subsets = this.traffic.get(host);
    if (!subsets) return undefined;
    let best: string | undefined;
    let most = -1;
    // Ties go to the first subset in name order, as the judge breaks them.
    for (const [subset, n] of subsets) {
      if (n > most || (n === most && best !== undefined && subset < best)) {
        best = subset;
        most = n;
      }
    }
    return best;
  }

  private countTraffic(s: Span): void {
    if (s.destinationHost === '' || s.destinationSubset === '') return;
    let subsets = this.traffic.get(s.destinationHost);
    if (!subsets) this.traffic.set(s.destinationHost, (subsets = new Map()));
    subsets.set(s.destinationSubset, (subsets.get(s.destinationSubset) ?? 0) + 1);
  }

  private decide(id: string): void {
    const h = this.held.get(id);
    if (!h) return;
    this.held.delete(id);
    this.heldSpans -= h.spans.length;
    const keep = h.spans.some((s) => this.reason(s) !== undefined) || underRatio(id, this.opts.ratio);
    this.decided.set(id, keep);
    if (this.decided.size > this.opts.rememberTraces) {
      const oldest = this.decided.keys().next();
      if (!oldest.done) this.decided.delete(oldest.value);
    }
    if (keep) this.opts.keep(h.spans);
    else this.opts.discard(h.spans.length);
  }
}

/**
 * A denial by the mesh's rules (CONTRACT §4 outcome `denied`, read from the span's Envoy tags), or any 403: Envoy's
 * RBAC filter answers 403 and its spans seldom carry `response_code_details`, so a 403 is kept rather than missed.
 */
function isDenied(s: Span): boolean {
  if (s.responseCode === 403) return true;
  return (
    classifyOutcome({
      responseCode: s.responseCode,
      responseFlags: s.responseFlags,
      responseCodeDetails: s.attributes['response_code_details'] ?? '',
      connectionTerminationDetails: s.attributes['connection_termination_details'] ?? '',
      upstreamCluster: s.upstreamCluster,
      routeName: s.attributes['route_name'] ?? '',
    }).outcome === 'denied'
  );
}
