/**
 * Every generated file in one list, and the drift check and write over the folders that hold only generated
 * files (CONTRACT.md §7): `npm run provision` writes, `npm run provision -- --check` and the drift test compare.
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
