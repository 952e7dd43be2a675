/**
 * The all-in-one on the Bookinfo mesh config, fed by the simulator in real time, and scraped every second by the real
 * `prometheus` binary evaluating the generated rules with short windows: the setting of the alert-rule and the
 * dashboard-query tests (test/prometheus-alerts.e2e.test.ts, test/dashboards.e2e.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pino from 'pino';
import { start, type Running } from '../../bin/start';
import { loadConfig } from '../../lib/runtime';
import { prometheusRuleFiles } from '../../services/provisioner';
import { createTrafficGenerator } from '../../simulator';
import { EPHEMERAL_PORTS } from './meshlens';
import { startPrometheus, type RunningPrometheus } from './prometheus';

type RuleOptions = Parameters<typeof prometheusRuleFiles>[0] & { minRequests: number };

export interface FedAllInOneOptions {
  /** The prometheus binary (binaryOrSkip's answer). */
  prometheus: string;
  /** Temporary data dir prefix, e.g. `meshlens-alerts-`. */
  dataDirPrefix: string;
  /** The simulator's seed and page loads per second. */
  seed: number;
  rps: number;
  /** The generated rules' windows; `minRequests` is also the canary judge's. */
  rules: RuleOptions;
  /** Post the simulator's spans to the Zipkin receiver too. */
  spans?: boolean;
}

export interface FedAllInOne {
  dataDir: string;
  /** Undefined once `stopMeshlens` ran. */
  running: Running | undefined;
  http: string;
  prom: RunningPrometheus;
  /** Resolves once what was sent so far is answered; rejects if a post failed. */
  posted(): Promise<void>;
  /** Stops the feeding, waits for what was being sent (rejecting if a post failed), and closes the all-in-one (its data dir stays). */
  stopMeshlens(): Promise<void>;
  /** Everything down and the data dir removed. */
  close(): Promise<void>;
}

async function post(url: string, body: string, type: string): Promise<void> {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': type } });
  if (res.status >= 300) throw new Error(`${url}: ${res.status} ${await res.text()}`);
}

export async function startFedAllInOne(o: FedAllInOneOptions): Promise<FedAllInOne> {
  const dataDir = mkdtempSync(join(tmpdir(), o.dataDirPrefix));
  const config = loadConfig({
    ...EPHEMERAL_PORTS,
    MESHLENS_DATA_DIR: dataDir,
    MESHLENS_MESH_CONFIG: join(__dirname, '..', '..', 'examples', 'bookinfo'),
    MESHLENS_CANARY_WINDOW: '1m',
    MESHLENS_CANARY_INTERVAL: '2s',
    MESHLENS_CANARY_MIN_REQUESTS: String(o.rules.minRequests),
  });
  let running: Running | undefined = await start({ config, target: 'all', logger: pino({ level: 'silent' }), processMetrics: false });
  const http = `http://127.0.0.1:${running.ports.http}`;
  const zipkin = `http://127.0.0.1:${running.ports.zipkin}/api/v2/spans`;
  const traffic = createTrafficGenerator({ seed: o.seed, startTimeMs: Date.now(), rps: o.rps });
  let sending: Promise<void> = Promise.resolve();
  const feeding = setInterval(() => {
    const batch = traffic.until(Date.now());
    sending = sending.then(async () => {
      const lines = [...batch.textLines, ...batch.jsonLines];
      for (let i = 0; i < lines.length; i += 500) await post(`${http}/v1/accesslogs`, lines.slice(i, i + 500).join('\n'), 'application/x-ndjson');
      if (batch.flowLines.length > 0) await post(`${http}/v1/flows`, batch.flowLines.join('\n'), 'application/x-ndjson');
      if (o.spans === true && batch.spans.length > 0) await post(zipkin, `[${batch.spans.join(',')}]`, 'application/json');
    });
  }, 250);
  const ruleFiles = Object.fromEntries(prometheusRuleFiles(o.rules).map((f) => [basename(f.path), f.content]));
  const prom = await startPrometheus({
    binary: o.prometheus,
    ruleFiles,
    scrapeConfigs: [{ job_name: 'meshlens', static_configs: [{ targets: [`127.0.0.1:${running.ports.http}`] }] }],
  });
  const fed: FedAllInOne = {
    dataDir,
    running,
    http,
    prom,
    posted: () => sending,
    async stopMeshlens() {
      clearInterval(feeding);
      await sending;
      await running?.close();
      running = undefined;
      fed.running = undefined;
    },
    async close() {
      clearInterval(feeding);
      await sending.catch(() => undefined);
      await prom.stop();
      await running?.close().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return fed;
}
