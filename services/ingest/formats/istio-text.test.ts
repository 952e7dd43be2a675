/**
 * TEXT access logs, per fixture line (test/fixtures/accesslogs/*.log; provenance in test/fixtures/SOURCES.md).
 * Each case asserts what a user of the record relies on: the layout, event time, request, destination and
 * subset, reporter, outcome and deny reason.
 */
import fc from 'fast-check';
import { accepted, fixtureLine, fixtureLines, isSaneRecord, isWellFormedRejection, rejection } from './accesslog.testutil';
import { parseIstioText, parseIstioTextWithLayout, parseRfc3339Millis, scanUint } from './istio-text';

const utc = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number =>
  Date.UTC(y, mo - 1, d, h, mi, s, ms);

function parsed(file: string, i: number) {
  const { layout, result } = parseIstioTextWithLayout(fixtureLine(file, i));
  return { layout, r: accepted(result) };
}

describe('Istio 1.0/1.1 TEXT (G1, 18 tokens; early-2019 G1 + mixer, 19 tokens)', () => {
  it('G1 outbound to a ServiceEntry host (istio.io egress-control, still in current docs)', () => {
    const { layout, r } = parsed('istio-1.1-text.log', 0);
    expect(layout).toBe('g1');
    expect(r).toMatchObject({
      startTimeMs: utc(2019, 1, 24, 12, 17, 11, 640),
      protocol: 'http',
      method: 'GET',
      path: '/headers',
      httpVersion: 'HTTP/1.1',
      responseCode: 200,
      responseFlags: '',
      responseCodeDetails: '',
      bytesReceived: 0,
      bytesSent: 599,
      durationMs: 214,
      upstreamServiceTimeMs: 214,
      userAgent: 'curl/7.60.0',
      requestId: '17fde8f7-fa62-9b39-8999-302324e6def2',
      authority: 'httpbin.org',
      destinationAddress: '35.173.6.94:80',
      upstreamCluster: 'outbound|80||httpbin.org',
      sourceAddress: '172.30.109.82:55314',
      requestedServerName: '',
      routeName: '',
      reporter: 'source',
      // Hosts outside *.svc.<domain> keep the host as service and an empty namespace (CONTRACT §4).
      destinationHost: 'httpbin.org',
      destinationService: 'httpbin.org',
      destinationNamespace: '',
      destinationSubset: '',
      destinationPort: 80,
      outcome: 'ok',
      denyReason: '',
    });
  });

  it('G1 + mixer column, outbound and the matching pre-1.8 inbound line (istio.io 1.1 access-log task)', () => {
    const out = parsed('istio-1.1-text.log', 1);
    expect(out.layout).toBe('g1m');
    expect(out.r).toMatchObject({
      startTimeMs: utc(2019, 3, 6, 9, 31, 27, 354),
      responseCode: 418,
      bytesSent: 135,
      durationMs: 11,
      upstreamServiceTimeMs: 10,
      reporter: 'source',
      destinationHost: 'httpbin.default.svc.cluster.local',
      destinationService: 'httpbin',
      destinationNamespace: 'default',
      destinationSubset: '',
      destinationPort: 8000,
      sourceAddress: '172.30.146.82:60290',
      outcome: 'ok',
    });
    // The mixer status `"-"` is unset, so nothing is kept for it.
    expect(out.r.attributes).toEqual({});

    const inb = parsed('istio-1.1-text.log', 2);
    expect(inb.layout).toBe('g1m');
    expect(inb.r).toMatchObject({
      startTimeMs: utc(2019, 3, 6, 9, 31, 27, 360),
      reporter: 'destination',
      // Pre-1.8 inbound cluster `inbound|8000|http|host`: the third field is the port *name*, not a subset.
      upstreamCluster: 'inbound|8000|http|httpbin.default.svc.cluster.local',
      destinationHost: 'httpbin.default.svc.cluster.local',
      destinationService: 'httpbin',
      destinationNamespace: 'default',
      destinationSubset: '',
      destinationPort: 8000,
      requestedServerName: 'outbound_.8000_._.httpbin.default.svc.cluster.local',
      requestId: out.r.requestId,
      destinationAddress: '127.0.0.1:80',
    });
  });

  it('G1 + mixer from a 2019 cluster with an empty user agent (engarde README)', () => {
    const { layout, r } = parsed('istio-1.1-text.log', 3);
    expect(layout).toBe('g1m');
    expect(r).toMatchObject({ bytesReceived: 148, bytesSent: 171, userAgent: '', authority: 'hello-world', destinationService: 'hello-world', destinationNamespace: 'default', destinationPort: 80 });
  });
});

