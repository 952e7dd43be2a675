/**
 * The generated dashboards hold together (issue 11 "Done when: datasources and links"): every datasource they name
 * is a provisioned one, every variable they reference is defined, every link points at a dashboard that exists.
 */
import { DATASOURCES, DASHBOARD_UIDS, datasourcesProvisioning, grafanaDashboards } from './index';

type Json = Record<string, unknown>;
const dashboards = Object.entries(grafanaDashboards()).map(([file, d]) => [file, JSON.parse(JSON.stringify(d)) as Json] as const);
const provisioned = (datasourcesProvisioning().datasources as { uid: string; type: string }[]).map((d) => `${d.type}/${d.uid}`);

/** Every object in a JSON tree, with the path to it. */
function walk(node: unknown, visit: (o: Json) => void): void {
  if (Array.isArray(node)) for (const x of node) walk(x, visit);
  else if (node !== null && typeof node === 'object') {
    visit(node as Json);
    for (const v of Object.values(node)) walk(v, visit);
  }
}
const strings = (node: unknown): string[] => {
  const out: string[] = [];
  const go = (n: unknown): void => {
    if (typeof n === 'string') out.push(n);
    else if (Array.isArray(n)) n.forEach(go);
    else if (n !== null && typeof n === 'object') Object.values(n).forEach(go);
  };
  go(node);
  return out;
};
const variables = (d: Json): Json[] => ((d.templating as Json).list as Json[]) ?? [];

describe.each(dashboards)('dashboards/%s.json', (_file, d) => {
  it('names only provisioned datasources, directly or through a datasource variable defaulting to one', () => {
    const dsVars = new Map(variables(d).filter((v) => v.type === 'datasource').map((v) => [v.name as string, v]));
    const refs: string[] = [];
    walk(d, (o) => {
      const ds = o.datasource as Json | undefined;
      if (ds && typeof ds === 'object' && typeof ds.uid === 'string') refs.push(`${ds.type as string}/${ds.uid}`);
      if (o.internal && typeof (o.internal as Json).datasourceUid === 'string') refs.push(`jaeger/${(o.internal as Json).datasourceUid as string}`);
    });
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      const [type, uid] = ref.split('/') as [string, string];
      const m = /^\$\{(\w+)\}$/.exec(uid);
      if (m) {
        const v = dsVars.get(m[1] as string);
        expect(v).toBeDefined();
        expect(v?.query).toBe(type);
        expect(provisioned).toContain(`${type}/${(v?.current as Json).value as string}`);
      } else expect(provisioned).toContain(ref);
    }
  });

  it('defines every variable it references', () => {
    const defined = new Set(variables(d).map((v) => v.name as string));
    const used = new Set<string>();
    for (const s of strings({ panels: d.panels, templating: d.templating, annotations: d.annotations, links: d.links })) {
      for (const m of s.matchAll(/\$\{(\w+)(?:[:.][^}]*)?\}|\$(\w+)/g)) {
        const name = (m[1] ?? m[2]) as string;
        // Grafana's own (__rate_interval, __field, __value, __url_time_range...), the plugins' macros, and label_replace's $1.
        if (!name.startsWith('__') && !/^\d+$/.test(name)) used.add(name);
      }
    }
    expect(used.size).toBeGreaterThan(0);
    expect([...used].filter((u) => !defined.has(u))).toEqual([]);
  });

  it('links only to generated dashboards', () => {
    const uids = new Set(Object.values(DASHBOARD_UIDS));
    const links = strings(d).flatMap((s) => [...s.matchAll(/\/d\/([^/?&"]+)/g)].map((m) => m[1] as string));
    for (const uid of links) expect(uids).toContain(uid);
  });

  it('has a uid of its own and queries in every panel', () => {
    expect(Object.values(DASHBOARD_UIDS)).toContain(d.uid);
    for (const p of (d.panels as Json[]).filter((p) => p.type !== 'row')) expect((p.targets as Json[]).length).toBeGreaterThan(0);
  });
});

it('dashboard uids are unique and the subset panels link to the traces dashboard with service and subset', () => {
  expect(new Set(dashboards.map(([, d]) => d.uid)).size).toBe(dashboards.length);
  const overview = dashboards.find(([, d]) => d.uid === DASHBOARD_UIDS.overview)?.[1];
  const traces = strings(overview).filter((s) => s.startsWith(`/d/${DASHBOARD_UIDS.traces}?`));
  expect(traces.length).toBeGreaterThan(0);
  for (const t of traces) expect(t).toMatch(/var-service=\$\{__field\.labels\.destination_service_name\}.*var-subset=\$\{__field\.labels\.destination_subset\}/);
});

it('provisions the three datasources with stable uids and the ClickHouse plugin\'s v4 jsonData names', () => {
  const ds = datasourcesProvisioning().datasources as Json[];
  expect(ds.map((d) => d.uid)).toEqual([DATASOURCES.prometheus.uid, DATASOURCES.clickhouse.uid, DATASOURCES.jaeger.uid]);
  const ch = ds[1]?.jsonData as Json;
  expect(Object.keys(ch)).toEqual(expect.arrayContaining(['host', 'port', 'protocol', 'username', 'defaultDatabase']));
  expect(ch).not.toHaveProperty('server');
  expect(((ds[2]?.jsonData as Json).tracesToMetrics as Json).datasourceUid).toBe(DATASOURCES.prometheus.uid);
});
