/**
 * Label cardinality is bounded whatever the input (CONTRACT §5 and §9, issue 9 "Bounded labels"), with
 * `MESHLENS_MAX_SERIES=10`:
 * - 2,000 lines each with its own made-up `response_flags` token: a token outside Envoy's vocabulary is
 *   `response_flags="other"`, so free text never becomes a label value;
 * - 2,000 lines each from its own source workload (pod) to its own destination service: at most 10 series
 *   plus one `__overflow__` series whose every label is `__overflow__`, and
 *   `meshlens_series_overflow_total{metric="meshlens_requests_total"}` counts the folded requests.
 * In both, the series of `meshlens_requests_total` add up to every request sent.
 *
 * Baseline 2bc1333: 2,000 series for the flags (each overflow series kept its free-text flag, and none said
 * `other`); for the destinations 10 series plus an overflow series that kept
 * reporter/response_code/response_flags/outcome.
 */
import { istioTextLine, postLines, requestId, scrape, settle, startMeshlens, sum, useFaultHarness, type Meshlens, type Sample } from './support';

useFaultHarness();

const MAX_SERIES = 10;
const N = 2_000;
const METRIC = 'meshlens_requests_total';
const OVERFLOW = '__overflow__';

/** `meshlens_requests_total` once its series add up to `total` (the wait only covers metrics updated after the reply). */
async function requestSeries(m: Meshlens, total: number): Promise<Sample[]> {
  let samples: Sample[] = [];
  await settle(async () => {
    samples = await scrape(m);
    return sum(samples, METRIC);
  }, total, 15_000);
  return samples;
}

const isOverflow = (s: Sample) => Object.values(s.labels).includes(OVERFLOW);

describe('MESHLENS_MAX_SERIES=10 bounds meshlens_requests_total', () => {
  it('2,000 made-up response_flags tokens become response_flags="other", within the cap, and every request is counted', async () => {
    const m = await startMeshlens({ env: { MESHLENS_MAX_SERIES: String(MAX_SERIES) } });
    const now = Date.now();
    // "ZZ" + a number: no Envoy response flag starts with ZZ, so each is a free-text token.
    const lines = Array.from({ length: N }, (_, i) => istioTextLine({ requestId: requestId('flag'), startMs: now - i, responseFlags: `ZZ${i.toString(36).toUpperCase()}` }));
    for (let i = 0; i < N; i += 500) {
      const res = await postLines(m, lines.slice(i, i + 500), { 'content-type': 'text/plain' });
      expect({ status: res.status, body: res.text().slice(0, 200) }).toMatchObject({ status: 200 });
    }
    const samples = await requestSeries(m, N);
    const series = samples.filter((s) => s.name === METRIC);
    const flags = new Set(series.map((s) => s.labels.response_flags));
    expect({
      total: sum(samples, METRIC),
      withinCap: series.length <= MAX_SERIES + 1,
      seriesCount: series.length <= 50 ? series.length : `${series.length} (over 50)`,
      freeTextFlags: [...flags].filter((f) => f !== 'other' && f !== OVERFLOW).slice(0, 5),
      countedAsOther: sum(samples, METRIC, { response_flags: 'other' }),
    }).toEqual({ total: N, withinCap: true, seriesCount: expect.any(Number), freeTextFlags: [], countedAsOther: N });
  }, 60_000);

  it('2,000 source workloads × destinations: 10 series plus one all-__overflow__ series, and the overflow counter adds up', async () => {
    const m = await startMeshlens({ env: { MESHLENS_MAX_SERIES: String(MAX_SERIES) } });
    const now = Date.now();
    // Fluent Bit envelopes: the pod names the source workload of an outbound (client-side) line.
    const lines = Array.from({ length: N }, (_, i) =>
      JSON.stringify({
        log: istioTextLine({ requestId: requestId('dest'), startMs: now - i, service: `svc-${i}` }),
        stream: 'stdout',
        kubernetes: { namespace_name: `ns-${i}`, pod_name: `client-${i}-5b64f47978-x8k9q`, container_name: 'istio-proxy', labels: { app: `client-${i}` } },
      }),
    );
    for (let i = 0; i < N; i += 500) {
      const res = await postLines(m, lines.slice(i, i + 500));
      expect({ status: res.status, body: res.text().slice(0, 200) }).toMatchObject({ status: 200 });
    }
    const samples = await requestSeries(m, N);
    const series = samples.filter((s) => s.name === METRIC);
    const overflow = series.filter(isOverflow);
    const folded = sum(samples, 'meshlens_series_overflow_total', { metric: METRIC });
    expect({
      total: sum(samples, METRIC),
      seriesCount: series.length <= 50 ? series.length : `${series.length} (over 50)`,
      ordinarySeries: series.filter((s) => !isOverflow(s)).length,
      overflowSeries: overflow.length,
      // Every label folded: nothing of the input survives in the overflow series' labels.
      overflowLabelsNotFolded: overflow.flatMap((s) => Object.entries(s.labels).filter(([, v]) => v !== OVERFLOW).map(([k, v]) => `${k}=${v}`)),
      overflowCounterMatchesSeries: folded === sum(overflow, METRIC),
      folded,
    }).toEqual({
      total: N,
      seriesCount: MAX_SERIES + 1,
      ordinarySeries: MAX_SERIES,
      overflowSeries: 1,
      overflowLabelsNotFolded: [],
      overflowCounterMatchesSeries: true,
      folded: N - MAX_SERIES,
    });
  }, 60_000);
});