describe('Istio 1.2 TEXT (20 tokens: mixer + transport failure reason, no route name)', () => {
  it('parses both sides (lines derived from the 1.1 docs lines by EnvoyTextLogFormat12)', () => {
    const out = parsed('istio-1.2-text.log', 0);
    expect(out.layout).toBe('g2_12');
    expect(out.r).toMatchObject({ responseCode: 418, bytesSent: 135, durationMs: 11, upstreamServiceTimeMs: 10, routeName: '', reporter: 'source', destinationService: 'httpbin' });
    const inb = parsed('istio-1.2-text.log', 1);
    expect(inb.layout).toBe('g2_12');
    expect(inb.r).toMatchObject({ reporter: 'destination', destinationService: 'httpbin', destinationNamespace: 'default', destinationPort: 8000, requestedServerName: 'outbound_.8000_._.httpbin.default.svc.cluster.local' });
  });
});

describe('attributes', () => {
  it("a set mixer status is kept in the record's own attributes, never in the object records without any share", () => {
    const line = fixtureLine('istio-1.2-text.log', 0);
    const mixer = accepted(parseIstioText(line.replace('418 - "-" "-"', '418 - "UNAVAILABLE:no healthy upstream" "-"')));
    const plain = accepted(parseIstioText(line));
    expect(mixer.attributes).toEqual({ istio_policy_status: 'UNAVAILABLE:no healthy upstream' });
    expect(plain.attributes).toEqual({});
    expect(Object.isFrozen(plain.attributes)).toBe(true);
  });
});

describe('Istio 1.3–1.8 TEXT (21 tokens, mixer column `"-"`)', () => {
  it('HTTP/2 through an egress gateway, SNI column holds the external host (istio/istio.io#5003)', () => {
    const { layout, r } = parsed('istio-1.5-text.log', 0);
    expect(layout).toBe('g2_13');
    expect(r).toMatchObject({
      startTimeMs: utc(2019, 9, 3, 20, 57, 49, 103),
      method: 'GET',
      path: '/politics',
      httpVersion: 'HTTP/2',
      protocol: 'http',
      responseCode: 301,
      upstreamTransportFailureReason: '',
      bytesSent: 0,
      durationMs: 90,
      upstreamServiceTimeMs: 89,
      requestedServerName: 'edition.cnn.com',
      routeName: '',
      reporter: 'source',
      destinationHost: 'edition.cnn.com',
      destinationPort: 80,
      outcome: 'ok',
    });
  });

  it('TCP (`"- - -"`) egress, PassthroughCluster, and a pre-1.8 inbound TCP cluster', () => {
    const tcp = parsed('istio-1.5-text.log', 1);
    expect(tcp.layout).toBe('g2_13');
    expect(tcp.r).toMatchObject({
      protocol: 'tcp',
      method: '',
      path: '',
      httpVersion: '',
      responseCode: 0,
      bytesReceived: 906,
      bytesSent: 1352475,
      durationMs: 35,
      upstreamServiceTimeMs: -1,
      requestId: '',
      destinationHost: 'edition.cnn.com',
      destinationPort: 443,
      outcome: 'ok',
    });

    const passthrough = parsed('istio-1.5-text.log', 2);
    expect(passthrough.r).toMatchObject({
      protocol: 'tcp',
      reporter: 'source',
      upstreamCluster: 'PassthroughCluster',
      destinationHost: 'PassthroughCluster',
      destinationService: 'PassthroughCluster',
      destinationNamespace: '',
      destinationAddress: '1.2.3.4:443',
      outcome: 'ok',
    });

    const inbTcp = parsed('istio-1.5-text.log', 3);
    expect(inbTcp.r).toMatchObject({
      protocol: 'tcp',
      reporter: 'destination',
      destinationService: 'postgresql-1-vm',
      destinationNamespace: 'default',
      destinationSubset: '',
      destinationPort: 5432,
      bytesReceived: 268,
      bytesSent: 441,
    });
  });
});

