// Micro-benchmark CLI: `npm run bench:micro [-- <filter>] [--quick]` — mitata per case, a table, results.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { do_not_optimize, measure } from 'mitata';
import { classifierCases } from './classifier.bench.js';
import { framerCases } from './framer.bench.js';
import { poolCases } from './pool.bench.js';
import type { MicroCase } from './types.js';

const USAGE = `pgnear micro-benchmarks

Usage: npm run bench:micro [-- <filter>] [options]

  <filter>      case-insensitive substring (or /regex/) of "<group>/<case>", groups: framer, classifier, pool
  --quick       ~0.15 s of samples per case instead of mitata's ~0.65 s (noisier)
  --clock cpu   time with this process's CPU time (getrusage, µs) instead of the wall clock: on a shared machine,
                time spent descheduled by other processes' load is then not counted (default: wall)
  --out DIR     results directory (default bench/results/<time>-micro)
  --list        print the case names and exit
`;

interface Row {
  group: string;
  name: string;
  skipped?: string;
  avgNs?: number;
  p50Ns?: number;
  p99Ns?: number;
  minNs?: number;
  maxNs?: number;
  opsPerSec?: number;
  /** Decimal megabytes (10^6 bytes) per second, for cases that declare bytes per op. */
  mbPerSec?: number;
  bytesPerOp?: number;
  units?: number;
  unit?: string;
  nsPerUnit?: number;
  /** Operations mitata timed; fast cases are timed in batches, so p50/p99 are of batch means. */
  ticks?: number;
}

function matcher(filter: string | undefined): (id: string) => boolean {
  if (!filter) return () => true;
  const re = /^\/(.*)\/([a-z]*)$/.exec(filter);
  if (re) {
    const r = new RegExp(re[1], re[2].includes('i') ? re[2] : `${re[2]}i`);
    return (id) => r.test(id);
  }
  const f = filter.toLowerCase();
  return (id) => id.toLowerCase().includes(f);
}

