/**
 * Hostile bodies on every receiver, gRPC included (issue 9 "Nothing silent", CONTRACT §3 and §9): garbage,
 * broken and oversized compression, unsupported types and encodings, overlong lines, deep nesting,
 * `__proto__` keys, OTLP/JSON with the pre-1.0 field names, undecodable protobuf, empty bodies. For each:
 * the documented status, never a 2xx for something unusable, never a 5xx, rejected records counted by reason
 * in /metrics, the process stays up and ready, and a valid record sent afterwards is stored.
 *
 * OTLP answers a decodable request whose records are all unusable either 400 or, as the OTLP spec's partial
 * success allows, 200 with `partialSuccess` naming every record rejected; both say "rejected", neither takes
 * anything. A body whose shape is not understood at all (the pre-1.0 names) has no records to name: 400.
 *
 * Baseline 2bc1333: OTLP/HTTP JSON with `instrumentationLibraryLogs` + `logs` → 200 `{}` with nothing stored
 * or counted (dropped without a word); with `logRecords`, and `instrumentationLibrarySpans`, → 200 `{}` and
 * stored as if current; Zipkin `[[[…20,000 deep…]]]` → 500 "internal error". The other receivers already
 * answered every case as documented there; their tests stay as guards while the receivers are rewritten.
 */
import {
  GRPC,
  grpcExport,
  periodOf,
  request,
  scrape,
  startMeshlens,
  storedRequests,
  settle,
  sum,
  useFaultHarness,
  type HttpResult,
  type IngestReply,
  type Meshlens,
  type Sample,
} from './support';
import {
  accessLogBody,
  brotli,
  deepArrays,
  deepOtlpLogsJson,
  deepOtlpLogsProtobuf,
  deepOtlpTracesJson,
  gzipBomb,
  hubbleFlow,
  otlpLogsJson,
  otlpLogsProtobuf,
  otlpTracesJson,
  otlpTracesProtobuf,
  overlongLine,
  preOneZeroLogs,
  preOneZeroTraces,
  protoSmuggledFlow,
  protoSmuggledLine,
  protoSmuggledOtlpLogs,
  protoSmuggledOtlpTraces,
  protoSmuggledZipkin,
  rejectedInOtlpResponse,
  seededBytes,
  storedFlows,
  storedSpanCalls,
  truncatedGzip,
  truncatedProtobuf,
  zipkinSpans,
} from './records';

useFaultHarness();

/** A small body limit, so a bomb of a few KiB crosses it once inflated. */
const BODY_LIMIT = 1024 * 1024;
const BOMB = gzipBomb(16 * BODY_LIMIT);
/** Deep enough to overflow any recursive walk on Node's default stack, small enough to stay under the limit. */
const DEPTH = 20_000;

let m: Meshlens;
const t0 = Date.now();
/** Services that only refused bodies named (smuggled under `__proto__`, pre-1.0 names): nothing may be stored for them. */
const smuggled: { service: string; read: 'requests' | 'flows' | 'spans' }[] = [];

beforeAll(async () => {
  m = await startMeshlens({ scope: 'file', env: { MESHLENS_MAX_BODY_BYTES: String(BODY_LIMIT) } });
}, 90_000);

type Expect =
  /** Rejected whole or record by record: 400 (OTLP: or 200 whose partialSuccess rejects every record), counted. */
  | 'rejected'
  /** Strictly 400 with a reason, counted (no partial success: there are no records to name). */
  | 'rejected400'
  /** Compression that does not decode: 400. */
  | 'bad_encoding'
  | 'too_large'
  | 'unsupported'
  /** Nothing in it: a 2xx that takes nothing, or a 400. */
  | 'empty';

interface Case {
  name: string;
  body: string | Buffer;
  headers?: Record<string, string>;
  expect: Expect;
}

