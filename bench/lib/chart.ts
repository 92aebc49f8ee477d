// A self-contained HTML page with an inline SVG bar chart: median TPS per target, grouped by (mode, clients).
import type { CellSummary } from './matrix.js';
import { fmtInt } from './stats.js';

const COLORS: Record<string, string> = {
  direct: '#4c78a8',
  pgnear: '#f58518',
  pgbouncer: '#54a24b',
  haproxy: '#b279a2',
};
const FALLBACK = ['#e45756', '#72b7b2', '#eeca3b', '#9d755d'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** SVG: one group per cell, one bar per target (median), a whisker for min–max, labels with ×direct. */
export function barChartSvg(summary: CellSummary[]): string {
  const cells = [...new Set(summary.map((s) => `${s.mode} c=${s.clients}`))];
  const targets = [...new Set(summary.map((s) => s.target))];
  const color = (t: string) => COLORS[t] ?? FALLBACK[targets.indexOf(t) % FALLBACK.length]!;
  const top = Math.max(1, ...summary.map((s) => s.tps?.max ?? 0)) * 1.12;
  const barW = 46;
  const gap = 10;
  const groupW = targets.length * (barW + gap) + 40;
  const H = 300;
  const left = 70;
  const W = left + cells.length * groupW + 20;
  const y = (v: number) => 30 + H - (v / top) * H;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H + 110}" font-family="sans-serif" font-size="11">`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (top / 4) * i;
    out.push(
      `<line x1="${left}" x2="${W - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" fill="#555">${fmtInt(v)}</text>`,
    );
  }
  out.push(
    `<text x="14" y="${30 + H / 2}" transform="rotate(-90 14 ${30 + H / 2})" text-anchor="middle">TPS (median)</text>`,
  );
  cells.forEach((cell, ci) => {
    const gx = left + 20 + ci * groupW;
    targets.forEach((t, ti) => {
      const s = summary.find((x) => `${x.mode} c=${x.clients}` === cell && x.target === t);
      if (!s?.tps) return;
      const x = gx + ti * (barW + gap);
      const cx = x + barW / 2;
      out.push(
        `<rect x="${x}" y="${y(s.tps.median)}" width="${barW}" height="${y(0) - y(s.tps.median)}" fill="${color(t)}"><title>${esc(
          `${t} (${s.variant}) ${cell}: median ${fmtInt(s.tps.median)} TPS, ${fmtInt(s.tps.min)}–${fmtInt(s.tps.max)}, n=${s.n}`,
        )}</title></rect>`,
        `<line x1="${cx}" x2="${cx}" y1="${y(s.tps.max)}" y2="${y(s.tps.min)}" stroke="#222"/>`,
        `<line x1="${cx - 6}" x2="${cx + 6}" y1="${y(s.tps.max)}" y2="${y(s.tps.max)}" stroke="#222"/>`,
        `<line x1="${cx - 6}" x2="${cx + 6}" y1="${y(s.tps.min)}" y2="${y(s.tps.min)}" stroke="#222"/>`,
        `<text x="${cx}" y="${y(s.tps.max) - 16}" text-anchor="middle">${fmtInt(s.tps.median)}</text>`,
        `<text x="${cx}" y="${y(s.tps.max) - 4}" text-anchor="middle" fill="#555">${s.xDirect == null ? '' : `×${s.xDirect.toFixed(2)}`}</text>`,
      );
    });
    out.push(
      `<text x="${gx + (targets.length * (barW + gap)) / 2}" y="${y(0) + 18}" text-anchor="middle" font-weight="bold">${esc(cell)}</text>`,
    );
  });
  targets.forEach((t, ti) => {
    const lx = left + ti * 120;
    out.push(
      `<rect x="${lx}" y="${H + 70}" width="12" height="12" fill="${color(t)}"/>`,
      `<text x="${lx + 16}" y="${H + 80}">${esc(t)}</text>`,
    );
  });
  out.push(
    `<text x="${left}" y="${H + 102}" fill="#555">bars: median TPS; whiskers: min–max over reps; ×: median same-run ratio to direct</text>`,
  );
  out.push('</svg>');
  return out.join('\n');
}

export function barChartHtml(title: string, summary: CellSummary[], markdown: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:24px} pre{background:#f6f6f6;padding:12px;overflow:auto;font-size:12px}</style>
</head><body>
<h1>${esc(title)}</h1>
${barChartSvg(summary)}
<pre>${esc(markdown)}</pre>
</body></html>
`;
}
