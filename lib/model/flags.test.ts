import { RESPONSE_FLAGS, forEachFlag, hasFlag, hasMeshFailureFlag, normalizeFlags, responseFlag } from './flags';

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

  it('has a long name for every short code and back', () => {
    for (const f of RESPONSE_FLAGS) {
      expect(normalizeFlags(f.long)).toBe(f.code);
      expect(responseFlag(f.code)).toBe(f);
      expect(responseFlag(f.long)).toBe(f);
    }
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
