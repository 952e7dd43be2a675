/**
 * The Dockerfile, checked without a Docker engine: dockerfilelint (with the repository's .dockerfilelintrc) finds
 * nothing, and what users of the image rely on holds, stage by stage as Docker resolves them:
 * - every image pulled is pinned to an exact tag, on a Node.js LTS line the code supports;
 * - the default image (the last stage) runs as a non-root user, has a HEALTHCHECK, and starts with the exec-form
 *   ENTRYPOINT `node bin/meshlens.js` (signals reach node); the same for the `all-in-one` target;
 * - the default image installs production dependencies without the optional ones (no chdb), the all-in-one
 *   with them; everything it copies exists and is not left out of the build context by .dockerignore.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run as dockerfilelint } from 'dockerfilelint';

const ROOT = join(__dirname, '..');
const TEXT = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

interface Instruction {
  line: number;
  cmd: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Instructions (continuation lines joined, comments dropped), grouped by stage. */
function stages(text: string): Stage[] {
  const out: Stage[] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') startLine = i + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\S+)\s*(.*)$/.exec(full) as RegExpExecArray;
    const ins = { line: startLine, cmd: (m[1] as string).toUpperCase(), args: m[2] as string };
    if (ins.cmd === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args) as RegExpExecArray;
      out.push({ name: f[2] ?? String(out.length), from: f[1] as string, instructions: [] });
    } else out[out.length - 1]?.instructions.push(ins);
  });
  return out;
}

/** The stage's instructions with those of the stages it builds on first (FROM <stage>). */
function resolved(all: Stage[], name: string): { base: string; instructions: Instruction[] } {
  const stage = all.find((s) => s.name === name);
  if (stage === undefined) throw new Error(`no stage ${name}`);
  if (all.some((s) => s.name === stage.from)) {
    const parent = resolved(all, stage.from);
    return { base: parent.base, instructions: [...parent.instructions, ...stage.instructions] };
  }
  return { base: stage.from, instructions: stage.instructions };
}

const last = (ins: Instruction[], cmd: string): Instruction | undefined => ins.filter((i) => i.cmd === cmd).pop();

/** What a user relies on in one buildable target; [] when it holds. */
function targetProblems(all: Stage[], name: string): string[] {
  const problems: string[] = [];
  const { instructions } = resolved(all, name);
  const user = last(instructions, 'USER')?.args;
  if (user === undefined || /^(root|0)(:|$)/.test(user)) problems.push(`${name}: runs as root (no USER, or USER root)`);
  const health = last(instructions, 'HEALTHCHECK')?.args ?? '';
  if (!/CMD\s+\[/.test(health)) problems.push(`${name}: no exec-form HEALTHCHECK`);
  else if (!/\/readyz|\/livez/.test(health)) problems.push(`${name}: the HEALTHCHECK does not ask /readyz or /livez`);
  const entry = last(instructions, 'ENTRYPOINT')?.args;
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry ?? '');
  } catch {
    parsed = undefined;
  }
  if (JSON.stringify(parsed) !== JSON.stringify(['node', 'bin/meshlens.js'])) problems.push(`${name}: ENTRYPOINT is not the exec form ["node", "bin/meshlens.js"] (got ${String(entry)})`);
  const cmd = last(instructions, 'CMD')?.args ?? '';
  if (!/^\[\s*"[a-z]+"\s*\]$/.test(cmd)) problems.push(`${name}: CMD is not one target in exec form (got ${cmd})`);
  const env = instructions.filter((i) => i.cmd === 'ENV').map((i) => i.args).join(' ');
  if (!/MESHLENS_LISTEN_HOST=0\.0\.0\.0/.test(env)) problems.push(`${name}: MESHLENS_LISTEN_HOST is not 0.0.0.0 (the container's port would answer nobody)`);
  return problems;
}

/** Images pulled from a registry (not stages): pinned to an exact tag, Node.js on an LTS line. */
function baseImageProblems(all: Stage[]): string[] {
  const problems: string[] = [];
  const names = new Set(all.map((s) => s.name));
  for (const s of all) {
    if (names.has(s.from)) continue;
    const m = /^([a-z0-9./-]+):([^:@]+)$/.exec(s.from);
    if (!m || m[2] === 'latest' || !/^v?\d+\.\d+\.\d+/.test(m[2] as string)) {
      problems.push(`stage ${s.name}: ${s.from} is not pinned to an exact version`);
      continue;
    }
    if (m[1] === 'node') {
      const major = Number((m[2] as string).split('.')[0]);
      if (major % 2 !== 0) problems.push(`stage ${s.name}: Node.js ${major} is not an LTS line`);
      if (!/-slim$/.test(m[2] as string)) problems.push(`stage ${s.name}: ${s.from} is not a slim image`);
    }
  }
  return problems;
}

