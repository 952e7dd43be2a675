/**
 * Reading `MESHLENS_MESH_CONFIG` (CONTRACT.md §2): one file, or every `*.yaml`, `*.yml` and `*.json` in a folder
 * and its subfolders, in the order `kubectl apply -R -f <folder>` takes them (names sorted per folder), so that
 * a later definition of the same object wins as it would in the cluster. Interpretation is `parseMeshConfig`
 * (parse.ts).
 *
 * A path that does not exist or cannot be read stops the start (a ConfigError naming the variable, like every
 * bad variable, lib/runtime/config.ts). Everything inside it is input: an unreadable file or a syntax error is a
 * problem the caller logs, and the rest of the config is used.
 *
 * Folders mounted from a Kubernetes ConfigMap hold each file twice: `reviews.yaml` → `..data/reviews.yaml` →
 * `..2024_01_01_00_00_00.000/reviews.yaml`. Names starting with `.` are skipped, so each file is read once
 * through its visible symlink; symlinked folders are followed once (loops are cut).
 */
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../runtime';
import { parseMeshConfig, type MeshConfigResult, type MeshConfigSource, type ParseMeshConfigOptions } from './parse';
import type { MeshConfigProblem } from './problems';

const VARIABLE = 'MESHLENS_MESH_CONFIG';
const CONFIG_FILE = /\.(ya?ml|json)$/i;

function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'ENOENT') return 'no such file or folder';
  if (err.code === 'EACCES' || err.code === 'EPERM') return 'permission denied';
  return err.message ?? String(e);
}

export async function loadMeshConfig(path: string, options: ParseMeshConfigOptions = {}): Promise<MeshConfigResult> {
  const bad = (why: string): ConfigError => new ConfigError([`${VARIABLE}=${JSON.stringify(path)}: ${why}`]);
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw bad(reason(e));
  }
  const problems: MeshConfigProblem[] = [];
  const sources: MeshConfigSource[] = [];
  if (st.isFile()) {
    try {
      sources.push({ name: path, text: await readFile(path, 'utf8') });
    } catch (e) {
      throw bad(reason(e));
    }
  } else if (st.isDirectory()) {
    let files: string[];
    try {
      files = await listConfigFiles(path, problems);
    } catch (e) {
      throw bad(reason(e));
    }
    if (files.length === 0) {
      problems.push({
        code: 'no_files',
        source: path,
        line: 0,
        object: '',
        message: `${VARIABLE}: folder ${path} holds no *.yaml, *.yml or *.json file`,
      });
    }
    for (const f of files) {
      try {
        sources.push({ name: f, text: await readFile(f, 'utf8') });
      } catch (e) {
        problems.push({ code: 'read_error', source: f, line: 0, object: '', message: `${f}: ${reason(e)}; skipped` });
      }
    }
  } else {
    throw bad('neither a file nor a folder');
  }
  const result = parseMeshConfig(sources, options);
  return { config: result.config, problems: [...problems, ...result.problems] };
}

/** Config files under `root`, depth first, names sorted by code unit per folder (as kubectl's filepath.Walk). */
async function listConfigFiles(root: string, problems: MeshConfigProblem[]): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>([await realpath(root)]);
  const walk = async (dir: string, top: boolean): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      if (top) throw e;
      problems.push({ code: 'read_error', source: dir, line: 0, object: '', message: `${dir}: ${reason(e)}; skipped` });
      return;
    }
    const names = entries.filter((d) => !d.name.startsWith('.')).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of names) {
      const full = join(dir, d.name);
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      if (d.isSymbolicLink()) {
        try {
          const t = await stat(full);
          isDir = t.isDirectory();
          isFile = t.isFile();
        } catch (e) {
          problems.push({ code: 'read_error', source: full, line: 0, object: '', message: `${full}: ${reason(e)} (dangling symlink?); skipped` });
          continue;
        }
      }
      if (isDir) {
        const real = await realpath(full).catch(() => full);
        if (seen.has(real)) continue;
        seen.add(real);
        await walk(full, false);
      } else if (isFile && CONFIG_FILE.test(d.name)) {
        out.push(full);
      }
    }
  };
  await walk(root, true);
  return out;
}
