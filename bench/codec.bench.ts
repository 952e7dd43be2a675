/**
 * Bus codec micro-benchmark (issue 10, part 3): encode + decode µs per record and bytes per record of the
 * binary record codec against the JSON codec it replaces, on simulated Bookinfo telemetry parsed by the real
 * parsers. Not a test (jest only runs `*.test.ts`) and not part of `npm run bench`: a before/after check.
 *
 *   npx tsx bench/codec.bench.ts [--body=1000] [--records=60000] [--rounds=9] [--seed=7] [--only=spans]
 *   node --cpu-prof --import tsx bench/codec.bench.ts --only=spans
 *
 * Messages are what ingest publishes: each body of `--body` records grouped by the topic's key (requests and
 * flows by destination host, spans by trace id), one message per key. Times are this process's CPU time (user +
 * system, so GC threads count), steadier than wall time on a machine shared with other work; each round runs
 * every case once, cases interleaved so that a noisy neighbour hits them alike, and the median round is printed.
 */
import { flowsCodec, requestsCodec, spansCodec, type Codec } from '../lib/bus';
import type { Flow, MeshRequest, Span } from '../lib/model';
import { parseFlowLine, parseIstioJson, parseZipkin } from '../services/ingest';
import { createTrafficGenerator } from '../simulator';

function option(name: string, fallback: string): string {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.slice(name.length + 3);
}

const BODY = Number(option('body', '1000'));
const RECORDS = Number(option('records', '60000'));
const ROUNDS = Number(option('rounds', '9'));
const SEED = Number(option('seed', '7'));
const ONLY = option('only', '');

const json = <T>(): Codec<T> => ({
  encode: (value) => Buffer.from(JSON.stringify(value)),
  decode: (bytes) => JSON.parse(bytes.toString('utf8')) as T,
});

const requests: MeshRequest[] = [];
const flows: Flow[] = [];
const spans: Span[] = [];
const gen = createTrafficGenerator({ seed: SEED, startTimeMs: Date.now() - 3_600_000, rps: 100, jsonShare: 1, shipper: 'none', traceSampling: 1 });
while (requests.length < RECORDS || spans.length < RECORDS || flows.length < RECORDS / 20) {
  const b = gen.next(200);
  if (requests.length < RECORDS) {
    for (const line of b.jsonLines) {
      const r = parseIstioJson(line);
      if (r.ok) requests.push(r.value);
    }
  }
  if (spans.length < RECORDS && b.spans.length > 0) {
    const r = parseZipkin(`[${b.spans.join(',')}]`);
    if (r.ok) spans.push(...r.value.records);
  }
  for (const line of b.flowLines) {
    const r = parseFlowLine(line);
    if (r.result.ok) flows.push(r.result.value);
  }
}

/** Bodies of BODY records, each grouped by key into messages, as the ingest pipeline publishes them. */
function messages<T>(records: T[], keyOf: (r: T) => string): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < records.length; i += BODY) {
    const byKey = new Map<string, T[]>();
    for (const r of records.slice(i, i + BODY)) {
      const k = keyOf(r);
      const g = byKey.get(k);
      if (g) g.push(r);
      else byKey.set(k, [r]);
    }
    out.push(...byKey.values());
  }
  return out;
}

interface Case {
  topic: string;
  codec: string;
  messages: unknown[][];
  impl: Codec<unknown[]>;
}

const sets = [
  { topic: 'requests', messages: messages(requests, (r) => r.destinationHost), binary: requestsCodec },
  { topic: 'flows', messages: messages(flows, (f) => f.destinationHost), binary: flowsCodec },
  { topic: 'spans', messages: messages(spans, (s) => s.traceId), binary: spansCodec },
];
const cases: Case[] = sets.filter((s) => ONLY === '' || s.topic === ONLY).flatMap((s) => [
  { topic: s.topic, codec: 'json', messages: s.messages, impl: json<unknown[]>() },
  { topic: s.topic, codec: 'binary', messages: s.messages, impl: s.binary as Codec<unknown[]> },
]);

let sink = 0;
function run(c: Case): { records: number; encodeUs: number; decodeUs: number; bytes: number } {
  let records = 0;
  let bytes = 0;
  const encoded: Buffer[] = new Array(c.messages.length);
  const t0 = process.cpuUsage();
  for (let i = 0; i < c.messages.length; i++) encoded[i] = c.impl.encode(c.messages[i]!);
  const t1 = process.cpuUsage();
  for (let i = 0; i < encoded.length; i++) {
    const m = encoded[i]!;
    bytes += m.length;
    const v = c.impl.decode(m);
    records += v.length;
    sink += v.length;
  }
  const t2 = process.cpuUsage();
  const cpuUs = (from: NodeJS.CpuUsage, to: NodeJS.CpuUsage) => to.user - from.user + to.system - from.system;
  return { records, encodeUs: cpuUs(t0, t1), decodeUs: cpuUs(t1, t2), bytes };
}

const results = new Map<Case, { enc: number[]; dec: number[]; bytes: number; records: number }>(cases.map((c) => [c, { enc: [], dec: [], bytes: 0, records: 0 }]));
for (const c of cases) run(c); // warm-up: the JIT tiers up
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    const r = run(c);
    const acc = results.get(c)!;
    acc.enc.push(r.encodeUs / r.records);
    acc.dec.push(r.decodeUs / r.records);
    acc.bytes = r.bytes;
    acc.records = r.records;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

console.log(`bodies of ${BODY} records grouped by key, seed ${SEED}, ${ROUNDS} rounds, median CPU time; Node ${process.version}`);
console.log('topic     codec   records  msgs  rec/msg  encode µs/rec  decode µs/rec  total µs/rec  bytes/rec');
for (const [c, r] of results) {
  const enc = median(r.enc);
  const dec = median(r.dec);
  const line = [
    c.topic.padEnd(9),
    c.codec.padEnd(6),
    String(r.records).padStart(8),
    String(c.messages.length).padStart(5),
    (r.records / c.messages.length).toFixed(1).padStart(8),
    enc.toFixed(3).padStart(14),
    dec.toFixed(3).padStart(14),
    (enc + dec).toFixed(3).padStart(13),
    (r.bytes / r.records).toFixed(1).padStart(10),
  ];
  console.log(line.join(' '));
}
if (sink === 0.5) console.log('unreachable');
