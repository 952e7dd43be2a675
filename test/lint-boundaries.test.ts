/**
 * The house's boundaries are lint rules (issue 13 part 5, DESIGN.md "Layout"): `npm run lint` fails on an import
 * that reaches past another room's index.ts, on a service importing another service, and on lib importing a
 * service; an import through the index passes. The first case runs `npm run lint` itself in a child process; the
 * rest run the repository's own eslint.config.js through ESLint's Node API (faster), on snippets linted as if they
 * were files of the repository (relative specifiers resolve from there).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ESLint, type Linter } from 'eslint';

const ROOT = join(__dirname, '..');
const RULE = 'meshlens/boundaries';
// The repository's config, handed over as is: ESLint would load the file by a dynamic import(), which jest's VM
// cannot do without --experimental-vm-modules.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const CONFIG = require(join(ROOT, 'eslint.config.js')) as Linter.Config[];

// One instance: the type-aware rules' project service is built once for every snippet.
const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: true, overrideConfig: CONFIG });

async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
  return (result?.messages ?? []).filter((m) => m.ruleId === RULE).map((m) => m.message);
}

/** `npm run lint`, on `code` read from stdin as if it were the repository's `file`. */
function npmRunLint(file: string, code: string): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '-s', 'lint', '--', '--stdin', '--stdin-filename', file], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, output }));
    child.stdin.end(code);
  });
}

describe('lint-enforced boundaries', () => {
  jest.setTimeout(60_000);

  it('makes `npm run lint` fail on a deep import, and pass on the same import through the index', async () => {
    const [deep, viaIndex] = await Promise.all([
      npmRunLint('services/tracer/sampler.ts', "import { StoreWriter } from '../../lib/store/writer';\nexport const w = StoreWriter;\n"),
      npmRunLint('services/tracer/sampler.ts', "import { StoreWriter } from '../../lib/store';\nexport const w = StoreWriter;\n"),
    ]);
    expect(deep.status).toBe(1);
    expect(deep.output).toContain(`reaches into lib/store/ past its index.ts: import from '../../lib/store'`);
    expect(deep.output).toContain(RULE);
    expect(viaIndex).toEqual({ status: 0, output: '' });
  });

  it('refuses a deep import into another room, naming its index', async () => {
    const errors = await boundaryErrors('services/tracer/sampler.ts', "import { StoreWriter } from '../../lib/store/writer';\nexport const w = StoreWriter;\n");
    expect(errors).toEqual([expect.stringContaining("reaches into lib/store/ past its index.ts: import from '../../lib/store'")]);
  });

  it('resolves relative paths: the same deep import from bin/ and from test/ is refused too', async () => {
    expect(await boundaryErrors('bin/start.ts', "import { StoreWriter } from '../lib/store/writer';\nexport const w = StoreWriter;\n")).toHaveLength(1);
    expect(await boundaryErrors('test/faults/support.ts', "import { StoreWriter } from '../../lib/store/writer';\nexport const w = StoreWriter;\n")).toHaveLength(1);
  });

  it('refuses a service importing another service, even through its index', async () => {
    const errors = await boundaryErrors('services/tracer/sampler.ts', "import { createIngest } from '../ingest';\nexport const c = createIngest;\n");
    expect(errors).toEqual([expect.stringContaining('services/tracer imports services/ingest; services never import services')]);
  });

  it('refuses lib importing a service', async () => {
    const errors = await boundaryErrors('lib/store/writer.ts', "import { createAggregator } from '../../services/aggregator';\nexport const c = createAggregator;\n");
    expect(errors).toEqual([expect.stringContaining('lib/store imports services/aggregator; dependencies point one way')]);
  });

  it("passes imports through a room's index, and a room's own files", async () => {
    expect(await boundaryErrors('services/tracer/sampler.ts', "import { StoreWriter } from '../../lib/store';\nexport const w = StoreWriter;\n")).toEqual([]);
    expect(await boundaryErrors('services/tracer/sampler.ts', "import { ExportQueue } from './queue';\nexport const q = ExportQueue;\n")).toEqual([]);
    expect(await boundaryErrors('test/faults/support.ts', "import { createIngest } from '../../services/ingest';\nexport const c = createIngest;\n")).toEqual([]);
  });
});