interface HttpReceiver {
  name: string;
  /** `receiver` label of the ingest metrics. */
  label: 'accesslog' | 'flows' | 'otlp_http' | 'zipkin';
  url: () => string;
  contentType: string;
  /** Record-level 2xx reply shape: meshlens's `{accepted, rejected}` or OTLP's `partialSuccess`. */
  reply: 'meshlens' | 'otlp-logs' | 'otlp-traces';
  valid: (service: string, t: number) => string | Buffer;
  stored: (service: string) => Promise<number>;
  read: 'requests' | 'flows' | 'spans';
  extra: (t: number) => Case[];
}

const period = () => periodOf([t0, Date.now()]);
const readers = {
  requests: (service: string) => storedRequests(m, service, period()),
  flows: (service: string) => storedFlows(m, service, period()),
  spans: (service: string) => storedSpanCalls(m, service, period()),
};

function commonCases(r: HttpReceiver, t: number): Case[] {
  const valid = r.valid('never-stored', t);
  return [
    { name: 'random bytes', body: seededBytes(4096), expect: 'rejected' },
    { name: 'truncated gzip', body: truncatedGzip(valid), headers: { 'content-encoding': 'gzip' }, expect: 'bad_encoding' },
    { name: 'gzip bomb', body: BOMB, headers: { 'content-encoding': 'gzip' }, expect: 'too_large' },
    { name: 'wrong content type', body: valid, headers: { 'content-type': 'text/csv' }, expect: 'unsupported' },
    { name: 'content-encoding br', body: brotli(valid), headers: { 'content-encoding': 'br' }, expect: 'unsupported' },
    { name: 'empty body', body: '', expect: 'empty' },
  ];
}

function smuggle(service: string, read: 'requests' | 'flows' | 'spans'): string {
  smuggled.push({ service, read });
  return service;
}

