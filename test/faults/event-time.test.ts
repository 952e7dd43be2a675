/**
 * Event time is bounded, and a body spanning many days is stored like any other (CONTRACT §3 "Event time
 * is bounded", issue 9 "No poison batch").
 *
 * With a year of retention, one body of 150 lines one day apart plus one line dated 2500-01-01 is answered
 * 200 `accepted: 150, rejected: 1` (`too_new`); a current line sent right after is stored too; all 151 can be
 * queried. ClickHouse refuses one INSERT that touches more than 100 daily partitions
 * (max_partitions_per_insert_block), so storage has to cope with such a body rather than retry it forever.
 *
 * With the default retention (7 days) and clock skew (10 minutes): a line 8 days old is rejected `too_old`,
 * one 20 minutes ahead `too_new`, each counted under its reason; one 5 minutes ahead and a current one are
 * accepted and stored. What is accepted can be queried.
 *
 * Baseline 2bc1333: 151/151 accepted (the year-2500 line too); every insert then failed (more than 100
 * partitions) and was redelivered forever: after 30 s the API counted 0 of the 151 and the current line sent
 * afterwards was never stored. With the default retention all 4 lines were accepted (nothing too_old or
 * too_new, nothing counted) and all 4 were queryable for now, the 8-day-old one until the TTL removes it.
 */
import { istioJsonLine, periodOf, postLines, requestId, scrape, startMeshlens, storedRequests, settle, sum, useFaultHarness, type IngestReply } from './support';

useFaultHarness();

const DAY = 86_400_000;

const summary = (r: IngestReply) => ({ accepted: r.accepted, rejected: r.rejected, errors: r.errors.map((e) => ({ line: e.line, reason: e.reason })) });

describe('event time', () => {
  it('a body over 150 days plus a year-2500 line: 150 accepted, the future one too_new, and all of them and a later current line stored', async () => {
    // Rollups kept as long as raw rows, so everything the receiver accepts stays queryable through the API.
    const m = await startMeshlens({ env: { MESHLENS_RAW_RETENTION_DAYS: '365', MESHLENS_ROLLUP_RETENTION_DAYS: '365' } });
    const service = 'span-days';
    const now = Date.now();
    // From 5 minutes ago back 149 days: none of them within a minute of the current line sent afterwards.
    const times = Array.from({ length: 150 }, (_, i) => now - i * DAY - 5 * 60_000);
    const lines = times.map((t) => istioJsonLine({ requestId: requestId('day'), startMs: t, service }));
    lines.push(istioJsonLine({ requestId: requestId('y2500'), startMs: Date.UTC(2500, 0, 1), service }));

    const res = await postLines(m, lines);

    // A current line after the wide body: it must not queue behind a batch that can never be inserted.
    const current = Date.now();
    const next = await postLines(m, [istioJsonLine({ requestId: requestId('now'), startMs: current, service })]);

    const all = periodOf([...times, current]);
    // Acknowledged means stored: the wait only gives code that stores later its chance to show it.
    const storedOverAllDays = await settle(() => storedRequests(m, service, all), 151, 30_000);
    // Observed together, so a failure shows the whole story (reply, then what storage did with it).
    expect({
      reply: { status: res.status, ...summary(res.json<IngestReply>()) },
      currentLine: { status: next.status, accepted: next.json<IngestReply>().accepted },
      storedOverAllDays,
      storedCurrentMinute: await storedRequests(m, service, periodOf([current])),
      // The refused line is not stored at its own time either.
      storedOn2500_01_01: await storedRequests(m, service, { fromMs: Date.UTC(2499, 11, 31), toMs: Date.UTC(2500, 0, 2) }),
    }).toEqual({
      reply: { status: 200, accepted: 150, rejected: 1, errors: [{ line: 151, reason: 'too_new' }] },
      currentLine: { status: 200, accepted: 1 },
      storedOverAllDays: 151,
      storedCurrentMinute: 1,
      storedOn2500_01_01: 0,
    });
  }, 90_000);

  it('default retention and skew: 8 days old → too_old, 20 min ahead → too_new, each counted; 5 min ahead and now accepted and stored', async () => {
    const m = await startMeshlens();
    const service = 'bounded-time';
    const now = Date.now();
    const lines = [
      istioJsonLine({ requestId: requestId('old'), startMs: now - 8 * DAY, service }),
      istioJsonLine({ requestId: requestId('ahead20'), startMs: now + 20 * 60_000, service }),
      istioJsonLine({ requestId: requestId('ahead5'), startMs: now + 5 * 60_000, service }),
      istioJsonLine({ requestId: requestId('now'), startMs: now, service }),
    ];
    const before = await scrape(m);
    const res = await postLines(m, lines);
    const after = await scrape(m);
    const counted = (reason: string) =>
      sum(after, 'meshlens_ingest_rejected_records_total', { receiver: 'accesslog', reason }) -
      sum(before, 'meshlens_ingest_rejected_records_total', { receiver: 'accesslog', reason });
    expect({
      reply: { status: res.status, ...summary(res.json<IngestReply>()) },
      counted: { too_old: counted('too_old'), too_new: counted('too_new') },
      // The two accepted lines are queryable, the refused ones nowhere (a month back to a day ahead).
      stored: await settle(() => storedRequests(m, service, { fromMs: now - 30 * DAY, toMs: now + DAY }), 2, 15_000),
    }).toEqual({
      reply: {
        status: 200,
        accepted: 2,
        rejected: 2,
        errors: [
          { line: 1, reason: 'too_old' },
          { line: 2, reason: 'too_new' },
        ],
      },
      counted: { too_old: 1, too_new: 1 },
      stored: 2,
    });
  }, 60_000);
});
