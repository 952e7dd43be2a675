/**
 * Counting truth (issue 9) on real public lines: fixtures under test/fixtures/counting/ (provenance in
 * test/fixtures/SOURCES.md, "Counting") go through the real parsers into embedded ClickHouse, and the query
 * API must count each request and each connection as CONTRACT §6 says. Event times are the lines' own, so the
 * store keeps ten years of raw rows here.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { emptyMeshConfig } from '../lib/meshconfig';
import type { Flow, MeshRequest } from '../lib/model';
import { CANARY_DEFAULTS, createHttpServer } from '../lib/runtime';
import { StoreWriter, connect, migrate } from '../lib/store';
import type { Connection } from '../lib/store';
import { registerQueryRoutes } from '../services/aggregator';
import type { FlowRow, FlowsAnswer, GraphAnswer, SubsetRow, SubsetsAnswer, CanariesAnswer } from '../services/aggregator';
import { parseAccessLogLine, parseFlowLine } from '../services/ingest';

const FIXTURES = join(__dirname, 'fixtures', 'counting');
const lines = (file: string): string[] => readFileSync(join(FIXTURES, file), 'utf8').split('\n').filter((l) => l.length > 0);

function requests(file: string): MeshRequest[] {
  return lines(file).map((l, i) => {
    const r = parseAccessLogLine(l).result;
    if (!r.ok) throw new Error(`${file}:${i + 1}: ${r.message}`);
    return r.value;
  });
}

function flows(file: string): Flow[] {
  return lines(file).map((l, i) => {
    const r = parseFlowLine(l).result;
    if (!r.ok) throw new Error(`${file}:${i + 1}: ${r.message}`);
    return r.value;
  });
}

/** A window of whole minutes around the records, so rollups and raw edges both take part. */
function around(times: number[]): string {
  const from = Math.floor(Math.min(...times) / 60_000) * 60_000 - 60_000;
  const to = Math.ceil((Math.max(...times) + 1) / 60_000) * 60_000 + 60_000;
  return `from=${from}&to=${to}`;
}

