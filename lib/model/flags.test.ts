import { RESPONSE_FLAGS, flagsLabel, forEachFlag, hasFlag, hasMeshFailureFlag, normalizeFlags, responseFlag } from './flags';

describe('normalizeFlags', () => {
  it('maps "no flags" to the empty string', () => {
    expect(normalizeFlags('-')).toBe('');
    expect(normalizeFlags('')).toBe('');
  });

  it('keeps short codes as logged', () => {
    expect(normalizeFlags('UF,URX')).toBe('UF,URX');
    expect(normalizeFlags('UAEX')).toBe('UAEX');
  });

  it('turns %RESPONSE_FLAGS_LONG% names into short codes', () => {
    expect(normalizeFlags('UpstreamConnectionFailure,UpstreamRetryLimitExceeded')).toBe('UF,URX');
    expect(normalizeFlags('NoHealthyUpstream')).toBe('UH');
    expect(normalizeFlags('UnauthorizedExternalService')).toBe('UAEX');
    expect(normalizeFlags('DownstreamConnectionTermination')).toBe('DC');
    expect(normalizeFlags('NoRouteFound')).toBe('NR');
  });

  it('handles mixed spellings and keeps unknown flags rather than dropping them', () => {
    expect(normalizeFlags('UF,NoHealthyUpstream')).toBe('UF,UH');
    expect(normalizeFlags('SomeFutureFlag,UF')).toBe('SomeFutureFlag,UF');
  });

  it('drops `-` tokens and empty tokens wherever they appear (issue 9: `-,` gave `-`, not idempotent)', () => {
    // The counterexample of the CI failure { seed: -2008217947, path: "163" } of properties.test.ts.
    expect(normalizeFlags('-,')).toBe('');
    expect(normalizeFlags(normalizeFlags('-,'))).toBe('');
    expect(normalizeFlags(',-')).toBe('');
    expect(normalizeFlags(',')).toBe('');
    expect(normalizeFlags('-,-')).toBe('');
    expect(normalizeFlags('-,UF')).toBe('UF');
    expect(normalizeFlags('UF,-')).toBe('UF');
    expect(normalizeFlags(',UF,,URX,')).toBe('UF,URX');
    expect(normalizeFlags('-,NoHealthyUpstream')).toBe('UH');
    expect(normalizeFlags('SomeFutureFlag,-')).toBe('SomeFutureFlag');
  });

  it('returns a clean list unchanged (the same string: no copy on the common path)', () => {
    for (const f of ['UF', 'UF,URX', 'DC', 'UAEX', 'SomeFutureFlag,UF']) expect(normalizeFlags(f)).toBe(f);
  });

  it('has a long name for every short code and back', () => {
    for (const f of RESPONSE_FLAGS) {
      expect(normalizeFlags(f.long)).toBe(f.code);
      expect(responseFlag(f.code)).toBe(f);
      expect(responseFlag(f.long)).toBe(f);
    }
  });
});

describe('flagsLabel', () => {
  it('is `-` for no flags, as in Istio', () => {
    expect(flagsLabel('')).toBe('-');
    expect(flagsLabel('-')).toBe('-');
    expect(flagsLabel('-,')).toBe('-');
  });

  it('keeps Envoy`s short codes in their logged order', () => {
    expect(flagsLabel('UF')).toBe('UF');
    expect(flagsLabel('UF,URX')).toBe('UF,URX');
    expect(flagsLabel('URX,UF')).toBe('URX,UF');
    for (const f of RESPONSE_FLAGS) expect(flagsLabel(f.code)).toBe(f.code);
  });

  it('turns long names into short codes (callers may pass unnormalized flags)', () => {
    expect(flagsLabel('NoHealthyUpstream')).toBe('UH');
    expect(flagsLabel('UF,UpstreamRetryLimitExceeded')).toBe('UF,URX');
  });

  it('bounds the vocabulary: every token outside Envoy`s becomes `other` (CONTRACT §5, §9)', () => {
    expect(flagsLabel('SomeFutureFlag')).toBe('other');
    expect(flagsLabel('SomeFutureFlag,UF')).toBe('other,UF');
    expect(flagsLabel('UF,uf')).toBe('UF,other'); // codes are case-sensitive in Envoy
    expect(flagsLabel('<script>')).toBe('other');
  });

  it('collapses repeated tokens, so unknown tokens cannot multiply label values', () => {
    expect(flagsLabel('X1,X2,X3')).toBe('other');
    expect(flagsLabel('X1,UF,X2')).toBe('other,UF');
    expect(flagsLabel('UF,UF')).toBe('UF');
    expect(flagsLabel('UF,UpstreamConnectionFailure')).toBe('UF');
  });

  it('maps 2,000 distinct free-text values to one label value (issue 9: 2,000 series under MESHLENS_MAX_SERIES=10)', () => {
    const labels = new Set<string>();
    for (let i = 0; i < 2000; i++) labels.add(flagsLabel(normalizeFlags(`flag-${i}`)));
    expect([...labels]).toEqual(['other']);
    const mixed = new Set<string>();
    for (let i = 0; i < 2000; i++) mixed.add(flagsLabel(`UF,flag-${i},flag-${i + 1}`));
    expect([...mixed]).toEqual(['UF,other']);
  });

  it('returns an already-bounded value itself, without building a new string', () => {
    const v = 'UO,UF,URX';
    expect(flagsLabel(v)).toBe(v);
  });
});

describe('hasFlag', () => {
  it('matches whole flags in any position of the list', () => {
    expect(hasFlag('UF', 'UF')).toBe(true);
    expect(hasFlag('URX,UF', 'UF')).toBe(true);
    expect(hasFlag('UF,URX', 'UF')).toBe(true);
    expect(hasFlag('UO,UF,URX', 'UF')).toBe(true);
  });

  it('does not match a flag inside a longer one', () => {
    expect(hasFlag('UFX', 'UF')).toBe(false);
    expect(hasFlag('XUF', 'UF')).toBe(false);
    expect(hasFlag('URX', 'UR')).toBe(false);
    expect(hasFlag('RLSE', 'RL')).toBe(false);
    expect(hasFlag('UMSDR,DR', 'DR')).toBe(true); // the second occurrence is whole
    expect(hasFlag('UAEX', 'UAE')).toBe(false);
  });

  it('is false for no flags and for an empty code', () => {
    expect(hasFlag('', 'UF')).toBe(false);
    expect(hasFlag('UF', '')).toBe(false); // used to loop forever: indexOf('') matches everywhere
  });
});

describe('hasMeshFailureFlag', () => {
  it('is true for upstream failures the proxy generated', () => {
    for (const f of ['UF', 'UH', 'URX', 'UO', 'UT', 'UC', 'UR', 'LR', 'NR', 'DF', 'DC,UF']) expect(hasMeshFailureFlag(f)).toBe(true);
  });

  it('is false for downstream, policy and other flags', () => {
    for (const f of ['', 'DC', 'DR', 'DPE', 'UAEX', 'RL', 'FI', 'DI', 'SI', 'UFX']) expect(hasMeshFailureFlag(f)).toBe(false);
  });
});

describe('forEachFlag', () => {
  it('visits each non-empty flag once', () => {
    const seen: string[] = [];
    forEachFlag('UF,,URX,', (f) => seen.push(f));
    expect(seen).toEqual(['UF', 'URX']);
  });
});