describe('Istio 1.9+ TEXT (22 tokens, details columns)', () => {
  it('the istio.io access-log task pair: outbound with cluster, inbound ≥1.8 `inbound|8000||` + SNI', () => {
    const out = parsed('istio-1.9-text.log', 0);
    expect(out.layout).toBe('g3');
    expect(out.r).toMatchObject({
      startTimeMs: utc(2020, 11, 25, 21, 26, 18, 409),
      responseCode: 418,
      responseCodeDetails: 'via_upstream',
      connectionTerminationDetails: '',
      upstreamTransportFailureReason: '',
      routeName: 'default',
      reporter: 'source',
      destinationHost: 'httpbin.foo.svc.cluster.local',
      destinationService: 'httpbin',
      destinationNamespace: 'foo',
      destinationSubset: '',
      destinationPort: 8000,
      requestId: '84961386-6d84-929d-98bd-c5aee93b5c88',
      sourceAddress: '10.44.1.23:46520',
    });
    const inb = parsed('istio-1.9-text.log', 1);
    expect(inb.r).toMatchObject({
      reporter: 'destination',
      upstreamCluster: 'inbound|8000||',
      destinationService: 'httpbin',
      destinationNamespace: 'foo',
      destinationPort: 8000,
      requestId: out.r.requestId,
      sourceAddress: '10.44.1.23:37652',
    });
  });

  it('inbound since 1.10: target port in the cluster, service port from the SNI (istio/istio#38213)', () => {
    const inb = parsed('istio-1.9-text.log', 3);
    expect(inb.r).toMatchObject({ upstreamCluster: 'inbound|80||', destinationPort: 8000, destinationService: 'httpbin', destinationNamespace: 'default', reporter: 'destination' });
    // Same request on the client side: the x-request-id joins the two.
    expect(parsed('istio-1.9-text.log', 2).r.requestId).toBe(inb.r.requestId);
  });

  it('keeps a quoted user agent with spaces and parentheses whole', () => {
    const { r } = parsed('istio-1.9-text.log', 4);
    expect(r.userAgent).toBe('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36');
    expect(r).toMatchObject({ authority: '192.168.0.100:31896', bytesSent: 5289, durationMs: 23, upstreamServiceTimeMs: 22, destinationService: 'productpage', destinationPort: 9080 });
  });

  it('a 4xx answered by the app is ok', () => {
    const { r } = parsed('istio-1.9-text.log', 5);
    expect(r).toMatchObject({ method: 'DELETE', path: '/status/404', responseCode: 404, outcome: 'ok', denyReason: '' });
  });

  it('a very long query string, NR route_not_found with no cluster, and a trailing blank', () => {
    const line = fixtureLine('istio-1.9-text.log', 6);
    expect(line.endsWith(' ')).toBe(true);
    const { layout, result } = parseIstioTextWithLayout(line);
    expect(layout).toBe('g3');
    const r = accepted(result);
    expect(r.path.startsWith('/realms/kubeflow/protocol/openid-connect/auth?approval_prompt=force&client_id=')).toBe(true);
    expect(r.path.endsWith('&state=yrD_380ezS299jLCYU4n135fR8Yhe07GQ9VNqOlf94E%3A%2F')).toBe(true);
    expect(r).toMatchObject({
      responseCode: 404,
      responseFlags: 'NR',
      responseCodeDetails: 'route_not_found',
      upstreamCluster: '',
      destinationAddress: '',
      // No cluster: the destination falls back to :authority, and a 404 is not an error.
      reporter: 'unknown',
      destinationHost: 'auth.kubefrog.fr',
      outcome: 'ok',
    });
  });

  it('TCP in the 1.9 layout: `"- - -" 0 - - - "-"`', () => {
    const egress = parsed('istio-1.9-text.log', 7);
    expect(egress.r).toMatchObject({ protocol: 'tcp', responseCode: 0, responseFlags: '', bytesReceived: 839, bytesSent: 2504837, destinationHost: 'edition.cnn.com', destinationPort: 443, requestedServerName: 'edition.cnn.com', outcome: 'ok' });
    const se = parsed('istio-1.9-text.log', 8);
    expect(se.r).toMatchObject({ protocol: 'tcp', durationMs: 30823, destinationHost: 'host.k3d.internal', destinationPort: 5432, reporter: 'source', outcome: 'ok' });
  });

  it('the examples of istio/istio#27903: via_upstream, filter_chain_not_found, `"- - HTTP/1.1"` DPE', () => {
    expect(parsed('istio-1.9-text.log', 9).r).toMatchObject({ responseCodeDetails: 'via_upstream', reporter: 'destination', destinationNamespace: 'foo', outcome: 'ok' });

    const nr = parsed('istio-1.9-text.log', 10);
    // Code 0 with NR (no filter chain: plaintext to a STRICT mTLS port): the mesh refused it, an error.
    expect(nr.r).toMatchObject({ protocol: 'tcp', responseCode: 0, responseFlags: 'NR', responseCodeDetails: 'filter_chain_not_found', upstreamCluster: '', outcome: 'error' });

    const dpe = parsed('istio-1.9-text.log', 11);
    expect(dpe.r).toMatchObject({ protocol: 'http', method: '', path: '', httpVersion: 'HTTP/1.1', responseCode: 400, responseFlags: 'DPE', responseCodeDetails: 'http1.codec_error', bytesSent: 11, outcome: 'ok' });
  });

  it('code 0 + UF,URX is an error (istio/istio#56356, InboundPassthroughCluster)', () => {
    const { r } = parsed('istio-1.9-text.log', 12);
    expect(r).toMatchObject({ responseCode: 0, responseFlags: 'UF,URX', durationMs: 9995, reporter: 'destination', upstreamCluster: 'InboundPassthroughCluster', outcome: 'error', denyReason: '' });
  });

  it('PassthroughCluster is a destination of its own', () => {
    expect(parsed('istio-1.9-text.log', 13).r).toMatchObject({ destinationHost: 'PassthroughCluster', destinationService: 'PassthroughCluster', destinationNamespace: '', reporter: 'source', outcome: 'ok' });
  });
});

