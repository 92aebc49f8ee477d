// Scenario read-heavy: 90 % reads / 10 % read-after-write through read/write-splitting proxies, stale reads counted.
//
// Each of --clients node-postgres clients (lib/loadgen.ts) loops for --duration s: with probability 0.1 it UPDATEs its
// own row of bench_rw to its next counter value and reads the row straight back (a "read-after-write pair"; a
// read-back older than the value just written is a stale read: read-your-writes violated), else it reads a random
// pgbench_accounts row. Targets alternate A B C D per rep: direct (primary), pgnear with routing on (transaction
// pool, region = the first replica's, consistency session, lsn_policy fastest), Pgpool-II (reads load-balanced to the
// replicas) and PgBouncer (primary only, transaction pool). synchronous_commit is on for the scenario (see
// lib/routing-pgnear.ts) and restored to off at the end.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type pg from 'pg';
import { isInterrupted } from '../lib/cleanup.js';
import type { BenchContext } from '../lib/context.js';
import { type LoadResult, runLoad } from '../lib/loadgen.js';
import { waitForQuiet } from '../lib/proc.js';
import { markdownTable } from '../lib/report.js';
import {
  diffCounts,
  onNode,
  routeDecisions,
  setSynchronousCommit,
  startRoutingPgnear,
  waitForReplicaReads,
} from '../lib/routing-pgnear.js';
import { fmt, fmtInt, median } from '../lib/stats.js';
import { resolveTargets, type Target } from '../targets/index.js';
import { PGPOOL_ON_WRITE, pgpoolSelectCounts } from '../targets/pgpool.js';
import type { Scenario } from './types.js';

const WRITE_SHARE = 0.1;

/** How a target tells where reads ran: a counter snapshot and the share of reads on replicas between two. */
interface Placement {
  snap(): Promise<Record<string, number>>;
  readShare(d: Record<string, number>): number | null;
}

interface RunTarget {
  target: Target;
  placement: Placement | null;
}

interface Run {
  target: string;
  rep: number;
  opsPerS: number | null;
  read: { p50Ms: number; p99Ms: number } | null;
  raw: { p50Ms: number; p99Ms: number } | null;
  pairs: number;
  stale: number;
  replicaReadShare: number | null;
  placement: Record<string, number> | null;
  errors: number;
  errorSamples: string[];
  proxyCores: number | null;
  otherPct: number | null;
  noisy: boolean;
  load?: LoadResult;
  error?: string;
}

// pgnear: route decisions from /metrics; reads = every decision but writes.
const pgnearPlacement = (admin: number): Placement => ({
  snap: () => routeDecisions(admin),
  readShare: (d) => {
    let reads = 0;
    let replica = 0;
    for (const [k, v] of Object.entries(d)) {
      if (k.endsWith('/write') || k.endsWith('/known_write')) continue;
      reads += v;
      if (k.startsWith('replica/')) replica += v;
    }
    return reads ? replica / reads : null;
  },
});

// Pgpool: SHOW POOL_NODES select_cnt per role.
const pgpoolPlacement = (port: number, password: string): Placement => ({
  snap: async () => ({ ...(await pgpoolSelectCounts(port, password)) }),
  readShare: (d) => {
    const total = (d.primary ?? 0) + (d.replicas ?? 0);
    return total ? (d.replicas ?? 0) / total : null;
  },
});

async function startTargets(ctx: BenchContext, maxClients: number): Promise<RunTarget[]> {
  const out: RunTarget[] = [];
  // resolveTargets says why an unavailable peer is skipped; "pgnear" here is the routing pgnear, not the factory's.
  for (const f of resolveTargets(ctx.opts.targets, ctx.log)) {
    ctx.log(`starting target ${f.name}…`);
    if (f.name === 'pgnear') {
      const p = await startRoutingPgnear(
        ctx,
        'routing on: session, fastest',
        { consistency: 'session', lsn_policy: 'fastest' },
        { maxClients },
      );
      await waitForReplicaReads(p.url);
      out.push({ target: p.target, placement: pgnearPlacement(p.adminPort) });
      continue;
    }
    const t = await f.start(ctx, { maxClients });
    out.push({
      target: t,
      placement: f.name === 'pgpool' ? pgpoolPlacement(t.port, ctx.cluster.superuser.password) : null,
    });
  }
  return out;
}

