/**
 * JSON-array bodies (Fluent Bit `Format json`, Vector's `json` codec) go through the object entry points: each
 * element decoded once with the body is parsed as it is, and gets exactly what its JSON text gets as an NDJSON
 * line (records, reply, dead letters), without being written out and parsed again.
 */
import { Registry } from 'prom-client';
import { TOPICS, type Bus, type BusMessage, type Topic } from '../../lib/bus';
import type { MeshRequest } from '../../lib/model';
import { parseAccessLogLine, parseAccessLogObject } from './formats/accesslog';
import { fixtureLines } from './formats/accesslog.testutil';
import { parseFlowLine, parseFlowObject } from './formats/flows';
import { fixtureLines as flowFixtureLines } from './formats/flows.testutil';
import { createIngestMetrics } from './metrics';
import { IngestPipeline, type IngestReply, type LineParser, type ObjectParser } from './pipeline';

const NOW = Date.UTC(2026, 2, 14, 12, 0, 0);
const YEAR_MS = 365 * 24 * 3600 * 1000;

interface Published {
  topic: string;
  messages: BusMessage<unknown>[];
}

/** A pipeline over a bus that only records what it is given. */
function pipeline(): { pipeline: IngestPipeline; published: Published[] } {
  const published: Published[] = [];
  const bus = {
    publish: async <T>(topic: Topic<T>, messages: BusMessage<T>[]): Promise<void> => {
      published.push({ topic: topic.name, messages: messages as BusMessage<unknown>[] });
    },
  } as unknown as Bus;
  // Fixture lines are from 2019-2022: a retention of 20 years takes them; a 1990 record is still too old.
  const p = new IngestPipeline(bus, createIngestMetrics(new Registry()), { bounds: { maxAgeMs: 20 * YEAR_MS, maxAheadMs: 600_000 }, now: () => NOW });
  return { pipeline: p, published };
}

/** Compact JSON text, as JSON.stringify writes an element: the NDJSON line the element stands for. */
const compact = (line: string): string => JSON.stringify(JSON.parse(line));

function isJson(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}

/** The same records as an NDJSON body and as a JSON array (objects for JSON lines, strings for the others). */
async function bothWays<T extends { startTimeMs: number; destinationHost: string }>(
  lines: string[],
  parse: LineParser<T>,
  parseObject: ObjectParser<T>,
  topic: Topic<T[]>,
): Promise<{ ndjson: { reply: IngestReply; published: Published[] }; array: { reply: IngestReply; published: Published[] } }> {
  const a = pipeline();
  const ndjson = { reply: await a.pipeline.lines('accesslog', Buffer.from(lines.join('\n')), parse, topic, keyOf), published: a.published };
  const b = pipeline();
  const items: unknown[] = JSON.parse(`[${lines.map((l) => (l.startsWith('{') ? l : JSON.stringify(l))).join(',')}]`);
  const array = { reply: await b.pipeline.jsonArray('accesslog', items, parse, parseObject, topic, keyOf), published: b.published };
  return { ndjson, array };
}

function keyOf(r: { destinationHost: string }): string {
  return r.destinationHost;
}

