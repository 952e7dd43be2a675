/**
 * The layout the README's Development section draws is the tree: every path it names exists, and every room
 * (each folder of lib/ and services/) and every top-level folder of the repository is named there. A folder moved
 * or added without the README following fails here.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The fenced block right after "## Development". */
function layoutBlock(readme: string): string {
  const section = readme.slice(readme.indexOf('## Development'));
  const m = /```\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md: no fenced layout block under "## Development"');
  return m[1] as string;
}

/** The paths a layout line names: the words before the description (two or more spaces), `a/ b/` or `A B C`. */
function namedPaths(block: string): string[] {
  const out: string[] = [];
  for (const line of block.split('\n')) {
    if (line.trim() === '' || /^\s/.test(line)) continue; // continuation lines describe, they name nothing
    const [names] = line.split(/\s{2,}/);
    out.push(...(names ?? '').split(' ').filter(Boolean));
  }
  return out;
}

/** Folders nobody commits (dependencies, data, results) are not part of the layout. */
const NOT_LAYOUT = new Set(['node_modules', 'data', 'data-demo', 'coverage', '.git', '.ci', '.scratch']);

function folders(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true })
    .filter((e) => e.isDirectory() && !NOT_LAYOUT.has(e.name) && !e.name.startsWith('.'))
    .map((e) => (dir === '.' ? `${e.name}/` : `${dir}/${e.name}/`));
}

describe("the README's layout", () => {
  const named = namedPaths(layoutBlock(README));

  it('names only paths that exist', () => {
    expect(named.length).toBeGreaterThan(20);
    expect(named.filter((p) => !existsSync(join(ROOT, p)))).toEqual([]);
  });

  it('names every room of lib/ and services/ and every top-level folder', () => {
    // Named itself, inside a named folder (not lib/ or services/ as a whole), or through a folder of its own (clickhouse/migrations/).
    const covered = (folder: string): boolean =>
      named.some((p) => p === folder || p.startsWith(folder) || (p.endsWith('/') && folder.startsWith(p) && p !== 'lib/' && p !== 'services/'));
    const wanted = [...folders('lib'), ...folders('services'), ...folders('.').filter((f) => f !== 'lib/' && f !== 'services/')];
    expect(wanted.filter((f) => !covered(f))).toEqual([]);
  });

  it('fails on a layout that names a folder that is not there, or leaves a room out', () => {
    const stale = namedPaths('services/simulator/     the simulator\nlib/model/   records\n');
    expect(stale.filter((p) => !existsSync(join(ROOT, p)))).toEqual(['services/simulator/']);
    expect(folders('lib').filter((f) => !stale.includes(f))).toContain('lib/store/');
  });
});
