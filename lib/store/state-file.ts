/**
 * The aggregator's in-memory state saved at a graceful stop and loaded at start (the joined view's waiting records,
 * the span-edge decision's remembered hops and waiting spans): JSON, written whole or not at all.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';

/** Writes `state` as JSON to `file` atomically: a stop cut short leaves the previous file, never half of one. */
export async function saveState(file: string, state: object): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(state));
  await rename(`${file}.tmp`, file);
}

/** What `saveState` wrote to `file`, parsed; undefined when there is no file (nothing was saved). */
export async function loadState(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as unknown;
}
