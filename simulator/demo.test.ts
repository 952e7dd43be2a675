/**
 * The demo's flags, and the demo itself for a second against meshlens's real receivers: traffic in real time,
 * everything accepted, the summary drawn, the truth file written on stop.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { DEMO_USAGE, parseDemoArgs, runDemo, type DemoLogger } from './demo';
import { startReceivers, type Receivers } from './receivers.testutil';
import type { GroundTruth } from './truth';

describe('parseDemoArgs', () => {
  it('has defaults', () => {
    expect(parseDemoArgs([])).toEqual({ ok: true, value: { seed: 1, rps: 20, truthFile: undefined, help: false } });
  });

  it('reads --seed, --rps and --truth, as separate or = values', () => {
    expect(parseDemoArgs(['--seed', '42', '--rps=7.5', '--truth', 'out/truth.json'])).toEqual({
      ok: true,
      value: { seed: 42, rps: 7.5, truthFile: 'out/truth.json', help: false },
    });
    expect(parseDemoArgs(['--seed=4294967295', '-h'])).toEqual({ ok: true, value: { seed: 4294967295, rps: 20, truthFile: undefined, help: true } });
  });

  it('names every bad argument', () => {
    const r = parseDemoArgs(['--seed', '-3', '--rps', '0', '--speed', '2', '--truth']);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toContain('--seed "-3": expected an integer from 0 to 4294967295');
    expect(r.message).toContain('--rps "0"');
    expect(r.message).toContain('unknown argument "--speed"');
    expect(r.message).toContain('unknown argument "2"');
    expect(r.message).toContain('--truth needs a value');
    expect(parseDemoArgs(['--seed', '4294967296']).ok).toBe(false);
    expect(parseDemoArgs(['--seed', '1.5']).ok).toBe(false);
    expect(parseDemoArgs(['--rps=1e3']).ok).toBe(false);
  });

  it('documents the flags', () => {
    for (const flag of ['--seed', '--rps', '--truth', '--ingest', '--zipkin', '--api']) expect(DEMO_USAGE).toContain(flag);
  });

  it('sends to a running meshlens with --ingest, --zipkin and --api (the compose demo profile)', () => {
    expect(parseDemoArgs(['--ingest', 'http://ingest:8080', '--zipkin=http://ingest:9411/', '--api', 'http://aggregator:8080', '--rps', '5'])).toEqual({
      ok: true,
      value: { seed: 1, rps: 5, truthFile: undefined, help: false, remote: { ingest: 'http://ingest:8080', zipkin: 'http://ingest:9411', api: 'http://aggregator:8080' } },
    });
    // Zipkin defaults to the ingest host on 9411, the API to the ingest URL (an all-in-one running elsewhere).
    expect(parseDemoArgs(['--ingest=https://meshlens.example:18080/'])).toMatchObject({
      ok: true,
      value: { remote: { ingest: 'https://meshlens.example:18080', zipkin: 'https://meshlens.example:9411', api: 'https://meshlens.example:18080' } },
    });
    // Without --ingest the demo starts its own all-in-one.
    const plain = parseDemoArgs(['--seed', '3']);
    expect(plain.ok && plain.value.remote).toBeUndefined();
  });

  it('names bad --ingest, --zipkin and --api values, and --zipkin or --api without --ingest', () => {
    const r = parseDemoArgs(['--ingest', 'ingest:8080', '--api', 'ftp://x', '--zipkin']);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toContain('--ingest "ingest:8080": expected an http(s) URL');
    expect(r.message).toContain('--api "ftp://x": expected an http(s) URL');
    expect(r.message).toContain('--zipkin needs a value');
    expect(parseDemoArgs(['--ingest', 'http://user:pw@ingest:8080']).ok).toBe(false);
    const alone = parseDemoArgs(['--api', 'http://aggregator:8080', '--zipkin', 'http://ingest:9411']);
    expect(alone.ok).toBe(false);
    if (alone.ok) return;
    expect(alone.message).toContain('--zipkin needs --ingest');
    expect(alone.message).toContain('--api needs --ingest');
  });
});

describe('runDemo', () => {
  let receivers: Receivers;
  let dir: string;
  beforeAll(async () => {
    receivers = await startReceivers();
    dir = mkdtempSync(join(tmpdir(), 'meshlens-demo-'));
  });
  afterAll(async () => {
    await receivers.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends real-time traffic that meshlens accepts, draws the summary, and writes the truth on stop', async () => {
    const out = new PassThrough();
    let drawn = '';
    out.on('data', (c: Buffer) => (drawn += c.toString()));
    const logs: { level: string; obj: object; msg: string }[] = [];
    const logger: DemoLogger = {
      info: (obj, msg) => void logs.push({ level: 'info', obj, msg }),
      warn: (obj, msg) => void logs.push({ level: 'warn', obj, msg }),
    };
    // meshlens's own (pino) logger fits too.
    const pinoLogger: DemoLogger = pino({ level: 'silent' });
    expect(pinoLogger).toBeDefined();
    const truthFile = join(dir, 'truth.json');
    const before = Date.now();
    const demo = runDemo({
      httpBaseUrl: receivers.httpBaseUrl,
      zipkinBaseUrl: receivers.zipkinBaseUrl,
      seed: 7,
      rps: 200,
      logger,
      out,
      truthFile,
      tickMs: 100,
      refreshMs: 300,
    });
    await new Promise((r) => setTimeout(r, 1200));
    await demo.stop();
    await demo.stop(); // idempotent
    const after = Date.now();

    const truth = JSON.parse(readFileSync(truthFile, 'utf8')) as GroundTruth;
    expect(truth.seed).toBe(7);
    // Event time is now: the first root request starts when the demo does.
    expect(truth.fromMs).toBeGreaterThanOrEqual(before);
    expect(truth.fromMs).toBeLessThan(before + 1000);
    expect(truth.toMs).toBeLessThanOrEqual(after + 5000);
    // About 200 root requests per second for ~1.2 s.
    expect(truth.emitted.root_requests).toBeGreaterThan(100);
    expect(truth.emitted.root_requests).toBeLessThan(400);

    const records = truth.emitted.text_lines + truth.emitted.json_lines;
    await receivers.until(() => receivers.seen.requests >= records && receivers.seen.spans >= truth.emitted.spans);
    expect(receivers.seen).toEqual({ requests: records, flows: truth.emitted.flow_records, spans: truth.emitted.spans });
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
    expect(logs.map((l) => l.msg)).toEqual(['demo traffic started', 'demo traffic stopped', 'ground truth written']);

    // The receivers here have no query API: the summary says it is waiting, under the delivery header.
    expect(drawn).toContain('meshlens demo · seed 7 · 200 root requests/s');
    expect(drawn).toMatch(/delivered: access logs \d+ accepted · flows \d+ accepted · spans \d+ accepted/);
    expect(drawn).toContain('waiting for the meshlens query API');
  });
});
