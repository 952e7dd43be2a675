/**
 * Parser micro-benchmark (issue 10, part 3): µs per line of raw `JSON.parse`, the Istio JSON parser, the TEXT
 * parser and the line dispatcher, over the same simulated requests in both encodings, plus the metrics update
 * per record. Not a test (jest only runs `*.test.ts`) and not part of `npm run bench`: a quick before/after
 * check of one change, single process, no server.
 *
 *   npx tsx bench/parse.bench.ts [--lines=50000] [--rounds=9] [--seed=7]
 *   node --cpu-prof --import tsx bench/parse.bench.ts --only=json
 *
 * Each round runs every case once over all lines, cases interleaved so that a noisy neighbour on a shared
 * machine hits them alike; the median round is printed. Time is the process's CPU time, not the wall clock:
 * on a shared machine the wall clock also counts the time other processes held the core. Garbage collection
 * is part of what a parser costs (its helper threads included), so it is not excluded.
 */
import { Registry } from 'prom-client';
import type { MeshRequest, Result } from '../lib/model';
import { MeshMetrics } from '../services/aggregator';
import { parseAccessLogLine, parseAccessLogObject, parseIstioJson, parseIstioText } from '../services/ingest';
import { simulatedLines } from './lines';

function option(name: string, fallback: string): string {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  return arg === undefined ? fallback : arg.slice(name.length + 3);
}

const LINES = Number(option('lines', '50000'));
const ROUNDS = Number(option('rounds', '9'));
const SEED = Number(option('seed', '7'));
const ONLY = option('only', '');

/**
 * The lines as the receiver hands them to a parser: slices of one decoded body. The simulator builds each line
 * by concatenation, and a parser's first read of such a string flattens it, a cost no received line has.
 */
function asReceived(lines: string[]): string[] {
  const body = Buffer.from(lines.join('\n'), 'utf8').toString('utf8');
  const out: string[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf('\n', start);
    if (end < 0) end = body.length;
    out.push(body.slice(start, end));
    start = end + 1;
  }
  return out;
}

/** Lines per request body (the product bench's), and records per batch the consumer hands the metrics. */
const BATCH = 500;

const now = Date.now();
const json = asReceived(simulatedLines('json', SEED, 0, LINES, now).measured);
const text = asReceived(simulatedLines('text', SEED, 0, LINES, now).measured);

/** The JSON lines as JSON-array bodies of BATCH elements, the lines per request the product bench sends. */
const jsonArrayBodies: string[] = [];
for (let i = 0; i < json.length; i += BATCH) jsonArrayBodies.push(asReceived([`[${json.slice(i, i + BATCH).join(',')}]`])[0]!);

/** Something every case feeds, printed at the end, so no loop can be optimized away. */
let sink = 0;

function consume(r: Result<MeshRequest>): void {
  if (r.ok) sink += r.value.responseCode;
  else sink++;
}

/** Records for the metrics case (see measure()). */
const records: MeshRequest[] = [];
function parseRecords(): void {
  for (const line of json) {
    const r = parseIstioJson(line);
    if (r.ok) records.push(r.value);
  }
}
let metrics = new MeshMetrics(new Registry(), 50_000);

interface Case {
  name: string;
  run: () => number;
}

const metricsCase: Case = {
  name: 'MeshMetrics.addRequests (per record)',
  run: () => {
    // A fresh family per round would measure series creation; the series exist after the first round.
    for (let i = 0; i < records.length; i += BATCH) metrics.addRequests(records.slice(i, i + BATCH));
    return records.length;
  },
};

const cases: Case[] = [
  {
    name: 'JSON.parse (JSON lines)',
    run: () => {
      for (let i = 0; i < json.length; i++) sink += (JSON.parse(json[i]!) as { response_code: number }).response_code;
      return json.length;
    },
  },
  {
    name: 'parseIstioJson',
    run: () => {
      for (let i = 0; i < json.length; i++) consume(parseIstioJson(json[i]!));
      return json.length;
    },
  },
  {
    name: 'parseAccessLogLine (JSON lines)',
    run: () => {
      for (let i = 0; i < json.length; i++) consume(parseAccessLogLine(json[i]!).result);
      return json.length;
    },
  },
  {
    // JSON-array bodies of the same records, BATCH elements each: decoded once, each element parsed as an object.
    name: 'JSON array bodies (per element)',
    run: () => {
      let n = 0;
      for (const body of jsonArrayBodies) {
        const items = JSON.parse(body) as Record<string, unknown>[];
        for (let i = 0; i < items.length; i++) consume(parseAccessLogObject(items[i]!).result);
        n += items.length;
      }
      return n;
    },
  },
  {
    name: 'parseIstioText',
    run: () => {
      for (let i = 0; i < text.length; i++) consume(parseIstioText(text[i]!));
      return text.length;
    },
  },
  {
    name: 'parseAccessLogLine (TEXT lines)',
    run: () => {
      for (let i = 0; i < text.length; i++) consume(parseAccessLogLine(text[i]!).result);
      return text.length;
    },
  },
  metricsCase,
];

const selected = ONLY === '' ? cases : cases.filter((c) => c.name.toLowerCase().includes(ONLY.toLowerCase()));
const perLine = new Map<string, number[]>(selected.map((c) => [c.name, []]));

/**
 * Runs the cases' rounds. The metrics case runs after the parsers, on records parsed only then: 50k records
 * kept alive while the parsers are measured make V8 pretenure the record literal's allocation site, and every
 * record is then made in the old generation, which doubles or triples the parsers' cost and measures the bench
 * setup, not the parser.
 */
function measure(group: Case[]): void {
  // One warm-up round: the JIT tiers up and the series are created.
  for (const c of group) c.run();
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of group) {
      const t0 = process.cpuUsage();
      const n = c.run();
      const t = process.cpuUsage(t0);
      perLine.get(c.name)!.push((t.user + t.system) / n);
    }
  }
}

measure(selected.filter((c) => c !== metricsCase));
if (selected.includes(metricsCase)) {
  parseRecords();
  measure([metricsCase]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const base = perLine.get(cases[0]!.name);
const baseMedian = base ? median(base) : NaN;
console.log(`${json.length} JSON and ${text.length} TEXT lines (seed ${SEED}), ${ROUNDS} rounds, median CPU µs/line; Node ${process.version}`);
for (const [name, xs] of perLine) {
  const m = median(xs);
  const ratio = Number.isNaN(baseMedian) ? '' : `  ${(m / baseMedian).toFixed(2)}× JSON.parse`;
  console.log(`${name.padEnd(40)} ${m.toFixed(3).padStart(7)} µs  (min ${Math.min(...xs).toFixed(3)})${ratio}`);
}
metrics = undefined as unknown as MeshMetrics;
if (sink === 0.5) console.log('unreachable');