describe('denials (CONTRACT §4)', () => {
  it('HTTP RBAC with no ALLOW match: `rbac_access_denied_matched_policy[none]` (istio/istio#27903)', () => {
    const { r } = parsed('denials.log', 0);
    expect(r).toMatchObject({
      responseCode: 403,
      responseFlags: '',
      upstreamCluster: '',
      // No cluster, but Istio's SNI names the service: this is the server side.
      reporter: 'destination',
      destinationService: 'httpbin',
      destinationNamespace: 'foo',
      destinationPort: 8000,
      outcome: 'denied',
      denyReason: 'rbac',
      policy: '',
      rule: -1,
    });
  });

  it('HTTP RBAC naming the DENY policy and rule: policy `ns/name`, rule index', () => {
    const { r } = parsed('denials.log', 1);
    expect(r).toMatchObject({ responseCode: 403, outcome: 'denied', denyReason: 'rbac', policy: 'foo/httpbin', rule: 0, requestId: '090a1897-d696-99b1-90f0-2673113ba258' });
  });

  it('inbound ≥1.8 with the SNI `outbound_.8080_.version-canary_.…` gives the subset the client routed to', () => {
    const { r } = parsed('denials.log', 2);
    expect(r).toMatchObject({
      reporter: 'destination',
      destinationHost: 'blue-green-canary.vm-blue-green-canary.svc.cluster.local',
      destinationService: 'blue-green-canary',
      destinationNamespace: 'vm-blue-green-canary',
      destinationSubset: 'version-canary',
      destinationPort: 8080,
      outcome: 'denied',
      denyReason: 'rbac',
      policy: '',
    });
  });

  it('strips the trailing `;` Istio ≥1.22 prints through %UPSTREAM_CLUSTER% (istio/istio#51861)', () => {
    const { r } = parsed('denials.log', 3);
    expect(r).toMatchObject({ upstreamCluster: 'inbound|8080||', reporter: 'destination', destinationService: 'svc-d', destinationNamespace: 'cnp-nginx', destinationPort: 8000, outcome: 'denied', denyReason: 'rbac' });
  });

  it('TCP RBAC: code 0 and the denial in CONNECTION_TERMINATION_DETAILS', () => {
    const none = parsed('denials.log', 4);
    expect(none.r).toMatchObject({ protocol: 'tcp', responseCode: 0, responseCodeDetails: '', connectionTerminationDetails: 'rbac_access_denied_matched_policy[none]', outcome: 'denied', denyReason: 'rbac', policy: '', rule: -1, destinationPort: 2209 });
    const named = parsed('denials.log', 5);
    expect(named.r).toMatchObject({ protocol: 'tcp', outcome: 'denied', denyReason: 'rbac', policy: 'foo/tcp-deny', rule: 2, destinationService: 'tcp-echo', destinationPort: 9000 });
  });

  it('ext_authz: UAEX + ext_authz_denied, whatever the code the authorizer chose (302 here)', () => {
    const { r } = parsed('denials.log', 6);
    expect(r).toMatchObject({ responseCode: 302, responseFlags: 'UAEX', responseCodeDetails: 'ext_authz_denied', httpVersion: 'HTTP/2', reporter: 'source', destinationService: 'centraldashboard', destinationNamespace: 'kubeflow', outcome: 'denied', denyReason: 'ext_authz' });
  });

  it('BlackHoleCluster over TCP (UH) and the HTTP face of it (502 from route block_all, cluster `-`)', () => {
    for (const i of [7, 9]) {
      const { r } = parsed('denials.log', i);
      expect(r).toMatchObject({ protocol: 'tcp', responseCode: 0, responseFlags: 'UH', upstreamCluster: 'BlackHoleCluster', destinationHost: 'BlackHoleCluster', destinationService: 'BlackHoleCluster', destinationNamespace: '', reporter: 'source', outcome: 'denied', denyReason: 'blackhole' });
    }
    const { r } = parsed('denials.log', 8);
    expect(r).toMatchObject({ method: 'HEAD', responseCode: 502, responseCodeDetails: 'direct_response', upstreamCluster: '', routeName: 'block_all', reporter: 'source', destinationHost: 'BlackHoleCluster', outcome: 'denied', denyReason: 'blackhole', authority: 'www.baidu.com' });
  });
});

