/**
 * Summaries of V8 `.cpuprofile` files (written by `deno run --cpu-prof`):
 * self time per function and per source file, largest first.
 *
 * @module
 */

interface _Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface _Profile {
  nodes: _Node[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

/** One line of a summary. */
export interface ProfileEntry {
  /** `function (file:line)` or a file. */
  name: string;
  /** Self time in ms. */
  ms: number;
  /** Share of all sampled time, 0..1. */
  share: number;
}

/** Self time per function and per file of one profile. */
export interface ProfileSummary {
  /** Sampled time in ms. */
  totalMs: number;
  /** Idle time (the `(idle)` node) in ms. */
  idleMs: number;
  functions: ProfileEntry[];
  files: ProfileEntry[];
}

function _short(url: string): string {
  if (!url) return "(native)";
  const m = /\/(main|protocol|server|client|bench|tests)\/.*$/.exec(url);
  if (m) return m[0].slice(1);
  const npm = /node_modules\/\.deno\/([^/]+)\/.*$|\/npm\/[^/]+\/([^/]+)\/.*$/.exec(url);
  if (npm) return `npm:${npm[1] ?? npm[2]}`;
  return url.replace(/^.*\/ext\//, "ext:").replace(/^file:\/\//, "");
}

function _top(map: Map<string, number>, total: number, n: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, ms]) => ({ name, ms, share: total > 0 ? ms / total : 0 }));
}

/** Summarises a parsed `.cpuprofile`; `n` entries per list. */
export function summarizeProfile(profile: unknown, n = 20): ProfileSummary {
  const p = profile as _Profile;
  const byId = new Map<number, _Node>(p.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the gap before sample i; attribute the next gap to it.
    const us = deltas[i + 1] ?? 0;
    self.set(samples[i]!, (self.get(samples[i]!) ?? 0) + us / 1000);
  }
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    total += ms;
    if (f.functionName === "(idle)") {
      idle += ms;
      continue;
    }
    const file = _short(f.url);
    const name = f.url
      ? `${f.functionName || "(anonymous)"} (${file}:${f.lineNumber + 1})`
      : f.functionName || "(anonymous)";
    fns.set(name, (fns.get(name) ?? 0) + ms);
    files.set(file, (files.get(file) ?? 0) + ms);
  }
  return {
    totalMs: total,
    idleMs: idle,
    functions: _top(fns, total, n),
    files: _top(files, total, n),
  };
}

/** Renders a summary as plain text. */
export function formatProfile(title: string, s: ProfileSummary): string {
  const busy = s.totalMs - s.idleMs;
  const line = (e: ProfileEntry) =>
    `  ${e.ms.toFixed(0).padStart(7)} ms  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.name}`;
  return [
    `${title}: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(busy / 1000).toFixed(1)} s busy`,
    "top self time by function:",
    ...s.functions.map(line),
    "by file:",
    ...s.files.map(line),
  ].join("\n");
}
