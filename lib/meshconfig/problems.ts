/**
 * What can be wrong with a mesh config: every problem is a value with a code from one list, a file and a line
 * (DESIGN.md: bad input is a value). The rest of the config is still used.
 */

export const MESH_CONFIG_PROBLEM_CODES = [
  /** The YAML (or JSON) text does not parse; the document is skipped, the file's other documents are used. */
  'yaml_syntax',
  /** A document that is not a Kubernetes object (no `kind`, not a mapping, too many aliases). */
  'invalid_object',
  /** A modelled kind in an API version meshlens does not know; parsed as the newest known version. */
  'unsupported_api_version',
  /** A required field is absent (`metadata.name`, DestinationRule `spec.host`, subset `name`, destination `host`). */
  'missing_field',
  /** A field of the wrong type or outside its vocabulary (weight, labels, action...); the field is skipped. */
  'invalid_field',
  /** The same kind, namespace and name defined twice; the later definition wins. */
  'duplicate_object',
  /** A subset name defined twice for one host; the first wins. */
  'duplicate_subset',
  /** Two VirtualServices claim the same host for the mesh (IST0109); the first wins. */
  'conflicting_hosts',
  /** Weights of a route with several destinations do not sum to 100; normalized as Istio >= 1.15 does. */
  'weights_not_100',
  /** Routes after a route without match conditions can never match. */
  'unreachable_route',
  /** A route names a subset no DestinationRule of the config defines for its host (IST0101). */
  'unknown_subset',
  /** The stable-subset annotation names no subset of its DestinationRule. */
  'unknown_stable_subset',
  /** DestinationRules of one host name different stable subsets; the first wins. */
  'conflicting_stable_subset',
  /** A file in the configured folder could not be read (the loader only, loader.ts). */
  'read_error',
  /** The configured folder holds no `*.yaml`, `*.yml` or `*.json` file (the loader only, loader.ts). */
  'no_files',
] as const;

export type MeshConfigProblemCode = (typeof MESH_CONFIG_PROBLEM_CODES)[number];

export interface MeshConfigProblem {
  code: MeshConfigProblemCode;
  /** Source (file) name. */
  source: string;
  /** 1-based line of the error or of the object it concerns; 0 when unknown. */
  line: number;
  /** `<Kind> <namespace>/<name>` the problem concerns; '' when none. */
  object: string;
  message: string;
}
