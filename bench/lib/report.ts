// Results on disk (results.json, report.md, chart.html) and the console table of medians and same-run ratios.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChartHtml } from './chart.js';
import type { BenchContext } from './context.js';
import type { CellSummary, MatrixResult } from './matrix.js';
import { fmt, fmtInt } from './stats.js';

export interface RunMeta {
  scenario: string;
  startedAt: string;
  finishedAt: string;
  host: { cpus: number; node: string; loadavgAtStart: number[] };
  /** The checkout the bench ran from (pgnear's dist/ is built from it by `npm run bench`), "+dirty" with local changes. */
  build: string;
  options: BenchContext['opts'];
  cluster: { conf: Record<string, string>; primaryPort: number; replicas: number };
  notes: string[];
}

export function markdownTable(head: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const sep = align.map((a) => (a === 'r' ? '--:' : '---'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** One row per (mode, clients, target): medians, spread, paired ratios and CPU-normalised capacity. */
export function matrixTable(summary: CellSummary[]): string {
  // p50/p99 and failed-transaction columns only when the scenario logged per-transaction latencies.
  const pct = summary.some((s) => s.p99Ms != null);
  // Connection-time column only for pgbench -C runs (connect-storm).
  const conn = summary.some((s) => s.connectMs != null);
  const head = [
    'mode',
    'c',
    'target',
    'pooling',
    'TPS',
    'min–max',
    'lat ms',
    ...(conn ? ['conn ms'] : []),
    ...(pct ? ['p50 ms', 'p99 ms', 'failed tx'] : []),
    '×direct',
    '×PgBouncer',
    'TPS@2cores',
    '×dir@2c',
    'proxy cores',
    'other %',
    'n',
  ];
  const rows = summary.map((s) => [
    s.mode,
    String(s.clients),
    s.target,
    s.variant,
    fmtInt(s.tps?.median),
    s.tps ? `${fmtInt(s.tps.min)}–${fmtInt(s.tps.max)}` : '–',
    fmt(s.latencyMs, 3),
    ...(conn ? [fmt(s.connectMs, 3)] : []),
    ...(pct
      ? [
          fmt(s.p50Ms, 3),
          fmt(s.p99Ms, 3),
          `${s.failed == null ? '–' : fmtInt(s.failed)}${s.errors ? ` (${s.errors} run errors)` : ''}`,
        ]
      : []),
    fmt(s.xDirect, 2),
    s.target === 'pgbouncer' ? (s.xPgbouncer == null ? '–' : '1') : fmt(s.xPgbouncer, 2),
    fmtInt(s.tpsAt2Cores),
    fmt(s.xDirectAt2Cores, 2),
    fmt(s.proxyCores, 2),
    `${fmt(s.otherPct, 0)}${s.noisyRuns ? ` (${s.noisyRuns} noisy)` : ''}`,
    String(s.n),
  ]);
  const align: ('l' | 'r')[] = ['l', 'r', 'l', 'l', ...head.slice(4).map(() => 'r' as const)];
  return markdownTable(head, rows, align);
}

export const MATRIX_LEGEND = [
  "TPS / lat: medians over reps; min–max: spread of TPS over reps. conn ms (pgbench -C): median of pgbench's average connection time. p50 / p99 (when logged): median over reps of each run's percentile over all its transactions (pgbench -l); failed tx: summed over reps.",
  '×direct, ×PgBouncer: median of per-rep ratios to the same rep of that target (targets alternate A B C A B C).',
  'TPS@2cores: transactions per CPU-second of postgres + proxy + pgbench, ×2 (robust to unrelated load).',
  'proxy cores: CPU-seconds per second used by the proxy process. other %: unrelated busy CPU (100 = one core).',
];

/** Write results.json, report.md and chart.html; print the table. */
export function writeMatrixReport(ctx: BenchContext, meta: RunMeta, result: MatrixResult): void {
  const table = matrixTable(result.summary);
  const md = [
    `# ${meta.scenario} — ${meta.startedAt}`,
    '',
    `Targets: ${result.targets.map((t) => `${t.name} = ${t.label}`).join('; ')}.`,
    `Duration ${meta.options.duration} s per run, ${meta.options.reps} rep(s), pgbench -j ${meta.options.threads}, scale ${meta.options.scale}.`,
    ...meta.notes.map((n) => `- ${n}`),
    '',
    table,
    '',
    ...MATRIX_LEGEND.map((l) => `- ${l}`),
    '',
  ].join('\n');
  writeFileSync(join(ctx.resultsDir, 'results.json'), `${JSON.stringify({ meta, ...result }, null, 2)}\n`);
  writeFileSync(join(ctx.resultsDir, 'report.md'), md);
  writeFileSync(
    join(ctx.resultsDir, 'chart.html'),
    barChartHtml(`${meta.scenario} (${meta.startedAt})`, result.summary, md),
  );
  process.stdout.write(`\n${table}\n\n${MATRIX_LEGEND.join('\n')}\n\nresults: ${ctx.resultsDir}\n`);
}
