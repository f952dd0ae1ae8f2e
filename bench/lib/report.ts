/**
 * Benchmark results: the printed table, the JSON file and an SVG chart of
 * the ratios against each baseline.
 *
 * @module
 */
import type { Summary } from "./stats.ts";

/** One comparison row: a Parley figure against a baseline measured in the same run. */
export interface Row {
  /** Scenario name, e.g. `upload 1 GiB`. */
  scenario: string;
  /** Unit of the figures, e.g. `s`, `ms`, `msg/s`, `KiB/conn`. */
  unit: string;
  /** Parley's figure. */
  parley: Summary;
  /** Baseline tool name, e.g. `socat`; undefined when there is none. */
  baselineName?: string | undefined;
  /** Baseline figure. */
  baseline?: Summary | undefined;
  /** Whether lower figures are better (times, memory) or higher (rates). */
  lowerIsBetter: boolean;
  /** Target as text, e.g. `≤ 1.5× socat`, and the test of it. */
  target?: { text: string; met: (row: Row) => boolean } | undefined;
  /** Free-form note. */
  note?: string | undefined;
}

/**
 * Cost ratio: Parley / baseline for lower-is-better figures, baseline / Parley
 * for rates, so above 1 always means Parley is slower or heavier.
 */
export function ratio(row: Row): number | undefined {
  if (!row.baseline || row.baseline.median === 0 || row.parley.median === 0) return undefined;
  return row.lowerIsBetter
    ? row.parley.median / row.baseline.median
    : row.baseline.median / row.parley.median;
}

function _fmt(n: number): string {
  if (!Number.isFinite(n)) return "-";
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(3);
}

function _cell(s: Summary | undefined): string {
  if (!s) return "-";
  return s.n > 1 ? `${_fmt(s.median)} [${_fmt(s.min)}–${_fmt(s.max)}]` : _fmt(s.median);
}

/** Renders rows as an aligned text table. */
export function formatTable(rows: Row[]): string {
  const head = [
    "scenario",
    "unit",
    "parley (median [min–max])",
    "baseline",
    "baseline figure",
    "ratio",
    "target",
    "met?",
  ];
  const body = rows.map((r) => {
    const q = ratio(r);
    const met = r.target ? (r.target.met(r) ? "yes" : "NO") : "-";
    return [
      r.scenario,
      r.unit,
      _cell(r.parley),
      r.baselineName ?? "-",
      _cell(r.baseline),
      q === undefined ? "-" : `${q < 0.1 ? q.toPrecision(2) : q.toFixed(2)}×`,
      r.target?.text ?? "-",
      met,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** The rows' notes, one line each, for below the table. */
export function formatNotes(rows: Row[]): string {
  return rows.filter((r) => r.note).map((r) => `- ${r.scenario}: ${r.note}`).join("\n");
}

/** A JSON-friendly form of the rows. */
export function toJson(rows: Row[], meta: Record<string, unknown>): unknown {
  return {
    ...meta,
    rows: rows.map((r) => ({
      scenario: r.scenario,
      unit: r.unit,
      parley: r.parley,
      baselineName: r.baselineName ?? null,
      baseline: r.baseline ?? null,
      ratio: ratio(r) ?? null,
      lowerIsBetter: r.lowerIsBetter,
      target: r.target?.text ?? null,
      met: r.target ? r.target.met(r) : null,
      note: r.note ?? null,
    })),
  };
}

function _esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/**
 * A horizontal bar chart (SVG) of Parley/baseline cost ratios on a log scale:
 * bars grow right of the 1× line where Parley is slower or heavier, left
 * where it is faster or lighter.
 */
export function toSvg(rows: Row[]): string {
  const items = rows.flatMap((r) => {
    const q = ratio(r);
    return q === undefined ? [] : [{
      label: r.scenario.includes(" vs ") ? r.scenario : `${r.scenario} vs ${r.baselineName}`,
      q,
      met: r.target?.met(r),
    }];
  });
  const barH = 20;
  const left = 400;
  const width = 980;
  const plot = width - left - 80;
  const lo = Math.min(0.5, ...items.map((i) => i.q));
  const hi = Math.max(2, ...items.map((i) => i.q));
  const lg = (q: number) => Math.log10(Math.max(q, 1e-6));
  const x = (q: number) => left + ((lg(q) - lg(lo)) / (lg(hi) - lg(lo))) * plot;
  const one = x(1);
  const height = 50 + items.length * (barH + 6);
  const bars = items.map((it, i) => {
    const y = 30 + i * (barH + 6);
    const colour = it.met === false ? "#d9534f" : it.met === true ? "#5cb85c" : "#5b8def";
    const x0 = Math.min(one, x(it.q));
    const w = Math.max(1, Math.abs(x(it.q) - one));
    const tx = it.q >= 1 ? x(it.q) + 4 : x(it.q) - 4;
    return [
      `<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="12">${
        _esc(it.label)
      }</text>`,
      `<rect x="${x0.toFixed(1)}" y="${y}" width="${
        w.toFixed(1)
      }" height="${barH}" fill="${colour}"/>`,
      `<text x="${tx.toFixed(1)}" y="${y + 14}" font-size="11" text-anchor="${
        it.q >= 1 ? "start" : "end"
      }">${it.q < 0.01 ? it.q.toExponential(1) : it.q.toFixed(2)}×</text>`,
    ].join("");
  }).join("\n");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="18" font-size="14">Cost ratio Parley : baseline, log scale (right of 1×: Parley slower or heavier; green target met, red missed)</text>
${bars}
<line x1="${one.toFixed(1)}" y1="24" x2="${one.toFixed(1)}" y2="${
    height - 4
  }" stroke="#333" stroke-dasharray="4 3"/>
<text x="${one.toFixed(1)}" y="${height - 6}" font-size="11" text-anchor="middle">1×</text>
</svg>
`;
}
