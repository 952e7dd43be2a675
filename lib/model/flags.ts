/**
 * Envoy's `%RESPONSE_FLAGS%` vocabulary (https://www.envoyproxy.io/docs/envoy/latest/configuration/observability/access_log/usage),
 * grouped the way meshlens judges requests. Flags are `-` or a comma-joined list in no guaranteed order.
 */

export type FlagCategory = 'policy' | 'upstream_failure' | 'downstream' | 'other';

export interface ResponseFlag {
  code: string;
  /** `%RESPONSE_FLAGS_LONG%` spelling. */
  long: string;
  category: FlagCategory;
}

const def = (code: string, long: string, category: FlagCategory): ResponseFlag => ({ code, long, category });

export const RESPONSE_FLAGS: readonly ResponseFlag[] = Object.freeze([
  def('UAEX', 'UnauthorizedExternalService', 'policy'),
  def('RL', 'RateLimited', 'policy'),
  def('RLSE', 'RateLimitServiceError', 'policy'),
  def('UH', 'NoHealthyUpstream', 'upstream_failure'),
  def('UF', 'UpstreamConnectionFailure', 'upstream_failure'),
  def('UO', 'UpstreamOverflow', 'upstream_failure'),
  def('URX', 'UpstreamRetryLimitExceeded', 'upstream_failure'),
  def('UT', 'UpstreamRequestTimeout', 'upstream_failure'),
  def('UR', 'UpstreamRemoteReset', 'upstream_failure'),
  def('UC', 'UpstreamConnectionTermination', 'upstream_failure'),
  def('UPE', 'UpstreamProtocolError', 'upstream_failure'),
  def('UMSDR', 'UpstreamMaxStreamDurationReached', 'upstream_failure'),
  def('LR', 'LocalReset', 'upstream_failure'),
  def('DF', 'DnsResolutionFailed', 'upstream_failure'),
  // The proxy could not route or admit the request at all: failures the mesh generated, like the upstream ones.
  def('NR', 'NoRouteFound', 'upstream_failure'),
  def('NC', 'NoClusterFound', 'upstream_failure'),
  def('NFCF', 'NoFilterConfigFound', 'upstream_failure'),
  def('LH', 'FailedLocalHealthCheck', 'upstream_failure'),
  def('OM', 'OverloadManagerTerminated', 'upstream_failure'),
  def('DO', 'DropOverload', 'upstream_failure'),
  def('UDO', 'UnconditionalDropOverload', 'upstream_failure'),
  def('DC', 'DownstreamConnectionTermination', 'downstream'),
  def('DPE', 'DownstreamProtocolError', 'downstream'),
  def('DR', 'DownstreamRemoteReset', 'downstream'),
  def('IH', 'InvalidEnvoyRequestHeaders', 'downstream'),
  def('DT', 'DurationTimeout', 'other'),
  def('SI', 'StreamIdleTimeout', 'other'),
  def('DI', 'DelayInjected', 'other'),
  def('FI', 'FaultInjected', 'other'),
  def('RFCF', 'ResponseFromCacheFilter', 'other'),
]);

const BY_CODE = new Map<string, ResponseFlag>(RESPONSE_FLAGS.map((f) => [f.code, f]));
const BY_LONG = new Map<string, ResponseFlag>(RESPONSE_FLAGS.map((f) => [f.long, f]));

export function responseFlag(codeOrLong: string): ResponseFlag | undefined {
  return BY_CODE.get(codeOrLong) ?? BY_LONG.get(codeOrLong);
}

/** Normalize `-`, null-ish and long spellings to the comma-joined short codes ('' for none). */
export function normalizeFlags(flags: string): string {
  if (flags.length === 0 || flags === '-') return '';
  // Fast path: already short codes, the common case in the default formats.
  let allShort = true;
  forEachFlag(flags, (f) => {
    if (allShort && !BY_CODE.has(f)) allShort = false;
  });
  if (allShort) return flags;
  const out: string[] = [];
  forEachFlag(flags, (f) => out.push(BY_LONG.get(f)?.code ?? f));
  return out.join(',');
}

/** The `response_flags` label value Istio uses: the flags, or `-` for none. */
export function flagsLabel(flags: string): string {
  return flags === '' ? '-' : flags;
}

/** Call `fn` for each flag of a comma-joined list, without allocating an array. */
export function forEachFlag(flags: string, fn: (flag: string) => void): void {
  let start = 0;
  for (let i = 0; i <= flags.length; i++) {
    if (i === flags.length || flags.charCodeAt(i) === 44 /* , */) {
      if (i > start) fn(flags.slice(start, i));
      start = i + 1;
    }
  }
}

export function hasFlag(flags: string, code: string): boolean {
  // indexOf('') matches at every position, clamped to the length: without this the loop never ends.
  if (code.length === 0) return false;
  let from = 0;
  for (;;) {
    const at = flags.indexOf(code, from);
    if (at < 0) return false;
    const end = at + code.length;
    const boundedLeft = at === 0 || flags.charCodeAt(at - 1) === 44;
    const boundedRight = end === flags.length || flags.charCodeAt(end) === 44;
    if (boundedLeft && boundedRight) return true;
    from = at + 1;
  }
}

/** True when any flag says the proxy itself failed the request (no healthy upstream, connect failure, no route...). */
export function hasMeshFailureFlag(flags: string): boolean {
  if (flags.length === 0) return false;
  let found = false;
  forEachFlag(flags, (f) => {
    if (!found && BY_CODE.get(f)?.category === 'upstream_failure') found = true;
  });
  return found;
}
