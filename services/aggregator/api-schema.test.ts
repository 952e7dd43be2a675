/**
 * The typed API (issue 13 part 2): `GET /api/v1/openapi.json` is an OpenAPI 3.1 document of every `/api` route,
 * built from the same TypeBox schemas Fastify validates and serializes with; and Fastify's validation keeps the
 * query API's 400 answers (the error shape, parseScope's messages). Real answers are checked against the
 * response schemas in test/groundtruth.e2e.test.ts, on the simulator's traffic.
 */
import Ajv2020 from 'ajv/dist/2020';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Value } from '@sinclair/typebox/value';
import { emptyMeshConfig } from '../../lib/meshconfig';
import { CANARY_DEFAULTS, createHttpServer } from '../../lib/runtime';
import type { Connection } from '../../lib/store';
import { registerQueryRoutes } from './api';
import { API_PATHS, ApiError, CanariesAnswer, SubsetsAnswer, TargetGroups } from './api-schema';

const logger = pino({ level: 'silent' });
const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);

/** A store that must not be asked: every query counts and fails. */
function unaskedStore(): { conn: Connection; calls: () => number } {
  let n = 0;
  const client = {
    query: async () => {
      n++;
      throw new Error('must not be asked');
    },
  };
  return { conn: { client, database: 'meshlens', kind: 'embedded', location: '' } as unknown as Connection, calls: () => n };
}

async function api(conn: Connection): Promise<FastifyInstance> {
  const app = createHttpServer({ logger, maxBodyBytes: 1024 });
  registerQueryRoutes(app, { conn, meshConfig: emptyMeshConfig(), logger, canary: CANARY_DEFAULTS, now: () => NOW });
  await app.ready();
  return app;
}

type Json = Record<string, unknown>;
const QUERY_ROUTES = [API_PATHS.subsets, API_PATHS.flows, API_PATHS.graph, API_PATHS.canaries];

describe('GET /api/v1/openapi.json', () => {
  let app: FastifyInstance;
  let doc: Json;
  beforeAll(async () => {
    app = await api(unaskedStore().conn);
    const res = await app.inject({ method: 'GET', url: API_PATHS.openapi });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.json<Json>();
  });
  afterAll(() => app.close());

  it('is an OpenAPI 3.1 document: openapi, info with title and version, paths, components', () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toEqual(expect.objectContaining({ title: expect.any(String), version: expect.stringMatching(/^\d+\.\d+\.\d+/) }));
    expect(typeof doc.paths).toBe('object');
    expect(Object.keys(doc).filter((k) => !['openapi', 'info', 'jsonSchemaDialect', 'servers', 'paths', 'webhooks', 'components', 'security', 'tags', 'externalDocs'].includes(k) && !k.startsWith('x-'))).toEqual([]);
  });

  it('describes subsets, flows, graph, canaries and the Prometheus targets, each with its answers', () => {
    const paths = doc.paths as Record<string, { get: Json }>;
    expect(Object.keys(paths).sort()).toEqual(Object.values(API_PATHS).sort());
    const schemas = (doc.components as { schemas: Record<string, Json> }).schemas;
    const resolve = (ref: string): Json => {
      const name = /^#\/components\/schemas\/(.+)$/.exec(ref)?.[1];
      expect(schemas[name as string]).toBeDefined();
      return schemas[name as string] as Json;
    };
    for (const [path, item] of Object.entries(paths)) {
      const op = item.get as { operationId: string; responses: Record<string, { description: string; content?: Record<string, { schema: Json }> }>; parameters?: Json[] };
      expect([path, typeof op.operationId, Object.keys(op.responses).every((code) => /^[1-5]\d\d$/.test(code))]).toEqual([path, 'string', true]);
      for (const [code, r] of Object.entries(op.responses)) {
        // Every answer (OpenAPI: a Response Object) has a description and a JSON body.
        expect([path, code, typeof r.description, Object.keys(r.content ?? {})]).toEqual([path, code, 'string', ['application/json']]);
        const schema = r.content?.['application/json']?.schema as Json;
        if (typeof schema.$ref === 'string') resolve(schema.$ref);
        if (code !== '200') expect([path, code, schema.$ref]).toEqual([path, code, '#/components/schemas/ApiError']);
      }
    }
    for (const path of QUERY_ROUTES) {
      const op = paths[path]?.get as { responses: Json; parameters: { name: string; in: string; schema: Json }[] };
      expect([path, Object.keys(op.responses).sort()]).toEqual([path, ['200', '400', '401', '503']]);
      expect([path, op.parameters.map((p) => `${p.in}:${p.name}`)]).toEqual([path, ['query:window', 'query:from', 'query:to', 'query:namespace', 'query:service', 'query:reporter']]);
      const reporter = op.parameters.find((p) => p.name === 'reporter')?.schema as { anyOf: { const: string }[] };
      expect(reporter.anyOf.map((x) => x.const)).toEqual(['source', 'destination', 'all']);
    }
    expect(Object.keys((paths[API_PATHS.targets]?.get as { responses: Json }).responses).sort()).toEqual(['200', '401']);
    // The answers' fields, as the schemas list them (the same objects Fastify serializes with).
    const subsets = resolve('#/components/schemas/SubsetsAnswer') as { properties: { subsets: { items: { properties: Json; required: string[] } } } };
    expect(Object.keys(subsets.properties)).toEqual(['from', 'to', 'reporter', 'subsets']);
    expect(subsets.properties.subsets.items.required).toEqual(expect.arrayContaining(['denied', 'app_errors', 'mesh_failures', 'latency_samples', 'traffic_share', 'configured_weight']));
    expect(Object.keys((resolve('#/components/schemas/CanariesAnswer') as { properties: Json }).properties)).toEqual(['from', 'to', 'reporter', 'settings', 'canaries']);
  });

  it('holds JSON Schema 2020-12 that compiles (the dialect of OpenAPI 3.1), and no TypeBox internals', () => {
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const schemas = (doc.components as { schemas: Record<string, object> }).schemas;
    for (const [name, schema] of Object.entries(schemas)) expect([name, typeof ajv.compile(schema)]).toEqual([name, 'function']);
    expect(JSON.stringify(doc)).not.toMatch(/TypeBox|\[Kind\]/);
  });
});

