/**
 * One meshlens target (`ingest`, `aggregator`, `tracer`) as its own process on the relay bus, for
 * test/distributed.e2e.test.ts: configured from the environment, started with bin/start.ts's `start()`, its
 * ports printed in the CLI's banner, and stopped gracefully on SIGTERM, as `meshlens <target>` does on Kafka.
 */
import { createLogger, loadConfig } from '../../lib/runtime';
import { banner, start, TARGETS, type Target } from '../../bin/start';
import { ipcBus } from './relay-bus';

async function main(): Promise<void> {
  const target = process.argv[2] as Target;
  if (!TARGETS.includes(target)) throw new Error(`not a meshlens target: ${String(target)}`);
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, `meshlens-${target}`);
  const running = await start({ config, target, logger, bus: ipcBus(process) });
  process.once('SIGTERM', () => {
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  });
  // The test process is the broker: without it nothing can be acknowledged or consumed.
  process.once('disconnect', () => process.exit(1));
  process.stdout.write(banner(target, config, running));
}

main().catch((err: unknown) => {
  process.stderr.write(`relay child: ${String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
