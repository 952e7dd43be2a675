/**
 * Writing and drift-checking generated files (CONTRACT.md §7: "CI fails if the committed files differ from
 * what it generates"). A generated directory holds generated files only, so a file there that the
 * generators no longer produce (a renamed rule file) is drift too, and `write` removes it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import type { GeneratedFile } from './prometheus/rules';

export interface GeneratedDiff {
  /** Committed with other content. */
  changed: string[];
  /** Generated but not on disk. */
  missing: string[];
  /** On disk in a generated directory but not generated. */
  extra: string[];
}

function filesUnder(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    for (const e of readdirSync(abs, { withFileTypes: true })) {
      const p = join(abs, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(relative(root, p).split(sep).join('/'));
    }
  };
  if (existsSync(join(root, dir))) walk(join(root, dir));
  return out;
}

export function diffFiles(root: string, files: readonly GeneratedFile[], dirs: readonly string[]): GeneratedDiff {
  const diff: GeneratedDiff = { changed: [], missing: [], extra: [] };
  const wanted = new Set(files.map((f) => f.path));
  for (const f of files) {
    const abs = join(root, f.path);
    if (!existsSync(abs)) diff.missing.push(f.path);
    else if (readFileSync(abs, 'utf8') !== f.content) diff.changed.push(f.path);
  }
  for (const d of dirs) for (const p of filesUnder(root, d)) if (!wanted.has(p)) diff.extra.push(p);
  diff.changed.sort();
  diff.missing.sort();
  diff.extra.sort();
  return diff;
}

export interface WriteResult {
  written: string[];
  removed: string[];
  unchanged: number;
}

export function writeFiles(root: string, files: readonly GeneratedFile[], dirs: readonly string[]): WriteResult {
  const diff = diffFiles(root, files, dirs);
  const toWrite = new Set([...diff.changed, ...diff.missing]);
  for (const f of files) {
    if (!toWrite.has(f.path)) continue;
    const abs = join(root, f.path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, f.content);
  }
  for (const p of diff.extra) rmSync(join(root, p));
  return { written: [...toWrite].sort(), removed: diff.extra, unchanged: files.length - toWrite.size };
}