describe('counting on real lines: fixtures → parsers → embedded ClickHouse → query API', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlens-counting-'));
  let conn: Connection;
  let writer: StoreWriter;
  let app: FastifyInstance;

  beforeAll(async () => {
    conn = connect({ clickhouseUrl: undefined, dataDir: dir });
    await migrate(conn, { rawDays: 3650, rollupDays: 3650 });
    writer = new StoreWriter(conn);
    const logger = pino({ level: 'silent' });
    app = createHttpServer({ logger, maxBodyBytes: 1 << 20 });
    registerQueryRoutes(app, { conn, meshConfig: emptyMeshConfig(), logger, canary: CANARY_DEFAULTS });
    await app.ready();
  });
  afterAll(async () => {
    await app?.close();
    await conn?.client.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    for (const t of ['requests', 'flows', 'requests_rollup_1m', 'flows_1m']) await conn.client.command({ query: `TRUNCATE TABLE ${conn.database}.${t}` });
    // A fresh writer: records of earlier cases must not wait for partners in this one.
    writer = new StoreWriter(conn);
  });

  async function get<T>(path: string): Promise<T> {
    const res = await app.inject({ method: 'GET', url: path });
    expect({ path, status: res.statusCode }).toEqual({ path, status: 200 });
    return res.json() as T;
  }

  type Subset = Pick<SubsetRow, 'service' | 'requests' | 'errors'>;

  it('counts an Envoy retry as the server saw it: one client line (503 URX), four server attempts, one x-request-id → 4 requests', async () => {
    const rows = requests('retries-envoy.log');
    await writer.storeRecords('requests', rows, 'counting-retries-envoy');
    const period = around(rows.map((r) => r.startTimeMs));
    const count = async (reporter: string): Promise<Subset[]> =>
      (await get<SubsetsAnswer>(`/api/v1/subsets?${period}&reporter=${reporter}`)).subsets.map(({ service, requests, errors }) => ({ service, requests, errors }));
    expect(await count('source')).toEqual([{ service: 'httpbin', requests: 1, errors: 1 }]);
    expect(await count('destination')).toEqual([{ service: 'httpbin', requests: 4, errors: 4 }]);
    // The client line pairs with the first attempt; the three retries are requests the client did not log.
    expect(await count('all')).toEqual([{ service: 'httpbin', requests: 4, errors: 4 }]);
  });

  it('answers subsets, flows and graph joined (reporter=all) by default, and names the reporter; canaries keep source', async () => {
    const rows = requests('retries-envoy.log');
    await writer.storeRecords('requests', rows, 'counting-defaults');
    const period = around(rows.map((r) => r.startTimeMs));
    const subsets = await get<SubsetsAnswer>(`/api/v1/subsets?${period}`);
    expect([subsets.reporter, subsets.subsets.map((s) => s.requests)]).toEqual(['all', [4]]);
    const graph = await get<GraphAnswer>(`/api/v1/graph?${period}`);
    expect([graph.reporter, graph.edges.map((e) => e.requests)]).toEqual(['all', [4]]);
    const ledger = await get<FlowsAnswer>(`/api/v1/flows?${period}`);
    expect([ledger.reporter, ledger.flows.map((f) => f.allowed)]).toEqual(['all', [4]]);
    expect((await get<CanariesAnswer>(`/api/v1/canaries?${period}`)).reporter).toBe('source');
  });

  type LedgerEntry = FlowRow;
  const entries = (ledger: LedgerEntry[]) =>
    ledger.map((f) => ({ from: `${f.source.namespace}/${f.source.workload}`, to: `${f.destination.namespace}/${f.destination.service}:${f.destination.port}`, layer: f.layer, allowed: f.allowed, denied: f.denied, policies: f.policies.map((p) => p.policy) }));

  it.each([
    // Calico: the source node let 50 connections out, the destination node's policy denied all 50.
    ['calico-both-nodes.ndjson', { from: 'policy-demo/access', to: 'policy-demo/nginx:80', policy: 'policy-demo/deny-access-nginx', count: 50 }],
    // Hubble: the SYN forwarded at the source endpoint's egress, dropped at the destination's ingress.
    ['hubble-both-nodes.ndjson', { from: 'net-lab/traffic-generator', to: 'net-lab/echo-server:80', policy: 'net-lab/deny-tg-to-echo', count: 1 }],
  ])('counts a connection both nodes reported (%s) once, with the destination verdict', async (file, want) => {
    const records = flows(file);
    await writer.storeRecords('flows', records, `counting-${file}`);
    const period = around(records.map((f) => f.startTimeMs));
    for (const window of [period, `from=${Math.min(...records.map((f) => f.startTimeMs))}&to=${Math.max(...records.map((f) => f.startTimeMs)) + 1}`]) {
      const { reporter, flows: ledger } = await get<FlowsAnswer>(`/api/v1/flows?${window}`);
      expect([reporter, entries(ledger)]).toEqual(['all', [{ from: want.from, to: want.to, layer: 'L4', allowed: 0, denied: want.count, policies: [want.policy] }]]);
    }
    const side = async (reporter: string) => entries((await get<FlowsAnswer>(`/api/v1/flows?${period}&reporter=${reporter}`)).flows);
    expect(await side('source')).toEqual([expect.objectContaining({ allowed: want.count, denied: 0 })]);
    expect(await side('destination')).toEqual([expect.objectContaining({ allowed: 0, denied: want.count })]);
  });

  it('counts an application retry that reused its x-request-id twice: both sidecars logged two requests', async () => {
    const rows = requests('retries-app.log');
    await writer.storeRecords('requests', rows, 'counting-retries-app');
    const period = around(rows.map((r) => r.startTimeMs));
    const { subsets } = await get<SubsetsAnswer>(`/api/v1/subsets?${period}&reporter=all`);
    expect(subsets.map(({ service, requests, errors }) => ({ service, requests, errors }))).toEqual([{ service: 'httpbin', requests: 2, errors: 0 }]);
    const { flows: ledger } = await get<FlowsAnswer>(`/api/v1/flows?${period}`);
    expect(ledger.map((f) => [f.layer, f.allowed, f.denied])).toEqual([['L7', 2, 0]]);
  });
});