const HTTP_RECEIVERS: HttpReceiver[] = [
  {
    name: 'POST /v1/accesslogs (NDJSON)',
    label: 'accesslog',
    url: () => `${m.base}/v1/accesslogs`,
    contentType: 'application/x-ndjson',
    reply: 'meshlens',
    valid: (s, t) => accessLogBody(s, t),
    stored: readers.requests,
    read: 'requests',
    extra: (t) => [
      { name: 'a line over the per-line limit', body: overlongLine('never-stored', t) + '\n', expect: 'rejected' },
      { name: 'deeply nested JSON', body: deepArrays(DEPTH) + '\n', expect: 'rejected' },
      { name: '__proto__ carrying a record', body: protoSmuggledLine(smuggle('smuggled-accesslog', 'requests'), t) + '\n', expect: 'rejected' },
    ],
  },
  {
    name: 'POST /v1/flows (NDJSON)',
    label: 'flows',
    url: () => `${m.base}/v1/flows`,
    contentType: 'application/x-ndjson',
    reply: 'meshlens',
    valid: (s, t) => hubbleFlow(s, t) + '\n',
    stored: readers.flows,
    read: 'flows',
    extra: (t) => [
      { name: 'deeply nested JSON', body: deepArrays(DEPTH) + '\n', expect: 'rejected' },
      { name: '__proto__ carrying a flow', body: protoSmuggledFlow(smuggle('smuggled-flows', 'flows'), t) + '\n', expect: 'rejected' },
    ],
  },
  {
    name: 'OTLP/HTTP /v1/logs JSON',
    label: 'otlp_http',
    url: () => `${m.otlpHttpBase}/v1/logs`,
    contentType: 'application/json',
    reply: 'otlp-logs',
    valid: (s, t) => otlpLogsJson(s, t),
    stored: readers.requests,
    read: 'requests',
    extra: (t) => [
      { name: 'pre-1.0 names (instrumentationLibraryLogs, logs)', body: preOneZeroLogs(smuggle('smuggled-pre10-logs', 'requests'), t, 'logs'), expect: 'rejected400' },
      { name: 'pre-1.0 names (instrumentationLibraryLogs, logRecords)', body: preOneZeroLogs(smuggle('smuggled-pre10-logrecords', 'requests'), t, 'logRecords'), expect: 'rejected400' },
      { name: 'deeply nested AnyValue', body: deepOtlpLogsJson(DEPTH), expect: 'rejected' },
      { name: '__proto__ carrying a log record', body: protoSmuggledOtlpLogs(smuggle('smuggled-otlp-logs', 'requests'), t), expect: 'rejected' },
      {
        name: 'a log line over the per-line limit',
        body: JSON.stringify({ resourceLogs: [{ resource: { attributes: [] }, scopeLogs: [{ logRecords: [{ body: { stringValue: overlongLine('never-stored', t) } }] }] }] }),
        expect: 'rejected',
      },
    ],
  },
  {
    name: 'OTLP/HTTP /v1/logs protobuf',
    label: 'otlp_http',
    url: () => `${m.otlpHttpBase}/v1/logs`,
    contentType: 'application/x-protobuf',
    reply: 'otlp-logs',
    valid: (s, t) => otlpLogsProtobuf(s, t),
    stored: readers.requests,
    read: 'requests',
    extra: () => [
      { name: 'truncated protobuf', body: truncatedProtobuf(), expect: 'rejected' },
      { name: 'deeply nested AnyValue', body: deepOtlpLogsProtobuf(3_000), expect: 'rejected' },
    ],
  },
  {
    name: 'OTLP/HTTP /v1/traces JSON',
    label: 'otlp_http',
    url: () => `${m.otlpHttpBase}/v1/traces`,
    contentType: 'application/json',
    reply: 'otlp-traces',
    valid: (s, t) => otlpTracesJson(s, t),
    stored: readers.spans,
    read: 'spans',
    extra: (t) => [
      { name: 'pre-1.0 field names (instrumentationLibrarySpans)', body: preOneZeroTraces(smuggle('smuggled-pre10-traces', 'spans'), t), expect: 'rejected400' },
      { name: 'deeply nested attribute', body: deepOtlpTracesJson(DEPTH), expect: 'rejected' },
      { name: '__proto__ carrying a span', body: protoSmuggledOtlpTraces(smuggle('smuggled-otlp-traces', 'spans'), t), expect: 'rejected' },
    ],
  },
  {
    name: 'OTLP/HTTP /v1/traces protobuf',
    label: 'otlp_http',
    url: () => `${m.otlpHttpBase}/v1/traces`,
    contentType: 'application/x-protobuf',
    reply: 'otlp-traces',
    valid: (s, t) => otlpTracesProtobuf(s, t),
    stored: readers.spans,
    read: 'spans',
    extra: () => [{ name: 'truncated protobuf', body: truncatedProtobuf(), expect: 'rejected' }],
  },
  {
    name: 'Zipkin /api/v2/spans',
    label: 'zipkin',
    url: () => `${m.zipkinBase}/api/v2/spans`,
    contentType: 'application/json',
    reply: 'meshlens',
    valid: (s, t) => zipkinSpans(s, t),
    stored: readers.spans,
    read: 'spans',
    extra: (t) => [
      { name: 'deeply nested JSON', body: `[${deepArrays(DEPTH)}]`, expect: 'rejected' },
      { name: '__proto__ carrying a span', body: protoSmuggledZipkin(smuggle('smuggled-zipkin', 'spans'), t), expect: 'rejected' },
    ],
  },
];

async function rejectedCounts(): Promise<Sample[]> {
  return (await scrape(m)).filter((s) => s.name === 'meshlens_ingest_rejected_records_total');
}

/** What a 2xx reply says was taken and refused. */
function takenAndRefused(r: HttpReceiver, res: HttpResult): { accepted: number | undefined; rejected: number } {
  if (r.reply === 'meshlens') {
    const j = res.json<IngestReply>();
    return { accepted: j.accepted, rejected: j.rejected };
  }
  // OTLP/HTTP: the reply is in the request's encoding; success carries only what was refused.
  const key = r.reply === 'otlp-logs' ? 'rejectedLogRecords' : 'rejectedSpans';
  if (r.contentType === 'application/json') {
    const text = res.text();
    const j = (text === '' ? {} : JSON.parse(text)) as { partialSuccess?: Record<string, number | string> };
    return { accepted: undefined, rejected: Number(j.partialSuccess?.[key] ?? 0) };
  }
  return { accepted: undefined, rejected: rejectedInOtlpResponse(res.body).rejected };
}

