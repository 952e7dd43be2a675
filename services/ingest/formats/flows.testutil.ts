/** Test helpers shared by the flow parsers' tests: fixture records and result unwrapping. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Flow, Result } from '../../../lib/model';

export const FLOW_FIXTURES = join(__dirname, '../../../test/fixtures/flows');

/** The non-blank lines of a fixture file. */
export function fixtureLines(file: string): string[] {
  return readFileSync(join(FLOW_FIXTURES, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
}

/** The records of an NDJSON fixture file, in file order. */
export function records(file: string): Record<string, unknown>[] {
  return fixtureLines(file).map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function accepted(r: Result<Flow>): Flow {
  if (!r.ok) throw new Error(`rejected ${r.reason}: ${r.message}`);
  return r.value;
}

/** The reason of a rejection; throws when the record was accepted. */
export function rejection(r: Result<Flow>): string {
  if (r.ok) throw new Error(`accepted ${JSON.stringify(r.value)}`);
  return r.reason;
}