describe('Passthrough and BlackHole destinations carry the port the line names (issue 9: they were port 0)', () => {
  it('PassthroughCluster: the port of %UPSTREAM_HOST%, the original destination Envoy connected to', () => {
    const cases: [string, number, number, Record<string, unknown>][] = [
      ['istio-1.5-text.log', 2, 443, { protocol: 'tcp', destinationAddress: '1.2.3.4:443' }],
      ['istio-1.5-text.log', 4, 80, { protocol: 'http', method: 'HEAD', responseCode: 301, routeName: 'allow_any', authority: 'apple.com' }],
      ['istio-1.9-text.log', 13, 443, { protocol: 'tcp' }],
      ['istio-1.9-text.log', 14, 80, { protocol: 'http', responseCode: 301, routeName: 'allow_any', authority: 'edition.cnn.com' }],
      ['istio-1.9-text.log', 15, 443, { protocol: 'tcp', requestedServerName: 'www.dropbox.com' }],
    ];
    for (const [file, i, port, more] of cases) {
      const { r } = parsed(file, i);
      expect({ file, i, ...r }).toMatchObject({ file, i, destinationHost: 'PassthroughCluster', reporter: 'source', outcome: 'ok', destinationPort: port, ...more });
    }
  });

  it('BlackHoleCluster and the block_all route: no upstream host, so the port of %DOWNSTREAM_LOCAL_ADDRESS%', () => {
    for (const [i, port] of [[7, 5432], [8, 80], [9, 443]] as const) {
      const { r } = parsed('denials.log', i);
      expect({ i, ...r }).toMatchObject({ i, destinationHost: 'BlackHoleCluster', destinationAddress: '', outcome: 'denied', denyReason: 'blackhole', destinationPort: port });
    }
  });

  it('leaves other destinations` ports to the cluster name', () => {
    // An outbound line whose downstream local address (the Service VIP port 8000) is not the cluster's port source.
    expect(parsed('istio-1.9-text.log', 0).r.destinationPort).toBe(8000);
    expect(parsed('istio-1.9-text.log', 6).r).toMatchObject({ upstreamCluster: '', destinationPort: 0 }); // NR, cluster `-`
  });
});

