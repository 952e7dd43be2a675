/** The Grafana side of `npm run provision`: dashboards/*.json and grafana/provisioning/ (issue 11 items 2 and 3). */
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import type { GeneratedFile } from '../prometheus/rules';
import { canaryDashboard } from './canary';
import { provisioningFiles } from './datasources';
import { flowsDashboard } from './flows';
import { graphDashboard } from './graph';
import { overviewDashboard } from './overview';
import { serviceDashboard } from './service';
import { tracesDashboard } from './traces';

/** File name (without `.json`) → dashboard, in a stable order. */
export function grafanaDashboards(): Record<string, Dashboard> {
  return {
    'mesh-overview': overviewDashboard(),
    'service-detail': serviceDashboard(),
    canary: canaryDashboard(),
    flows: flowsDashboard(),
    'service-graph': graphDashboard(),
    traces: tracesDashboard(),
  };
}

export function dashboardFiles(): GeneratedFile[] {
  return Object.entries(grafanaDashboards()).map(([name, d]) => ({ path: `dashboards/${name}.json`, content: `${JSON.stringify(d, null, 2)}\n` }));
}

export function grafanaFiles(): GeneratedFile[] {
  return [...dashboardFiles(), ...provisioningFiles()];
}

export { DASHBOARDS_MOUNT, DATASOURCES, FOLDER, PROVISIONING_PATHS, dashboardProvider, datasourcesProvisioning } from './datasources';
export { CH_DS, DASHBOARD_UIDS, JAEGER_DS, PROM_ALL, PROM_DS, SQL_ALL, VARS } from './panels';
export type { ClickHouseQuery, JaegerQuery } from './panels';