/**
 * Sends one hostile body and returns what is wrong with the answer (empty when nothing is), so one receiver's
 * test reports every case that misbehaves, not just the first.
 */
async function check(r: HttpReceiver, c: Case): Promise<string[]> {
  const before = await rejectedCounts();
  const res = await request(r.url(), { body: c.body, headers: { 'content-type': r.contentType, ...c.headers } });
  const after = await rejectedCounts();
  const what = `"${c.name}" → ${res.status} ${res.text().slice(0, 200)}`;
  const problems: string[] = [];
  const want = (ok: boolean, expected: string): void => {
    if (!ok) problems.push(`${what}: expected ${expected}`);
  };
  const ok2xx = res.status >= 200 && res.status < 300;
  const delta = (match: Record<string, string>) =>
    sum(after, 'meshlens_ingest_rejected_records_total', { receiver: r.label, ...match }) -
    sum(before, 'meshlens_ingest_rejected_records_total', { receiver: r.label, ...match });

  if (res.status >= 500) return [`${what}: expected no 5xx for bad input`];
  switch (c.expect) {
    case 'too_large':
      want(res.status === 413, '413');
      break;
    case 'unsupported':
      want(res.status === 415, '415');
      break;
    case 'bad_encoding':
      want(res.status === 400, '400');
      break;
    case 'empty':
      if (ok2xx) want((takenAndRefused(r, res).accepted ?? 0) === 0, 'a 2xx that takes nothing');
      else want(res.status === 400, '2xx or 400');
      break;
    case 'rejected400':
    case 'rejected': {
      if (ok2xx) {
        // Only OTLP's partial success may say "rejected" with a 2xx, and then it must refuse every record.
        const { accepted, rejected } = takenAndRefused(r, res);
        const partial = c.expect === 'rejected' && r.reply !== 'meshlens' && rejected >= 1 && (accepted ?? 0) === 0;
        want(partial, c.expect === 'rejected400' ? '400 with a reason' : '400, or an OTLP partialSuccess rejecting every record');
      } else {
        want(res.status === 400, '400');
      }
      // Counted, by reason: a line receiver names each reason in its reply, and each is a label on the counter.
      want(delta({}) >= 1, 'the rejection counted in meshlens_ingest_rejected_records_total');
      if (r.reply === 'meshlens' && res.status === 400) {
        const reply = res.json<IngestReply>();
        want(delta({}) === reply.rejected, `meshlens_ingest_rejected_records_total to grow by the ${reply.rejected} rejected`);
        for (const e of reply.errors) want(delta({ reason: e.reason }) >= 1, `reason="${e.reason}" counted`);
      }
      break;
    }
  }
  return problems;
}

async function stillServing(): Promise<void> {
  expect({ running: m.running, logs: m.running ? '' : m.logs() }).toEqual({ running: true, logs: '' });
  const ready = await request(`${m.base}/readyz`);
  expect({ readyz: ready.status, body: ready.text() }).toMatchObject({ readyz: 200 });
}

describe('hostile bodies on the HTTP receivers', () => {
  it.each(HTTP_RECEIVERS.map((r) => [r.name, r] as const))(
    '%s: documented statuses, no 2xx for junk, rejections counted, still serving, then a valid record is stored',
    async (_name, r) => {
      const t = Date.now();
      const problems: string[] = [];
      for (const c of [...commonCases(r, t), ...r.extra(t)]) problems.push(...(await check(r, c)));
      expect(problems).toEqual([]);
      await stillServing();

      const service = `after-${r.label}-${r.read}-${r.contentType.endsWith('json') ? 'json' : 'pb'}`.replace(/_/g, '-');
      const res = await request(r.url(), { body: r.valid(service, Date.now()), headers: { 'content-type': r.contentType } });
      expect({ status: res.status, body: res.text().slice(0, 300) }).toMatchObject({ status: expect.any(Number) });
      expect(res.status >= 200 && res.status < 300).toBe(true);
      expect(takenAndRefused(r, res).rejected).toBe(0);
      // Acknowledged means stored; the wait only covers code that stores a moment after replying.
      expect(await settle(() => r.stored(service), 1, 15_000)).toBe(1);
    },
    60_000,
  );
});