describe('plain Envoy default (13 tokens)', () => {
  it('parses the Envoy default format; without a cluster the destination comes from :authority', () => {
    const lines = fixtureLines('envoy-default-text.log');
    const expected = [
      { t: utc(2018, 11, 23, 4, 51, 0, 281), host: 'one.example.com', code: 200, sent: 58, ust: 1, ver: 'HTTP/1.1' },
      { t: utc(2016, 4, 15, 20, 17, 0, 310), host: 'locations', code: 204, sent: 0, ust: 100, ver: 'HTTP/2' },
      { t: utc(2021, 4, 14, 16, 36, 0, 361), host: 'localhost', code: 200, sent: 463, ust: 3, ver: 'HTTP/1.1' },
    ];
    lines.forEach((line, i) => {
      const { layout, result } = parseIstioTextWithLayout(line);
      expect(layout).toBe('envoy');
      const e = expected[i]!;
      expect(accepted(result)).toMatchObject({ startTimeMs: e.t, destinationHost: e.host, responseCode: e.code, bytesSent: e.sent, upstreamServiceTimeMs: e.ust, httpVersion: e.ver, reporter: 'unknown', upstreamCluster: '', outcome: 'ok' });
    });
    expect(accepted(parseIstioText(lines[1]!)).destinationAddress).toBe('tcp://10.0.2.1:80');
  });
});

describe('wrappers', () => {
  it('strips a stern tag, a kubectl --timestamps prefix, a kubectl --prefix tag and a trailing \\r', () => {
    const lines = fixtureLines('wrapped-text.log');
    const stern = accepted(parseIstioText(lines[0]!));
    expect(stern).toMatchObject({ startTimeMs: utc(2019, 11, 14, 19, 7, 0, 106), protocol: 'tcp', destinationService: 'postgresql-1-vm', bytesReceived: 260 });

    // The event time is the access log's own, not kubectl's.
    const ts = parseIstioTextWithLayout(lines[1]!);
    expect(ts.layout).toBe('g3');
    expect(accepted(ts.result)).toMatchObject({ startTimeMs: utc(2022, 4, 1, 3, 23, 12, 736), reporter: 'source', destinationService: 'httpbin' });

    expect(accepted(parseIstioText(lines[2]!))).toMatchObject({ reporter: 'destination', upstreamCluster: 'inbound|80||' });

    expect(lines[3]!.endsWith('\r')).toBe(true);
    expect(accepted(parseIstioText(lines[3]!))).toMatchObject({ routeName: 'default', reporter: 'source' });

    // kubectl --timestamps around an istio-agent line is still not an access log.
    expect(rejection(parseIstioText(lines[4]!)).reason).toBe('not_an_access_log');
  });
});

describe('rejections of real lines', () => {
  const lines = fixtureLines('rejected-text.log');

  it('istio-agent and Envoy application log lines are not access logs', () => {
    expect(rejection(parseIstioText(lines[0]!))).toMatchObject({ reason: 'not_an_access_log' }); // tab-separated
    expect(rejection(parseIstioText(lines[1]!))).toMatchObject({ reason: 'not_an_access_log' }); // tabs pasted as spaces
    expect(rejection(parseIstioText(lines[2]!))).toMatchObject({ reason: 'not_an_access_log' }); // [time][thread][level]
  });

  it('lines that match no default layout are rejected, never forced', () => {
    // 19 tokens with the 1.9 details columns: a damaged paste (fields missing).
    expect(rejection(parseIstioText(lines[3]!)).reason).toBe('unknown_layout');
    // A custom Envoy format with %RESPONSE_CODE_DETAILS% (14 tokens), behind a docker compose tag.
    expect(rejection(parseIstioText(lines[4]!)).reason).toBe('unknown_layout');
    // 20 tokens: mixer column and route name but no transport-failure column.
    expect(rejection(parseIstioText(lines[5]!)).reason).toBe('unknown_layout');
  });

  it('bad timestamps and numbers are rejected with their own reasons', () => {
    const good = fixtureLine('istio-1.9-text.log', 0);
    expect(rejection(parseIstioText(good.replace('2020-11-25T21:26:18.409Z', '2020-02-30T21:26:18.409Z'))).reason).toBe('invalid_timestamp');
    expect(rejection(parseIstioText(good.replace('2020-11-25T21:26:18.409Z', '2020/11/25T21:26:18.409'))).reason).toBe('invalid_timestamp');
    // A space inside the brackets is one more token: the shape no longer matches a layout.
    expect(rejection(parseIstioText(good.replace('2020-11-25T21:26:18.409Z', '2020-11-25 21:26:18.409'))).reason).toBe('unknown_layout');
    expect(rejection(parseIstioText(good.replace('"-" 0 135 4 4', '"-" 0 13.5 4 4'))).reason).toBe('invalid_number');
    expect(rejection(parseIstioText(good.replace('"-" 0 135 4 4', '"-" 0 135 4 4ms'))).reason).toBe('invalid_number');
    expect(rejection(parseIstioText(good.replace('418 - via_upstream', '4180 - via_upstream'))).reason).toBe('invalid_number');
    // An unset upstream service time is `-`, not a number.
    expect(accepted(parseIstioText(good.replace('"-" 0 135 4 4', '"-" 0 135 4 -'))).upstreamServiceTimeMs).toBe(-1);
  });

  it('empty lines, lone brackets and unterminated quotes', () => {
    for (const l of ['', '   ', '\r\n', '[', '[]', '[2020-11-25T21:26:18.409Z] "GET / HTTP/1.1', '{"start_time": "x"}']) {
      const r = parseIstioText(l);
      expect(r.ok).toBe(false);
      expect(isWellFormedRejection(r)).toBe(true);
    }
  });
});

