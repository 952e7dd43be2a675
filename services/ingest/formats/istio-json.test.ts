/**
 * Istio JSON access logs, both value styles, per fixture line (test/fixtures/accesslogs/*.ndjson;
 * provenance in test/fixtures/SOURCES.md).
 */
import fc from 'fast-check';
import { accepted, fixtureLine, fixtureLines, isSaneRecord, isWellFormedRejection, rejection } from './accesslog.testutil';
import { parseIstioJson, parseIstioJsonObject } from './istio-json';
import { parseIstioText } from './istio-text';

const utc = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number =>
  Date.UTC(y, mo - 1, d, h, mi, s, ms);

describe('all-strings style (`"-"` for unset)', () => {
  it('Istio 1.3, 23 keys: TCP connect failure, code 0 + UF,URX is an error (istio/istio#17139)', () => {
    const r = accepted(parseIstioJson(fixtureLine('istio-json-strings.ndjson', 0)));
    expect(r).toMatchObject({
      startTimeMs: utc(2019, 9, 17, 8, 33, 45, 970),
      protocol: 'tcp',
      method: '',
      responseCode: 0,
      responseFlags: 'UF,URX',
      durationMs: 10001,
      upstreamServiceTimeMs: -1,
      upstreamCluster: 'outbound|7600||keycloak-headless.our_ns.svc.cluster.local',
      reporter: 'source',
      destinationService: 'keycloak-headless',
      destinationNamespace: 'our_ns',
      destinationPort: 7600,
      outcome: 'error',
      denyReason: '',
    });
    // Known keys are not attributes; the unset mixer status is not kept either.
    expect(r.attributes).toEqual({});
  });

  it('code 0 + UO with no cluster is an error (istio/istio#18995)', () => {
    const r = accepted(parseIstioJson(fixtureLine('istio-json-strings.ndjson', 1)));
    expect(r).toMatchObject({ responseCode: 0, responseFlags: 'UO', upstreamCluster: '', reporter: 'unknown', destinationHost: 'unknown', sourceAddress: '10.72.106.197:59658', outcome: 'error' });
  });

  it('outbound with a DestinationRule subset in the cluster name; NR 404 with no cluster (yteraoka, Istio 1.4/1.5)', () => {
    const v1 = accepted(parseIstioJson(fixtureLine('istio-json-strings.ndjson', 2)));
    expect(v1).toMatchObject({
      startTimeMs: utc(2020, 3, 7, 16, 6, 58, 480),
      protocol: 'http',
      method: 'GET',
      path: '/headers?v=1',
      httpVersion: 'HTTP/1.1',
      responseCode: 200,
      bytesSent: 521,
      durationMs: 3,
      upstreamServiceTimeMs: 2,
      routeName: '.v1',
      reporter: 'source',
      destinationHost: 'httpbin-service.default.svc.cluster.local',
      destinationService: 'httpbin-service',
      destinationNamespace: 'default',
      destinationSubset: 'v1',
      destinationPort: 80,
      destinationAddress: '172.17.0.7:80',
      requestId: 'c463717a-a722-47c6-8ec1-ea8f90b9ea58',
      outcome: 'ok',
    });
    expect(accepted(parseIstioJson(fixtureLine('istio-json-strings.ndjson', 3))).destinationSubset).toBe('v2');
    const nr = accepted(parseIstioJson(fixtureLine('istio-json-strings.ndjson', 4)));
    expect(nr).toMatchObject({ responseCode: 404, responseFlags: 'NR', upstreamCluster: '', destinationHost: 'httpbin-service', outcome: 'ok' });
  });

  it('JSON-shaped TEXT template with extra keys kept as attributes (ssup2 blog, %UPSTREAM_CLUSTER_RAW%)', () => {
    const out = accepted(parseIstioJson(fixtureLine('istio-json-strings.ndjson', 5)));
    expect(out).toMatchObject({ responseCode: 200, responseCodeDetails: 'via_upstream', connectionTerminationDetails: '', reporter: 'source', destinationService: 'mock-server', destinationPort: 8080, outcome: 'ok' });
    expect(out.attributes).toEqual({ grpc_status: '-', upstream_request_attempt_count: '1', request_duration: '0', response_duration: '10' });

    const inb = accepted(parseIstioJson(fixtureLine('istio-json-strings.ndjson', 6)));
    expect(inb).toMatchObject({ reporter: 'destination', upstreamCluster: 'inbound|8080||', destinationService: 'mock-server', destinationNamespace: 'default', requestId: out.requestId });
  });

  it('5xx from the app is an error; DC with code 0 is not; UC and UO 503s are errors', () => {
    const lines = fixtureLines('istio-json-strings.ndjson');
    expect(accepted(parseIstioJson(lines[7]!))).toMatchObject({ responseCode: 503, responseFlags: '', responseCodeDetails: 'via_upstream', outcome: 'error' });
    expect(accepted(parseIstioJson(lines[8]!))).toMatchObject({ responseCode: 0, responseFlags: 'DC', responseCodeDetails: 'downstream_remote_disconnect', durationMs: 2966, outcome: 'ok' });
    expect(accepted(parseIstioJson(lines[9]!))).toMatchObject({ responseCode: 503, responseFlags: 'UC', reporter: 'destination', outcome: 'error' });
    expect(accepted(parseIstioJson(lines[10]!))).toMatchObject({ responseCode: 503, responseFlags: 'UO', destinationAddress: '', upstreamServiceTimeMs: -1, outcome: 'error' });
  });
});

