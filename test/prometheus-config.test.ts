/**
 * prometheus/prometheus.yml (hand-written, committed for the compose stack): `promtool check config` passes on
 * it, with the paths it expects under /etc/prometheus pointed at a temporary folder holding the generated rule
 * files (prometheus/rules/*.yml, when present) and a file_sd file as meshlens writes it, which promtool parses
 * and validates as well. And it points at meshlens's HTTP SD endpoint with the label values meshlens emits.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadMeshConfig } from '../lib/meshconfig';
import { MemberDirectory } from '../lib/membership';
import { SOURCE_LABEL, SOURCE_MEMBERSHIP, SOURCE_MESH_CONFIG, TARGETS_PATH, buildTargetGroups, writeFileSd } from '../services/aggregator';
import { binaryOrSkip, runTool } from './support/prometheus';

const ROOT = join(__dirname, '..');
const CONFIG = join(ROOT, 'prometheus', 'prometheus.yml');
const PROMTOOL = binaryOrSkip('promtool', 'the prometheus/prometheus.yml check (test/prometheus-config.test.ts)');

interface Job {
  job_name: string;
  http_sd_configs?: { url: string; refresh_interval?: string }[];
  file_sd_configs?: { files: string[] }[];
  relabel_configs?: { source_labels?: string[]; regex?: string; action?: string }[];
}

describe('prometheus/prometheus.yml', () => {
  const text = readFileSync(CONFIG, 'utf8');
  const config = parse(text) as { global: Record<string, string>; rule_files: string[]; alerting: unknown; scrape_configs: Job[] };

  it('is what the compose stack needs: intervals, rules, Alertmanager, the meshlens jobs', () => {
    expect(config.global).toEqual({ scrape_interval: '15s', evaluation_interval: '15s' });
    expect(config.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
    expect(config.alerting).toEqual({ alertmanagers: [{ static_configs: [{ targets: ['alertmanager:9093'] }] }] });
    const jobs = new Map(config.scrape_configs.map((j) => [j.job_name, j]));
    expect([...jobs.keys()]).toEqual(['prometheus', 'meshlens', 'envoy-stats', 'file-sd']);
    for (const [name, source] of [
      ['meshlens', SOURCE_MEMBERSHIP],
      ['envoy-stats', SOURCE_MESH_CONFIG],
    ] as const) {
      const job = jobs.get(name) as Job;
      expect(job.http_sd_configs).toEqual([{ url: `http://aggregator:8080${TARGETS_PATH}`, refresh_interval: '30s' }]);
      expect(job.relabel_configs?.[0]).toEqual({ source_labels: [SOURCE_LABEL], regex: source, action: 'keep' });
    }
    expect(jobs.get('file-sd')?.file_sd_configs?.[0]?.files).toEqual(['/etc/prometheus/targets/*.json']);
  });

  (PROMTOOL ? describe : describe.skip)('promtool check config', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'meshlens-promcfg-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    /** The committed config with /etc/prometheus/{rules,targets} moved under `dir`. */
    function localCopy(): string {
      mkdirSync(join(dir, 'rules'));
      mkdirSync(join(dir, 'targets'));
      const rules = join(ROOT, 'prometheus', 'rules');
      if (existsSync(rules)) for (const f of readdirSync(rules).filter((n) => n.endsWith('.yml'))) copyFileSync(join(rules, f), join(dir, 'rules', f));
      const file = join(dir, 'prometheus.yml');
      writeFileSync(file, text.replaceAll('/etc/prometheus/rules/', `${dir}/rules/`).replaceAll('/etc/prometheus/targets/', `${dir}/targets/`));
      return file;
    }

    it('passes, parsing the rule files and a file_sd file as meshlens writes it', async () => {
      const file = localCopy();
      const directory = new MemberDirectory();
      directory.setSelf({ instance: 'aggregator-1', target: 'aggregator', address: '172.18.0.5:8080', startedAtMs: 1 });
      const { config: mesh } = await loadMeshConfig(join(__dirname, 'fixtures', 'mesh-config', 'sidecars'));
      await writeFileSd(join(dir, 'targets', 'meshlens.json'), buildTargetGroups(directory.list(), mesh));
      const r = runTool(PROMTOOL as string, ['check', 'config', file]);
      expect({ status: r.status, out: r.stdout + r.stderr }).toEqual({ status: 0, out: expect.stringContaining('SUCCESS') });
      expect(r.stdout + r.stderr).not.toMatch(/does not exist/);
    });

    it('would catch a bad target file (the check is real)', () => {
      const file = localCopy();
      writeFileSync(join(dir, 'targets', 'bad.json'), JSON.stringify([{ targets: ['a:1'], labels: { 'not-a-label': 'x' } }]));
      const r = runTool(PROMTOOL as string, ['check', 'config', file]);
      expect(r.status).not.toBe(0);
    });
  });
});