const fmtNs = (ns: number) =>
  ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(2)} µs` : `${ns.toFixed(1)} ns`;
const fmtOps = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(0);

const HEAD = ['case', 'ns/op', 'p50', 'p99', 'ops/s', 'MB/s', 'per unit'];
function cells(r: Row): string[] {
  if (r.skipped || r.avgNs === undefined) return [`${r.group}/${r.name}`, 'skipped', '', '', '', '', r.skipped ?? ''];
  return [
    `${r.group}/${r.name}`,
    fmtNs(r.avgNs),
    fmtNs(r.p50Ns!),
    fmtNs(r.p99Ns!),
    fmtOps(r.opsPerSec!),
    r.mbPerSec === undefined ? '' : r.mbPerSec.toFixed(0),
    r.nsPerUnit === undefined ? '' : `${fmtNs(r.nsPerUnit)}/${r.unit ?? 'unit'}`,
  ];
}

/** A markdown table padded to align in a terminal too. */
function table(rows: Row[]): string {
  const all = [HEAD, ...rows.map(cells)];
  const w = HEAD.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  const sep = `| ${w.map((n, i) => (i === 0 ? '-'.repeat(n) : `${'-'.repeat(n - 1)}:`)).join(' | ')} |`;
  return [line(HEAD), sep, ...all.slice(1).map(line)].join('\n');
}

async function main(): Promise<void> {
  const { values: v, positionals } = parseArgs({
    allowPositionals: true,
    strict: true,
    options: {
      quick: { type: 'boolean', default: false },
      clock: { type: 'string', default: 'wall' },
      out: { type: 'string' },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (v.clock !== 'wall' && v.clock !== 'cpu') throw new Error(`--clock: wall or cpu, got "${v.clock}"`);
  const filter = positionals.join(' ') || undefined;
  const wanted = matcher(filter);
  const startedAt = new Date().toISOString();
  const load0 = loadavg();

  const all: MicroCase[] = [...framerCases(), ...(await classifierCases()), ...(await poolCases())];
  const selected = all.filter((c) => wanted(`${c.group}/${c.name}`));
  if (v.list || selected.length === 0) {
    for (const c of all) process.stdout.write(`${c.group}/${c.name}\n`);
    if (selected.length === 0) throw new Error(`no case matches "${filter}"`);
    return;
  }

  // Without --expose-gc, mitata's fallback "GC" allocates a 1 GiB array per case: skip it rather than do that here.
  const hasGc = typeof (globalThis as { gc?: unknown }).gc === 'function';
  const cpuNow = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1e3;
  };
  const opts = {
    ...(v.quick ? { min_cpu_time: 150e6 } : {}),
    ...(hasGc ? {} : { gc: false }),
    ...(v.clock === 'cpu' ? { now: cpuNow } : {}),
  };
  const rows: Row[] = [];
  // Warm every selected case before measuring any: the first case measured otherwise pays for tier-up and background
  // compilation (up to 10x its steady cost here), and the shared code (scanner, pool) has seen every shape, as in a proxy.
  const asyncCases = new Set<MicroCase>();
  const warmUntil = (ms: number) => performance.now() + ms;
  for (const c of selected) {
    if (c.skip) continue;
    // Async cases must stay async for mitata (it awaits them); sync results go to do_not_optimize so V8 cannot
    // drop a pure call.
    const probe = c.fn();
    if (probe instanceof Promise) {
      asyncCases.add(c);
      await probe;
    }
    for (const end = warmUntil(v.quick ? 20 : 60); performance.now() < end;) {
      if (asyncCases.has(c)) await c.fn();
      else do_not_optimize(c.fn());
    }
  }
  const how = [v.quick ? 'quick' : '', v.clock === 'cpu' ? 'CPU-time clock' : ''].filter(Boolean).join(', ');
  process.stderr.write(`${selected.length} cases${filter ? ` matching "${filter}"` : ''}${how ? ` (${how})` : ''}\n`);
  for (const c of selected) {
    if (c.skip) {
      rows.push({ group: c.group, name: c.name, skipped: c.skip });
      continue;
    }
    const s = await measure(asyncCases.has(c) ? c.fn : () => do_not_optimize(c.fn()), opts);
    c.check?.();
    const row: Row = {
      group: c.group,
      name: c.name,
      avgNs: s.avg,
      p50Ns: s.p50,
      p99Ns: s.p99,
      minNs: s.min,
      maxNs: s.max,
      opsPerSec: 1e9 / s.avg,
      ticks: s.ticks,
    };
    if (c.bytes !== undefined) {
      row.bytesPerOp = c.bytes;
      row.mbPerSec = (c.bytes / s.avg) * 1e3; // bytes/ns × 1e9 / 1e6
    }
    if (c.units !== undefined) {
      row.units = c.units;
      row.unit = c.unit;
      row.nsPerUnit = s.avg / c.units;
    }
    rows.push(row);
    process.stderr.write(`  ${cells(row).slice(0, 2).join('  ')}\n`);
  }

  process.stdout.write(`\n${table(rows)}\n\n`);
  process.stdout.write(
    'ns/op: mean per operation; p50/p99: of mitata samples (batch means for fast cases); MB/s: 10^6 bytes/s.\n',
  );

  const stamp = startedAt.replace(/\.\d+Z$/, '').replace(/:/g, '-');
  const dir = resolve(v.out ?? join(import.meta.dirname, '..', 'results', `${stamp}-micro`));
  mkdirSync(dir, { recursive: true });
  const meta = {
    startedAt,
    finishedAt: new Date().toISOString(),
    filter: filter ?? null,
    quick: v.quick,
    clock: v.clock,
    node: process.version,
    cpu: cpus()[0]?.model ?? null,
    cores: cpus().length,
    // On a shared machine: how busy it was around the run.
    loadavgBefore: load0,
    loadavgAfter: loadavg(),
    exposeGc: hasGc,
  };
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify({ meta, results: rows }, null, 2)}\n`);
  process.stderr.write(`results in ${join(dir, 'results.json')}\n`);
}

main().then(
  // The pools' queue timers were all cleared; exit explicitly anyway so a stray handle cannot keep the run alive.
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
