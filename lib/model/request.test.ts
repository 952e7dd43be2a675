/**
 * Reporter, destination and subset derived from the cluster columns (CONTRACT.md §4, telemetry-formats.md §1.4,
 * §3), and the emitting workload named by envelope/OTLP metadata.
 */
import type { MeshRequest } from './records';
import { NO_ATTRIBUTES, UNKNOWN, applyEmitter, emptyRequest, finishRequest, setRequestAttribute, workloadFromPodName } from './request';

function req(over: Partial<MeshRequest>): MeshRequest {
  return Object.assign(emptyRequest(), { responseCode: 200, responseCodeDetails: 'via_upstream', ...over });
}

describe('finishRequest', () => {
  it('client side (outbound cluster): reporter source, destination and subset from the cluster', () => {
    // telemetry-formats.md §1.4, the G3 outbound line.
    const r = finishRequest(req({ upstreamCluster: 'outbound|7070||checkout.shop.svc.cluster.local', authority: 'checkout.shop:7070', responseCode: 201 }));
    expect(r).toMatchObject({
      reporter: 'source',
      destinationHost: 'checkout.shop.svc.cluster.local',
      destinationService: 'checkout',
      destinationNamespace: 'shop',
      destinationSubset: '',
      destinationPort: 7070,
      outcome: 'ok',
    });
  });

  it('client side with a DestinationRule subset, also behind the alt_stat_name `;`', () => {
    for (const upstreamCluster of ['outbound|9080|v2|reviews.default.svc.cluster.local', 'outbound|9080|v2|reviews.default.svc.cluster.local;']) {
      expect(finishRequest(req({ upstreamCluster }))).toMatchObject({ reporter: 'source', destinationService: 'reviews', destinationSubset: 'v2', destinationPort: 9080 });
    }
  });

  it('client side through an SNI-routed cluster', () => {
    expect(finishRequest(req({ upstreamCluster: 'outbound_.9080_.v1_.reviews.default.svc.cluster.local' }))).toMatchObject({
      reporter: 'source',
      destinationService: 'reviews',
      destinationSubset: 'v1',
    });
  });

  it('server side ≥ 1.8: destination from the mTLS SNI, not the empty inbound cluster', () => {
    // telemetry-formats.md §1.4, the matching inbound line.
    const r = finishRequest(
      req({ upstreamCluster: 'inbound|7070||', requestedServerName: 'outbound_.7070_._.checkout.shop.svc.cluster.local', authority: 'checkout.shop:7070' }),
    );
    expect(r).toMatchObject({
      reporter: 'destination',
      destinationHost: 'checkout.shop.svc.cluster.local',
      destinationService: 'checkout',
      destinationNamespace: 'shop',
      destinationSubset: '',
      destinationPort: 7070,
    });
  });

  it('server side: the SNI carries the subset the client routed to, and the service port', () => {
    const r = finishRequest(req({ upstreamCluster: 'inbound|8080||', requestedServerName: 'outbound_.9080_.v2_.reviews.default.svc.cluster.local' }));
    expect(r).toMatchObject({ reporter: 'destination', destinationService: 'reviews', destinationSubset: 'v2', destinationPort: 9080 });
  });

  it('server side without SNI (plaintext): destination from :authority, port from the inbound cluster', () => {
    const fqdn = finishRequest(req({ upstreamCluster: 'inbound|9080||', authority: 'reviews.default.svc.cluster.local:9080' }));
    expect(fqdn).toMatchObject({ reporter: 'destination', destinationService: 'reviews', destinationNamespace: 'default', destinationSubset: '', destinationPort: 9080 });
    const short = finishRequest(req({ upstreamCluster: 'inbound|9080||', authority: 'reviews:9080' }));
    expect(short).toMatchObject({ reporter: 'destination', destinationHost: 'reviews', destinationService: 'reviews', destinationNamespace: '', destinationPort: 9080 });
  });

  it('server side pre-1.8: destination from the cluster host, the port name is not a subset', () => {
    expect(finishRequest(req({ upstreamCluster: 'inbound|9080|http|reviews.default.svc.cluster.local' }))).toMatchObject({
      reporter: 'destination',
      destinationService: 'reviews',
      destinationNamespace: 'default',
      destinationSubset: '',
      destinationPort: 9080,
    });
  });

  it('waypoint: subset from the inbound-vip cluster', () => {
    expect(finishRequest(req({ upstreamCluster: 'inbound-vip|9080|http/v1|reviews.default.svc.cluster.local' }))).toMatchObject({
      reporter: 'destination',
      destinationService: 'reviews',
      destinationSubset: 'v1',
    });
  });

  it('undeclared inbound port (InboundPassthroughClusterIpv4): destination from :authority', () => {
    expect(finishRequest(req({ upstreamCluster: 'InboundPassthroughClusterIpv4', authority: 'checkout.shop.svc.cluster.local:7071' }))).toMatchObject({
      reporter: 'destination',
      destinationService: 'checkout',
      destinationNamespace: 'shop',
    });
  });

  it('PassthroughCluster is a destination of its own on the client side', () => {
    expect(finishRequest(req({ upstreamCluster: 'PassthroughCluster', responseCode: 0, responseCodeDetails: '' }))).toMatchObject({
      reporter: 'source',
      destinationHost: 'PassthroughCluster',
      destinationService: 'PassthroughCluster',
      destinationNamespace: '',
      outcome: 'ok',
    });
  });

  it('BlackHoleCluster and the block_all route are denied on the client side', () => {
    expect(finishRequest(req({ upstreamCluster: 'BlackHoleCluster;', responseCode: 0, responseFlags: 'UH', responseCodeDetails: '' }))).toMatchObject({
      reporter: 'source',
      destinationService: 'BlackHoleCluster',
      outcome: 'denied',
      denyReason: 'blackhole',
    });
    expect(finishRequest(req({ upstreamCluster: '-', routeName: 'block_all', responseCode: 502, authority: 'api.partner.example' }))).toMatchObject({
      reporter: 'source',
      destinationService: 'BlackHoleCluster',
      outcome: 'denied',
      denyReason: 'blackhole',
    });
  });

  it('Passthrough and BlackHole: the port of the upstream host, else of the downstream local address (issue 9)', () => {
    const pass = (destinationAddress: string, local: number) =>
      finishRequest(req({ upstreamCluster: 'PassthroughCluster', destinationAddress, responseCode: 0, responseCodeDetails: '' }), local).destinationPort;
    expect(pass('1.2.3.4:443', 0)).toBe(443);
    expect(pass('1.2.3.4:443', 8443)).toBe(443); // the host Envoy connected to wins
    expect(pass('[2001:db8::1]:8443', 0)).toBe(8443);
    expect(pass('', 5432)).toBe(5432);
    for (const odd of [':443', '2001:db8::1', '1.2.3.4', '1.2.3.4:', '1.2.3.4:99999', '1.2.3.4:x', '/var/run/x.sock', 'envoy://internal/']) {
      expect({ odd, port: pass(odd, 0) }).toEqual({ odd, port: 0 });
    }
    const hole = finishRequest(req({ upstreamCluster: 'BlackHoleCluster', responseCode: 0, responseFlags: 'UH', responseCodeDetails: '' }), 5432);
    expect(hole).toMatchObject({ destinationHost: 'BlackHoleCluster', destinationPort: 5432, outcome: 'denied' });
    const route = finishRequest(req({ upstreamCluster: '', routeName: 'block_all', responseCode: 502, authority: 'www.baidu.com' }), 80);
    expect(route).toMatchObject({ destinationHost: 'BlackHoleCluster', destinationPort: 80, outcome: 'denied' });
  });

  it('other destinations keep the port of their cluster name, whatever the downstream local address', () => {
    const r = finishRequest(req({ upstreamCluster: 'outbound|9080|v2|reviews.default.svc.cluster.local', destinationAddress: '10.0.0.9:9081' }), 15001);
    expect(r.destinationPort).toBe(9080);
    expect(finishRequest(req({ upstreamCluster: '-', authority: 'nosuch:8080', destinationAddress: '10.0.0.9:9081' }), 8080).destinationPort).toBe(0);
  });

  it('no cluster: destination side when the SNI is Istio`s (e.g. an RBAC denial before routing)', () => {
    const r = finishRequest(
      req({
        upstreamCluster: '-',
        requestedServerName: 'outbound_.7070_._.checkout.shop.svc.cluster.local',
        responseCode: 403,
        responseCodeDetails: 'rbac_access_denied_matched_policy[none]',
      }),
    );
    expect(r).toMatchObject({ reporter: 'destination', destinationService: 'checkout', outcome: 'denied', denyReason: 'rbac' });
  });

  it('no cluster and no SNI: reporter unknown, destination from :authority', () => {
    const r = finishRequest(req({ upstreamCluster: '-', authority: 'nosuch.shop.svc.cluster.local', responseCode: 404, responseFlags: 'NR', responseCodeDetails: 'route_not_found' }));
    expect(r).toMatchObject({ reporter: 'unknown', destinationService: 'nosuch', destinationNamespace: 'shop', outcome: 'ok' });
    expect(finishRequest(req({ upstreamCluster: '' }))).toMatchObject({ reporter: 'unknown', destinationService: UNKNOWN });
  });
});

