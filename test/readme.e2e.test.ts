/**
 * The README and the docs run as written (issue 13 part 4): every ```sh example that calls `curl` against the
 * all-in-one and shows what it prints is run with bash against a real `node bin/meshlens.js all` (started as
 * users start it, through the fault harness), and what each command printed must match the sample beside it.
 *
 * Conventions the docs follow, so that an example runs unchanged in a user's shell:
 * - Event times are current: a block sets `NOW=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)` and its lines say `$NOW`
 *   (a fixed date would be refused `too_old` once the raw retention passed).
 * - A comment line `# {...}` (or `# [...]`) right after a command is that command's whole answer: it must be
 *   equal, byte for byte once parsed (ingest replies, health, error answers).
 * - A ```json block right after the ```sh block is the answer of the block's last command (query answers,
 *   taken from real runs and shortened only by leaving array elements out): the answer must have the same
 *   shape: the same keys, recursively, the same value types (a number where the sample has one may be null,
 *   and a null in the sample may be a number: quantiles and configured weights are null without data or mesh
 *   config), every element of an answer's array shaped like one of the sample's elements, top-level arrays
 *   not empty when the sample's are not, keys in the order meshlens writes them, and `reporter` exactly as
 *   shown.
 * - Ports are the defaults (`localhost:8080`, `:4317`, `:4318`, `:9411`); the test rewrites them to the ports
 *   its meshlens printed.
 *
 * Before the examples run, `meshlens demo --ingest` sends the simulated Bookinfo mesh's traffic for a few
 * seconds, so that the query examples (subsets, flows, graph, canaries of `reviews`) have data to answer with.
 *
 * The same file checks that the quickstart's banner is the one meshlens prints, that docs/api.md names every
 * route of meshlens's OpenAPI document (once it serves one), that every link between README.md and docs/
 * resolves (file and heading) and every repository file they name exists, that no user doc names the
 * internal contract, and that docs/configuration.md lists every MESHLENS_* variable the configuration reads,
 * each with the default `meshlens --help` prints.
 *
 * To see it fail, change a sample: `# {"accepted":2,...}` in the README's quickstart, or a key of a ```json
 * answer in docs/api.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { request, ROOT, sleep, startMeshlens, useFaultHarness, type Meshlens } from './faults/support';

/** The documents whose examples run; other docs hold deployment examples (compose, kubectl) that need a cluster. */
const RUN_DOCS = ['README.md', 'docs/api.md', 'docs/formats.md'];
const USER_DOCS = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  'bench/README.md',
  'examples/bookinfo/README.md',
];
/** What a run writes, so a fresh clone does not have it yet. */
const WRITTEN_BY_A_RUN = /^(bench\/results|data|data-demo)\//;
const MARK = '@@meshlens-readme-sample@@';

// ---------------------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------------------

interface Block {
  lang: string;
  body: string[];
  /** 1-based line of the opening fence. */
  line: number;
}

function blocks(text: string): Block[] {
  const out: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i] as string);
    if (!open) continue;
    const indent = (open[1] as string).length;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j] as string); j++) body.push((lines[j] as string).slice(indent));
    out.push({ lang: open[2] as string, body, line: i + 1 });
    i = j;
  }
  return out;
}

/** `# {...}` / `# [...]` comment lines that parse as JSON: the answer of the command above them. */
function sampleComment(line: string): unknown {
  const m = /^#\s+([[{].*)$/.exec(line);
  if (!m) return undefined;
  try {
    return JSON.parse(m[1] as string) as unknown;
  } catch {
    return undefined;
  }
}

interface Example {
  where: string;
  script: string;
  /** Exact answers, in order: one per `# {...}` line. */
  exact: unknown[];
  /** The shape of the last command's answer, from the ```json block after the script. */
  shape: unknown;
}

