/** Time helpers shared by the runtime and the services. */

export const DAY_MS = 86_400_000;

/**
 * Waits for `p` at most `ms`: true when it settled in time (resolved or rejected: a step that fails is over),
 * false when the time ran out first. For stop steps that must not hold up the rest.
 */
export function within(ms: number, p: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, ms))));
  const done = p.then(
    () => true,
    () => true,
  );
  return Promise.race([done, timeout]).finally(() => clearTimeout(timer));
}