describe('query validation (Fastify, with the schemas): 400 in the API error shape, with the messages of parseScope', () => {
  let app: FastifyInstance;
  let store: ReturnType<typeof unaskedStore>;
  beforeAll(async () => {
    store = unaskedStore();
    app = await api(store.conn);
  });
  afterAll(() => app.close());

  it.each(QUERY_ROUTES)('%s', async (path) => {
    const cases: [string, RegExp][] = [
      ['window=5m&window=1h', /^give window once$/],
      ['reporter=both', /^reporter="both": expected source, destination or all$/],
      [`service=${'x'.repeat(254)}`, /^service is longer than 253 characters$/],
      ['namespace=a&namespace=b', /^give namespace once$/],
      ['from=1969-12-31T00:00:00Z', /before 1970/],
      ['window=junk', /^window="junk": expected a duration/],
    ];
    for (const [q, message] of cases) {
      const res = await app.inject({ method: 'GET', url: `${path}?${q}` });
      const body = res.json<ApiError>();
      expect({ q, status: res.statusCode, error: body.error, message: message.test(body.message) }).toEqual({ q, status: 400, error: 'bad_request', message: true });
      expect(Object.keys(body).sort()).toEqual(['error', 'message']);
    }
    expect(store.calls()).toBe(0);
  });
});

describe('the schemas as types and checks', () => {
  it('accept a minimal answer and name what is wrong with a bad one (Value.Check, Value.Errors)', () => {
    const ok: SubsetsAnswer = { from: '2026-11-25T11:55:00.000Z', to: '2026-11-25T12:00:00.000Z', reporter: 'all', subsets: [] };
    expect(Value.Check(SubsetsAnswer, ok)).toBe(true);
    const bad = { ...ok, reporter: 'both', subsets: [{ namespace: 'default' }] };
    expect(Value.Check(SubsetsAnswer, bad)).toBe(false);
    expect([...Value.Errors(SubsetsAnswer, bad)].map((e) => e.path)).toEqual(expect.arrayContaining(['/reporter', '/subsets/0/service']));
    expect(Value.Check(TargetGroups, [{ targets: ['10.0.0.1:15090'], labels: { __metrics_path__: '/stats/prometheus' } }])).toBe(true);
    const canaries: CanariesAnswer = {
      ...ok,
      reporter: 'source',
      settings: { min_requests: 200, margin: 0.005, false_fail_rate: 0.01, pass_confidence: 0.95, latency_ratio: 1.2 },
      canaries: [],
    };
    expect(Value.Check(CanariesAnswer, canaries)).toBe(true);
  });
});