function examples(doc: string): Example[] {
  const text = readFileSync(join(ROOT, doc), 'utf8');
  const all = blocks(text);
  const lines = text.split('\n');
  const out: Example[] = [];
  all.forEach((b, k) => {
    if (b.lang !== 'sh' || !b.body.some((l) => /\bcurl\b.*\blocalhost:(8080|4317|4318|9411)\b/.test(l))) return;
    const exact: unknown[] = [];
    const script = b.body.map((l) => {
      const s = sampleComment(l);
      if (s === undefined) return l;
      exact.push(s);
      return `printf '\\n%s\\n' '${MARK}'`;
    });
    // A ```json block follows when only blank lines separate the two fences.
    const next = all[k + 1];
    const closing = b.line + b.body.length + 1;
    const adjacent = next !== undefined && next.lang === 'json' && lines.slice(closing, next.line - 1).every((l) => l.trim() === '');
    const shape = adjacent ? (JSON.parse(next.body.join('\n')) as unknown) : undefined;
    if (exact.length === 0 && shape === undefined) return; // an example without a sample (e.g. `hubble observe | curl`)
    out.push({ where: `${doc}:${b.line}`, script: script.join('\n'), exact, shape });
  });
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------------------------

const EXACT_KEYS = new Set(['reporter']);

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Differences between `actual` and the shape of `sample`, as `path: what` lines (empty when it matches). */
function shapeDiff(sample: unknown, actual: unknown, path = '$', depth = 0): string[] {
  const ks = kind(sample);
  const ka = kind(actual);
  const nullable = (a: string, b: string): boolean => (a === 'null' && b === 'number') || (a === 'number' && b === 'null');
  if (ks !== ka) return nullable(ks, ka) ? [] : [`${path}: the docs show ${ks}, meshlens answered ${ka} (${JSON.stringify(actual)?.slice(0, 120)})`];
  if (ks === 'array') {
    const s = sample as unknown[];
    const a = actual as unknown[];
    if (s.length === 0) return a.length === 0 ? [] : [`${path}: the docs show an empty list, meshlens answered ${a.length} element(s)`];
    if (a.length === 0) return depth <= 1 ? [`${path}: the docs show ${s.length} element(s), meshlens answered none`] : [];
    const problems: string[] = [];
    a.forEach((el, i) => {
      const tries = s.map((se) => shapeDiff(se, el, `${path}[${i}]`, depth + 1));
      if (tries.every((t) => t.length > 0)) problems.push(...(tries.sort((x, y) => x.length - y.length)[0] as string[]));
    });
    // And the other way: each element the docs show has the keys of some element of the answer, so one drifted
    // element among right ones is caught too.
    const keysOf = (v: unknown): string | undefined => (kind(v) === 'object' ? Object.keys(v as object).sort().join(',') : undefined);
    const answered = new Set(a.map(keysOf));
    s.forEach((se, i) => {
      const k = keysOf(se);
      if (k !== undefined && !answered.has(k)) problems.push(`${path}[${i}] in the docs has keys {${k}}, which no element of meshlens's answer has`);
    });
    return problems;
  }
  if (ks === 'object') {
    const s = sample as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const problems: string[] = [];
    for (const key of Object.keys(s)) {
      if (!(key in a)) problems.push(`${path}.${key}: in the docs, missing from meshlens's answer`);
      else if (EXACT_KEYS.has(key) && s[key] !== a[key]) problems.push(`${path}.${key}: the docs show ${JSON.stringify(s[key])}, meshlens answered ${JSON.stringify(a[key])}`);
      else problems.push(...shapeDiff(s[key], a[key], `${path}.${key}`, depth + 1));
    }
    for (const key of Object.keys(a)) if (!(key in s)) problems.push(`${path}.${key}: in meshlens's answer, missing from the docs`);
    // The docs show the keys in the order meshlens writes them.
    const shared = (o: Record<string, unknown>, other: Record<string, unknown>): string => Object.keys(o).filter((k) => k in other).join(',');
    if (problems.length === 0 && shared(s, a) !== shared(a, s)) problems.push(`${path}: the docs show the keys as {${shared(s, a)}}, meshlens writes {${shared(a, s)}}`);
    return problems;
  }
  return [];
}

// ---------------------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------------------

function rewritePorts(script: string, m: Meshlens): string {
  const ports: Record<string, number> = { '8080': m.ports.http, '4317': m.ports.otlpGrpc, '4318': m.ports.otlpHttp, '9411': m.ports.zipkin };
  return script.replace(/\blocalhost:(8080|4317|4318|9411)\b/g, (_all, p: string) => `localhost:${ports[p] as number}`);
}

function bash(script: string, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MESHLENS_')) env[k] = v;
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr });
    });
  });
}

