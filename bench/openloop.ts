/**
 * An open-loop loader for the ingest latency figure: bodies are sent on a fixed schedule, like sidecars or log
 * shippers flushing on a timer, whether or not earlier requests were answered (a closed-loop client that waits
 * for each answer slows down exactly when meshlens does, and its latencies hide the queue: "coordinated
 * omission"). Each request's latency runs from the moment it was *scheduled*, not from when the loader got to
 * send it, so a late send caused by a slow loader or a full socket pool counts against the figure, not for it.
 *
 * A 429 or 503 is waited out per Retry-After and the same body sent again, as a shipper would; the request's
 * latency then runs to its final 2xx, and the refusals are counted. Requests still unanswered when the drain
 * time is up count as infinitely late.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { post, quantile, type Body } from './load';

export interface OpenLoopOptions {
  host: string;
  port: number;
  path: string;
  contentType: string;
  /** Requests started per second, evenly spaced. */
  requestsPerSecond: number;
  durationMs: number;
  /** A request answered (2xx) later than this after its scheduled time is `late`. */
  lateMs: number;
  /** How long to wait for the last answers after the last scheduled send. */
  drainMs: number;
}

export interface OpenLoopResult {
  scheduled: number;
  /** Requests that ended in a 2xx. */
  answered: number;
  /** 2xx later than `lateMs` after their scheduled time. */
  late: number;
  /** Still unanswered at the end of the drain time, or failed (other status, connection error). */
  unanswered: number;
  failed: number;
  firstFailure?: string;
  /** Refusals waited out and retried. */
  answers429: number;
  answers503: number;
  linesSent: number;
  accepted: number;
  rejected: number;
  /** Scheduled time to final 2xx, ms; unanswered requests count as +Infinity. */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** How late the loader itself sent the first attempt (its own event loop), ms: large values make the run suspect. */
  sendLagMs: { p99: number; max: number };
  /** First scheduled send to last answer, ms. */
  wallMs: number;
  offeredLinesPerSecond: number;
}

export async function openLoop(bodies: readonly Body[], o: OpenLoopOptions): Promise<OpenLoopResult> {
  if (bodies.length === 0) throw new Error('openLoop: no bodies');
  // One socket per outstanding request: a capped pool would queue sends inside the client, a closed loop again.
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  const intervalMs = 1000 / o.requestsPerSecond;
  const count = Math.max(1, Math.round(o.durationMs / intervalMs));
  const r: OpenLoopResult = {
    scheduled: count,
    answered: 0,
    late: 0,
    unanswered: 0,
    failed: 0,
    answers429: 0,
    answers503: 0,
    linesSent: 0,
    accepted: 0,
    rejected: 0,
    latencyMs: { p50: 0, p90: 0, p99: 0, max: 0 },
    sendLagMs: { p99: 0, max: 0 },
    wallMs: 0,
    offeredLinesPerSecond: 0,
  };
  const latencies: number[] = [];
  const lags: number[] = [];
  let lastAnswer = 0;

  const fire = async (i: number, scheduledAt: number): Promise<void> => {
    const body = bodies[i % bodies.length] as Body;
    r.linesSent += body.lines;
    lags.push(performance.now() - scheduledAt);
    try {
      for (;;) {
        const a = await post(agent, o, body.buf);
        if (a.status === 429 || a.status === 503) {
          if (a.status === 429) r.answers429++;
          else r.answers503++;
          const seconds = Number(a.retryAfter);
          await new Promise((res) => setTimeout(res, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000));
          continue;
        }
        if (a.status < 200 || a.status > 299) throw new Error(`POST ${o.path} answered ${a.status}: ${a.body.slice(0, 300)}`);
        const now = performance.now();
        lastAnswer = Math.max(lastAnswer, now);
        const latency = now - scheduledAt;
        latencies.push(latency);
        r.answered++;
        if (latency > o.lateMs) r.late++;
        const reply = JSON.parse(a.body) as { accepted: number; rejected: number };
        r.accepted += reply.accepted;
        r.rejected += reply.rejected;
        return;
      }
    } catch (err) {
      r.failed++;
      r.firstFailure ??= (err as Error).message;
    }
  };

  const inflight: Promise<void>[] = [];
  const t0 = performance.now() + 20;
  let next = 0;
  while (next < count) {
    const now = performance.now();
    // Everything due is sent now, each still timed from its own slot, if the loader fell behind.
    while (next < count && t0 + next * intervalMs <= now) {
      inflight.push(fire(next, t0 + next * intervalMs));
      next++;
    }
    if (next < count) await new Promise((res) => setTimeout(res, Math.max(0, t0 + next * intervalMs - performance.now())));
  }
  let drainTimer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(inflight), new Promise((res) => (drainTimer = setTimeout(res, o.drainMs)))]);
  clearTimeout(drainTimer);

  r.unanswered = count - r.answered - r.failed;
  const all = [...latencies, ...Array<number>(r.unanswered + r.failed).fill(Infinity)].sort((a, b) => a - b);
  r.latencyMs = { p50: quantile(all, 0.5), p90: quantile(all, 0.9), p99: quantile(all, 0.99), max: all[all.length - 1] ?? 0 };
  lags.sort((a, b) => a - b);
  r.sendLagMs = { p99: quantile(lags, 0.99), max: lags[lags.length - 1] ?? 0 };
  r.wallMs = (r.unanswered > 0 ? performance.now() : lastAnswer) - t0;
  r.offeredLinesPerSecond = (r.linesSent / (count * intervalMs)) * 1000;
  // A copy: requests cut off by destroying the agent below still settle (as failures) after this returns.
  const result = { ...r, latencyMs: { ...r.latencyMs }, sendLagMs: { ...r.sendLagMs } };
  agent.destroy();
  return result;
}
