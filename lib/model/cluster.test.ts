/**
 * Envoy cluster names as Istio builds them: every form of shared/reference/telemetry-formats.md §3, each also
 * with the trailing `;` Istio ≥ 1.22 prints through `alt_stat_name` (istio/istio#51861, #54219).
 */
import { parseSni, parseUpstreamCluster, serviceFromHost, stripAltStatSuffix, type ClusterRef } from './cluster';

const FORMS: Array<[name: string, raw: string, want: ClusterRef]> = [
  // Client side, service port, no DestinationRule subset routed to.
  ['outbound', 'outbound|7070||checkout.shop.svc.cluster.local', { direction: 'outbound', port: 7070, subset: '', host: 'checkout.shop.svc.cluster.local' }],
  ['outbound with subset', 'outbound|9080|v2|reviews.default.svc.cluster.local', { direction: 'outbound', port: 9080, subset: 'v2', host: 'reviews.default.svc.cluster.local' }],
  ['outbound to an external ServiceEntry host', 'outbound|80||rates.example.com', { direction: 'outbound', port: 80, subset: '', host: 'rates.example.com' }],
  // Server side, Istio ≥ 1.8: target port, empty subset and host (istio/istio#27303).
  ['inbound ≥ 1.8', 'inbound|9080||', { direction: 'inbound', port: 9080, subset: '', host: '' }],
  // Pre-1.8: the third field is the service *port name*, not a subset.
  ['inbound pre-1.8', 'inbound|9080|http|reviews.default.svc.cluster.local', { direction: 'inbound', port: 9080, subset: '', host: 'reviews.default.svc.cluster.local' }],
  ['inbound pre-1.8 with port name http-api', 'inbound|7070|http-api|checkout.shop.svc.cluster.local', { direction: 'inbound', port: 7070, subset: '', host: 'checkout.shop.svc.cluster.local' }],
  // Ambient waypoint service clusters: `http`, `tcp`, `http/SUBSET`, `tcp/SUBSET` (cluster_waypoint.go).
  ['waypoint http/v1', 'inbound-vip|9080|http/v1|reviews.default.svc.cluster.local', { direction: 'inbound-vip', port: 9080, subset: 'v1', host: 'reviews.default.svc.cluster.local' }],
  ['waypoint tcp/v2', 'inbound-vip|7070|tcp/v2|checkout.shop.svc.cluster.local', { direction: 'inbound-vip', port: 7070, subset: 'v2', host: 'checkout.shop.svc.cluster.local' }],
  ['waypoint http, no subset', 'inbound-vip|7070|http|checkout.shop.svc.cluster.local', { direction: 'inbound-vip', port: 7070, subset: '', host: 'checkout.shop.svc.cluster.local' }],
  // "DNS SRV" form: SNI-routed clusters and the mTLS SNI.
  ['SNI form with subset', 'outbound_.9080_.v1_.reviews.default.svc.cluster.local', { direction: 'outbound', port: 9080, subset: 'v1', host: 'reviews.default.svc.cluster.local' }],
  ['SNI form without subset (_._.)', 'outbound_.7070_._.checkout.shop.svc.cluster.local', { direction: 'outbound', port: 7070, subset: '', host: 'checkout.shop.svc.cluster.local' }],
  // Special clusters are destinations of their own (CONTRACT.md §4).
  ['PassthroughCluster', 'PassthroughCluster', { direction: 'special', port: 0, subset: '', host: 'PassthroughCluster' }],
  ['BlackHoleCluster', 'BlackHoleCluster', { direction: 'special', port: 0, subset: '', host: 'BlackHoleCluster' }],
  ['InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv4', { direction: 'inbound', port: 0, subset: '', host: 'InboundPassthroughClusterIpv4' }],
  ['InboundPassthroughClusterIpv6', 'InboundPassthroughClusterIpv6', { direction: 'inbound', port: 0, subset: '', host: 'InboundPassthroughClusterIpv6' }],
  // No cluster selected (NR, local reply before routing).
  ['dash', '-', { direction: 'none', port: 0, subset: '', host: '' }],
  ['empty', '', { direction: 'none', port: 0, subset: '', host: '' }],
];