/** One closed-loop run against a target; `written[id]` is client id's last value, kept across runs (v only grows). */
async function runOnce(ctx: BenchContext, rt: RunTarget, durationS: number, written: number[]): Promise<LoadResult> {
  const o = ctx.opts;
  const t = rt.target;
  const rows = 100_000 * o.scale;
  return runLoad<{ row: number }>({
    clients: o.clients[0]!,
    durationS,
    config: () => ({
      host: '127.0.0.1',
      port: t.port,
      user: 'postgres',
      password: ctx.cluster.superuser.password,
      database: t.database('simple'),
      ssl: false,
      application_name: 'pgnear-bench-read-heavy',
    }),
    init: (_c: pg.Client, id: number) => ({ row: id + 1 }),
    async step(s) {
      if (Math.random() < WRITE_SHARE) {
        const v = ++written[s.id]!;
        await s.client.query('UPDATE bench_rw SET v = $1 WHERE id = $2', [v, s.state.row]);
        const r = await s.client.query<{ v: string }>('SELECT v FROM bench_rw WHERE id = $1', [s.state.row]);
        s.count('pairs');
        if (Number(r.rows[0]?.v) < v) s.count('stale');
        return 'raw';
      }
      const aid = 1 + Math.floor(Math.random() * rows);
      await s.client.query('SELECT abalance FROM pgbench_accounts WHERE aid = $1', [aid]);
      return 'read';
    },
    cpuRoots: {
      postgres: ctx.cluster.nodes.map((n) => n.pid()).filter((p): p is number => p !== undefined),
      proxy: t.pids(),
    },
    stopped: isInterrupted,
  });
}

function summaryRows(runs: Run[], names: string[], o: BenchContext['opts']): string[][] {
  const paired = (r: Run, ref: string) => {
    const b = runs.find((x) => x.target === ref && x.rep === r.rep)?.opsPerS;
    return r.opsPerS != null && b ? r.opsPerS / b : null;
  };
  return names.map((name) => {
    const rs = runs.filter((r) => r.target === name && r.opsPerS != null);
    const med = (f: (r: Run) => number | null | undefined) =>
      median(rs.map(f).filter((x): x is number => x != null && Number.isFinite(x)));
    const ratio = (ref: string) => median(rs.map((r) => paired(r, ref)).filter((x): x is number => x !== null));
    const share = med((r) => r.replicaReadShare);
    const pairs = rs.reduce((a, r) => a + r.pairs, 0);
    const stale = rs.reduce((a, r) => a + r.stale, 0);
    const all = runs.filter((r) => r.target === name);
    return [
      name,
      fmtInt(med((r) => r.opsPerS)),
      `${fmt(
        med((r) => r.read?.p50Ms),
        2,
      )} / ${fmt(
        med((r) => r.read?.p99Ms),
        2,
      )}`,
      `${fmt(
        med((r) => r.raw?.p50Ms),
        2,
      )} / ${fmt(
        med((r) => r.raw?.p99Ms),
        2,
      )}`,
      `${fmtInt(stale)} of ${fmtInt(pairs)}`,
      share == null
        ? name === 'direct' || name === 'pgbouncer'
          ? '0 % (primary only)'
          : '–'
        : `${fmt(100 * share, 1)} %`,
      fmt(ratio('direct'), 2),
      name === 'pgbouncer' ? (rs.length ? '1' : '–') : fmt(ratio('pgbouncer'), 2),
      fmt(
        med((r) => r.proxyCores),
        2,
      ),
      `${fmt(
        med((r) => r.otherPct),
        0,
      )}${all.some((r) => r.noisy) ? ` (${all.filter((r) => r.noisy).length} noisy)` : ''}`,
      String(all.reduce((a, r) => a + r.errors, 0) + all.filter((r) => r.error).length),
      `${rs.length}/${o.reps}`,
    ];
  });
}

