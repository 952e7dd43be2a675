/**
 * `npm run provision`: regenerates the committed artefacts of CONTRACT.md §7 from code.
 * `npm run provision -- --check`: changes nothing; exits 1 listing every file that differs from what
 * would be generated (CI runs it through the drift test as well).
 */
import { join } from 'node:path';
import { diffGeneratedFiles, writeGeneratedFiles } from '../services/provisioner';

const USAGE = `usage: npm run provision [-- --check] [-- --root <dir>]
  (no flag)   write prometheus/rules/, prometheus/tests/, dashboards/, grafana/provisioning/ and k8s/base/generated/
              from services/provisioner
  --check     write nothing; exit 1 and list the files that differ, are missing or are extra
  --root DIR  repository root to write or check (default: this checkout)
`;

function main(argv: string[]): number {
  let check = false;
  let root = join(__dirname, '..');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--check') check = true;
    else if (a === '--root' && argv[i + 1] !== undefined) root = argv[++i] as string;
    else if (a === '--help' || a === '-h') {
      process.stdout.write(USAGE);
      return 0;
    } else {
      process.stderr.write(`provision: unknown argument ${JSON.stringify(a)}\n${USAGE}`);
      return 2;
    }
  }
  if (check) {
    const d = diffGeneratedFiles(root);
    const lines = [
      ...d.changed.map((p) => `  changed  ${p}`),
      ...d.missing.map((p) => `  missing  ${p}`),
      ...d.extra.map((p) => `  extra    ${p}`),
    ];
    if (lines.length === 0) {
      process.stdout.write('provision: generated files are up to date\n');
      return 0;
    }
    process.stderr.write(`provision: ${lines.length} generated file(s) differ from the code; run npm run provision\n${lines.join('\n')}\n`);
    return 1;
  }
  const r = writeGeneratedFiles(root);
  for (const p of r.written) process.stdout.write(`  wrote    ${p}\n`);
  for (const p of r.removed) process.stdout.write(`  removed  ${p}\n`);
  process.stdout.write(`provision: ${r.written.length} written, ${r.removed.length} removed, ${r.unchanged} unchanged\n`);
  return 0;
}

process.exitCode = main(process.argv.slice(2));
