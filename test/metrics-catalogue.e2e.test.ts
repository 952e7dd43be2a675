/**
 * The metric catalogue (lib/catalogue) against what the running all-in-one really exposes on `/metrics`
 * (issue 11, item 1), in both directions:
 * - every family exported is in the catalogue, with its type and help text (prom-client's process metrics
 *   aside, which must carry prom-client's own names: no `meshlens_process_process_*`, issue 13);
 * - every family in the catalogue is exported, and every sample carries exactly the catalogue's label names,
 *   in its order, with values from its closed sets;
 * - the families the run cannot give a sample are the explicit list below, no more and no fewer.
 * The process is fed the simulator's Bookinfo traffic (access logs in both Istio layouts, Hubble flows) plus a
 * line it must reject, with the series cap at its minimum so the overflow counter moves too.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { start, type Running } from '../bin/start';
import { CATALOGUE, PROCESS_METRIC_PREFIXES, type MetricSpec } from '../lib/catalogue';
import { loadConfig } from '../lib/runtime';
import { OVERFLOW } from '../services/aggregator';
import { createTrafficGenerator } from '../simulator';
import { EPHEMERAL_PORTS } from './support/meshlens';

const logger = pino({ level: 'silent' });

/**
 * Families the test cannot give a sample to, so their label names go unchecked (their HELP and TYPE are checked
 * like every other family's: prom-client writes both for a labelled metric without samples).
 */
const NEEDS_A_CONDITION: Readonly<Record<string, string>> = {
  // ClickHouse must refuse a row for good (a value its column type cannot take); the writer's own encoder never
  // produces one from parsed records (test/faults covers the path with a broken table).
  meshlens_store_refused_rows_total: 'ClickHouse refusing rows for good',
  // An insert must fail and be retried: ClickHouse down or erroring (test/store-outage.e2e.test.ts does this).
  meshlens_store_insert_failures_total: 'a failing ClickHouse insert',
  // A receiver must answer 429/503: a full pipeline, storage down, or a stopping process.
  meshlens_ingest_retry_responses_total: 'a full, unavailable or stopping pipeline',
  // Export must fail for good or overflow its queue: test/tracer.e2e.test.ts does this with a down endpoint.
  meshlens_tracer_dropped_spans_total: 'a full export queue or a failing Jaeger endpoint',
};

interface Sample {
  name: string;
  labels: Array<[string, string]>;
}

interface Family {
  type: string | undefined;
  help: string | undefined;
  samples: Sample[];
}

/** `a="x",b="y\"z"` → pairs, unescaping as the text format says (`\\`, `\"`, `\n`). */
function parseLabels(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf('="', i);
    const name = text.slice(i, eq);
    let value = '';
    let j = eq + 2;
    for (; text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        j++;
        value += text[j] === 'n' ? '\n' : text[j];
      } else value += text[j];
    }
    out.push([name, value]);
    i = j + 1;
    if (text[i] === ',') i++;
  }
  return out;
}

/** The Prometheus text format, by family: TYPE, HELP and the samples (histogram series under their family's name). */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { type: undefined, help: undefined, samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const f = family(meta[2] as string);
      if (meta[1] === 'TYPE') f.type = meta[3];
      else f.help = (meta[3] as string).replace(/\\(\\|n)/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
      continue;
    }
    if (line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const name = brace === -1 ? line.slice(0, line.indexOf(' ')) : line.slice(0, brace);
    const labels = brace === -1 ? [] : parseLabels(line.slice(brace + 1, line.lastIndexOf('}')));
    // A histogram's `_bucket`, `_sum` and `_count` samples belong to the family TYPE named.
    const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
    const owner = base !== undefined && families.get(base)?.type === 'histogram' ? base : name;
    family(owner).samples.push({ name, labels });
  }
  return families;
}

async function post(url: string, body: string, contentType = 'application/x-ndjson'): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': contentType } });
  return { status: res.status, body: await res.json() };
}

