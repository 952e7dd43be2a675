/**
 * Test helpers for the access-log parsers: fixture loading and result unwrapping. Fixtures are real lines
 * from public docs and issues; see test/fixtures/SOURCES.md ("Access logs") for where each line came from.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REJECT_REASONS, type MeshRequest, type Result } from '../../../lib/model';

export const FIXTURES = join(__dirname, '../../../test/fixtures/accesslogs');

/** The lines of a fixture file, without the final newline; `\r` and other bytes are kept as written. */
export function fixtureLines(name: string): string[] {
  const text = readFileSync(join(FIXTURES, name), 'utf8');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

export function fixtureLine(name: string, index: number): string {
  const line = fixtureLines(name)[index];
  if (line === undefined) throw new Error(`${name} has no line ${index}`);
  return line;
}

/** The record of an accepted result; fails the test with the rejection otherwise. */
export function accepted(result: Result<MeshRequest>): MeshRequest {
  if (!result.ok) throw new Error(`rejected: ${result.reason}: ${result.message}`);
  return result.value;
}

export function rejection(result: Result<MeshRequest>): { reason: string; message: string } {
  if (result.ok) throw new Error(`accepted unexpectedly: ${JSON.stringify(result.value)}`);
  return { reason: result.reason, message: result.message };
}

const REASONS: ReadonlySet<string> = new Set(REJECT_REASONS);

/** Every rejection names a reason from the catalogue and says something. */
export function isWellFormedRejection(result: Result<unknown>): boolean {
  return result.ok || (REASONS.has(result.reason) && typeof result.message === 'string' && result.message.length > 0);
}

/** Invariants every accepted record keeps, whatever the input. */
export function isSaneRecord(r: MeshRequest): boolean {
  return (
    Number.isFinite(r.startTimeMs) &&
    Number.isInteger(r.responseCode) &&
    r.responseCode >= 0 &&
    r.responseCode <= 999 &&
    r.bytesReceived >= 0 &&
    r.bytesSent >= 0 &&
    r.durationMs >= 0 &&
    r.upstreamServiceTimeMs >= -1 &&
    ['source', 'destination', 'unknown'].includes(r.reporter) &&
    ['ok', 'error', 'denied'].includes(r.outcome) &&
    ['http', 'grpc', 'tcp', 'unknown'].includes(r.protocol) &&
    (r.outcome === 'denied') === (r.denyReason !== '') &&
    Object.values(r.attributes).every((v) => typeof v === 'string')
  );
}
