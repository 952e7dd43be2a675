/**
 * The mesh families' own exposition text must be exactly what prom-client would have written from `get()`:
 * the same metrics, label order, escaping and values, so rendering label text once changes speed, not output.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Counter, Registry } from 'prom-client';
import { emptyRequest } from '../../lib/model';
import type { Flow, MeshRequest } from '../../lib/model';
import { ExpositionRegistry } from '../../lib/runtime';
import { MeshMetrics } from './metrics';
import { CounterFamily, type Labels } from './series';

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

describe('finding a series by its label values', () => {
  function family(maxSeries: number): { family: CounterFamily; overflow: Counter<'metric'> } {
    const overflow = new Counter({ name: 'overflow_total', help: 'folded', labelNames: ['metric'], registers: [] });
    const f = new CounterFamily({ name: 'things_total', help: 'things', labelNames: ['a', 'b', 'code'], maxSeries, overflowCounter: overflow });
    return { family: f, overflow };
  }
  const labelsOf = (k: readonly (string | number)[]): Labels => ({ a: String(k[0]), b: String(k[1]), code: String(k[2]) });

  it('tells values apart exactly, whatever characters they hold (joined keys made a\\u0001b + c and a + b\\u0001c one series)', async () => {
    const { family: f } = family(100);
    const x = ['a\u0001b', 'c', 200];
    const y = ['a', 'b\u0001c', 200];
    f.add(x, labelsOf, x, 1);
    f.add(y, labelsOf, y, 2);
    expect(f.size).toBe(2);
    const values = (await f.get()).values.map((v) => [v.labels.a, v.labels.b, v.value]);
    expect(values).toEqual([
      ['a\u0001b', 'c', 1],
      ['a', 'b\u0001c', 2],
    ]);
  });

  it('finds every series again as a level grows from one value to many, reads the key array without keeping it, and builds labels once per series', async () => {
    const { family: f } = family(1000);
    const calls: string[] = [];
    const counting = (k: readonly (string | number)[]): Labels => {
      calls.push(k.join('/'));
      return labelsOf(k);
    };
    const key: (string | number)[] = ['', '', 0];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 40; i++) {
        // One array, refilled per observation, as MeshMetrics does: 4 x 2 x 5 label sets, each seen once a round.
        key[0] = `a${i % 4}`;
        key[1] = Math.floor(i / 4) % 2 === 0 ? '' : 'unknown';
        key[2] = 200 + Math.floor(i / 8);
        f.add(key, counting, [...key], 1);
      }
    }
    expect(f.size).toBe(40);
    expect(new Set(calls).size).toBe(40);
    expect(calls).toHaveLength(40);
    expect((await f.get()).values.every((v) => v.value === 3)).toBe(true);
  });

  it('keeps its own copy of a key string, not a view that holds the body the record was parsed from', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const { family: f } = family(1000);
    gc();
    const before = process.memoryUsage().heapUsed;
    const flags = 'UF,URX,UH,NR,UO'; // long enough for V8 to slice it as a view, not copy it
    for (let i = 0; i < 100; i++) {
      const body = Buffer.from('x'.repeat(1 << 20) + ' ' + flags + ' ').toString();
      // A new series per body, with the slice on a level of its own below the part that differs.
      const key = [`a${i}`, body.slice(body.length - 1 - flags.length, body.length - 1), 200];
      f.add(key, labelsOf, key, 1);
    }
    gc();
    expect(f.size).toBe(100);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(30 * 1024 * 1024);
  });

  it('past the cap creates nothing: every new label set folds into the one overflow series, and known ones still count as themselves', async () => {
    const { family: f, overflow } = family(2);
    const k = (a: string, code: number): (string | number)[] => [a, 'b', code];
    f.add(k('x', 200), labelsOf, k('x', 200), 1);
    f.add(k('x', 503), labelsOf, k('x', 503), 1);
    for (let i = 0; i < 50; i++) f.add(k(`new-${i}`, 200), labelsOf, k(`new-${i}`, 200), 1);
    f.add(k('x', 503), labelsOf, k('x', 503), 1);
    expect(f.size).toBe(3);
    expect((await overflow.get()).values[0]?.value).toBe(50);
    expect((await f.get()).values.map((v) => [v.labels.a, v.labels.code, v.value])).toEqual([
      ['x', '200', 1],
      ['x', '503', 2],
      ['__overflow__', '__overflow__', 50],
    ]);
  });
});
