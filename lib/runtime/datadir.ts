/**
 * One meshlens per data directory. Embedded ClickHouse refuses a second engine on the same directory, but only
 * after printing its own multi-line error; the dead-letter files have no lock at all. A `meshlens.pid` file,
 * taken at start and removed at stop, turns that into one line naming the variable to change. A file left by a
 * process that is gone (kill -9, a crash) is taken over.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A start-up problem with a one-line explanation for the operator (the CLI prints it as is). */
export class StartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartError';
  }
}

/** Whether `pid` is a running meshlens. Where /proc tells, a reused pid (another program now) does not count. */
function aliveMeshlens(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('meshlens');
  } catch {
    return true; // no /proc (not Linux): trust the signal check
  }
}

/** Claims `dir` for this process; returns the release function. Throws StartError when a live process holds it. */
export function claimDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'meshlens.pid');
  let holder = NaN;
  try {
    holder = Number(readFileSync(file, 'utf8').trim());
  } catch {
    // no file: nobody holds it
  }
  // Our own pid is a leftover too: a container's meshlens is pid 1 in every run.
  if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && aliveMeshlens(holder)) {
    throw new StartError(
      `the data directory ${dir} is in use by another meshlens (pid ${holder}); stop it, or set MESHLENS_DATA_DIR to another directory`,
    );
  }
  writeFileSync(file, `${process.pid}\n`);
  return () => {
    try {
      if (Number(readFileSync(file, 'utf8').trim()) === process.pid) rmSync(file, { force: true });
    } catch {
      // already gone
    }
  };
}