describe('/metrics against the metric catalogue', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'meshlens-catalogue-'));
  let running: Running;
  let families: Map<string, Family>;
  // A Jaeger stand-in taking every export, so the tracer runs in the all-in-one and its metrics are exported too.
  let jaeger: Server;
  const catalogue = new Map<string, MetricSpec>(CATALOGUE.map((m) => [m.name, m]));

  beforeAll(async () => {
    jaeger = createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end()));
    await new Promise<void>((resolve) => jaeger.listen(0, '127.0.0.1', resolve));
    const config = loadConfig({
      MESHLENS_JAEGER_ENDPOINT: `http://127.0.0.1:${(jaeger.address() as AddressInfo).port}`,
      ...EPHEMERAL_PORTS,
      MESHLENS_DATA_DIR: dataDir,
      MESHLENS_MESH_CONFIG: join(__dirname, '..', 'examples', 'bookinfo'),
      // The lowest cap allowed: the simulator's traffic overflows it, so meshlens_series_overflow_total has samples.
      MESHLENS_MAX_SERIES: '10',
    });
    // Process metrics on, as `npm start` runs: their names are part of what this test checks.
    running = await start({ config, target: 'all', logger, processMetrics: true });
    const http = `http://127.0.0.1:${running.ports.http}`;

    // Two minutes of Bookinfo traffic ending now, so the canary judge's window holds reviews' subsets.
    const now = Date.now();
    const batch = createTrafficGenerator({ seed: 11, startTimeMs: now - 120_000, rps: 20 }).until(now);
    await post(`${http}/v1/accesslogs`, [...batch.textLines, ...batch.jsonLines].join('\n'));
    await post(`${http}/v1/flows`, batch.flowLines.join('\n'));
    // One line no parser takes: meshlens_ingest_rejected_records_total and a dead letter.
    await post(`${http}/v1/accesslogs`, 'this is not an access log\n', 'text/plain');
    // Acknowledged = stored, so the metrics have moved; the judge then reads the stored window.
    await (running.aggregator as NonNullable<Running['aggregator']>).judge.judgeNow();

    const res = await fetch(`${http}/metrics`);
    expect(res.status).toBe(200);
    families = parseExposition(await res.text());
  }, 120_000);

  afterAll(async () => {
    await running?.close();
    await new Promise((resolve) => jaeger?.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const isProcessMetric = (name: string) => PROCESS_METRIC_PREFIXES.some((p) => name.startsWith(p));

  it('exports nothing the catalogue lacks (besides prom-client\'s process metrics)', () => {
    const unknown = [...families.keys()].filter((name) => !catalogue.has(name) && !isProcessMetric(name));
    expect(unknown).toEqual([]);
  });

  it('exports every family of the catalogue, with its type and help text', () => {
    for (const m of CATALOGUE) {
      const f = families.get(m.name);
      expect({ name: m.name, exported: f !== undefined }).toEqual({ name: m.name, exported: true });
      expect({ name: m.name, type: f?.type, help: f?.help }).toEqual({ name: m.name, type: m.type, help: m.help });
    }
  });

  it('gives every sample exactly the catalogue\'s label names, in its order', () => {
    for (const [name, f] of families) {
      const m = catalogue.get(name);
      if (!m) continue;
      for (const s of f.samples) {
        // `le` is the histogram's own bucket label, not one of the family's.
        const names = s.labels.map(([k]) => k).filter((k) => !(m.type === 'histogram' && k === 'le'));
        expect({ sample: s.name, labels: names }).toEqual({ sample: s.name, labels: m.labelNames });
      }
    }
  });

  it('gives closed-set labels only their catalogue values', () => {
    for (const [name, f] of families) {
      const m = catalogue.get(name);
      if (!m) continue;
      for (const s of f.samples) {
        for (const [k, v] of s.labels) {
          const allowed = (m.labelValues as Record<string, readonly string[] | undefined>)[k];
          // A family's overflow series has every label `__overflow__`, whatever the label.
          if (allowed === undefined || v === OVERFLOW) continue;
          expect({ sample: s.name, label: k, value: v, allowed: allowed.includes(v) }).toEqual({ sample: s.name, label: k, value: v, allowed: true });
        }
      }
    }
  });

  it('has samples of every family but the listed ones, and the list is no longer than it must be', () => {
    const withoutSamples = CATALOGUE.filter((m) => (families.get(m.name)?.samples.length ?? 0) === 0).map((m) => m.name);
    expect(withoutSamples.sort()).toEqual(Object.keys(NEEDS_A_CONDITION).sort());
  });

  it('exports the process metrics under prom-client\'s names, prefixed once', () => {
    expect(families.has('process_cpu_seconds_total')).toBe(true);
    expect(families.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect([...families.keys()].filter((n) => n.startsWith('meshlens_process_'))).toEqual([]);
  });
});