describe('JSON-array bodies', () => {
  const jsonFiles = ['istio-json-typed.ndjson', 'istio-json-strings.ndjson', 'fluentbit-envelope.ndjson', 'vector-envelope.ndjson', 'rejected-json.ndjson'];
  const textFiles = ['istio-1.9-text.log', 'istio-1.5-text.log', 'denials.log', 'rejected-text.log'];
  const jsonLines = jsonFiles.flatMap((f) => fixtureLines(f)).filter((l) => l.trim().startsWith('{') && isJson(l)).map(compact);
  const textLines = textFiles.flatMap((f) => fixtureLines(f)).filter((l) => l.trim() !== '' && !l.includes('\r'));
  const typed = JSON.parse(fixtureLines('istio-json-typed.ndjson')[0]!) as Record<string, unknown>;
  const odd = [
    // Over the line limit as JSON text: refused whole, as the line would be.
    JSON.stringify({ ...typed, path: '/' + 'a'.repeat(70_000) }),
    // Older than the retention: its dead letter keeps the element's JSON, as it kept the line.
    JSON.stringify({ ...typed, start_time: '1990-01-01T00:00:00.000Z' }),
    // An extra key kept as an attribute, and a record that is no access log.
    JSON.stringify({ ...typed, grpc_status: 14 }),
    JSON.stringify({ hello: 'world' }),
  ];

  it('give the access-log records, replies and dead letters an NDJSON body of the same lines gives', async () => {
    // The odd ones first: a reply lists the first errors only.
    const lines = [...odd, ...jsonLines, ...textLines];
    expect(jsonLines.length).toBeGreaterThan(10);
    const { ndjson, array } = await bothWays<MeshRequest>(lines, parseAccessLogLine, parseAccessLogObject, TOPICS.requests);
    expect(array.reply).toEqual(ndjson.reply);
    expect(array.published).toEqual(ndjson.published);
    expect(ndjson.reply.accepted).toBeGreaterThan(20);
    expect(ndjson.reply.errors.map((e) => e.reason)).toEqual(expect.arrayContaining(['line_too_long', 'too_old']));
  });

  it('give the flow records, replies and dead letters an NDJSON body of the same lines gives', async () => {
    const files = ['hubble.ndjson', 'hubble-derived.ndjson', 'calico-enterprise.ndjson', 'calico-goldmane.ndjson'];
    const lines = [...files.flatMap((f) => flowFixtureLines(f)).filter(isJson).map(compact), '{"neither":"hubble nor calico"}', '{"flow":{"verdict":7}}'];
    const { ndjson, array } = await bothWays(lines, parseFlowLine, parseFlowObject, TOPICS.flows);
    expect(array.reply).toEqual(ndjson.reply);
    expect(array.published).toEqual(ndjson.published);
    expect(ndjson.reply.accepted).toBeGreaterThan(5);
  });

  it('parse object elements as they are: no element is written back out as JSON', async () => {
    const items = JSON.parse(`[${jsonLines.join(',')}]`) as unknown[];
    const { pipeline: p } = pipeline();
    const stringify = jest.spyOn(JSON, 'stringify');
    try {
      const reply = await p.jsonArray('accesslog', items, parseAccessLogLine, parseAccessLogObject, TOPICS.requests, keyOf);
      expect(reply.accepted).toBeGreaterThan(10);
      // Rejected elements are written out once, for their dead letters; accepted ones never.
      const written = stringify.mock.calls.filter((call) => items.includes(call[0]));
      expect(written.length).toBe(reply.rejected);
    } finally {
      stringify.mockRestore();
    }
  });

  it('refuse elements that are not objects as they always did, and one nested too deeply to write without failing the body', async () => {
    let deep: unknown = 1;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    const { pipeline: p } = pipeline();
    const reply = await p.jsonArray('accesslog', [42, null, [1, 2], deep, JSON.parse(jsonLines[0]!)], parseAccessLogLine, parseAccessLogObject, TOPICS.requests, keyOf);
    expect(reply).toMatchObject({ accepted: 1, rejected: 4 });
    expect(reply.errors.map((e) => e.line)).toEqual([1, 2, 3, 4]);
  });
});

describe('newline-delimited bodies in chunks', () => {
  // A body arrives in the chunks the socket or the gunzip stream cut it into, anywhere: inside a line, between
  // `\r` and `\n`, inside a UTF-8 sequence. The lines and their numbers must be the same as in one piece.
  const typed = JSON.parse(fixtureLines('istio-json-typed.ndjson')[0]!) as Record<string, unknown>;
  const lines = [
    JSON.stringify({ ...typed, path: '/søk?q=ünïcødé-€-𝄞' }),
    '',
    ...fixtureLines('istio-1.9-text.log').slice(0, 3),
    '   ',
    JSON.stringify({ hello: 'world' }),
    JSON.stringify({ ...typed, user_agent: 'ok' }),
  ];
  const body = Buffer.from(lines.join('\r\n') + '\n');

  it('gives every split the records, replies and dead letters the whole body gives', async () => {
    const whole = pipeline();
    const want = { reply: await whole.pipeline.lines('accesslog', body, parseAccessLogLine, TOPICS.requests, keyOf), published: whole.published };
    expect(want.reply.accepted).toBeGreaterThan(3);
    expect(want.reply.rejected).toBe(1);
    const sizes = [1, 2, 3, 7, 64, 333];
    for (const size of sizes) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < body.length; i += size) chunks.push(body.subarray(i, i + size));
      const split = pipeline();
      const got = { reply: await split.pipeline.lines('accesslog', chunks, parseAccessLogLine, TOPICS.requests, keyOf), published: split.published };
      expect(got).toEqual(want);
    }
  });

  it('takes a last line without a newline, and an empty body', async () => {
    const a = pipeline();
    const reply = await a.pipeline.lines('accesslog', [body.subarray(0, body.length - 2), Buffer.alloc(0)], parseAccessLogLine, TOPICS.requests, keyOf);
    expect(reply.accepted + reply.rejected).toBe(lines.filter((l) => l.trim() !== '').length);
    const empty = await pipeline().pipeline.lines('accesslog', [], parseAccessLogLine, TOPICS.requests, keyOf);
    expect(empty).toEqual({ accepted: 0, rejected: 0, errors: [] });
  });
});