describe('typed style (numbers and null)', () => {
  it('a typed inbound record, empty strings and nulls as unset (shardul.dev)', () => {
    const r = accepted(parseIstioJson(fixtureLine('istio-json-typed.ndjson', 0)));
    expect(r).toMatchObject({
      startTimeMs: utc(2022, 10, 23, 22, 15, 39, 663),
      responseCode: 200,
      bytesSent: 37,
      durationMs: 0,
      upstreamServiceTimeMs: 0,
      connectionTerminationDetails: '',
      upstreamTransportFailureReason: '',
      routeName: 'default',
      reporter: 'destination',
      destinationService: 'nginx',
      destinationNamespace: 'default',
      destinationPort: 80,
      outcome: 'ok',
    });
  });

  it('Istio 1.9.5 TCP to an unregistered host: every HTTP field null, no cluster (istio/istio#33281)', () => {
    const r = accepted(parseIstioJson(fixtureLine('istio-json-typed.ndjson', 1)));
    // This real record names no cluster, so it cannot be told from any other UH failure: it counts as an
    // error, not as a BlackHoleCluster denial (that needs `upstream_cluster: "BlackHoleCluster"`, line 4).
    expect(r).toMatchObject({ protocol: 'tcp', responseCode: 0, responseFlags: 'UH', durationMs: 8, upstreamCluster: '', requestId: '', outcome: 'error' });
  });

  it('denials in typed records: RBAC with policy and rule, ext_authz, BlackHoleCluster', () => {
    expect(accepted(parseIstioJson(fixtureLine('istio-json-typed.ndjson', 2)))).toMatchObject({ responseCode: 403, reporter: 'destination', destinationService: 'httpbin', outcome: 'denied', denyReason: 'rbac', policy: 'foo/httpbin', rule: 0 });
    expect(accepted(parseIstioJson(fixtureLine('istio-json-typed.ndjson', 3)))).toMatchObject({ responseCode: 302, responseFlags: 'UAEX', httpVersion: 'HTTP/2', outcome: 'denied', denyReason: 'ext_authz' });
    expect(accepted(parseIstioJson(fixtureLine('istio-json-typed.ndjson', 4)))).toMatchObject({ protocol: 'tcp', destinationHost: 'BlackHoleCluster', outcome: 'denied', denyReason: 'blackhole' });
  });

  it('PassthroughCluster and BlackHoleCluster records carry the port the record names (issue 9: they were port 0)', () => {
    const cases: [string, number, string, number][] = [
      ['istio-json-typed.ndjson', 4, 'BlackHoleCluster', 5432], // downstream_local_address only: no upstream host
      ['istio-json-typed.ndjson', 6, 'PassthroughCluster', 27017],
      ['istio-json-typed.ndjson', 7, 'PassthroughCluster', 3306],
      ['istio-json-strings.ndjson', 11, 'PassthroughCluster', 443],
    ];
    for (const [file, i, host, port] of cases) {
      const r = accepted(parseIstioJson(fixtureLine(file, i)));
      expect({ file, i, ...r }).toMatchObject({ file, i, protocol: 'tcp', reporter: 'source', destinationHost: host, destinationPort: port });
    }
  });

  it('strips the trailing `;` of upstream_cluster (istio/istio#54219) and matches the TEXT line it came from', () => {
    const fromJson = accepted(parseIstioJson(fixtureLine('istio-json-typed.ndjson', 5)));
    expect(fromJson.upstreamCluster).toBe('inbound|8000||');
    const fromText = accepted(parseIstioText(fixtureLine('istio-1.9-text.log', 9)));
    expect(fromJson).toEqual(fromText);
  });
});

