/**
 * The mesh families' own exposition text must be exactly what prom-client would have written from `get()`:
 * the same metrics, label order, escaping and values, so rendering label text once changes speed, not output.
 */
import { Registry } from 'prom-client';
import { emptyRequest } from '../../lib/model';
import type { Flow, MeshRequest } from '../../lib/model';
import { ExpositionRegistry } from '../../lib/runtime';
import { MeshMetrics } from './metrics';

function request(i: number, over: Partial<MeshRequest> = {}): MeshRequest {
  return {
    ...emptyRequest(),
    reporter: i % 2 === 0 ? 'source' : 'destination',
    sourceWorkload: `client-${i % 3}`,
    sourceNamespace: 'default',
    destinationHost: `svc-${i % 5}.default.svc.cluster.local`,
    destinationService: `svc-${i % 5}`,
    destinationNamespace: 'default',
    destinationSubset: i % 4 === 0 ? '' : `v${i % 4}`,
    responseCode: i % 7 === 0 ? 503 : 200,
    responseFlags: i % 7 === 0 ? 'UF,URX' : '',
    outcome: i % 7 === 0 ? 'error' : 'ok',
    durationMs: (i * 37) % 2000,
    ...over,
  };
}

const flow = (over: Partial<Flow>): Flow => ({
  startTimeMs: 0,
  reporter: 'destination',
  sourceWorkload: 'sleep',
  sourceNamespace: 'default',
  sourceAddress: '',
  destinationHost: 'mysql.default.svc.cluster.local',
  destinationService: 'mysql',
  destinationNamespace: 'default',
  destinationWorkload: '',
  destinationAddress: '',
  destinationPort: 3306,
  transport: 'tcp',
  verdict: 'denied',
  denyReason: 'network_policy',
  detail: '',
  policy: 'default/db-only',
  rule: -1,
  count: 3,
  bytes: 0,
  packets: 0,
  attributes: {},
  ...over,
});

describe('mesh families exposition', () => {
  it('writes exactly what prom-client writes from get(), escaping included, overflow included', async () => {
    const fast = new ExpositionRegistry();
    const metrics = new MeshMetrics(fast, 40);
    // Label values with every character the text format escapes (only a hostile mesh config would have them).
    metrics.addRequests([request(1, { sourceWorkload: 'we"ird\\name\nx' })]);
    metrics.addRequests(Array.from({ length: 300 }, (_, i) => request(i)));
    metrics.addFlows([flow({}), flow({ policy: 'ns/"quoted"' })]);
    expect(metrics.seriesCounts().requests).toBe(41); // 40 and the overflow series

    const plain = new Registry();
    for (const m of fast.getMetricsAsArray()) plain.registerMetric(m as never);
    const text = await fast.metrics();
    expect(text).toBe(await plain.metrics());
    expect(text).toContain('source_workload="we\\"ird\\\\name\\nx"');
    expect(text).toMatch(/^meshlens_request_duration_seconds_bucket\{reporter="source",.*,le="\+Inf"\} \d+$/m);
  });

  it('renders an empty family as its HELP and TYPE lines only', async () => {
    const fast = new ExpositionRegistry();
    new MeshMetrics(fast, 10);
    const plain = new Registry();
    for (const m of fast.getMetricsAsArray()) plain.registerMetric(m as never);
    expect(await fast.metrics()).toBe(await plain.metrics());
  });
});
