import { Registry } from 'prom-client';
import { emptyRequest } from '../../lib/model';
import type { MeshRequest } from '../../lib/model';
import { parseDuration } from '../../lib/runtime';
import { foldLedger, parseInstant, parseScope } from './api';
import { MeshMetrics } from './metrics';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

describe('query scope (CONTRACT §6: window | from/to, namespace, service, reporter)', () => {
  it('defaults to the last 5 minutes and the given default reporter', () => {
    expect(parseScope({}, 'source', NOW)).toEqual({ fromMs: NOW - 300_000, toMs: NOW, namespace: '', service: '', reporter: 'source' });
    expect(parseScope({ window: '30s', reporter: 'all', namespace: 'default', service: 'reviews' }, 'source', NOW)).toEqual({
      fromMs: NOW - 30_000,
      toMs: NOW,
      namespace: 'default',
      service: 'reviews',
      reporter: 'all',
    });
  });

  it('takes from/to as RFC 3339 or Unix milliseconds; from alone ends now', () => {
    expect(parseScope({ from: '2026-11-25T11:00:00Z', to: '2026-11-25T11:30:00.500+00:00' }, 'all', NOW)).toMatchObject({
      fromMs: NOW - 3_600_000,
      toMs: NOW - 1_800_000 + 500,
    });
    expect(parseScope({ from: String(NOW - 1000) }, 'all', NOW)).toMatchObject({ fromMs: NOW - 1000, toMs: NOW });
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('5 minutes')).toBeUndefined();
    expect(parseInstant('2026-11-25 11:00:00')).toBeUndefined();
  });

  it.each([
    [{ window: '5m', from: '0' }, /either window or from/],
    [{ to: '2026-11-25T11:00:00Z' }, /to needs from/],
    [{ from: 'yesterday' }, /from="yesterday"/],
    [{ from: String(NOW), to: String(NOW - 1) }, /before/],
    [{ window: '-5m' }, /window="-5m"/],
    [{ reporter: 'both' }, /reporter="both"/],
  ])('rejects %j with a 400 naming the problem', (q, message) => {
    expect(() => parseScope(q as Record<string, string>, 'source', NOW)).toThrow(expect.objectContaining({ statusCode: 400, message: expect.stringMatching(message) }));
  });
});

function req(host: string, over: Partial<MeshRequest> = {}): MeshRequest {
  const [service = '', namespace = ''] = host.split('.');
  return {
    ...emptyRequest(),
    reporter: 'source',
    sourceWorkload: 'productpage-v1',
    sourceNamespace: 'default',
    destinationHost: host,
    destinationService: service,
    destinationNamespace: namespace,
    responseCode: 200,
    outcome: 'ok',
    durationMs: 12,
    ...over,
  };
}

describe('mesh metrics from aggregated state', () => {
  it('exports CONTRACT §5 labels, cumulative histogram buckets in seconds, and "unknown" for missing workloads', async () => {
    const registry = new Registry();
    const m = new MeshMetrics(registry, 1000);
    m.addRequests([
      req('reviews.default.svc.cluster.local', { destinationSubset: 'v3', responseCode: 503, outcome: 'error', durationMs: 3 }),
      req('reviews.default.svc.cluster.local', { destinationSubset: 'v3', responseCode: 503, outcome: 'error', durationMs: 700 }),
      req('reviews.default.svc.cluster.local', { destinationSubset: 'v3', sourceWorkload: '', durationMs: 20 }),
    ]);
    const text = await registry.metrics();
    expect(text).toContain(
      'meshlens_requests_total{reporter="source",source_workload="productpage-v1",source_workload_namespace="default",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",destination_subset="v3",response_code="503",response_flags="-",outcome="error"} 2',
    );
    expect(text).toContain('source_workload="unknown"');
    const labels = 'reporter="source",destination_service="reviews.default.svc.cluster.local",destination_service_name="reviews",destination_service_namespace="default",destination_subset="v3"';
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="0.005"} 1`);
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="0.025"} 2`);
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="1"} 3`);
    expect(text).toContain(`meshlens_request_duration_seconds_bucket{${labels},le="+Inf"} 3`);
    expect(text).toContain(`meshlens_request_duration_seconds_count{${labels}} 3`);
    expect(text).toMatch(new RegExp(`meshlens_request_duration_seconds_sum\\{${labels.replace(/[.]/g, '\\.')}\\} 0\\.723`));
  });

  it('caps label sets per metric: new sets fold into __overflow__, the total stays exact, and a counter says how many folded', async () => {
    const registry = new Registry();
    const m = new MeshMetrics(registry, 3);
    const hosts = ['a', 'b', 'c', 'd', 'e'].map((s) => `${s}.default.svc.cluster.local`);
    m.addRequests(hosts.flatMap((h) => [req(h), req(h)]));
    expect(m.seriesCounts().requests).toBe(4); // 3 + the overflow series
    const text = await registry.metrics();
    expect(text).toMatch(/meshlens_requests_total\{reporter="source",source_workload="__overflow__",source_workload_namespace="__overflow__",destination_service="__overflow__",destination_service_name="__overflow__",destination_service_namespace="__overflow__",destination_subset="__overflow__",response_code="200",response_flags="-",outcome="ok"\} 4/);
    expect(text).toContain('meshlens_series_overflow_total{metric="meshlens_requests_total"} 4');
    const total = [...text.matchAll(/^meshlens_requests_total\{.*\} (\d+)$/gm)].reduce((n, x) => n + Number(x[1]), 0);
    expect(total).toBe(10);
  });
});

describe('flows ledger folding', () => {
  it('folds verdict rows into one entry per flow with deny reasons and policies', () => {
    const base = {
      layer: 'L7' as const,
      sourceNamespace: 'default',
      sourceWorkload: 'sleep',
      destinationNamespace: 'default',
      destinationService: 'ratings',
      destinationHost: 'ratings.default.svc.cluster.local',
      subset: 'v1',
      port: 9080,
      denyReason: '',
      policy: '',
      rule: -1,
    };
    const entries = foldLedger([
      { ...base, denied: false, count: 5 },
      { ...base, denied: true, denyReason: 'rbac', policy: 'default/deny-sleep', rule: 0, count: 3 },
      { ...base, denied: true, denyReason: 'rbac', policy: 'default/deny-sleep', rule: 1, count: 4 },
      { ...base, denied: true, denyReason: 'ext_authz', count: 1 },
      { ...base, layer: 'L4', port: 3306, denied: false, count: 2 },
    ]);
    expect(entries).toEqual([
      {
        source: { namespace: 'default', workload: 'sleep' },
        destination: { namespace: 'default', service: 'ratings', host: 'ratings.default.svc.cluster.local', subset: 'v1', port: 9080 },
        layer: 'L7',
        allowed: 5,
        denied: 8,
        deny_reasons: { rbac: 7, ext_authz: 1 },
        policies: [
          { policy: 'default/deny-sleep', rule: 1, count: 4 },
          { policy: 'default/deny-sleep', rule: 0, count: 3 },
        ],
      },
      expect.objectContaining({ layer: 'L4', allowed: 2, denied: 0, deny_reasons: {}, policies: [] }),
    ]);
  });
});