describe('applyEmitter', () => {
  const emitter = { workload: 'reviews-v2', namespace: 'default', version: 'v2' };

  it('names the source of a client-side record', () => {
    const r = applyEmitter(finishRequest(req({ upstreamCluster: 'outbound|9080|v2|reviews.default.svc.cluster.local' })), {
      workload: 'productpage-v1',
      namespace: 'default',
      version: 'v1',
    });
    expect(r).toMatchObject({ sourceWorkload: 'productpage-v1', sourceNamespace: 'default', destinationWorkload: UNKNOWN, destinationVersion: '' });
  });

  it('names the destination of a server-side record, filling only an unknown namespace', () => {
    const r = applyEmitter(finishRequest(req({ upstreamCluster: 'inbound|9080||', authority: 'reviews:9080' })), emitter);
    expect(r).toMatchObject({ destinationWorkload: 'reviews-v2', destinationVersion: 'v2', destinationNamespace: 'default', sourceWorkload: UNKNOWN });
    const known = applyEmitter(
      finishRequest(req({ upstreamCluster: 'inbound|9080||', requestedServerName: 'outbound_.9080_._.reviews.bookinfo.svc.cluster.local' })),
      emitter,
    );
    expect(known.destinationNamespace).toBe('bookinfo'); // the SNI's namespace wins over the emitter's
  });

  it('leaves fields the metadata does not give', () => {
    const r = applyEmitter(finishRequest(req({ upstreamCluster: 'inbound|9080||' })), { workload: '', namespace: '', version: '' });
    expect(r).toMatchObject({ destinationWorkload: UNKNOWN, destinationVersion: '' });
  });
});