describe('parseRfc3339Millis', () => {
  it('agrees with Date.parse on the fast path (Envoy %START_TIME%) across the plausible range', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1970-01-01T00:00:00.000Z'), max: new Date('2999-12-31T23:59:59.999Z'), noInvalidDate: true }), (d) => {
        const s = d.toISOString();
        expect(parseRfc3339Millis(s)).toBe(d.getTime());
      }),
    );
  });

  it('handles the general RFC 3339 forms arithmetically', () => {
    expect(parseRfc3339Millis('2026-03-14T09:26:53Z')).toBe(utc(2026, 3, 14, 9, 26, 53, 0));
    expect(parseRfc3339Millis('2026-03-14T09:40:02.118374905Z')).toBe(utc(2026, 3, 14, 9, 40, 2, 118)); // Hubble ns
    expect(parseRfc3339Millis('2026-03-14t09:26:53.5z')).toBe(utc(2026, 3, 14, 9, 26, 53, 500));
    expect(parseRfc3339Millis('2026-03-14T15:26:53.589+06:00')).toBe(utc(2026, 3, 14, 9, 26, 53, 589));
    expect(parseRfc3339Millis('2026-03-14T04:26:53.589-05:00')).toBe(utc(2026, 3, 14, 9, 26, 53, 589));
    expect(parseRfc3339Millis('2024-02-29T00:00:00.000Z')).toBe(utc(2024, 2, 29, 0, 0, 0, 0));
    expect(parseRfc3339Millis('2000-02-29T00:00:00.000Z')).toBe(utc(2000, 2, 29, 0, 0, 0, 0));
    expect(parseRfc3339Millis('xx2026-03-14T09:26:53.589Zyy', 2, 26)).toBe(utc(2026, 3, 14, 9, 26, 53, 589));
  });

  it('rejects impossible and implausible times', () => {
    for (const s of [
      '2023-02-29T00:00:00.000Z', // not a leap year
      '2100-02-29T00:00:00.000Z', // century rule
      '2026-13-01T00:00:00.000Z',
      '2026-00-10T00:00:00.000Z',
      '2026-04-31T00:00:00.000Z',
      '2026-03-14T24:00:00.000Z',
      '2026-03-14T09:60:00.000Z',
      '2026-03-14T09:26:61.000Z',
      '1969-12-31T23:59:59.999Z',
      '3000-01-01T00:00:00.000Z',
      '2026-03-14T09:26:53.589',
      '2026-03-14T09:26:53.Z',
      '2026-03-14T09:26:53.1234567891Z',
      '2026-03-14T09:26:53.589+0600',
      '2026-03-14T09:26:53.589+24:00',
      '2026-3-14T09:26:53.589Z',
      '2026-03-14 09:26:53.589Z',
      '２０２６-03-14T09:26:53.589Z',
      '',
    ]) {
      expect(parseRfc3339Millis(s)).toBeNaN();
    }
  });
});

