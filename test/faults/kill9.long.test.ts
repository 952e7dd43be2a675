/**
 * `kill -9` right after the last acknowledgement (CONTRACT §3 "Acknowledged means durable").
 *
 * Four senders post 36,000 current lines (18 bodies of 500 each, one after another); the moment the last
 * 200 arrives the process gets SIGKILL: no handler runs, nothing is flushed. A restart on the same data dir
 * must hold exactly what was acknowledged: nothing lost (a 200 sent while records were only queued in
 * memory) and nothing doubled.
 *
 * Baseline 2bc1333, two runs: 36,000 acknowledged, 0 and 4,000 stored after the restart (replies went out once
 * the records were queued in memory; inserts followed in batches up to a second later, and the kill came first).
 */
import { LINES_PER_BODY, Tally, periodOf, sendAll, startMeshlens, storedRequests, sleep, useFaultHarness } from './support';

useFaultHarness();

const SENDERS = 4;
const BODIES = 18;

// With every raw row kept, and with none but errors and denials (the counts then come from the rollups alone).
describe.each(['1', '0'])('kill -9 right after the last acknowledgement, MESHLENS_RAW_REQUESTS=%s', (rawRequests) => {
  const env = { MESHLENS_RAW_REQUESTS: rawRequests };
  it('4 senders, 36,000 lines, SIGKILL the moment the last 200 arrives: after a restart stored = acknowledged', async () => {
    const m = await startMeshlens({ env });
    const tally = new Tally();
    let killedAt = 0;
    await sendAll(m, tally, {
      senders: SENDERS,
      bodies: BODIES,
      tag: 'kill9',
      onLastAck: () => {
        killedAt = Date.now();
        // The signal goes out now, in this tick; kill9() resolves later, with the exit.
        void m.kill9();
      },
    });
    const exit = await m.exited;

    const again = await startMeshlens({ dataDir: m.dataDir, env });
    const period = periodOf(tally.times);
    const stored = await storedRequests(again, 'reviews', period);
    // A fresh process has nothing in flight: a second look a moment later must agree (nothing trickles in).
    await sleep(1_500);
    const storedLater = await storedRequests(again, 'reviews', period);

    expect({
      killed: exit.signal,
      killedRightAfterLastAck: killedAt > 0,
      acknowledged: tally.acknowledged,
      stored,
      storedLater,
    }).toEqual({
      killed: 'SIGKILL',
      killedRightAfterLastAck: true,
      acknowledged: SENDERS * BODIES * LINES_PER_BODY,
      stored: tally.acknowledged,
      storedLater: tally.acknowledged,
    });
  }, 240_000);
});
