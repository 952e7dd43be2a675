/**
 * The meshlens CLI: `meshlens [target]`. Reads the environment (the only place that does), starts the
 * target, prints its ports, and shuts down gracefully on SIGTERM/SIGINT.
 */
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../lib/runtime/config';
import { createLogger } from '../lib/runtime/logger';
import { DEMO_USAGE, parseDemoArgs, runDemo } from '../services/simulator';
import { start, TARGETS, type Running, type Target } from './start';

/** Targets of CONTRACT.md §1 that later versions add; named so the CLI can say so instead of "unknown". */
const PLANNED = ['provisioner', 'tracer'];
/** The mesh config the demo's simulated mesh follows, used when MESHLENS_MESH_CONFIG is unset. */
const DEMO_MESH_CONFIG = join(__dirname, '..', 'examples', 'bookinfo');
/** Forced exit when a graceful stop hangs (compose's default stop_grace_period is 10 s). */
const SHUTDOWN_TIMEOUT_MS = 8000;

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'demo') return demo(argv.slice(1));
  const target = (argv[0] ?? 'all') as Target;
  if (!(TARGETS as readonly string[]).includes(target)) {
    const why = PLANNED.includes(target) ? 'is not available in this version' : 'is not a meshlens target';
    process.stderr.write(`meshlens: target "${target}" ${why}; available: ${TARGETS.join(', ')}\n`);
    process.exit(2);
  }
  const config = configOrExit();
  const logger = createLogger(config.logLevel, `meshlens-${target}`);
  const running = await start({ config, target, logger });
  const { ports } = running;
  const h = config.listenHost;
  const store = running.aggregator
    ? `, ClickHouse ${running.aggregator.conn.kind}: ${running.aggregator.conn.location}`
    : '';
  const lines = [
    `meshlens ${target} ready (${config.kafkaBrokers.length > 0 ? 'kafka bus' : 'in-memory bus'}${store})`,
    `  http        http://${h}:${ports.http}   (${running.aggregator ? '/api/v1/*, ' : ''}${ports.zipkin ? '/v1/accesslogs, /v1/flows, ' : ''}/metrics, /readyz)`,
  ];
  // 0 = the target does not serve that receiver (the aggregator target serves HTTP only).
  if (ports.otlpGrpc) lines.push(`  otlp grpc   ${h}:${ports.otlpGrpc}`);
  if (ports.otlpHttp) lines.push(`  otlp http   http://${h}:${ports.otlpHttp}   (/v1/logs, /v1/traces)`);
  if (ports.zipkin) lines.push(`  zipkin      http://${h}:${ports.zipkin}   (/api/v2/spans)`);
  process.stdout.write(`${lines.join('\n')}\n`);

  stopOnSignals(logger, () => running.close());
}

function configOrExit(env: Record<string, string | undefined> = process.env) {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`meshlens: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** Graceful stop on SIGTERM/SIGINT, forced after SHUTDOWN_TIMEOUT_MS. */
function stopOnSignals(logger: ReturnType<typeof createLogger>, close: () => Promise<void>): void {
  const stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('graceful shutdown timed out');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

/**
 * `meshlens demo`: the all-in-one plus the seeded Bookinfo simulator sending through the real receivers,
 * and a terminal summary. The summary owns stdout, so logs go to stderr at `warn` unless
 * MESHLENS_LOG_LEVEL says otherwise; the mesh config defaults to the simulated mesh's (examples/bookinfo).
 */
async function demo(argv: string[]): Promise<void> {
  const args = parseDemoArgs(argv);
  if (!args.ok) {
    process.stderr.write(`meshlens demo: ${args.message}\n${DEMO_USAGE}`);
    process.exit(2);
  }
  if (args.value.help) {
    process.stdout.write(DEMO_USAGE);
    return;
  }
  const env = { MESHLENS_LOG_LEVEL: 'warn', MESHLENS_MESH_CONFIG: DEMO_MESH_CONFIG, ...process.env };
  const config = configOrExit(env);
  const logger = createLogger(config.logLevel, 'meshlens-demo', process.stderr);
  const running: Running = await start({ config, target: 'all', logger });
  const h = config.listenHost === '0.0.0.0' ? '127.0.0.1' : config.listenHost;
  const handle = runDemo({
    httpBaseUrl: `http://${h}:${running.ports.http}`,
    zipkinBaseUrl: `http://${h}:${running.ports.zipkin}`,
    seed: args.value.seed,
    rps: args.value.rps,
    truthFile: args.value.truthFile,
    token: config.ingestToken,
    logger,
    out: process.stdout,
  });
  stopOnSignals(logger, async () => {
    await handle.stop();
    await running.close();
  });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`meshlens: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
