/**
 * Restart, then send, then count (CONTRACT §3 "a crash, kill -9 or restart after the reply loses nothing and
 * doubles nothing", issue 9 "Exactly once across processes").
 *
 * Run 1 stores N1 lines and stops on SIGTERM (exit 0); run 2, on the same data dir, stores N2 more; the query
 * API counts N1 + N2 on run 2 and again after a third start, and run 2's own `meshlens_requests_total` counts
 * its N2. Each run first sends a few bodies one at a time, each once the previous is stored (a quiet sender),
 * then a burst from 4 concurrent senders. The quiet part makes each run's first insert batches the same shape
 * (one body each, at the same bus offsets): exactly where insert-dedup tokens derived from bus offsets that
 * restart at 0 collide with the previous run's, which ClickHouse still remembers.
 *
 * Baseline 2bc1333: all 30,000 lines of both runs acknowledged, both runs exited 0, run 2's /metrics counted
 * its 15,000, but the API counted 27,000 on run 2 and after the third start: run 2's 6 quiet bodies (3,000
 * lines) were dropped by ClickHouse as repeats of run 1's insert tokens.
 */
import {
  LINES_PER_BODY,
  Tally,
  currentBody,
  periodOf,
  scrape,
  sendAll,
  sendOnce,
  settle,
  startMeshlens,
  storedRequests,
  sum,
  tempDir,
  useFaultHarness,
  type Meshlens,
} from './support';

useFaultHarness();

const QUIET_BODIES = 6;
const BURST = { senders: 4, bodies: 6 };
const PER_RUN = (QUIET_BODIES + BURST.senders * BURST.bodies) * LINES_PER_BODY;

/** One run's traffic; returns how many lines it got acknowledged. */
async function traffic(m: Meshlens, tally: Tally, storedBefore: number): Promise<number> {
  const start = tally.acknowledged;
  for (let i = 0; i < QUIET_BODIES; i++) {
    const o = await sendOnce(m, currentBody(tally, LINES_PER_BODY, 'quiet'), tally);
    if (o.status !== 200) throw new Error(`quiet body ${i} answered ${String(o.status)}\n${m.logs()}`);
    // A quiet sender: the next body only once this one is stored (or 10 s have passed).
    await settle(() => storedRequests(m, 'reviews', periodOf(tally.times)), storedBefore + tally.acknowledged - start, 10_000);
  }
  await sendAll(m, tally, { ...BURST, tag: 'burst' });
  return tally.acknowledged - start;
}

// With every raw row kept, and with none but errors and denials (the counts then come from the rollups alone).
describe.each(['1', '0'])('restart, then send, then count, MESHLENS_RAW_REQUESTS=%s', (rawRequests) => {
  const env = { MESHLENS_RAW_REQUESTS: rawRequests };
  it('two runs on one data dir: the API counts N1 + N2 on run 2 and after a third start; run 2 /metrics counts N2', async () => {
    const dataDir = tempDir();
    const tally = new Tally();

    const run1 = await startMeshlens({ dataDir, env });
    const n1 = await traffic(run1, tally, 0);
    const storedRun1 = await settle(() => storedRequests(run1, 'reviews', periodOf(tally.times)), n1, 15_000);
    const stop1 = await run1.stop('SIGTERM');

    const run2 = await startMeshlens({ dataDir, env });
    const n2 = await traffic(run2, tally, storedRun1);
    const storedRun2 = await settle(() => storedRequests(run2, 'reviews', periodOf(tally.times)), n1 + n2, 15_000);
    const metricRun2 = sum(await scrape(run2), 'meshlens_requests_total', { destination_service_name: 'reviews' });
    const stop2 = await run2.stop('SIGTERM');

    const run3 = await startMeshlens({ dataDir, env });
    const storedRun3 = await storedRequests(run3, 'reviews', periodOf(tally.times));

    expect({
      acknowledged: { n1, n2 },
      exits: { run1: stop1.code, run2: stop2.code },
      stored: { run1: storedRun1, run2: storedRun2, afterThirdStart: storedRun3 },
      metricOnRun2: metricRun2,
    }).toEqual({
      acknowledged: { n1: PER_RUN, n2: PER_RUN },
      exits: { run1: 0, run2: 0 },
      stored: { run1: n1, run2: n1 + n2, afterThirdStart: n1 + n2 },
      metricOnRun2: n2,
    });
  }, 240_000);
});
