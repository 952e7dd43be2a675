/**
 * Summarizes a V8 CPU profile (.cpuprofile, as `node --cpu-prof` and the inspector write it): self time per
 * function and per code area, so the benchmark can say where the main thread's time goes. chDB's native
 * threads are not in a JS profile; the per-thread CPU split (server.ts) covers those.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface ProfileEntry {
  name: string;
  selfPct: number;
}

export interface ProfileSummary {
  totalMs: number;
  functions: ProfileEntry[];
  areas: ProfileEntry[];
  /** The main thread's busy time by stage of the write path (idle left out), in % of the busy samples. */
  stages: ProfileEntry[];
}

/**
 * The stages of the write path, each known by the code its frames belong to. A sample goes to the innermost frame
 * of its stack that names a stage, so `JSON.parse` (a builtin, reported as the parser calling it) is parsing and a
 * Buffer decode the pipeline does is the pipeline's, however deep in the HTTP handler they run.
 */
const STAGES: readonly [string, (url: string, fn: string) => boolean][] = [
  ['parse (formats, model)', (u) => u.includes('/services/ingest/formats/') || u.includes('/lib/model/')],
  ['ingest pipeline (lines, tally, publish)', (u) => u.includes('/services/ingest/') || u.includes('/lib/bus/')],
  ['joined-view pairing', (u) => u.endsWith('/lib/store/pairing.ts')],
  ['span-edge hops', (u) => u.endsWith('/lib/store/spanedges.ts')],
  ['rollups', (u) => u.endsWith('/lib/store/rollup.ts')],
  ['Native encoding', (u) => u.endsWith('/lib/store/native.ts')],
  ['insert calls (client, chDB binding, files)', (u) => u.includes('/lib/store/') || u.includes('node_modules/chdb') || u.includes('node_modules/@clickhouse') || u.startsWith('node:internal/fs')],
  ['metrics', (u) => u.includes('/services/aggregator/metrics.ts') || u.includes('/services/aggregator/series.ts')],
  ['aggregator consumer', (u) => u.includes('/services/aggregator/')],
  ['HTTP (node:http, fastify, body)', (u) => u.startsWith('node:_http') || u.includes('node_modules/fastify') || u.includes('node_modules/find-my-way') || u.includes('node_modules/avvio') || u.includes('/lib/runtime/') || u.startsWith('node:net') || u.startsWith('node:internal/stream')],
];

function stageOf(stack: readonly ProfileNode[]): string {
  const leaf = stack[stack.length - 1] as ProfileNode;
  if (leaf.callFrame.functionName === '(garbage collector)') return 'garbage collection (main thread)';
  for (let i = stack.length - 1; i >= 0; i--) {
    const { url, functionName } = (stack[i] as ProfileNode).callFrame;
    for (const [name, match] of STAGES) if (match(url, functionName)) return name;
  }
  return 'other (timers, promises, V8 runtime)';
}

/** The code area a frame belongs to: an npm package, a folder of ours, or a V8 pseudo-frame. */
function areaOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return (rest[0] ?? '').startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:')) return url;
  const m = /\/(services\/[^/]+(?:\/[^/]+)?|lib\/[^/]+|bin|bench)\/[^/]+$/.exec(url);
  return m ? (m[1] as string) : url;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const m = /\/((?:services|lib|bin|bench)\/.*)$/.exec(url);
  return m ? (m[1] as string) : url;
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const hits = new Map<number, number>();
  if (profile.samples) for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  else for (const n of profile.nodes) hits.set(n.id, n.hitCount ?? 0);
  let total = 0;
  for (const n of hits.values()) total += n;
  const byFn = new Map<string, number>();
  const byArea = new Map<string, number>();
  for (const node of profile.nodes) {
    const h = hits.get(node.id) ?? 0;
    if (h === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = `${functionName || '(anonymous)'}${url ? ` ${shortUrl(url)}:${lineNumber + 1}` : ''}`;
    byFn.set(fn, (byFn.get(fn) ?? 0) + h);
    const area = areaOf(url, functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + h);
  }
  const rank = (m: Map<string, number>): ProfileEntry[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, h]) => ({ name, selfPct: total > 0 ? (100 * h) / total : 0 }));
  // Stages need each sample's stack: parents from the children lists.
  const parent = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node);
  const byStage = new Map<string, number>();
  let busy = 0;
  for (const node of profile.nodes) {
    const h = hits.get(node.id) ?? 0;
    if (h === 0 || node.callFrame.functionName === '(idle)' || node.callFrame.functionName === '(root)') continue;
    const stack: ProfileNode[] = [];
    for (let n: ProfileNode | undefined = node; n !== undefined; n = parent.get(n.id)) stack.unshift(n);
    const stage = stageOf(stack);
    byStage.set(stage, (byStage.get(stage) ?? 0) + h);
    busy += h;
  }
  const stages = [...byStage.entries()].sort((a, b) => b[1] - a[1]).map(([name, h]) => ({ name, selfPct: busy > 0 ? (100 * h) / busy : 0 }));
  return { totalMs: (profile.endTime - profile.startTime) / 1000, functions: rank(byFn), areas: rank(byArea), stages };
}
