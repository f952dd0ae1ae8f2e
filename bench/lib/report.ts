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
      q === undefined ? "-" : `${q.toFixed(2)}×`,
      r.target?.text ?? "-",
      met,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
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

/** A horizontal bar chart (SVG) of Parley/baseline ratios, with a line at 1×. */
export function toSvg(rows: Row[]): string {
  const items = rows.flatMap((r) => {
    const q = ratio(r);
    return q === undefined
      ? []
      : [{ label: `${r.scenario} vs ${r.baselineName}`, q, met: r.target?.met(r) }];
  });
  const barH = 22;
  const left = 330;
  const width = 760;
  const maxQ = Math.max(2, ...items.map((i) => i.q));
  const scale = (width - left - 70) / maxQ;
  const height = 40 + items.length * (barH + 8);
  const bars = items.map((it, i) => {
    const y = 30 + i * (barH + 8);
    const colour = it.met === false ? "#d9534f" : it.met === true ? "#5cb85c" : "#5b8def";
    return [
      `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${
        _esc(it.label)
      }</text>`,
      `<rect x="${left}" y="${y}" width="${
        Math.max(1, it.q * scale).toFixed(1)
      }" height="${barH}" fill="${colour}"/>`,
      `<text x="${left + it.q * scale + 6}" y="${y + 15}" font-size="12">${
        it.q.toFixed(2)
      }×</text>`,
    ].join("");
  }).join("\n");
  const one = left + scale;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<text x="10" y="18" font-size="14">Cost ratio Parley : baseline (1× = as fast; above 1× = Parley slower or heavier)</text>
${bars}
<line x1="${one}" y1="24" x2="${one}" y2="${height - 4}" stroke="#333" stroke-dasharray="4 3"/>
</svg>
`;
}
