import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import fc from 'fast-check';
import { parse } from 'yaml';
import { RESPONSE_FLAGS, hasMeshFailureFlag } from '../../../lib/model';
import { CANARY_DEFAULTS } from '../../../lib/runtime';
import { binaryOrSkip, runTool } from '../../../test/support/prometheus';
import { prometheusRuleTestFiles, renderLabelTemplate } from './rule-tests';
import {
  ALERT_NAMES,
  GENERATED_HEADER,
  MESH_FAILURE_FLAGS,
  RULE_DEFAULTS,
  RULE_FILE_PATHS,
  meshFailureFlagsRegex,
  promDurationSeconds,
  prometheusRuleFiles,
  resolveRuleOptions,
  ruleGroups,
  ruleNames,
} from './rules';
import type { AlertingRule, GeneratedFile, RuleGroup } from './rules';

const ROOT = join(__dirname, '..', '..', '..');
// Loud skip without promtool on PATH; with CI=true a missing promtool fails the suite (.ci/run installs it).
const PROMTOOL = binaryOrSkip('promtool', 'the promtool checks of the generated rules (services/provisioner/prometheus/rules.test.ts)');

/** `promtool <args>`; throws with its whole output when it exits non-zero. */
function run(args: string[]): string {
  const r = runTool(PROMTOOL as string, args);
  const output = r.stdout + r.stderr;
  if (r.status !== 0) throw new Error(`promtool ${args.join(' ')} exited ${r.status}:\n${output}`);
  return output;
}

function writeTo(dir: string, files: GeneratedFile[]): string[] {
  return files.map((f) => {
    const p = join(dir, f.path);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.content);
    return p;
  });
}

const alerts = (groups: RuleGroup[]): AlertingRule[] =>
  groups.flatMap((g) => g.rules).filter((r): r is AlertingRule => 'alert' in r);

describe('mesh-failure flags', () => {
  const re = new RegExp(`^(?:${meshFailureFlagsRegex()})$`);

  it('are the upstream_failure codes of lib/model/flags.ts', () => {
    expect(MESH_FAILURE_FLAGS).toEqual(RESPONSE_FLAGS.filter((f) => f.category === 'upstream_failure').map((f) => f.code));
    expect(MESH_FAILURE_FLAGS).toEqual(expect.arrayContaining(['UH', 'UF', 'URX', 'NR', 'UO', 'UT']));
  });

  it('the anchored regex agrees with hasMeshFailureFlag on single codes, "-" and lists', () => {
    for (const f of RESPONSE_FLAGS) expect([f.code, re.test(f.code)]).toEqual([f.code, f.category === 'upstream_failure']);
    for (const s of ['-', '', 'DC', 'UF,URX', 'URX,UF', 'DI,UT', 'UAEX', 'RL,UAEX', 'DC,UH', 'FI', 'UFX', 'XUF', 'UF ']) {
      expect([s, re.test(s)]).toEqual([s, hasMeshFailureFlag(s)]);
    }
  });

  it('agrees with hasMeshFailureFlag on any comma-joined list of known and unknown codes', () => {
    const code = fc.oneof(fc.constantFrom(...RESPONSE_FLAGS.map((f) => f.code)), fc.stringMatching(/^[A-Z]{1,5}$/));
    fc.assert(
      fc.property(fc.array(code, { minLength: 1, maxLength: 4 }), (codes) => {
        const s = codes.join(',');
        return re.test(s) === hasMeshFailureFlag(s);
      }),
    );
  });
});