describe('parseUpstreamCluster', () => {
  it.each(FORMS)('%s: %s', (_name, raw, want) => {
    expect(parseUpstreamCluster(raw)).toEqual(want);
  });

  it.each(FORMS)('%s with the alt_stat_name `;`: %s;', (_name, raw, want) => {
    expect(parseUpstreamCluster(raw + ';')).toEqual(want);
  });

  it('strips exactly one trailing `;`', () => {
    expect(stripAltStatSuffix('inbound|7070||;')).toBe('inbound|7070||');
    expect(stripAltStatSuffix('inbound|7070||;;')).toBe('inbound|7070||;');
    expect(stripAltStatSuffix('')).toBe('');
  });

  it('reads an out-of-range or non-numeric port as 0 and keeps the rest', () => {
    expect(parseUpstreamCluster('outbound|99999|v1|reviews.default.svc.cluster.local')).toMatchObject({ port: 0, subset: 'v1' });
    expect(parseUpstreamCluster('outbound|http|v1|reviews.default.svc.cluster.local')).toMatchObject({ port: 0, subset: 'v1' });
  });

  it('treats names of another shape as special clusters named by themselves', () => {
    // Waypoint internals (cluster_waypoint.go) and malformed pipe counts.
    expect(parseUpstreamCluster('connect_originate')).toEqual({ direction: 'special', port: 0, subset: '', host: 'connect_originate' });
    expect(parseUpstreamCluster('outbound|9080|v1')).toMatchObject({ direction: 'special', host: 'outbound|9080|v1' });
    expect(parseUpstreamCluster('outbound|9080|v1|a|b')).toMatchObject({ direction: 'special' });
    // An `outbound_.` prefix that is not a valid SNI form stays a name.
    expect(parseUpstreamCluster('outbound_.x_.v1_.host')).toMatchObject({ direction: 'special', host: 'outbound_.x_.v1_.host' });
  });
});

describe('parseSni', () => {
  it('reads the subset the client routed to from the mTLS SNI', () => {
    expect(parseSni('outbound_.9080_.v2_.reviews.default.svc.cluster.local')).toEqual({
      direction: 'outbound',
      port: 9080,
      subset: 'v2',
      host: 'reviews.default.svc.cluster.local',
    });
    expect(parseSni('outbound_.7070_._.checkout.shop.svc.cluster.local')).toMatchObject({ subset: '', port: 7070 });
    expect(parseSni('outbound_.7070_._.checkout.shop.svc.cluster.local;')).toMatchObject({ host: 'checkout.shop.svc.cluster.local' });
  });

  it('returns undefined for plain hostnames (TLS passthrough SNI) and broken forms', () => {
    for (const s of ['api.partner.example', '-', '', 'outbound_.', 'outbound_.9080', 'outbound_.9080_.v1', 'outbound_.9080_.v1_.', 'outbound_.0_._.host', 'outbound_.abc_._.host']) {
      expect(parseSni(s)).toBeUndefined();
    }
  });
});

describe('serviceFromHost', () => {
  it('splits Kubernetes service hosts into service and namespace', () => {
    expect(serviceFromHost('reviews.default.svc.cluster.local')).toEqual({ host: 'reviews.default.svc.cluster.local', service: 'reviews', namespace: 'default' });
    expect(serviceFromHost('checkout.shop.svc.corp.example')).toEqual({ host: 'checkout.shop.svc.corp.example', service: 'checkout', namespace: 'shop' });
  });

  it('splits `.svc` hosts without a cluster domain', () => {
    expect(serviceFromHost('reviews.default.svc')).toEqual({ host: 'reviews.default.svc', service: 'reviews', namespace: 'default' });
  });

  it('keeps external hosts whole with an empty namespace', () => {
    expect(serviceFromHost('rates.example.com')).toEqual({ host: 'rates.example.com', service: 'rates.example.com', namespace: '' });
    expect(serviceFromHost('api.partner.example')).toEqual({ host: 'api.partner.example', service: 'api.partner.example', namespace: '' });
  });

  it('keeps PassthroughCluster and BlackHoleCluster as destinations of their own', () => {
    expect(serviceFromHost('PassthroughCluster')).toEqual({ host: 'PassthroughCluster', service: 'PassthroughCluster', namespace: '' });
    expect(serviceFromHost('BlackHoleCluster')).toEqual({ host: 'BlackHoleCluster', service: 'BlackHoleCluster', namespace: '' });
  });

  it('does not split hosts where `.svc.` is not preceded by <service>.<namespace>', () => {
    expect(serviceFromHost('reviews.svc.cluster.local')).toMatchObject({ service: 'reviews.svc.cluster.local', namespace: '' });
    expect(serviceFromHost('.svc.cluster.local')).toMatchObject({ namespace: '' });
    expect(serviceFromHost('')).toEqual({ host: '', service: '', namespace: '' });
  });
});
