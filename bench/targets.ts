// `npm run bench:targets`: run the scenarios issue 5's targets are measured by (or read the latest results) and
// judge each target from the numbers, so the table in bench/README.md is reproduced by one command.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/stats.js';

const RESULTS = join(import.meta.dirname, 'results');

/** The runs behind the targets: one scenario each, alternating targets, same-run ratios. */
const PLAN: { scenario: string; args: string[] }[] = [
  {
    scenario: 'select-only',
    args: ['--clients', '1,16,64', '--modes', 'simple,extended', '--reps', '2', '--duration', '8'],
  },
  { scenario: 'connect-storm', args: ['--duration', '10', '--reps', '2'] },
  { scenario: 'idle-10k', args: [] },
  { scenario: 'big-result', args: [] },
];

export interface Check {
  target: string;
  measured: string;
  /** null: not measured (a target missing from the run). */
  met: boolean | null;
  from: string;
}

interface Run {
  mode: string;
  clients: number;
  rep: number;
  target: string;
  tps: number | null;
}
interface Cell {
  mode: string;
  clients: number;
  target: string;
  p50Ms: number | null;
  xPgbouncer: number | null;
}
type Json = Record<string, unknown>;

const f2 = (x: number) => x.toFixed(2);
const ms = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(3)}`;
const all = (xs: (number | null)[], ok: (x: number) => boolean): boolean | null =>
  xs.length === 0 || xs.some((x) => x === null) ? null : xs.every((x) => ok(x!));

/** Median over reps of a target's TPS divided by the reference's TPS in the same rep (same mode and clients). */
export function pairedRatio(runs: Run[], target: string, ref: string, mode: string, clients: number): number | null {
  const here = runs.filter((r) => r.target === target && r.mode === mode && r.clients === clients && r.tps);
  const ratios = here
    .map((r) => {
      const b = runs.find((x) => x.target === ref && x.mode === mode && x.clients === clients && x.rep === r.rep);
      return b?.tps ? r.tps! / b.tps : null;
    })
    .filter((x): x is number => x !== null);
  return median(ratios);
}

export function judgeSelectOnly(j: { runs: Run[]; summary: Cell[] }, from: string): Check[] {
  const cell = (target: string, mode: string, c: number) =>
    j.summary.find((s) => s.target === target && s.mode === mode && s.clients === c);
  const modes = ['simple', 'extended'];
  const vsPgb = modes.flatMap((m) => [16, 64].map((c) => cell('pgnear', m, c)?.xPgbouncer ?? null));
  const vsHap = modes.map((m) => pairedRatio(j.runs, 'pgnear', 'haproxy', m, 16));
  const p50: { label: string; ours: number | null; theirs: number | null }[] = [];
  for (const c of [1, 16, 64])
    for (const m of modes) {
      const d = cell('direct', m, c)?.p50Ms;
      const a = cell('pgnear', m, c)?.p50Ms;
      const b = cell('pgbouncer', m, c)?.p50Ms;
      if (d == null) continue;
      p50.push({ label: `c=${c} ${m}`, ours: a == null ? null : a - d, theirs: b == null ? null : b - d });
    }
  const show = (xs: (number | null)[]) => xs.map((x) => (x === null ? '–' : f2(x))).join(' / ');
  return [
    {
      target: 'select-only, tx pooling, c=16 / 64: ≥ 1.0× PgBouncer',
      measured: `simple ${show(vsPgb.slice(0, 2))}, extended ${show(vsPgb.slice(2))}`,
      met: all(vsPgb, (x) => x >= 1),
      from,
    },
    {
      target: '≥ 0.9× HAProxy TCP at c=16',
      measured: `simple ${show(vsHap.slice(0, 1))}, extended ${show(vsHap.slice(1))}`,
      met: all(vsHap, (x) => x >= 0.9),
      from,
    },
    {
      target: 'p50 added over direct ≤ PgBouncer’s',
      measured: p50
        .map((p) => `${p.label} ${p.ours === null ? '–' : ms(p.ours)} vs ${p.theirs === null ? '–' : ms(p.theirs)} ms`)
        .join('; '),
      met:
        p50.length === 0
          ? null
          : all(
              p50.map((p) => (p.ours === null || p.theirs === null ? null : p.theirs - p.ours)),
              (x) => x >= 0,
            ),
      from,
    },
  ];
}

export function judgeConnectStorm(j: { summary: Cell[] }, from: string): Check {
  const x = j.summary.find((s) => s.target === 'pgnear')?.xPgbouncer ?? null;
  return {
    target: 'connect-storm ≥ 1.0× PgBouncer',
    measured: x === null ? '–' : f2(x),
    met: x === null ? null : x >= 1,
    from,
  };
}

/** 150 MB read strictly as 150,000,000 bytes (the RSS tables print MiB; both are shown). */
export function judgeIdle(j: { results: { target: string; rssKiB: { idle: number | null } }[] }, from: string): Check {
  const kib = j.results.find((r) => r.target === 'pgnear')?.rssKiB.idle ?? null;
  const bytes = kib === null ? null : kib * 1024;
  return {
    target: '10,000 idle clients: RSS ≤ 150 MB',
    measured: bytes === null ? '–' : `${(bytes / 2 ** 20).toFixed(1)} MiB = ${(bytes / 1e6).toFixed(1)} MB`,
    met: bytes === null ? null : bytes <= 150e6,
    from,
  };
}

export function judgeBigResult(
  j: { summary: { shape: string; target: string; xDirect: number | null }[] },
  from: string,
): Check {
  const x = (shape: string) => j.summary.find((s) => s.shape === shape && s.target === 'pgnear')?.xDirect ?? null;
  const sel = x('select');
  const copy = x('copy');
  return {
    target: '200 MB result ≥ 0.9× direct',
    measured: `DataRows ${sel === null ? '–' : f2(sel)}×, COPY ${copy === null ? '–' : f2(copy)}×`,
    met: all([sel, copy], (v) => v >= 0.9),
    from,
  };
}

/** The newest results of a scenario: a `<time>-<scenario>` run or the scenario's part of a `<time>-targets` run. */
function latest(scenario: string): string | null {
  if (!existsSync(RESULTS)) return null;
  const dirs = readdirSync(RESULTS)
    .flatMap((d) => (d.endsWith('-targets') ? [join(d, scenario)] : d.endsWith(`-${scenario}`) ? [d] : []))
    .filter((d) => existsSync(join(RESULTS, d, 'results.json')))
    .sort(); // by the time stamp each name starts with
  return dirs.length ? join(RESULTS, dirs[dirs.length - 1]!) : null;
}

function judge(scenario: string, dir: string): Check[] {
  const j = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as Json;
  const build = (j.meta as { build?: string } | undefined)?.build;
  const from = `${dir.slice(RESULTS.length + 1)}${build ? ` (build ${build})` : ''}`;
  if (scenario === 'select-only') return judgeSelectOnly(j as never, from);
  if (scenario === 'connect-storm') return [judgeConnectStorm(j as never, from)];
  if (scenario === 'idle-10k') return [judgeIdle(j as never, from)];
  return [judgeBigResult(j as never, from)];
}

export function targetsTable(checks: Check[]): string {
  const rows = checks.map(
    (c) => `| ${c.target} | ${c.measured} | ${c.met === null ? 'not measured' : c.met ? 'yes' : 'no'} | ${c.from} |`,
  );
  return ['| target | measured (same-run ratios) | met | results |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

function main(): void {
  const { values: v } = parseArgs({ options: { latest: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (v.help) {
    process.stdout.write(
      'Usage: npm run bench:targets [-- --latest]\n\nRuns ' +
        PLAN.map((p) => `${p.scenario} ${p.args.join(' ')}`.trim()).join('; ') +
        ',\nthen judges issue 5’s targets. --latest: judge the newest results of each scenario instead of running.\n',
    );
    return;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const checks: Check[] = [];
  for (const p of PLAN) {
    let dir = v.latest ? latest(p.scenario) : resolve(RESULTS, `${stamp}-targets`, p.scenario);
    if (!v.latest) {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'run.ts'), p.scenario, ...p.args, '--out', dir!],
        {
          stdio: 'inherit',
        },
      );
      if (r.status !== 0) dir = null;
    }
    if (!dir) {
      checks.push({ target: p.scenario, measured: 'no results', met: null, from: '–' });
      continue;
    }
    checks.push(...judge(p.scenario, dir));
  }
  const table = targetsTable(checks);
  process.stdout.write(`\n${table}\n`);
  // A judgement of existing results is not itself a targets run (latest() must not pick it up).
  const out = join(RESULTS, `${stamp}-targets${v.latest ? '-latest' : ''}`);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'targets.md'), `${table}\n`);
  writeFileSync(join(out, 'targets.json'), `${JSON.stringify(checks, null, 2)}\n`);
  process.stdout.write(`\nwritten: ${out}/targets.md\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
