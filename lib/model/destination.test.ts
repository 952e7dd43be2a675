/**
 * The destination cache: each cluster name, SNI or authority resolves once to a frozen destination that every
 * later line naming it shares, with the answer the uncached parsers give, and the caches stay bounded whatever
 * the input names.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseSni, parseUpstreamCluster, serviceFromHost } from './cluster';
import { DESTINATION_CACHE_MAX, destinationCacheSizes, destinationOfAuthority, destinationOfCluster, destinationOfSni } from './destination';

const CLUSTERS = [
  'outbound|9080|v1|reviews.default.svc.cluster.local',
  'outbound|9080|v1|reviews.default.svc.cluster.local;',
  'outbound|80||rates.example.com',
  'inbound|9080||',
  'inbound|9080|http|reviews.default.svc.cluster.local',
  'inbound-vip|9080|http/v2|reviews.default.svc.cluster.local',
  'outbound_.9080_.v3_.reviews.default.svc.cluster.local',
  'PassthroughCluster',
  'BlackHoleCluster',
  'InboundPassthroughClusterIpv4',
  '-',
  '',
];

describe('destinationOfCluster', () => {
  it.each(CLUSTERS)('%j: the uncached parse with its host split, frozen, and the same object the next time', (name) => {
    const ref = parseUpstreamCluster(name);
    const s = serviceFromHost(ref.host);
    const d = destinationOfCluster(name);
    expect(d).toEqual({ direction: ref.direction, port: ref.port, subset: ref.subset, host: ref.host, service: s.service, namespace: s.namespace });
    expect(Object.isFrozen(d)).toBe(true);
    expect(destinationOfCluster(name)).toBe(d);
  });

  it('splits service and namespace once: reviews in default', () => {
    expect(destinationOfCluster('outbound|9080|v1|reviews.default.svc.cluster.local')).toMatchObject({ service: 'reviews', namespace: 'default', subset: 'v1', port: 9080 });
  });
});

describe('destinationOfSni', () => {
  it("Istio's SNI form resolves like parseSni, frozen and shared", () => {
    const name = 'outbound_.9080_._.details.default.svc.cluster.local';
    const d = destinationOfSni(name);
    expect(d).toEqual({ ...parseSni(name), service: 'details', namespace: 'default' });
    expect(Object.isFrozen(d)).toBe(true);
    expect(destinationOfSni(name)).toBe(d);
  });

  it('a plain host name (TLS passthrough) is no destination, cached or not', () => {
    expect(destinationOfSni('api.example.com')).toBeUndefined();
    expect(destinationOfSni('api.example.com')).toBeUndefined();
    expect(destinationOfSni('outbound_.0_.v1_.x')).toBeUndefined();
  });
});

describe('destinationOfAuthority', () => {
  it('the host without its port, split like a cluster host; undefined for an empty authority', () => {
    expect(destinationOfAuthority('reviews.default.svc.cluster.local:9080')).toEqual({
      direction: 'none',
      port: 0,
      subset: '',
      host: 'reviews.default.svc.cluster.local',
      service: 'reviews',
      namespace: 'default',
    });
    expect(destinationOfAuthority('[::1]:80')).toMatchObject({ host: '[::1]', service: '[::1]', namespace: '' });
    expect(destinationOfAuthority('')).toBeUndefined();
    expect(Object.isFrozen(destinationOfAuthority('reviews:9080'))).toBe(true);
    expect(destinationOfAuthority('reviews:9080')).toBe(destinationOfAuthority('reviews:9080'));
  });
});

describe('the bound', () => {
  it('made-up names never hold more than DESTINATION_CACHE_MAX entries per cache, and answers stay right past a clear', () => {
    const n = DESTINATION_CACHE_MAX * 2 + 7;
    for (let i = 0; i < n; i++) {
      const host = `svc-${i}.ns-${i % 13}.svc.cluster.local`;
      expect(destinationOfCluster(`outbound|80|v${i}|${host}`)).toMatchObject({ host, service: `svc-${i}`, namespace: `ns-${i % 13}`, subset: `v${i}` });
      destinationOfSni(`outbound_.80_.v${i}_.${host}`);
      destinationOfAuthority(`${host}:${i}`);
      const sizes = destinationCacheSizes();
      expect(Math.max(sizes.clusters, sizes.snis, sizes.authorities)).toBeLessThanOrEqual(DESTINATION_CACHE_MAX);
    }
    // Cleared and refilled, not stuck: the last names are held, and an old one resolves again.
    expect(destinationCacheSizes().clusters).toBeGreaterThan(0);
    expect(destinationOfCluster('outbound|80|v0|svc-0.ns-0.svc.cluster.local')).toMatchObject({ service: 'svc-0', namespace: 'ns-0' });
  });
});

describe('what the caches hold', () => {
  it('a name sliced from a large body is kept as a copy, not as a view that holds the whole body', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed;
    // 100 bodies of 1 MB, each naming a new cluster, SNI and authority near its end (TEXT fields are slices of it).
    for (let i = 0; i < 100; i++) {
      const tail = ` outbound|80|v${i}|held-${i}.ns.svc.cluster.local outbound_.80_.v${i}_.held-${i}.ns.svc.cluster.local held-${i}.ns.svc.cluster.local:80 `;
      const body = Buffer.from('x'.repeat(1 << 20) + tail).toString();
      const words = body.slice(body.length - tail.length + 1, body.length - 1);
      const at = body.length - tail.length + 1;
      let from = at;
      for (const w of words.split(' ')) {
        const name = body.slice(from, from + w.length);
        from += w.length + 1;
        destinationOfCluster(name);
        destinationOfSni(name);
        destinationOfAuthority(name);
      }
    }
    gc();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(30 * 1024 * 1024);
  });
});
