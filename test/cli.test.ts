/**
 * Start-up errors of the real CLI (`node bin/meshlens.js`), as an operator meets them: one line on stderr
 * naming what to change, exit code 1, and no secret echoed.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SETTINGS } from '../lib/runtime';
import { EPHEMERAL_PORTS } from './support/meshlens';

const CLI = join(__dirname, '..', 'bin', 'meshlens.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI until it exits, or until `until(stdout)` holds (then it is left running and returned). */
function cli(args: string[], env: Record<string, string>, until?: (stdout: string) => boolean): Promise<Run & { kill?: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MESHLENS_LOG_LEVEL: 'warn', ...EPHEMERAL_PORTS, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the CLI did not finish in time; stderr: ${stderr}`));
    }, 60_000);
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (until?.(stdout)) {
        clearTimeout(timer);
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        resolve({ code: null, stdout, stderr, kill: () => (child.kill('SIGTERM'), exited) });
      }
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.trim() !== '');

/** A start-up failure as the operator should meet it: exit 1, one line on stderr naming `variable`, no stack. */
function expectOneLine(run: Run, variable: string): string {
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.code).toBe(1);
  const err = lines(run.stderr);
  expect(err).toEqual([expect.stringMatching(/^meshlens: /)]);
  expect(err[0]).toContain(variable);
  expect(run.stdout).not.toMatch(/ready/);
  return err[0] as string;
}

describe('meshlens CLI start-up errors', () => {
  const dirs: string[] = [];
  const dataDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'meshlens-cli-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it.each(['ingest', 'aggregator'])('refuses the %s target without Kafka, naming MESHLENS_KAFKA_BROKERS', async (target) => {
    const run = await cli([target], { MESHLENS_DATA_DIR: dataDir() });
    expect(run.code).toBe(1);
    expect(expectOneLine(run, 'MESHLENS_KAFKA_BROKERS')).toMatch(/^meshlens: invalid configuration: MESHLENS_KAFKA_BROKERS is not set: the .* target/);
  });

  it('refuses the tracer target without an endpoint, in one line naming MESHLENS_JAEGER_ENDPOINT', async () => {
    const run = await cli(['tracer'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_KAFKA_BROKERS: '127.0.0.1:1' });
    expect(run.code).toBe(1);
    expect(lines(run.stderr)).toEqual([expect.stringMatching(/^meshlens: MESHLENS_JAEGER_ENDPOINT is not set: the tracer target exports spans to it/)]);
    expect(run.stdout).not.toMatch(/ready/);
  });

  it('refuses the tracer target without Kafka, naming MESHLENS_KAFKA_BROKERS', async () => {
    const run = await cli(['tracer'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_JAEGER_ENDPOINT: 'http://127.0.0.1:1' });
    expect(run.code).toBe(1);
    expect(expectOneLine(run, 'MESHLENS_KAFKA_BROKERS')).toMatch(/MESHLENS_KAFKA_BROKERS is not set: the tracer target/);
  });

  it('names a bad ClickHouse URL without its password', async () => {
    const run = await cli(['all'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_CLICKHOUSE_URL: 'clickhouse://meshlens:hunter2@db:9000/meshlens' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('MESHLENS_CLICKHOUSE_URL');
    expect(run.stderr).toContain('meshlens:***@db');
    expect(run.stderr + run.stdout).not.toContain('hunter2');
  });

  it('says which variable to change when a port is taken', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const run = await cli(['all'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_HTTP_PORT: String(port) });
      expect(run.code).toBe(1);
      expect(lines(run.stderr)).toEqual([`meshlens: cannot listen on port ${port}: it is in use by another process; stop that process or set MESHLENS_HTTP_PORT to another port`]);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  it('says to set MESHLENS_DATA_DIR when another meshlens holds the data directory', async () => {
    const dir = dataDir();
    const first = await cli(['all'], { MESHLENS_DATA_DIR: dir }, (out) => out.includes('zipkin'));
    try {
      const second = await cli(['all'], { MESHLENS_DATA_DIR: dir });
      expect(second.code).toBe(1);
      const err = lines(second.stderr);
      expect(err).toHaveLength(1);
      expect(err[0]).toMatch(/^meshlens: the data directory .* is in use by another meshlens .*set MESHLENS_DATA_DIR/);
    } finally {
      await first.kill?.();
    }
  });

  it('says to set MESHLENS_MESH_CONFIG when it names no file or folder', async () => {
    const missing = join(dataDir(), 'no-such-mesh');
    const run = await cli(['all'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_MESH_CONFIG: missing });
    expect(expectOneLine(run, 'MESHLENS_MESH_CONFIG')).toBe(`meshlens: invalid configuration: MESHLENS_MESH_CONFIG=${JSON.stringify(missing)}: no such file or folder`);
  });

  it.each([
    ['is a file', (file: string) => file, 'a file is in the way'],
    ['lies under a file', (file: string) => join(file, 'data'), 'part of the path is a file'],
  ])('says to set MESHLENS_DATA_DIR when it cannot be created (it %s)', async (_, dirFor, why) => {
    const file = join(dataDir(), 'file');
    writeFileSync(file, 'not a folder\n');
    const run = await cli(['all'], { MESHLENS_DATA_DIR: dirFor(file) });
    expect(expectOneLine(run, 'MESHLENS_DATA_DIR')).toMatch(new RegExp(`^meshlens: MESHLENS_DATA_DIR=${dirFor(file)}: cannot mkdir .*: ${why}.*; set MESHLENS_DATA_DIR to a folder`));
  });

  it('says which variable to change when the gRPC port is taken', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const run = await cli(['all'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_OTLP_GRPC_PORT: String(port) });
      expect(expectOneLine(run, 'MESHLENS_OTLP_GRPC_PORT')).toBe(
        `meshlens: cannot listen on port ${port}: it is in use by another process; stop that process or set MESHLENS_OTLP_GRPC_PORT to another port`,
      );
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  it('says to set MESHLENS_LISTEN_HOST when it is not an address of this machine', async () => {
    // TEST-NET-1 (RFC 5737): never assigned to a local interface. The provisioner serves HTTP too, and opens no store.
    const run = await cli(['provisioner'], { MESHLENS_LISTEN_HOST: '192.0.2.1', MESHLENS_GRAFANA_URL: 'http://admin:admin@127.0.0.1:1' });
    expect(expectOneLine(run, 'MESHLENS_LISTEN_HOST')).toMatch(/^meshlens: cannot listen on 192\.0\.2\.1: it is not an address of this machine/);
  });

  it('says to check MESHLENS_KAFKA_BROKERS when no broker answers', async () => {
    const run = await cli(['all'], { MESHLENS_DATA_DIR: dataDir(), MESHLENS_KAFKA_BROKERS: '127.0.0.1:1' });
    // kafkajs's retries are logged as they happen (JSON, at error level); the CLI's own word is one line after them.
    const own = lines(run.stderr).filter((l) => !l.startsWith('{'));
    expectOneLine({ ...run, stderr: own.join('\n') }, 'MESHLENS_KAFKA_BROKERS');
    expect(own[0]).toMatch(/^meshlens: cannot connect to Kafka at 127\.0\.0\.1:1 .*set MESHLENS_KAFKA_BROKERS to brokers/);
  }, 60_000);
});

describe('meshlens CLI usage', () => {
  const TARGETS = ['all', 'ingest', 'aggregator', 'tracer', 'provisioner', 'demo'];

  it('--help exits 0 and lists every target with what it runs', async () => {
    const run = await cli(['--help'], {});
    expect(run.code).toBe(0);
    const targets = /^targets:\n([\s\S]*?)\n\n/m.exec(run.stdout)?.[1] ?? '';
    const listed = lines(targets)
      .map((l) => /^ {2}(\S+) +\S/.exec(l)?.[1])
      .filter((t): t is string => t !== undefined);
    expect(listed).toEqual(TARGETS);
    expect(run.stderr).toBe('');
  });

  it('--help lists every setting with its default, within 120 columns', async () => {
    const run = await cli(['--help'], {});
    expect(run.code).toBe(0);
    const out = lines(run.stdout);
    const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const s of SETTINGS) {
      expect([s.name, out.filter((l) => new RegExp(`^ +${s.name} +${escape(s.default)} +\\S`).test(l)).length]).toEqual([s.name, 1]);
    }
    expect(out.filter((l) => l.length > 120)).toEqual([]);
  });

  it('--version prints the package version', async () => {
    const run = await cli(['--version'], {});
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`meshlens ${(JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version}\n`);
  });

  it('an unknown target exits 2 naming every target, demo included', async () => {
    const run = await cli(['nope'], {});
    expect(run.code).toBe(2);
    expect(lines(run.stderr)).toEqual([`meshlens: "nope" is not a meshlens target; available: ${TARGETS.join(', ')} (meshlens --help)`]);
  });
});
