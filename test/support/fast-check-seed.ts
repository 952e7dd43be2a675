/**
 * One fast-check seed per test file, printed, so that any property failure can be replayed exactly
 * (issue 9: a property test failed at random in CI and nobody could rerun the failing case).
 *
 * Registered in jest.config.js `setupFilesAfterEnv`: jest runs it inside each test file's module registry,
 * so the `fast-check` it configures is the one the test file imports. The seed is `FC_SEED` when set, else
 * a fresh 32-bit draw; the line is printed when the file's first property runs (files without properties
 * print nothing):
 *
 *   fast-check seed 12345 (replay: FC_SEED=12345 npx jest lib/model/properties.test.ts)
 *
 * A property that passes its own `seed` keeps it; fast-check's failure message names seed and path either way.
 */
import { relative } from 'node:path';
import fc from 'fast-check';

function seedFromEnv(): number {
  const raw = process.env.FC_SEED;
  if (raw === undefined || raw.trim() === '') return (Math.random() * 0x1_0000_0000) | 0;
  const seed = Number(raw);
  // fast-check seeds are 32-bit integers; anything else would be truncated silently and replay another run.
  if (!Number.isInteger(seed) || seed < -0x8000_0000 || seed > 0xffff_ffff) {
    throw new Error(`FC_SEED must be a 32-bit integer, got ${JSON.stringify(raw)}`);
  }
  return seed | 0;
}

const seed = seedFromEnv();
let announced = false;

function announce(): void {
  if (announced) return;
  announced = true;
  const testPath = expect.getState().testPath;
  const file = testPath ? relative(process.cwd(), testPath) : '<file>';
  // stderr, not console.log: jest decorates console output with a multi-line stack location.
  process.stderr.write(`fast-check seed ${seed} (replay: FC_SEED=${seed} npx jest ${file})\n`);
}

// The global beforeEach hook runs before every property run: after the first it is one boolean test.
fc.configureGlobal({ ...fc.readConfigureGlobal(), seed, beforeEach: announce });