describe('rejections', () => {
  it('malformed JSON and JSON that is not an object', () => {
    expect(rejection(parseIstioJson(fixtureLine('rejected-json.ndjson', 0))).reason).toBe('malformed_json');
    for (const s of ['', '{', '[]', '[{"start_time":"2020-10-29T03:22:16.126Z"}]', 'null', '42', '"x"', 'true']) {
      expect(rejection(parseIstioJson(s)).reason).toBe('malformed_json');
    }
  });

  it('a record without start_time is missing a field (the Mixer log entry of istio/istio.io#3133)', () => {
    expect(rejection(parseIstioJson(fixtureLine('rejected-json.ndjson', 1))).reason).toBe('missing_field');
    for (const st of ['null', '"-"', '""']) expect(rejection(parseIstioJson(`{"start_time":${st},"response_code":200}`)).reason).toBe('missing_field');
  });

  it('bad times and numbers', () => {
    const ok = JSON.parse(fixtureLine('istio-json-typed.ndjson', 0)) as Record<string, unknown>;
    expect(rejection(parseIstioJsonObject({ ...ok, start_time: '2022-10-23T25:15:39.663Z' })).reason).toBe('invalid_timestamp');
    expect(rejection(parseIstioJsonObject({ ...ok, start_time: 1666563339663 })).reason).toBe('invalid_timestamp');
    expect(rejection(parseIstioJsonObject({ ...ok, response_code: '2OO' })).reason).toBe('invalid_number');
    expect(rejection(parseIstioJsonObject({ ...ok, response_code: 1000 })).reason).toBe('invalid_number');
    expect(rejection(parseIstioJsonObject({ ...ok, bytes_sent: -1 })).reason).toBe('invalid_number');
    expect(rejection(parseIstioJsonObject({ ...ok, bytes_sent: 1.5 })).reason).toBe('invalid_number');
    expect(rejection(parseIstioJsonObject({ ...ok, duration: '12ms' })).reason).toBe('invalid_number');
    expect(rejection(parseIstioJsonObject({ ...ok, duration: true })).reason).toBe('invalid_number');
    expect(rejection(parseIstioJsonObject({ ...ok, upstream_service_time: 'n/a' })).reason).toBe('invalid_number');
    expect(rejection(parseIstioJsonObject({ ...ok, method: { verb: 'GET' } })).reason).toBe('invalid_field');
    // Unset numbers in either style.
    expect(accepted(parseIstioJsonObject({ ...ok, bytes_sent: '-', upstream_service_time: null })).bytesSent).toBe(0);
  });

  it("one record's attributes never show up in another's (records without any share one frozen object)", () => {
    const base = JSON.parse(fixtureLine('istio-json-typed.ndjson', 0)) as Record<string, unknown>;
    const mixer = accepted(parseIstioJsonObject({ ...base, istio_policy_status: 'UNAVAILABLE:no healthy upstream' }));
    const extra = accepted(parseIstioJsonObject({ ...base, grpc_status: '14' }));
    const plain = accepted(parseIstioJsonObject(base));
    expect(mixer.attributes).toEqual({ istio_policy_status: 'UNAVAILABLE:no healthy upstream' });
    expect(extra.attributes).toEqual({ grpc_status: '14' });
    expect(plain.attributes).toEqual({});
    expect(Object.isFrozen(plain.attributes)).toBe(true);
  });

  it('keeps odd extra keys as strings without touching the prototype', () => {
    const r = accepted(parseIstioJson('{"start_time":"2020-10-29T03:22:16.126Z","__proto__":{"polluted":"yes"},"n":1.5,"b":false,"o":{"a":[1,2]},"z":null}'));
    expect(Object.getPrototypeOf(r.attributes)).toBe(Object.prototype);
    expect(Object.keys(r.attributes).sort()).toEqual(['__proto__', 'b', 'n', 'o', 'z']);
    expect(r.attributes).toMatchObject({ n: '1.5', b: 'false', o: '{"a":[1,2]}', z: '' });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a value nested too deeply to stringify is a rejection, not a crash', () => {
    const deep = '{"start_time":"2020-10-29T03:22:16.126Z","x":' + '['.repeat(30000) + ']'.repeat(30000) + '}';
    const r = parseIstioJson(deep);
    expect(isWellFormedRejection(r)).toBe(true);
    if (!r.ok) expect(['invalid_field', 'malformed_json']).toContain(r.reason);
  });
});

