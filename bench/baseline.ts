/**
 * The baseline of CONTRACT.md §8: raw `JSON.parse` of every Istio JSON line, in a tight loop, lines per
 * second of wall time (one thread; GC helper threads aside, wall ≈ CPU here). Several passes, the first one
 * a warm-up (V8 has not optimized the loop yet); the benchmark divides by the best pass, which makes R as
 * strict as this machine allows.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface BaselinePass {
  linesPerSec: number;
  /** process CPU (all threads, GC helpers included) per line over the pass, for reference. */
  cpuLinesPerSec: number;
}

/** Keeps the parse results observable so the loop cannot be optimized away. */
let sink = 0;

export function baselinePasses(lines: readonly string[], passes: number): BaselinePass[] {
  const out: BaselinePass[] = [];
  for (let p = 0; p < passes; p++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let acc = 0;
    for (let i = 0; i < lines.length; i++) {
      const o = JSON.parse(lines[i] as string) as { response_code?: unknown };
      if (o.response_code !== undefined) acc++;
    }
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    sink += acc;
    out.push({ linesPerSec: lines.length / wall, cpuLinesPerSec: lines.length / ((c.user + c.system) / 1e6) });
  }
  return out;
}

export interface BaselineJob {
  /** The measured JSON lines, one per line, written by the bench process. */
  file: string;
  passes: number;
}

/**
 * The baseline in a process of its own (forked by the bench, like meshlens): a fresh heap holding only the
 * lines, so neither the load generator's buffers nor an earlier run's garbage slow JSON.parse down. The lines
 * are the very ones meshlens is sent, read from the file the bench wrote.
 */
export function runBaselineChild(job: BaselineJob): void {
  const lines = readFileSync(job.file, 'utf8').split('\n');
  const passes = baselinePasses(lines, job.passes);
  process.send?.({ passes, sink }, () => process.exit(0));
}
