import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { GENERATED_DIRS, diffGeneratedFiles, generatedFiles, writeGeneratedFiles } from './index';

const ROOT = join(__dirname, '..', '..');

describe('generated files', () => {
  it('the committed files equal generatedFiles() (run npm run provision)', () => {
    expect(diffGeneratedFiles(ROOT)).toEqual({ changed: [], missing: [], extra: [] });
    for (const f of generatedFiles()) expect(readFileSync(join(ROOT, f.path), 'utf8')).toBe(f.content);
  });

  it('every generated file lives in a generated directory', () => {
    for (const f of generatedFiles()) expect(GENERATED_DIRS.some((d) => f.path.startsWith(`${d}/`))).toBe(true);
  });

  describe('in a scratch checkout', () => {
    let root: string;
    beforeEach(() => {
      root = mkdtempSync(join(tmpdir(), 'meshlens-provision-'));
    });
    afterEach(() => rmSync(root, { recursive: true, force: true }));

    it('reports missing, changed and extra files; write fixes all three', () => {
      const paths = generatedFiles().map((f) => f.path).sort();
      expect(diffGeneratedFiles(root)).toEqual({ changed: [], missing: paths, extra: [] });
      expect(writeGeneratedFiles(root)).toEqual({ written: paths, removed: [], unchanged: 0 });
      expect(diffGeneratedFiles(root)).toEqual({ changed: [], missing: [], extra: [] });

      const first = paths[0] as string;
      writeFileSync(join(root, first), 'edited by hand\n');
      writeFileSync(join(root, 'prometheus/rules/old-name.yml'), 'groups: []\n');
      expect(diffGeneratedFiles(root)).toEqual({ changed: [first], missing: [], extra: ['prometheus/rules/old-name.yml'] });
      expect(writeGeneratedFiles(root)).toEqual({ written: [first], removed: ['prometheus/rules/old-name.yml'], unchanged: paths.length - 1 });
      expect(existsSync(join(root, 'prometheus/rules/old-name.yml'))).toBe(false);
      expect(diffGeneratedFiles(root)).toEqual({ changed: [], missing: [], extra: [] });
    });

    it('npm run provision -- --check exits 1 listing drift, 0 once written', () => {
      const cli = (...args: string[]) =>
        spawnSync(process.execPath, [join(ROOT, 'bin', 'provision.js'), '--root', root, ...args], { encoding: 'utf8', timeout: 60_000 });
      const before = cli('--check');
      expect(before.status).toBe(1);
      expect(before.stderr).toContain('missing  prometheus/rules/meshlens-alerts.yml');
      const write = cli();
      expect(write.status).toBe(0);
      expect(write.stdout).toContain('wrote    prometheus/rules/meshlens-recording.yml');
      const after = cli('--check');
      expect(after.status).toBe(0);
      expect(after.stdout).toContain('up to date');
    });
  });
});
