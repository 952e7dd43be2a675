/**
 * The provisioner: files generated from code and committed (CONTRACT.md §7), and the push of the same dashboards
 * to a running Grafana (the provisioner target). It serves nothing at run time.
 */

// Every generated file, the drift check and the write (`npm run provision [-- --check]`).
export { GENERATED_DIRS, diffGeneratedFiles, generatedFiles, writeGeneratedFiles } from './generated';
export { diffFiles, writeFiles } from './files';
export type { GeneratedDiff, WriteResult } from './files';

// Prometheus: recording and alerting rules from the metric catalogue, and their promtool tests.
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

// Grafana: the dashboards, their datasources and provisioning files.
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

// The Grafana push: the same dashboards into a running Grafana's folder (targets provisioner and all).
export { GrafanaPushError, pushDashboards } from './grafana/push';
export type { GrafanaPushOptions, GrafanaPushResult } from './grafana/push';

// Kubernetes: the PrometheusRule and the dashboards' ConfigMaps for k8s/base/generated/.
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