describe('workloadFromPodName', () => {
  it.each([
    ['Deployment', 'reviews-v2-5b64f47978-x8k9q', 'reviews-v2'],
    ['Deployment, all-digit pod suffix', 'reviews-v2-5b64f47978-24567', 'reviews-v2'],
    ['Deployment, pre-1.11 decimal hash', 'reviews-v1-1234567890-x8k9q', 'reviews-v1'],
    ['Deployment (Cilium docs)', 'deathstar-7848d6c4d5-th9v2', 'deathstar'],
    ['StatefulSet', 'db-0', 'db'],
    ['StatefulSet, hyphenated name', 'web-server-12', 'web-server'],
    ['DaemonSet', 'fluentd-x7k2p', 'fluentd'],
    ['DaemonSet, hyphenated name', 'calico-node-4kgbv', 'calico-node'],
    ['DaemonSet whose name ends in a word of hash length', 'node-exporter-x7k2p', 'node-exporter'],
    ['bare pod', 'xwing', 'xwing'],
    ['bare hyphenated pod', 'my-debug-pod', 'my-debug-pod'],
    // Issue 9: a 5-letter last word was dropped as if it were a generated suffix.
    ['bare pod ending in a 5-letter word', 'agent-probe', 'agent-probe'],
    ['bare pod ending in a 5-letter word with y', 'web-proxy', 'web-proxy'],
    ['bare pod ending in 5 characters with 0, 1 or 3', 'cache-v1013', 'cache-v1013'],
    ['bare pod ending in a capitalised word (not a DNS-1123 generated suffix)', 'db-Shell', 'db-Shell'],
    ['ReplicaSet-hash-shaped pod whose last word is not generated', 'reviews-v2-5b64f47978-probe', 'reviews-v2-5b64f47978-probe'],
    ['Job', 'pi-with-timeout-d5zsn', 'pi-with-timeout'],
    ['Deployment (Istio PR 42196, httpbin)', 'httpbin-847f64cc8d-rsfmj', 'httpbin'],
    ['Deployment (Istio PR 42196, fortio)', 'fortio-deploy-6cf68cc4c-8knt9', 'fortio-deploy'],
  ])('%s: %s → %s', (_kind, pod, want) => {
    expect(workloadFromPodName(pod)).toBe(want);
  });
});

describe('attributes', () => {
  it('records without attributes share one frozen empty object', () => {
    const a = emptyRequest();
    const b = emptyRequest();
    expect(a.attributes).toBe(NO_ATTRIBUTES);
    expect(b.attributes).toBe(a.attributes);
    expect(Object.isFrozen(a.attributes)).toBe(true);
    expect(() => {
      (a.attributes as Record<string, string>).x = '1';
    }).toThrow(TypeError);
  });

  it('setRequestAttribute gives the record an object of its own and leaves the shared one empty', () => {
    const a = emptyRequest();
    const b = emptyRequest();
    setRequestAttribute(a, 'grpc_status', '0');
    setRequestAttribute(a, '__proto__', 'kept');
    expect(Object.keys(a.attributes)).toEqual(['grpc_status', '__proto__']);
    expect(a.attributes).toMatchObject({ grpc_status: '0' });
    expect(Object.getPrototypeOf(a.attributes)).toBe(Object.prototype);
    expect(b.attributes).toBe(NO_ATTRIBUTES);
    expect(Object.keys(NO_ATTRIBUTES)).toEqual([]);
  });
});