describe('scanUint', () => {
  it('reads digits, `-` as unset, and refuses everything else', () => {
    expect(scanUint('x1234y', 1, 5)).toBe(1234);
    expect(scanUint('-', 0, 1)).toBe(-1);
    for (const s of ['', '+1', '-1', '1e3', '0x10', '1.0', ' 1', '１', '9999999999999999']) expect(scanUint(s, 0, s.length)).toBe(-2);
  });
});

describe('generated lines of every layout round-trip', () => {
  // Field values as Envoy prints them: no spaces in unquoted fields, no `" ` inside quoted ones.
  const word = fc.stringMatching(/^[A-Za-z0-9._:/|%{}[\],=-]{1,24}$/).filter((s) => s !== '-');
  const quoted = fc.stringMatching(/^[A-Za-z0-9 ._:/;()=-]{1,40}$/).filter((s) => s !== '-' && !s.startsWith(' ') && !s.endsWith(' ') && !s.includes('  '));
  const uint = fc.integer({ min: 0, max: 2 ** 40 });
  const fields = fc.record({
    t: fc.date({ min: new Date('1990-01-01T00:00:00.000Z'), max: new Date('2999-01-01T00:00:00.000Z'), noInvalidDate: true }),
    method: fc.constantFrom('GET', 'POST', 'DELETE', 'PATCH'),
    path: fc.stringMatching(/^\/[A-Za-z0-9._~%?&=/-]{0,60}$/),
    proto: fc.constantFrom('HTTP/1.1', 'HTTP/2', 'HTTP/1.0'),
    code: fc.integer({ min: 100, max: 599 }),
    flags: fc.constantFrom('-', 'UF', 'UF,URX', 'NR', 'DC', 'UH'),
    details: word,
    utfr: quoted,
    recv: uint,
    sent: uint,
    dur: uint,
    ust: fc.option(uint, { nil: undefined }),
    ua: quoted,
    id: fc.uuid(),
    authority: word,
    host: word,
    port: fc.integer({ min: 1, max: 65535 }),
    subset: fc.constantFrom('', 'v1', 'canary'),
    svc: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
    ns: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  });

  it('G3, G2 1.3, G2 1.2, G1 + mixer and G1 lines give back their fields', () => {
    fc.assert(
      fc.property(fields, fc.constantFrom('g3', 'g2_13', 'g2_12', 'g1m', 'g1'), (f, layout) => {
        const fqdn = `${f.svc}.${f.ns}.svc.cluster.local`;
        const head = `[${f.t.toISOString()}] "${f.method} ${f.path} ${f.proto}" ${f.code} ${f.flags}`;
        const mid =
          layout === 'g3' ? ` ${f.details} - "${f.utfr}"` : layout === 'g2_13' || layout === 'g2_12' ? ` "-" "${f.utfr}"` : layout === 'g1m' ? ' "-"' : '';
        const tail =
          ` ${f.recv} ${f.sent} ${f.dur} ${f.ust ?? '-'} "-" "${f.ua}" "${f.id}" "${f.authority}" "${f.host}"` +
          ` outbound|${f.port}|${f.subset}|${fqdn} 10.0.0.1:1234 10.0.0.2:${f.port} 10.0.0.1:5678 -` +
          (layout === 'g3' || layout === 'g2_13' ? ' default' : '');
        const { layout: got, result } = parseIstioTextWithLayout(head + mid + tail);
        expect(got).toBe(layout);
        const r = accepted(result);
        expect(r).toMatchObject({
          startTimeMs: f.t.getTime(),
          method: f.method,
          path: f.path,
          httpVersion: f.proto,
          responseCode: f.code,
          bytesReceived: f.recv,
          bytesSent: f.sent,
          durationMs: f.dur,
          upstreamServiceTimeMs: f.ust ?? -1,
          userAgent: f.ua,
          requestId: f.id,
          authority: f.authority,
          destinationAddress: f.host,
          reporter: 'source',
          destinationService: f.svc,
          destinationNamespace: f.ns,
          destinationSubset: f.subset,
          destinationPort: f.port,
          routeName: layout === 'g3' || layout === 'g2_13' ? 'default' : '',
        });
        expect(r.responseCodeDetails).toBe(layout === 'g3' ? f.details : '');
        expect(r.upstreamTransportFailureReason).toBe(layout === 'g3' || layout.startsWith('g2') ? f.utfr : '');
        expect(isSaneRecord(r)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });
});