export const readHeavy: Scenario = {
  name: 'read-heavy',
  summary:
    '90 % reads / 10 % read-after-write (Node clients, HDR latencies): pgnear routing vs Pgpool-II vs PgBouncer vs direct; stale reads, replica share',
  defaults: {
    clients: [16],
    reps: 2,
    targets: ['direct', 'pgnear', 'pgpool', 'pgbouncer'],
    pgnearPoolMode: 'transaction',
  },
  needsPgbenchData: true,
  // Pgpool holds up to (clients + 10) × 2 per node, pgnear and PgBouncer 20, direct one per client.
  maxConnections: (o) => Math.max(400, 3 * Math.max(...o.clients) + 100),
  async run(ctx, meta) {
    const o = ctx.opts;
    const clients = o.clients[0]!;
    const pw = ctx.cluster.superuser.password;
    // One row per client; created on the primary and replicated before any target reads it.
    await onNode(ctx.cluster.primary.port, pw, [
      'DROP TABLE IF EXISTS bench_rw',
      'CREATE TABLE bench_rw (id int PRIMARY KEY, v bigint NOT NULL)',
      `INSERT INTO bench_rw SELECT g, 0 FROM generate_series(1, ${clients}) g`,
    ]);
    await ctx.cluster.waitForReplay(30_000);
    const written = new Array<number>(clients).fill(0);
    const runs: Run[] = [];
    await setSynchronousCommit(ctx, 'on');
    let targets: RunTarget[] = [];
    try {
      targets = await startTargets(ctx, clients);
      if (targets.length === 0) throw new Error('no target can run here');
      if (o.warmup > 0) {
        for (const rt of targets) {
          if (isInterrupted()) throw new Error('interrupted');
          ctx.log(`warm-up ${rt.target.name} (${o.warmup} s)`, true);
          await runOnce(ctx, rt, o.warmup, written).catch((e: Error) => ctx.log(`warm-up failed: ${e.message}`));
        }
      }
      const total = o.reps * targets.length;
      let i = 0;
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const rt of targets) {
          if (isInterrupted()) throw new Error('interrupted');
          i++;
          const t = rt.target;
          if (o.quietWait > 0) {
            const q = await waitForQuiet(o.maxNoise, o.quietWait);
            if (q.waitedS > 1.5)
              ctx.log(`waited ${q.waitedS.toFixed(0)} s for unrelated CPU (last ${q.pct.toFixed(0)} %)`);
          }
          const run: Run = {
            target: t.name,
            rep,
            opsPerS: null,
            read: null,
            raw: null,
            pairs: 0,
            stale: 0,
            replicaReadShare: null,
            placement: null,
            errors: 0,
            errorSamples: [],
            proxyCores: null,
            otherPct: null,
            noisy: false,
          };
          try {
            const dead = t.deathNote?.();
            if (dead) throw new Error(dead);
            const p0 = rt.placement ? await rt.placement.snap() : null;
            const r = await runOnce(ctx, rt, o.duration, written);
            const placement = p0 && rt.placement ? diffCounts(p0, await rt.placement.snap()) : null;
            const rd = r.byKind.read;
            const rw = r.byKind.raw;
            Object.assign(run, {
              opsPerS: r.opsPerS,
              read: rd ? { p50Ms: rd.p50Ms, p99Ms: rd.p99Ms } : null,
              raw: rw ? { p50Ms: rw.p50Ms, p99Ms: rw.p99Ms } : null,
              pairs: r.counters.pairs ?? 0,
              stale: r.counters.stale ?? 0,
              placement,
              replicaReadShare: placement && rt.placement ? rt.placement.readShare(placement) : null,
              errors: r.errors,
              errorSamples: r.errorSamples,
              proxyCores: r.cpu && t.pids().length ? r.cpu.proxy / r.cpu.wallS : null,
              otherPct: r.cpu ? (100 * r.cpu.other) / r.cpu.wallS : null,
              load: r,
            });
            run.noisy = (run.otherPct ?? 0) > o.maxNoise;
            ctx.log(
              `[${i}/${total}] rep ${rep} ${t.name.padEnd(9)} ${fmtInt(r.opsPerS).padStart(7)} ops/s  read p50/p99 ` +
                `${fmt(rd?.p50Ms, 2)}/${fmt(rd?.p99Ms, 2)} ms  raw ${fmt(rw?.p50Ms, 2)}/${fmt(rw?.p99Ms, 2)} ms  ` +
                `stale ${run.stale}/${run.pairs}  replica reads ${run.replicaReadShare == null ? '–' : `${fmt(100 * run.replicaReadShare, 1)} %`}` +
                `${r.errors ? `  ERRORS ${r.errors}: ${r.errorSamples[0]}` : ''}  other ${fmt(run.otherPct, 0)} %${run.noisy ? ' NOISY' : ''}`,
            );
          } catch (e) {
            if (isInterrupted()) throw new Error('interrupted');
            run.error = (e as Error).message.slice(0, 1000);
            ctx.log(`[${i}/${total}] rep ${rep} ${t.name}: FAILED: ${run.error.split('\n').slice(0, 3).join(' | ')}`);
          }
          runs.push(run);
        }
      }
    } finally {
      for (const rt of [...targets].reverse()) await rt.target.stop();
      await setSynchronousCommit(ctx, 'off').catch(() => {});
    }

    const names = targets.map((t) => t.target.name);
    const head = [
      'target',
      'ops/s',
      'read p50 / p99 ms',
      'read-after-write p50 / p99 ms',
      'stale reads',
      'reads on replicas',
      '×direct',
      '×PgBouncer',
      'proxy cores',
      'other %',
      'errors',
      'n',
    ];
    const table = markdownTable(head, summaryRows(runs, names, o), ['l', ...head.slice(1).map(() => 'r' as const)]);
    const m = meta();
    m.notes.push(
      `Workload: ${clients} node-postgres clients (extended protocol, unnamed statements), closed loop, ${o.duration} s per run, ${o.reps} rep(s), targets alternating; ` +
        `${100 * WRITE_SHARE} % of operations are a read-after-write pair (UPDATE bench_rw SET v = <client's next value> WHERE id = <own row>, then SELECT v of that row), ` +
        `the rest a SELECT of a random pgbench_accounts row (scale ${o.scale}). ops/s counts a pair as one operation.`,
      'Stale read: the read-back of a pair returned an older v than the client had just written (read-your-writes violated).',
      `Targets: ${targets.map((t) => `${t.target.name} = ${t.target.label}`).join('; ')}.`,
      ...(names.includes('pgnear')
        ? [
            `pgnear: pool_mode transaction, pool_size ${o.poolSize}, region ${ctx.cluster.replicas[0]?.region}, routing consistency session, lsn_policy fastest; reads on replicas from pgnear_route_decisions_total (all decisions but write / known_write).`,
          ]
        : []),
      ...(names.includes('pgpool')
        ? [
            `Pgpool-II: load_balance_mode on, backend weights primary 0 / replicas 1, disable_load_balance_on_write = '${PGPOOL_ON_WRITE}' (no LSN tracking: 'always' sends a session's reads to the primary once it has written), session-level balancing; reads on replicas from SHOW POOL_NODES select_cnt deltas.`,
          ]
        : []),
      ...(names.includes('pgbouncer') ? [`PgBouncer: primary only, transaction pool ${o.poolSize}.`] : []),
      'synchronous_commit = on on the primary for this scenario (ALTER SYSTEM), restored to off at the end.',
      'Latencies: HDR histograms (hdr-histogram-js, µs resolution, 3 significant digits); medians over reps of each run’s percentiles. ×direct / ×PgBouncer: median of per-rep ops/s ratios.',
    );
    const md = `# read-heavy — ${m.startedAt}\n\n${m.notes.map((n) => `- ${n}`).join('\n')}\n\n${table}\n`;
    writeFileSync(join(ctx.resultsDir, 'results.json'), `${JSON.stringify({ meta: m, runs }, null, 2)}\n`);
    writeFileSync(join(ctx.resultsDir, 'report.md'), md);
    process.stdout.write(`\n${table}\n\nresults: ${ctx.resultsDir}\n`);
  },
};
