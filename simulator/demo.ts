/**
 * `npm run demo` (CONTRACT.md §1): continuous Bookinfo traffic in real time (event time ≈ now) through
 * meshlens's real receivers, and a terminal summary that refreshes. The caller starts meshlens first and
 * hands over its URLs; this module knows nothing of how meshlens was started.
 */
import { writeFile } from 'node:fs/promises';
import { createTrafficGenerator } from './generator';
import { createTelemetrySender, type DeliveryCounts } from './sender';
import { startSummaryLoop } from './summary';

/** What the demo logs through; a pino logger (lib/runtime/logger) is one. */
export interface DemoLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface DemoOptions {
  /** meshlens HTTP base URL (receivers and query API), e.g. `http://127.0.0.1:8080`. */
  httpBaseUrl: string;
  /** Zipkin receiver base URL, e.g. `http://127.0.0.1:9411`. */
  zipkinBaseUrl: string;
  /** Query API base URL the summary reads, when it is not `httpBaseUrl` (a separate aggregator). */
  apiBaseUrl?: string;
  seed: number;
  /** Root requests (page loads and sleep calls) per second. */
  rps: number;
  logger: DemoLogger;
  /** Where the summary is drawn (a terminal: redrawn in place). */
  out: NodeJS.WritableStream;
  /** When set, `stop()` writes the ground truth of everything generated here, as JSON. */
  truthFile?: string;
  /** `MESHLENS_INGEST_TOKEN`, when set. */
  token?: string;
  /** `MESHLENS_API_TOKEN`, when set: the summary's queries send it (otherwise `token`). */
  apiToken?: string;
  /** How often traffic is generated and sent. Default 500 ms. */
  tickMs?: number;
  /** How often the summary is redrawn. Default 3000 ms. */
  refreshMs?: number;
  /** Summary query window. Default `30s`. */
  window?: string;
  fetch?: typeof fetch;
}

export interface DemoHandle {
  /** Stop generating and drawing, give up on pending retries, write the truth file; resolves when done. */
  stop(): Promise<void>;
}

export interface DemoArgs {
  seed: number;
  rps: number;
  truthFile: string | undefined;
  help: boolean;
  /**
   * A running meshlens to send to instead of starting the all-in-one (`--ingest`): its HTTP base URL (access
   * logs, flows), its Zipkin base URL and the query API's base URL (undefined when `--ingest` is not given).
   */
  remote?: { ingest: string; zipkin: string; api: string };
}

export const DEMO_USAGE = `Usage: meshlens demo [--seed N] [--rps N] [--truth FILE] [--ingest URL [--zipkin URL] [--api URL]]

  --seed N      seed of the traffic simulator (integer, 0 to 4294967295; default 1):
                the same seed gives the same requests
  --rps N       root requests per second: page loads through the gateway and the
                sleep client's calls (default 20)
  --truth FILE  on exit, write the ground truth of everything sent (JSON)

Without --ingest, the demo starts the all-in-one and sends to it. With --ingest, it
starts nothing and sends to a meshlens already running (the compose stack's):
  --ingest URL  its HTTP receivers (/v1/accesslogs, /v1/flows), e.g. http://ingest:8080
  --zipkin URL  its Zipkin receiver (default: the --ingest host, port 9411)
  --api URL     the query API the summary reads, e.g. http://aggregator:8080
                (default: the --ingest URL, right for an all-in-one)
MESHLENS_INGEST_TOKEN and MESHLENS_API_TOKEN are sent when set. The all-in-one the demo
starts keeps its data in ./data-demo unless MESHLENS_DATA_DIR is set, apart from
\`npm start\`'s ./data, so demo traffic never mixes with real data.
`;

/**
 * Where the demo's all-in-one keeps its data unless MESHLENS_DATA_DIR is set (issue 13): not `./data`, which
 * `npm start` uses and locks (lib/runtime/datadir.ts, one meshlens per directory), nor inside it.
 */
export const DEMO_DATA_DIR = './data-demo';

const FLAGS = ['--seed', '--rps', '--truth', '--ingest', '--zipkin', '--api'];
const DEFAULT_SEED = 1;
const DEFAULT_RPS = 20;
const MAX_RPS = 10_000;

