/**
 * Summarizes a V8 CPU profile (.cpuprofile, as `node --cpu-prof` and the inspector write it): self time per
 * function and per code area, so the benchmark can say where the main thread's time goes. chDB's native
 * threads are not in a JS profile; the per-thread CPU split (server.ts) covers those.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
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
  return { totalMs: (profile.endTime - profile.startTime) / 1000, functions: rank(byFn), areas: rank(byArea) };
}
