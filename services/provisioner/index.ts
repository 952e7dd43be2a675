/**
 * The provisioner: files generated from code and committed (CONTRACT.md §7). `npm run provision` writes
 * them, `npm run provision -- --check` and the drift test compare.
 */
import { diffFiles, writeFiles } from './files';
import { grafanaFiles } from './grafana';
import { K8S_GENERATED_DIR, k8sFiles } from './k8s';
import type { GeneratedDiff, WriteResult } from './files';
import { prometheusRuleTestFiles } from './prometheus/rule-tests';
import { prometheusRuleFiles } from './prometheus/rules';
import type { GeneratedFile } from './prometheus/rules';

/** Directories that hold generated files only (relative to the repository root). */
export const GENERATED_DIRS: readonly string[] = Object.freeze(['prometheus/rules', 'prometheus/tests', 'dashboards', 'grafana/provisioning', K8S_GENERATED_DIR]);

/** Every generated file with the default options, in a stable order. */
export function generatedFiles(): GeneratedFile[] {
  return [...prometheusRuleFiles(), ...prometheusRuleTestFiles(), ...grafanaFiles(), ...k8sFiles()];
}

/** Which committed files differ from generatedFiles(), are missing, or are extra in GENERATED_DIRS. */
export function diffGeneratedFiles(root: string): GeneratedDiff {
  return diffFiles(root, generatedFiles(), GENERATED_DIRS);
}

/** Writes what differs and removes extras, so GENERATED_DIRS mirror generatedFiles(). */
export function writeGeneratedFiles(root: string): WriteResult {
  return writeFiles(root, generatedFiles(), GENERATED_DIRS);
}

export { diffFiles, writeFiles } from './files';
export {
  GRAFANA_DASHBOARD_LABEL,
  K8S_COMMON_LABELS,
  K8S_GENERATED_DIR,
  K8S_PATHS,
  PROMETHEUS_SELECTOR_LABELS,
  dashboardConfigMaps,
  k8sFiles,
  prometheusRuleObject,
} from './k8s';
export {
  CH_DS,
  DASHBOARD_UIDS,
  DASHBOARDS_MOUNT,
  DATASOURCES,
  FOLDER,
  JAEGER_DS,
  PROM_ALL,
  PROM_DS,
  PROVISIONING_PATHS,
  SQL_ALL,
  VARS,
  dashboardFiles,
  dashboardProvider,
  datasourcesProvisioning,
  grafanaDashboards,
  grafanaFiles,
} from './grafana';
export type { ClickHouseQuery, JaegerQuery } from './grafana';
export { GrafanaPushError, pushDashboards } from './grafana/push';
export type { GrafanaPushOptions, GrafanaPushResult } from './grafana/push';
export type { GeneratedDiff, WriteResult } from './files';
export {
  ALERT_NAMES,
  GENERATED_HEADER,
  MESH_FAILURE_FLAGS,
  RULE_DEFAULTS,
  RULE_FILE_PATHS,
  meshFailureFlagsRegex,
  prometheusRuleFiles,
  promDurationSeconds,
  resolveRuleOptions,
  ruleGroups,
  ruleNames,
} from './prometheus/rules';
export type { AlertName, AlertingRule, GeneratedFile, RecordingRule, RuleGroup, RuleNames, RuleOptions } from './prometheus/rules';
export { RULE_TEST_FILE_PATHS, prometheusRuleTestFiles } from './prometheus/rule-tests';