/** Parse the demo's flags (`--seed 7`, `--seed=7`, ...). Bad input is a value: every problem is named. */
export function parseDemoArgs(argv: readonly string[]): { ok: true; value: DemoArgs } | { ok: false; message: string } {
  const args: DemoArgs = { seed: DEFAULT_SEED, rps: DEFAULT_RPS, truthFile: undefined, help: false };
  const problems: string[] = [];
  const urls: Partial<Record<'ingest' | 'zipkin' | 'api', URL>> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-h' || arg === '--help') {
      args.help = true;
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg;
    if (!FLAGS.includes(flag)) {
      problems.push(`unknown argument ${JSON.stringify(arg)}`);
      continue;
    }
    let value: string | undefined;
    if (eq > 0 && arg.startsWith('--')) {
      value = arg.slice(eq + 1);
    } else {
      value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) {
        problems.push(`${flag} needs a value`);
        continue;
      }
      i++;
    }
    if (flag === '--ingest' || flag === '--zipkin' || flag === '--api') {
      let url: URL | undefined;
      try {
        url = new URL(value);
      } catch {
        url = undefined;
      }
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '') {
        problems.push(`${flag} ${JSON.stringify(value)}: expected an http(s) URL without credentials, such as http://ingest:8080`);
      } else urls[flag.slice(2) as 'ingest' | 'zipkin' | 'api'] = url;
    } else if (flag === '--truth') {
      if (value === '') problems.push('--truth needs a file name');
      else args.truthFile = value;
    } else if (flag === '--seed') {
      const n = /^\d+$/.test(value) ? Number(value) : NaN;
      if (!(n >= 0 && n <= 0xffffffff)) problems.push(`--seed ${JSON.stringify(value)}: expected an integer from 0 to 4294967295`);
      else args.seed = n;
    } else {
      const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
      if (!(n > 0 && n <= MAX_RPS)) problems.push(`--rps ${JSON.stringify(value)}: expected a number above 0, at most ${MAX_RPS}`);
      else args.rps = n;
    }
  }
  if (urls.ingest !== undefined) {
    const base = (u: URL): string => u.toString().replace(/\/+$/, '');
    let zipkin = urls.zipkin;
    if (zipkin === undefined) {
      zipkin = new URL(urls.ingest.toString());
      zipkin.port = '9411';
      zipkin.pathname = '/';
    }
    args.remote = { ingest: base(urls.ingest), zipkin: base(zipkin), api: base(urls.api ?? urls.ingest) };
  } else {
    for (const f of ['zipkin', 'api'] as const) {
      if (urls[f] !== undefined) problems.push(`--${f} needs --ingest (without it the demo starts its own all-in-one)`);
    }
  }
  return problems.length > 0 ? { ok: false, message: problems.join('; ') } : { ok: true, value: args };
}

function deliveryLine(name: string, c: DeliveryCounts): string {
  return `${name} ${c.accepted} accepted${c.rejected ? `, ${c.rejected} rejected` : ''}${c.failed ? `, ${c.failed} FAILED` : ''}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Start the demo: every `tickMs`, generate the root requests whose event time has come and send them; every
 * `refreshMs`, redraw the summary. Returns at once; `stop()` ends it.
 */
export function runDemo(options: DemoOptions): DemoHandle {
  const { logger } = options;
  const tickMs = options.tickMs ?? 500;
  const abort = new AbortController();
  const startedMs = Date.now();
  const generator = createTrafficGenerator({ seed: options.seed, startTimeMs: startedMs, rps: options.rps });
  const sender = createTelemetrySender({
    httpBaseUrl: options.httpBaseUrl,
    zipkinBaseUrl: options.zipkinBaseUrl,
    token: options.token,
    signal: abort.signal,
    fetch: options.fetch,
  });
  logger.info({ seed: options.seed, rps: options.rps }, 'demo traffic started');

  let lastFailure = '';
  const pump = (async () => {
    while (!abort.signal.aborted) {
      try {
        await sender.send(generator.until(Date.now()));
      } catch (err) {
        // The sender turns HTTP outcomes into counts; anything thrown here is a bug, not a reason to stop the demo.
        logger.warn({ err }, 'demo traffic: sending failed');
      }
      const totals = sender.totals();
      for (const c of [totals.accessLogs, totals.flows, totals.spans]) {
        if (c.lastFailure && c.lastFailure !== lastFailure) {
          lastFailure = c.lastFailure;
          logger.warn({ failure: c.lastFailure }, 'demo traffic could not be delivered');
        }
      }
      await sleep(tickMs, abort.signal);
    }
  })();

  const summary = startSummaryLoop({
    httpBaseUrl: options.apiBaseUrl ?? options.httpBaseUrl,
    out: options.out,
    intervalMs: options.refreshMs,
    window: options.window,
    token: options.apiToken ?? options.token,
    fetch: options.fetch,
    header: () => {
      const t = sender.totals();
      const e = generator.emitted();
      const seconds = Math.round((Date.now() - startedMs) / 1000);
      return [
        `meshlens demo · seed ${options.seed} · ${options.rps} root requests/s · ${seconds}s · ${e.root_requests} root requests, ${e.requests} hops sent`,
        `delivered: ${deliveryLine('access logs', t.accessLogs)} · ${deliveryLine('flows', t.flows)} · ${deliveryLine('spans', t.spans)}`,
      ].join('\n');
    },
  });

  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        abort.abort();
        await pump;
        await summary.stop();
        const totals = sender.totals();
        logger.info({ delivered: { accessLogs: totals.accessLogs, flows: totals.flows, spans: totals.spans } }, 'demo traffic stopped');
        if (options.truthFile) {
          await writeFile(options.truthFile, JSON.stringify(generator.truth()) + '\n');
          const undelivered = totals.accessLogs.failed + totals.flows.failed + totals.accessLogs.rejected + totals.flows.rejected;
          // The truth describes everything generated; records meshlens did not take make it unreachable.
          if (undelivered > 0) logger.warn({ truthFile: options.truthFile, undelivered }, 'ground truth written, but some records were not accepted');
          else logger.info({ truthFile: options.truthFile }, 'ground truth written');
        }
      })();
      return stopping;
    },
  };
}