describe('hostile bodies on the OTLP/gRPC receiver', () => {
  it.each(['logs', 'traces'] as const)(
    '%s: INVALID_ARGUMENT for undecodable protobuf, RESOURCE_EXHAUSTED past the limit, counted, still serving, then a valid export is stored',
    async (service) => {
      const port = m.ports.otlpGrpc;
      const counted = async () => sum(await rejectedCounts(), 'meshlens_ingest_rejected_records_total', { receiver: 'otlp_grpc' });

      for (const [name, body] of [
        ['random bytes', seededBytes(4096)],
        ['truncated protobuf', truncatedProtobuf()],
      ] as const) {
        const before = await counted();
        const r = await grpcExport(port, service, body);
        expect({ name, code: r.code }).toEqual({ name, code: GRPC.INVALID_ARGUMENT });
        expect({ name, counted: (await counted()) - before >= 1 }).toEqual({ name, counted: true });
      }
      if (service === 'logs') {
        // Decodable, but the one record's body nests 3,000 deep: refused (INVALID_ARGUMENT, or OK whose
        // partial success rejects that record), counted, and the process survives the walk.
        const before = await counted();
        const r = await grpcExport(port, service, deepOtlpLogsProtobuf(3_000));
        if (r.code === GRPC.OK) expect(rejectedInOtlpResponse(r.response).rejected).toBe(1);
        else expect(r.code).toBe(GRPC.INVALID_ARGUMENT);
        expect((await counted()) - before).toBeGreaterThanOrEqual(1);
      }
      // Over MESHLENS_MAX_BODY_BYTES as sent, and as a small gzip message that inflates past it.
      expect((await grpcExport(port, service, Buffer.alloc(2 * BODY_LIMIT, 0x0a))).code).toBe(GRPC.RESOURCE_EXHAUSTED);
      expect((await grpcExport(port, service, Buffer.alloc(16 * BODY_LIMIT, 0), { gzip: true })).code).toBe(GRPC.RESOURCE_EXHAUSTED);
      // An empty ExportLogsServiceRequest is a valid request with no records.
      const empty = await grpcExport(port, service, Buffer.alloc(0));
      expect([GRPC.OK, GRPC.INVALID_ARGUMENT]).toContain(empty.code);
      await stillServing();

      const name = `after-grpc-${service}`;
      const body = service === 'logs' ? otlpLogsProtobuf(name, Date.now()) : otlpTracesProtobuf(name, Date.now());
      const ok = await grpcExport(port, service, body);
      expect({ code: ok.code, details: ok.details }).toEqual({ code: GRPC.OK, details: '' });
      expect(rejectedInOtlpResponse(ok.response).rejected).toBe(0);
      const read = service === 'logs' ? readers.requests : readers.spans;
      expect(await settle(() => read(name), 1, 15_000)).toBe(1);
    },
    60_000,
  );
});

describe('after every hostile body', () => {
  it('stored nothing of what it refused, and is still up and ready', async () => {
    expect(smuggled.length).toBeGreaterThan(0);
    // Refused bodies (wrong type, br, truncated gzip, overlong lines) carried valid records for this service.
    smuggled.push({ service: 'never-stored', read: 'requests' }, { service: 'never-stored', read: 'flows' }, { service: 'never-stored', read: 'spans' });
    const stored: string[] = [];
    for (const s of smuggled) {
      const n = await readers[s.read](s.service);
      if (n !== 0) stored.push(`${s.service}: ${n} ${s.read} stored`);
    }
    expect(stored).toEqual([]);
    await stillServing();
  }, 30_000);
});
