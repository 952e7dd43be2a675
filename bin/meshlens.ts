/**
 * The meshlens CLI: `meshlens [target]`. Reads the environment (the only place that does), starts the
 * target, prints its ports, and shuts down gracefully on SIGTERM/SIGINT, within MESHLENS_SHUTDOWN_TIMEOUT.
 * An uncaught error stops it the same way, then exits non-zero: what was acknowledged is stored, what was
 * not is answered 503 and counted, rather than vanishing with the process.
 */
import { readFileSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { format } from 'node:util';
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import { ConfigError, createLogger, loadConfig, redactUrl, SETTING_GROUPS, SETTINGS, StartError, type Config } from '../lib/runtime';
import { DEMO_DATA_DIR, DEMO_USAGE, parseDemoArgs, runDemo } from '../simulator';
import { banner, start, TARGETS, type Running, type Target } from './start';

/** The mesh config the demo's simulated mesh follows, used when MESHLENS_MESH_CONFIG is unset. */
const DEMO_MESH_CONFIG = join(__dirname, '..', 'examples', 'bookinfo');

/** What each target runs, for `--help`: every entry of TARGETS, and `demo`. */
const TARGET_HELP: Record<Target | 'demo', string> = {
  all: 'every target in one process: in-memory bus, embedded ClickHouse in MESHLENS_DATA_DIR (default)',
  ingest: 'the receivers (OTLP gRPC/HTTP, Zipkin, access logs, flows); publishes to Kafka (MESHLENS_KAFKA_BROKERS)',
  aggregator: 'consumes Kafka, writes ClickHouse, serves /metrics, the query API and Prometheus service discovery',
  tracer: 'consumes the spans from Kafka and exports them to Jaeger (MESHLENS_JAEGER_ENDPOINT)',
  provisioner: 'pushes the Grafana dashboards to MESHLENS_GRAFANA_URL',
  demo: 'the all-in-one plus a simulated Bookinfo mesh and a live summary (meshlens demo --help)',
};

type Env = Record<string, string | undefined>;

/** `--help` fits a terminal this wide. */
const HELP_WIDTH = 120;

/** `words` in lines of at most `width` characters (a longer word stands alone). */
function wrap(words: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of words.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  return [...out, line];
}

/** Every setting by group, with its default and meaning: straight from the table loadConfig parses with. */
function settingsHelp(): string {
  const nameWidth = Math.max(...SETTINGS.map((s) => s.name.length)) + 2;
  const defaultWidth = Math.max(...SETTINGS.map((s) => s.default.length)) + 2;
  const indent = 4 + nameWidth + defaultWidth;
  const row = (name: string, def: string, meaning: string): string =>
    wrap(meaning, HELP_WIDTH - indent)
      .map((line, i) => (i === 0 ? `    ${name.padEnd(nameWidth)}${def.padEnd(defaultWidth)}${line}` : `${' '.repeat(indent)}${line}`))
      .join('\n');
  const groups = (Object.entries(SETTING_GROUPS) as Array<[keyof typeof SETTING_GROUPS, string]>).map(([group, title]) =>
    [`  ${title}:`, ...SETTINGS.filter((s) => s.group === group).map((s) => row(s.name, s.default, s.meaning))].join('\n'),
  );
  return [row('variable', 'default', 'meaning'), ...groups].join('\n');
}

const USAGE = `usage: meshlens [target]
       meshlens --help | --version

targets:
${Object.entries(TARGET_HELP)
  .map(([name, what]) => `  ${name.padEnd(13)}${what}`)
  .join('\n')}

settings: environment variables, all optional; a bad value stops the start with a line naming the variable.
${settingsHelp()}

docs/configuration.md describes each setting in full. Stop meshlens with SIGTERM or Ctrl-C.
`;

async function main(argv: string[]): Promise<void> {
  const first = argv[0];
  if (first === '--help' || first === '-h' || first === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  if (first === '--version' || first === '-V') {
    const { version } = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
    process.stdout.write(`meshlens ${version}\n`);
    return;
  }
  if (first === 'demo') return demo(argv.slice(1));
  const target = (first ?? 'all') as Target;
  if (!(TARGETS as readonly string[]).includes(target)) {
    process.stderr.write(`meshlens: "${target}" is not a meshlens target; available: ${Object.keys(TARGET_HELP).join(', ')} (meshlens --help)\n`);
    process.exit(2);
  }
  const config = configOrExit();
  const logger = createLogger(config.logLevel, `meshlens-${target}`);
  quietGrpc(logger);
  const stopper = stopOnSignals(logger, config.shutdownTimeoutMs);
  const running = await start({ config, target, logger });
  stopper.arm(() => running.close());
  process.stdout.write(banner(target, config, running));
}

function configOrExit(env: Env = process.env): Config {
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

/**
 * grpc-js writes its own log lines to stderr (`E No address added out of total 1 resolved` before the bind error it
 * then throws). Into the process's logger instead, at debug: what it reports as an error in a server is either thrown
 * to meshlens as well (a port it cannot bind, said in one line at exit) or concerns client channels meshlens does not open.
 */
function quietGrpc(logger: ReturnType<typeof createLogger>): void {
  const log = (message: unknown, ...rest: unknown[]): void => logger.debug({ component: 'grpc-js' }, format(message, ...rest));
  setGrpcLogger({ error: log, info: log, debug: log });
}

/** A second signal sooner than this after the first is the same Ctrl-C delivered twice, not a request to hurry. */
const REPEAT_SIGNAL_MS = 1_000;

/**
 * Graceful stop on SIGTERM/SIGINT (a second signal, a second later or more, forces it), and on an uncaught
 * error, which then exits 1.
 * Armed with the running process's `close` once it started; before that, a signal or a crash exits at once.
 * The exit is forced at `timeoutMs` whatever the stop is doing: `close` plans its steps within that bound.
 */
function stopOnSignals(logger: ReturnType<typeof createLogger>, timeoutMs: number): { arm(close: () => Promise<void>): void } {
  let close: (() => Promise<void>) | undefined;
  let stoppingSince = 0;
  const stop = (why: string, code: number): void => {
    if (stoppingSince > 0) {
      // Ctrl-C under `npm start` delivers SIGINT twice within milliseconds (the terminal signals the process
      // group, and npm forwards its own): only a repeat a person could have meant forces the exit.
      if (Date.now() - stoppingSince < REPEAT_SIGNAL_MS) return;
      logger.warn({ why }, 'stopping at once');
      process.exit(code || 1);
    }
    stoppingSince = Date.now();
    if (close === undefined) process.exit(code || 1);
    logger.info({ why, timeoutMs }, 'shutting down');
    setTimeout(() => {
      logger.error({ timeoutMs }, 'graceful shutdown timed out (MESHLENS_SHUTDOWN_TIMEOUT)');
      process.exit(1);
    }, timeoutMs).unref();
    close().then(
      () => process.exit(code),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; stopping');
    stop('uncaughtException', 1);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection; stopping');
    stop('unhandledRejection', 1);
  });
  return {
    arm(c) {
      close = c;
    },
  };
}

/** The environment the running target was configured from (the demo adds its defaults), for describeStartError. */
let startEnv: Env = process.env;

/** What a file-system error code means to an operator. */
const FS_REASONS: Record<string, string> = {
  EEXIST: 'a file is in the way',
  ENOTDIR: 'part of the path is a file, not a folder',
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EISDIR: 'it is a folder',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
};

/** Start-up failures as one line naming what to change; the stack only at debug level. */
function describeStartError(err: unknown, env: Env): string {
  const e = err as { code?: string; message?: string; port?: number; address?: string; path?: string; syscall?: string };
  const message = String(e.message ?? err);
  if (err instanceof ConfigError || err instanceof StartError) return message;
  let config: Config | undefined;
  try {
    config = loadConfig(env);
  } catch {
    // A bad configuration never gets this far; without one, the variables are not named.
  }
  // gRPC's bind failure carries no code, only the listen error's text: `... errors: [listen EADDRINUSE: ... 127.0.0.1:4317]`.
  const listenCode = /\blisten (EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(message)?.[1];
  if (e.code === 'EADDRNOTAVAIL' || listenCode === 'EADDRNOTAVAIL' || (e.code === 'ENOTFOUND' && e.syscall === 'getaddrinfo')) {
    return `cannot listen on ${config?.listenHost ?? 'MESHLENS_LISTEN_HOST'}: it is not an address of this machine; set MESHLENS_LISTEN_HOST to one (0.0.0.0 for all)`;
  }
  if (e.code === 'EADDRINUSE' || listenCode !== undefined || (e.code === 'EACCES' && (e.syscall === 'listen' || e.port !== undefined))) {
    const ports: Record<string, number | undefined> = {
      MESHLENS_HTTP_PORT: config?.httpPort,
      MESHLENS_OTLP_GRPC_PORT: config?.otlpGrpcPort,
      MESHLENS_OTLP_HTTP_PORT: config?.otlpHttpPort,
      MESHLENS_ZIPKIN_PORT: config?.zipkinPort,
    };
    const port = e.port ?? Number(/:(\d+)\]?\s*$/.exec(message)?.[1]);
    const name = Object.entries(ports).find(([, v]) => v === port)?.[0] ?? 'the MESHLENS_*_PORT variables';
    const why = (e.code ?? listenCode) === 'EACCES' ? 'may not be opened by this user' : 'is in use by another process';
    return `cannot listen on port ${port}: it ${why}; stop that process or set ${name} to another port`;
  }
  // Another process on the directory that is not a meshlens (a ClickHouse, say): chDB cannot lock it.
  if (/Cannot lock file|Another server instance in same directory|Failed to create connection for path/i.test(message)) {
    return `the data directory ${config?.dataDir ?? './data'} is in use by another meshlens (or ClickHouse) process; stop it, or set MESHLENS_DATA_DIR to another directory`;
  }
  // A file or folder a setting names that cannot be created, read or written.
  const reason = e.code === undefined ? undefined : FS_REASONS[e.code];
  if (reason !== undefined && e.path !== undefined && config !== undefined) {
    const failed = resolve(e.path);
    const paths: Array<[string, string | undefined, string]> = [
      ['MESHLENS_DATA_DIR', config.dataDir, 'a folder meshlens can create and write to'],
      ['MESHLENS_MESH_CONFIG', config.meshConfigPath, 'a file or folder of Istio/Kubernetes YAML meshlens can read'],
      ['MESHLENS_FILE_SD_PATH', config.fileSdPath, 'a file meshlens can write'],
    ];
    const within = (a: string, b: string): boolean => a === b || a.startsWith(`${b}${sep}`);
    const hit = paths.find(([, value]) => value !== undefined && (within(failed, resolve(value)) || within(resolve(value), failed)));
    if (hit !== undefined) {
      const [name, value, what] = hit;
      return `${name}=${value ?? ''}: cannot ${e.syscall ?? 'use'} ${e.path}: ${reason}; set ${name} to ${what}`;
    }
  }
  if (/^cannot connect to Kafka\b/.test(message) && config !== undefined) {
    const why = (message.split('\n')[0] as string).replace(/^cannot connect to Kafka:\s*/, '');
    return `cannot connect to Kafka at ${config.kafkaBrokers.join(',')} (${why}); start the brokers, or set MESHLENS_KAFKA_BROKERS to brokers this process can reach`;
  }
  const first = message.split('\n')[0] as string;
  return `failed to start: ${redactUrl(first)}`;
}

/**
 * `meshlens demo`: the all-in-one plus the seeded Bookinfo simulator sending through the real receivers,
 * and a terminal summary; with `--ingest` (and `--zipkin`, `--api`) only the simulator and the summary, against a
 * meshlens running elsewhere. The summary owns stdout, so logs go to stderr at `warn` unless
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
  // A data directory of its own unless MESHLENS_DATA_DIR is set: demo traffic never mixes with `npm start`'s ./data.
  const env = { MESHLENS_LOG_LEVEL: 'warn', MESHLENS_MESH_CONFIG: DEMO_MESH_CONFIG, MESHLENS_DATA_DIR: DEMO_DATA_DIR, ...process.env };
  startEnv = env;
  const config = configOrExit(env);
  const logger = createLogger(config.logLevel, 'meshlens-demo', process.stderr);
  quietGrpc(logger);
  const stopper = stopOnSignals(logger, config.shutdownTimeoutMs);
  const common = { seed: args.value.seed, rps: args.value.rps, truthFile: args.value.truthFile, token: config.ingestToken, apiToken: config.apiToken, logger, out: process.stdout };
  const remote = args.value.remote;
  if (remote !== undefined) {
    // `--ingest`: a meshlens already runs (the compose stack's ingest and aggregator); start nothing, only send.
    logger.info({ ingest: remote.ingest, zipkin: remote.zipkin, api: remote.api }, 'demo: sending to a running meshlens');
    const handle = runDemo({ ...common, httpBaseUrl: remote.ingest, zipkinBaseUrl: remote.zipkin, apiBaseUrl: remote.api });
    stopper.arm(() => handle.stop());
    return;
  }
  const running: Running = await start({ config, target: 'all', logger });
  const h = config.listenHost === '0.0.0.0' ? '127.0.0.1' : config.listenHost;
  const handle = runDemo({ ...common, httpBaseUrl: `http://${h}:${running.ports.http}`, zipkinBaseUrl: `http://${h}:${running.ports.zipkin}` });
  stopper.arm(async () => {
    await handle.stop();
    await running.close();
  });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`meshlens: ${describeStartError(err, startEnv)}\n`);
  if (/^(debug|trace)$/.test(process.env.MESHLENS_LOG_LEVEL ?? '')) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
  process.exit(1);
});
