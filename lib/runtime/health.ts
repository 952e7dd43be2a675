/**
 * Liveness and readiness, after the Kubernetes `/livez` + `/readyz` convention (with `/healthz` as an alias
 * of `/livez`). Components register readiness checks; shutdown flips readiness off first.
 */
export type ReadinessCheck = () => boolean;

export class Health {
  private readonly checks = new Map<string, ReadinessCheck>();
  private started = false;
  private stopping = false;

  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  /** Called once every target is listening. */
  markStarted(): void {
    this.started = true;
  }

  markStopping(): void {
    this.stopping = true;
  }

  /** `{ready, checks}`: ready when started, not stopping, and every check passes. */
  readiness(): { ready: boolean; checks: Record<string, boolean> } {
    const checks: Record<string, boolean> = { started: this.started, not_stopping: !this.stopping };
    for (const [name, check] of this.checks) {
      let ok = false;
      try {
        ok = check();
      } catch {
        ok = false;
      }
      checks[name] = ok;
    }
    return { ready: Object.values(checks).every(Boolean), checks };
  }
}
