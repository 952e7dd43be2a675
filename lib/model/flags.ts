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

/**
 * Normalize `%RESPONSE_FLAGS%` to comma-joined short codes, '' for none. A `-` token means "no flag" wherever
 * it appears and empty tokens vanish (`-,` → '', `,UF,` → `UF`), so the result is a fixed point: normalizing
 * twice gives the same string (issue 9: `-,` gave `-`, and `-` gave ''). Long names become short codes;
 * tokens outside Envoy's vocabulary are kept as logged (the raw record keeps them; `flagsLabel` bounds them).
 */
export function normalizeFlags(flags: string): string {
  const n = flags.length;
  if (n === 0) return '';
  // Fast paths that return the input itself: one short code, or a clean list of them (the default formats' cases).
  if (BY_CODE.has(flags)) return flags;
  if (n === 1 && flags.charCodeAt(0) === 45 /* - */) return '';
  if (isCleanList(flags, false)) return flags;
  let out = '';
  let start = 0;
  for (let i = 0; i <= n; i++) {
    if (i < n && flags.charCodeAt(i) !== 44 /* , */) continue;
    if (i > start && !(i - start === 1 && flags.charCodeAt(start) === 45)) {
      const token = flags.slice(start, i);
      const code = BY_LONG.get(token)?.code ?? token;
      out = out.length === 0 ? code : out + ',' + code;
    }
    start = i + 1;
  }
  return out;
}

/** The `response_flags` label value for tokens outside Envoy's vocabulary (CONTRACT §5). */
export const OTHER_FLAG = 'other';

/** Bit per short code (RESPONSE_FLAGS order), and one for `other`: the repeat check of `flagsLabel`. */
const BIT_BY_CODE = new Map<string, number>(RESPONSE_FLAGS.map((f, i) => [f.code, 1 << i]));
const OTHER_BIT = 1 << RESPONSE_FLAGS.length;
// One 32-bit mask holds the vocabulary and `other` (bit 31 included); a longer vocabulary needs a wider set (a programming
// error caught at load, not an input case).
if (RESPONSE_FLAGS.length > 31) throw new Error('flagsLabel: RESPONSE_FLAGS outgrew its 32-bit mask');

/**
 * True when `flags` is non-empty and every comma-separated token is a known short code (no empty or `-`
 * token); with `distinct`, also no code twice. Scans in place: the only strings made are the token lookups.
 */
function isCleanList(flags: string, distinct: boolean): boolean {
  let seen = 0;
  let start = 0;
  const n = flags.length;
  for (let i = 0; i <= n; i++) {
    if (i < n && flags.charCodeAt(i) !== 44 /* , */) continue;
    if (i === start) return false;
    const bit = BIT_BY_CODE.get(flags.slice(start, i));
    if (bit === undefined) return false;
    if (distinct) {
      if (seen & bit) return false;
      seen |= bit;
    }
    start = i + 1;
  }
  return true;
}

/**
 * The `response_flags` label value (Istio's label; CONTRACT §5, §9): `-` for none, else the short codes in
 * their logged order, each token outside Envoy's vocabulary replaced by `other`, and a token that repeats an
 * earlier one (two spellings of one flag, several unknown tokens) dropped. Its tokens thus come from a fixed
 * vocabulary whatever the input, where free text would make one series per distinct string; their order stays
 * as logged (Envoy writes them in one fixed order, and a sender that permutes them is held by the series cap).
 * Accepts raw or normalized flags. Already-bounded input (the common case) is returned itself, no string built.
 */
export function flagsLabel(flags: string): string {
  if (flags.length === 0) return '-';
  if (BY_CODE.has(flags) || isCleanList(flags, true)) return flags;
  let out = '';
  let seen = 0;
  let start = 0;
  const n = flags.length;
  for (let i = 0; i <= n; i++) {
    if (i < n && flags.charCodeAt(i) !== 44 /* , */) continue;
    if (i > start && !(i - start === 1 && flags.charCodeAt(start) === 45 /* - */)) {
      const token = flags.slice(start, i);
      const flag = BY_CODE.get(token) ?? BY_LONG.get(token);
      const code = flag ? flag.code : OTHER_FLAG;
      const bit = flag ? BIT_BY_CODE.get(code)! : OTHER_BIT;
      if ((seen & bit) === 0) {
        seen |= bit;
        out = out.length === 0 ? code : out + ',' + code;
      }
    }
    start = i + 1;
  }
  return out.length === 0 ? '-' : out;
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