describe('rule generator', () => {
  it('defaults come from CANARY_DEFAULTS', () => {
    expect(RULE_DEFAULTS.minRequests).toBe(CANARY_DEFAULTS.minRequests);
    expect(RULE_DEFAULTS.margin).toBe(CANARY_DEFAULTS.margin);
    const canary = alerts(ruleGroups().alerts).find((a) => a.alert === 'MeshCanaryErrorRatioHigh') as AlertingRule;
    expect(canary.expr).toContain(`>= ${CANARY_DEFAULTS.minRequests}`);
    expect(ruleGroups().recording.flatMap((g) => g.rules).map((r) => r.expr).join('\n')).toContain(`- ${CANARY_DEFAULTS.margin}\n`);
  });

  it('writes two YAML files with the generated header, loadable and with the expected names', () => {
    const files = prometheusRuleFiles();
    expect(files.map((f) => f.path)).toEqual([RULE_FILE_PATHS.recording, RULE_FILE_PATHS.alerts]);
    for (const f of files) expect(f.content.startsWith(GENERATED_HEADER)).toBe(true);
    const doc = parse((files[1] as GeneratedFile).content) as { groups: RuleGroup[] };
    expect(alerts(doc.groups).map((a) => a.alert)).toEqual([...ALERT_NAMES]);
    const n = ruleNames();
    expect(n.subset.requests).toBe('service_subset:meshlens_requests:rate5m');
    expect(n.canary.zscore).toBe('service_subset:meshlens_requests_app_errors:zscore10m');
    expect(n.denied.baseline).toBe('service_layer:meshlens_denied:rate1h_offset5m');
  });

  it('every alert has a severity, a summary, a description and a runbook that only uses $labels', () => {
    for (const a of alerts(ruleGroups().alerts)) {
      expect(['critical', 'warning']).toContain(a.labels.severity);
      expect(a.annotations.summary).toMatch(/\{\{ \$labels\./);
      expect(a.annotations.description).toMatch(/\{\{/);
      expect(a.annotations.runbook.length).toBeGreaterThan(200);
      expect(() => renderLabelTemplate(a.annotations.runbook, {})).not.toThrow();
    }
  });

  it('canary alert keeps exactly the CONTRACT §7 labels (namespace, name, subset) and excludes subset ""', () => {
    const { recording } = ruleGroups();
    const all = recording.flatMap((g) => g.rules);
    const others = all.find((r) => 'record' in r && r.record === ruleNames().canary.otherRequests);
    expect(others?.expr).toContain('destination_subset!=""');
    expect(others?.expr).toContain('group_right');
  });

  it('takes every duration from the options (short windows for integration tests)', () => {
    const opts = { rateWindow: '17s', canaryWindow: '73s', forDuration: '19s', verdictForDuration: '23s', deniedBaselineWindow: '29m', evaluationInterval: '7s' };
    const text = prometheusRuleFiles(opts)
      .map((f) => f.content)
      .join('\n');
    const ranges = new Set([...text.matchAll(/\[(\w+)\]/g)].map((m) => m[1]));
    const offsets = new Set([...text.matchAll(/offset (\w+)/g)].map((m) => m[1]));
    const fors = new Set([...text.matchAll(/^\s+for: (\S+)$/gm)].map((m) => m[1]));
    const intervals = new Set([...text.matchAll(/^\s+interval: (\S+)$/gm)].map((m) => m[1]));
    expect([...ranges].sort()).toEqual(['17s', '29m', '73s']);
    expect([...offsets]).toEqual(['17s']);
    expect([...fors].sort()).toEqual(['19s', '23s']);
    expect([...intervals]).toEqual(['7s']);
    // Windows named in recording rules and texts follow the options too.
    expect(text).not.toMatch(/\b(5m|10m|1h)\b/);
    expect(text).toContain('service_subset:meshlens_requests:increase73s');
    // The guard converts the rate window to seconds.
    expect(text).toContain('* 17 >= 100');
  });

  it('records each name once, also when the rate and canary windows are equal', () => {
    for (const opts of [{}, { rateWindow: '30s', canaryWindow: '30s', deniedBaselineWindow: '30s' }]) {
      const records = ruleGroups(opts).recording.flatMap((g) => g.rules).map((r) => ('record' in r ? r.record : ''));
      expect(new Set(records).size).toBe(records.length);
    }
  });

  it('rejects bad options, naming each', () => {
    expect(() => resolveRuleOptions({ rateWindow: '5 minutes', margin: 2, minRequests: 0 })).toThrow(
      /rateWindow="5 minutes"[\s\S]*margin=2[\s\S]*minRequests=0/,
    );
    expect(promDurationSeconds('1h30m')).toBe(5400);
    expect(promDurationSeconds('250ms')).toBe(0.25);
    expect(promDurationSeconds('0s')).toBeUndefined();
    expect(promDurationSeconds('')).toBeUndefined();
    expect(promDurationSeconds('5')).toBeUndefined();
  });

  it('is deterministic', () => {
    expect(prometheusRuleFiles()).toEqual(prometheusRuleFiles());
    expect(prometheusRuleTestFiles()).toEqual(prometheusRuleTestFiles());
  });
});

(PROMTOOL ? describe : describe.skip)('promtool', () => {
  it('check rules passes on every committed rule file', () => {
    const files = Object.values(RULE_FILE_PATHS).map((p) => join(ROOT, p));
    const out = run(['check', 'rules', ...files]);
    expect(out).toContain('SUCCESS: 27 rules found');
    expect(out).toContain('SUCCESS: 5 rules found');
  });

  it('test rules passes on the committed unit tests (canary, outage, mesh failures, denied spikes, verdict)', () => {
    const tests = prometheusRuleTestFiles().map((f) => join(ROOT, f.path));
    for (const t of tests) expect(readFileSync(t, 'utf8')).toContain('../rules/meshlens-alerts.yml');
    const out = run(['test', 'rules', ...tests]);
    expect(out.match(/SUCCESS/g)).toHaveLength(tests.length);
  });

  it('check rules passes on rules generated with short windows (integration tests)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-rules-'));
    try {
      const paths = writeTo(dir, prometheusRuleFiles({ rateWindow: '30s', canaryWindow: '1m', forDuration: '10s', verdictForDuration: '10s', evaluationInterval: '5s' }));
      run(['check', 'rules', ...paths]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('test rules fails when a guard is removed (the unit tests can fail)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlens-rules-'));
    try {
      const files = [...prometheusRuleFiles(), ...prometheusRuleTestFiles()].map((f) =>
        f.path === RULE_FILE_PATHS.alerts ? { ...f, content: f.content.replace(/increase10m >= 200/g, 'increase10m >= 0') } : f,
      );
      const paths = writeTo(dir, files);
      const canaryTest = paths.find((p) => p.endsWith('meshlens-canary.test.yml')) as string;
      expect(() => run(['test', 'rules', canaryTest])).toThrow(/MeshCanaryErrorRatioHigh/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