describe('properties', () => {
  const KEYS = [
    'start_time', 'route_name', 'method', 'path', 'protocol', 'response_code', 'response_flags', 'response_code_details',
    'connection_termination_details', 'bytes_received', 'bytes_sent', 'duration', 'upstream_service_time', 'x_forwarded_for',
    'user_agent', 'request_id', 'authority', 'upstream_host', 'upstream_cluster', 'upstream_local_address',
    'downstream_local_address', 'downstream_remote_address', 'requested_server_name', 'upstream_transport_failure_reason',
    'istio_policy_status',
  ];
  const value = fc.oneof(
    fc.jsonValue(),
    fc.constantFrom('-', '', '0', '200', 'UF,URX', 'outbound|9080|v1|reviews.default.svc.cluster.local', 'inbound|9080||;', '2026-03-14T09:26:53.589Z', 'rbac_access_denied_matched_policy[ns[a]-policy[b]-rule[3]]'),
  );

  it('any object of Istio and other keys is parsed or rejected with a catalogued reason, never thrown', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string()), value, { maxKeys: 30 }), (obj) => {
        const r = parseIstioJsonObject(obj);
        expect(isWellFormedRejection(r)).toBe(true);
        if (r.ok) expect(isSaneRecord(r.value)).toBe(true);
        const viaText = parseIstioJson(JSON.stringify(obj));
        expect(viaText.ok).toBe(r.ok);
      }),
      { numRuns: 500 },
    );
  });

  it('reading Istio keys directly answers exactly as the walk in key order does', () => {
    // An empty `ignore` set sends a record through the walk (parseAnyKeys); without one, records of Istio keys
    // only are read key by key. Every answer, rejections and their messages included, must be the same.
    const typed = JSON.parse(fixtureLine('istio-json-typed.ndjson', 0)) as Record<string, unknown>;
    const near = fc.tuple(fc.subarray(KEYS), fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 3 }), fc.dictionary(fc.string(), value, { maxKeys: 1 }));
    const records = fc.oneof(
      fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string()), value, { maxKeys: 30 }),
      // Mostly valid records: a fixture's keys, some dropped, a few values replaced, now and then an extra key.
      near.map(([drop, replace, extra]) => {
        const o: Record<string, unknown> = { ...typed, ...replace, ...extra };
        for (const k of drop.slice(0, 3)) delete o[k];
        return o;
      }),
    );
    fc.assert(
      fc.property(records, (obj) => {
        expect(parseIstioJsonObject(obj)).toEqual(parseIstioJsonObject(obj, new Set()));
      }),
      { numRuns: 1000 },
    );
  });

  it('typed and all-strings renderings of the same record agree', () => {
    const record = fc.record({
      start: fc.date({ min: new Date('1990-01-01T00:00:00.000Z'), max: new Date('2999-01-01T00:00:00.000Z'), noInvalidDate: true }),
      code: fc.integer({ min: 0, max: 599 }),
      recv: fc.nat(),
      sent: fc.nat(),
      dur: fc.nat(),
      ust: fc.option(fc.nat(), { nil: null }),
      flags: fc.constantFrom('-', 'UF', 'UAEX', 'DC'),
      cluster: fc.constantFrom('outbound|9080|v2|reviews.default.svc.cluster.local', 'inbound|9080||', 'BlackHoleCluster', '-'),
    });
    fc.assert(
      fc.property(record, (f) => {
        const common = { start_time: f.start.toISOString(), method: 'GET', path: '/', protocol: 'HTTP/1.1', response_flags: f.flags, upstream_cluster: f.cluster };
        const typed = { ...common, response_code: f.code, bytes_received: f.recv, bytes_sent: f.sent, duration: f.dur, upstream_service_time: f.ust === null ? null : String(f.ust) };
        const strings = { ...common, response_code: String(f.code), bytes_received: String(f.recv), bytes_sent: String(f.sent), duration: String(f.dur), upstream_service_time: f.ust === null ? '-' : String(f.ust) };
        expect(accepted(parseIstioJsonObject(typed))).toEqual(accepted(parseIstioJsonObject(strings)));
      }),
    );
  });
});
