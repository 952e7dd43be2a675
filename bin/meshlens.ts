/**
 * The meshlens CLI: `meshlens [target]`. Reads the environment (the only place that does), starts the
 * target, prints its ports, and shuts down gracefully on SIGTERM/SIGINT.
 */
import { ConfigError, loadConfig } from '../lib/runtime/config';
import { createLogger } from '../lib/runtime/logger';
import { start, TARGETS, type Target } from './start';

/** Targets of CONTRACT.md §1 that later versions add; named so the CLI can say so instead of "unknown". */
const PLANNED = ['provisioner', 'tracer', 'demo'];
/** Forced exit when a graceful stop hangs (compose's default stop_grace_period is 10 s). */
const SHUTDOWN_TIMEOUT_MS = 8000;

async function main(argv: string[]): Promise<void> {
  const target = (argv[0] ?? 'all') as Target;
  if (!(TARGETS as readonly string[]).includes(target)) {
    const why = PLANNED.includes(target) ? 'is not available in this version' : 'is not a meshlens target';
    process.stderr.write(`meshlens: target "${target}" ${why}; available: ${TARGETS.join(', ')}\n`);
    process.exit(2);
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`meshlens: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
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

  const stop = (signal: string): void => {
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('graceful shutdown timed out');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS).unref();
    running.close().then(
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

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`meshlens: failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