describe('Dockerfile', () => {
  const all = stages(TEXT);
  const defaultTarget = all[all.length - 1] as Stage;

  it('passes dockerfilelint', () => {
    expect(dockerfilelint(ROOT, TEXT)).toEqual([]);
    // The linter is real: an untagged base, a lower-case command and sudo are found.
    const found = dockerfilelint(ROOT, 'FROM node\nrun sudo apt-get install -y curl\n').map((f) => f.rule);
    expect(found).toEqual(expect.arrayContaining(['uppercase_commands', 'sudo_usage']));
  });

  it('pins every base image to an exact tag, Node.js on a slim LTS image', () => {
    expect(baseImageProblems(all)).toEqual([]);
    expect(all.some((s) => /^node:\d+\.\d+\.\d+-\S*slim$/.test(s.from))).toBe(true);
    const bad = stages(TEXT.replace(/node:24\.\d+\.\d+-trixie-slim AS deps-all-in-one/, 'node:latest AS deps-all-in-one').replace(/node:24\.\d+\.\d+-trixie-slim AS app/, 'node:25.1.0-trixie-slim AS app'));
    expect(baseImageProblems(bad)).toEqual(['stage deps-all-in-one: node:latest is not pinned to an exact version', 'stage app: Node.js 25 is not an LTS line']);
  });

  it('the default image and the all-in-one run node bin/meshlens.js as a non-root user, with a HEALTHCHECK', () => {
    expect(targetProblems(all, defaultTarget.name)).toEqual([]);
    expect(targetProblems(all, 'all-in-one')).toEqual([]);
    const bad = stages(TEXT.replace(/^USER node$/m, 'USER root').replace(/^ENTRYPOINT .*$/m, 'ENTRYPOINT npm start').replace(/^HEALTHCHECK[^]*?\n(?=#|ENTRYPOINT)/m, ''));
    expect(targetProblems(bad, defaultTarget.name)).toEqual([
      `${defaultTarget.name}: runs as root (no USER, or USER root)`,
      `${defaultTarget.name}: no exec-form HEALTHCHECK`,
      `${defaultTarget.name}: ENTRYPOINT is not the exec form ["node", "bin/meshlens.js"] (got npm start)`,
    ]);
  });

  it('installs production dependencies only; chdb (optional) only in the all-in-one target', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string>>;
    expect(pkg.optionalDependencies?.chdb).toBeDefined();
    expect(pkg.dependencies?.chdb).toBeUndefined();
    // tsx runs the TypeScript at run time: it must be a production dependency.
    expect(pkg.dependencies?.tsx).toBeDefined();
    /** The `npm ci` behind the node_modules a target copies. */
    const npmCi = (target: string): string => {
      const { instructions } = resolved(all, target);
      const from = /--from=(\S+)\s+\S*node_modules/.exec(instructions.filter((i) => i.cmd === 'COPY').map((i) => i.args).join('\n'))?.[1];
      const run = (all.find((s) => s.name === from)?.instructions ?? []).filter((i) => i.cmd === 'RUN').map((i) => i.args).join('\n');
      return /npm ci[^&]*/.exec(run)?.[0] ?? '';
    };
    expect(npmCi(defaultTarget.name)).toMatch(/--omit=dev\b.*--omit=optional\b/);
    expect(npmCi('all-in-one')).toMatch(/--omit=dev\b/);
    expect(npmCi('all-in-one')).not.toMatch(/--omit=optional/);
  });

  it('copies what exists, and .dockerignore leaves none of it out', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const sources = all
      .flatMap((s) => s.instructions)
      .filter((i) => i.cmd === 'COPY' && !/--from=/.test(i.args))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources).toEqual(expect.arrayContaining(['bin', 'lib', 'services', 'simulator', 'clickhouse', 'package.json', 'package-lock.json']));
    for (const src of sources) {
      expect(existsSync(join(ROOT, src))).toBe(true);
      expect(ignored).not.toContain(src);
    }
    // What bin/meshlens.ts reads at run time beside the code: the migrations and the demo's mesh config.
    expect(sources).toEqual(expect.arrayContaining(['clickhouse', 'examples']));
  });
});