/** Sends the simulator's traffic to `m` for `ms`, as `meshlens demo --ingest` does for users. */
async function simulate(m: Meshlens, ms: number): Promise<void> {
  const child = spawn(process.execPath, ['bin/meshlens.js', 'demo', '--ingest', m.base, '--zipkin', m.zipkinBase, '--rps', '40'], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await Promise.race([sleep(ms), exited]);
  if (child.exitCode !== null) throw new Error(`meshlens demo --ingest exited early (${String(child.exitCode)}): ${err.slice(-2000)}`);
  child.kill('SIGTERM');
  await exited;
}

function parse(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Error(`${where}: the command printed no JSON:\n${text.slice(0, 2000)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

describe('README and docs: the curl examples run against the all-in-one and print what the docs show', () => {
  useFaultHarness();
  let m: Meshlens;
  const all = RUN_DOCS.flatMap(examples);

  beforeAll(async () => {
    m = await startMeshlens({ scope: 'file' });
    await simulate(m, 10_000);
  }, 120_000);

  it('finds the examples (the quickstart, the receivers, the query API)', () => {
    const where = all.map((e) => e.where.split(':')[0]);
    for (const doc of RUN_DOCS) expect(where).toContain(doc);
    expect(all.length).toBeGreaterThanOrEqual(8);
  });

  it("README.md: the quickstart's banner is the one meshlens prints (ports and data dir aside)", () => {
    const shown = blocks(readFileSync(join(ROOT, 'README.md'), 'utf8')).find((b) => b.body.some((l) => l.startsWith('meshlens all ready')));
    expect(shown).toBeDefined();
    const banner = (lines: string[]): string[] => {
      const at = lines.findIndex((l) => l.startsWith('meshlens all ready'));
      return lines
        .slice(at, at + 5)
        .map((l) => l.replace(/ClickHouse embedded: [^)]*/, 'ClickHouse embedded: <dir>').replace(/:\d+\b/g, ':<port>').trimEnd());
    };
    expect(banner(m.stdout().split('\n'))).toEqual(banner((shown as Block).body));
  });

  it('docs/api.md documents every route the running meshlens describes in its OpenAPI document', async () => {
    const res = await request(`${m.base}/api/v1/openapi.json`);
    if (res.status === 404) {
      // A meshlens without the OpenAPI route: the route table of docs/api.md is checked by the examples alone.
      expect(readFileSync(join(ROOT, 'docs/api.md'), 'utf8')).not.toContain('/api/v1/openapi.json');
      return;
    }
    expect(res.status).toBe(200);
    const paths = Object.keys(res.json<{ paths?: Record<string, unknown> }>().paths ?? {});
    expect(paths.length).toBeGreaterThan(0);
    const doc = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    expect([...new Set(['/api/v1/openapi.json', ...paths])].filter((p) => !doc.includes(`\`GET ${p}\``))).toEqual([]);
  });

  it.each(all.map((e) => [e.where, e] as const))('%s', async (where, ex) => {
    const run = await bash(rewritePorts(ex.script, m));
    const context = `\n--- script (ports rewritten):\n${rewritePorts(ex.script, m)}\n--- stdout:\n${run.stdout}\n--- stderr:\n${run.stderr}`;
    if (run.code !== 0) throw new Error(`${where}: bash exited ${String(run.code)}${context}`);
    const parts = run.stdout.split(`\n${MARK}\n`);
    const problems: string[] = [];
    ex.exact.forEach((want, i) => {
      const got = parse((parts[i] ?? '').trim(), `${where}, sample ${i + 1}`);
      if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`sample ${i + 1}: the docs show ${JSON.stringify(want)}, meshlens answered ${JSON.stringify(got)}`);
    });
    if (ex.shape !== undefined) {
      const got = parse((parts[ex.exact.length] ?? '').trim(), `${where}, the json block`);
      problems.push(...shapeDiff(ex.shape, got));
    }
    if (problems.length > 0) throw new Error(`${where}: the docs drifted from what meshlens prints:\n  ${problems.join('\n  ')}${context}`);
  }, 30_000);
});

describe('README and docs stand alone', () => {
  /** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
  function anchors(text: string): Set<string> {
    const seen = new Map<string, number>();
    const out = new Set<string>();
    let fenced = false;
    for (const line of text.split('\n')) {
      if (/^\s*```/.test(line)) fenced = !fenced;
      const h = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
      if (!h) continue;
      const base = (h[1] as string)
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, '')
        .replace(/\s/g, '-');
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      out.add(n === 0 ? base : `${base}-${n}`);
    }
    return out;
  }

  it.each(USER_DOCS)('%s: every relative link resolves to a file and heading', (doc) => {
    const text = readFileSync(join(ROOT, doc), 'utf8').replace(/```[\s\S]*?```/g, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target as string)) continue; // http:, https:, mailto:
      const [file, anchor] = (target as string).split('#') as [string, string | undefined];
      const path = file === '' ? join(ROOT, doc) : resolve(dirname(join(ROOT, doc)), file);
      if (!existsSync(path)) {
        broken.push(`${target as string}: no file ${relative(ROOT, path)}`);
        continue;
      }
      if (anchor !== undefined && path.endsWith('.md') && !anchors(readFileSync(path, 'utf8')).has(anchor)) {
        broken.push(`${target as string}: no heading #${anchor} in ${relative(ROOT, path)}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it.each(USER_DOCS)('%s: names no internal contract', (doc) => {
    expect(readFileSync(join(ROOT, doc), 'utf8')).not.toMatch(/CONTRACT|§\s*\d/);
  });

  it.each(USER_DOCS)('%s: every file of the repository it names exists', (doc) => {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    // Files and folders, whole inside their backticks (`bench/results/<id>.cpuprofile` is a pattern, not a path).
    const named = [...text.matchAll(/`((?:bin|lib|services|simulator|test|bench|k8s|prometheus|grafana|dashboards|clickhouse|examples|alertmanager|docs)\/[\w./-]*)`/g)].map((m) => m[1] as string);
    expect(named.filter((p) => !WRITTEN_BY_A_RUN.test(p) && !existsSync(join(ROOT, p)))).toEqual([]);
  });

  it('docs/configuration.md lists every MESHLENS_* variable the configuration reads', () => {
    const read = new Set(readFileSync(join(ROOT, 'lib/runtime/config.ts'), 'utf8').match(/MESHLENS_[A-Z_]+[A-Z]/g) ?? []);
    const documented = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');
    expect(read.size).toBeGreaterThan(20);
    expect([...read].filter((v) => !documented.includes(`\`${v}\``))).toEqual([]);
  });

  it('docs/configuration.md gives each variable the default `meshlens --help` prints', () => {
    const help = spawnSync(process.execPath, ['bin/meshlens.js', '--help'], { cwd: ROOT, encoding: 'utf8' });
    expect(help.status).toBe(0);
    const printed = new Map([...help.stdout.matchAll(/^\s+(MESHLENS_\w+)\s{2,}(.+?)\s{2,}/gm)].map((m) => [m[1] as string, m[2] as string]));
    const table = new Map(
      [...readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8').matchAll(/^\| `(MESHLENS_\w+)` \| (.+?) \|/gm)].map((m) => [m[1] as string, (m[2] as string).replace(/`/g, '').trim()]),
    );
    expect(printed.size).toBeGreaterThan(20);
    expect(Object.fromEntries(table)).toEqual(Object.fromEntries(printed));
  });
});
