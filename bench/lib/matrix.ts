// Shared runner for pgbench scenarios: per (mode, clients) cell, targets alternate A B C A B C for --reps.
import { resolveTargets, type Target } from '../targets/index.js';
import { isInterrupted } from './cleanup.js';
import type { BenchContext, PgbenchMode } from './context.js';
import { type CpuUse, runPgbench } from './pgbench.js';
import { waitForQuiet } from './proc.js';
import { max, median, min } from './stats.js';

export interface PgbenchScenarioSpec {
  name: string;
  /** pgbench workload flags, e.g. ['-S']. */
  script: string[];
  /** Per-transaction pgbench log (`-l`) per run, for p50/p99 latency (costs pgbench a little CPU: same for all). */
  latencyLog?: boolean;
}

export interface RunRecord {
  mode: PgbenchMode;
  clients: number;
  rep: number;
  target: string;
  variant: string;
  tps: number | null;
  latencyMs: number | null;
  transactions: number | null;
  failed: number | null;
  /** pgbench -C: average connection time (ms), else null. */
  connectMs: number | null;
  /** From the per-transaction log (latencyLog): percentiles over every transaction of the run. */
  p50Ms: number | null;
  p99Ms: number | null;
  tpsAt2Cores: number | null;
  cpu: CpuUse | null;
  /** Unrelated CPU above --max-noise % of one core during this run. */
  noisy: boolean;
  error?: string;
  startedAt: string;
}

export interface CellSummary {
  mode: PgbenchMode;
  clients: number;
  target: string;
  variant: string;
  n: number;
  tps: { median: number; min: number; max: number } | null;
  latencyMs: number | null;
  /** Median over reps of each run's p50 / p99 latency (latencyLog), else null. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Failed transactions summed over the reps (pgbench's "number of failed transactions"). */
  failed: number | null;
  /** pgbench -C: median over reps of the average connection time (ms), else null. */
  connectMs: number | null;
  /** Runs that errored (pgbench exit ≠ 0, e.g. clients aborted). */
  errors: number;
  /** Median of per-rep ratios to direct / PgBouncer in the same rep (paired), null when absent. */
  xDirect: number | null;
  xPgbouncer: number | null;
  tpsAt2Cores: number | null;
  xDirectAt2Cores: number | null;
  /** Median CPU seconds per second of the proxy process(es) (1.0 = one full core). */
  proxyCores: number | null;
  /** Median unrelated CPU during the runs, in % of one core. */
  otherPct: number | null;
  noisyRuns: number;
}

export interface MatrixResult {
  targets: { name: string; label: string }[];
  runs: RunRecord[];
  summary: CellSummary[];
}

const ok = (r: RunRecord) => r.tps !== null;

function pairedRatio(runs: RunRecord[], r: RunRecord, ref: string, key: 'tps' | 'tpsAt2Cores'): number | null {
  const base = runs.find((x) => x.target === ref && x.mode === r.mode && x.clients === r.clients && x.rep === r.rep);
  const a = r[key];
  const b = base?.[key];
  return a != null && b != null && b > 0 ? a / b : null;
}

export function summarize(runs: RunRecord[], targetNames: string[]): CellSummary[] {
  const out: CellSummary[] = [];
  const cells = [...new Set(runs.map((r) => `${r.mode}\0${r.clients}`))];
  for (const cell of cells) {
    const [mode, c] = cell.split('\0') as [PgbenchMode, string];
    for (const t of targetNames) {
      const rs = runs.filter((r) => r.mode === mode && r.clients === Number(c) && r.target === t);
      if (rs.length === 0) continue;
      const good = rs.filter(ok);
      const tps = good.map((r) => r.tps!);
      const ratios = (ref: string, key: 'tps' | 'tpsAt2Cores') =>
        good.map((r) => pairedRatio(runs, r, ref, key)).filter((x): x is number => x !== null);
      const cpu = good.map((r) => r.cpu).filter((x): x is CpuUse => x !== null);
      out.push({
        mode,
        clients: Number(c),
        target: t,
        variant: rs[0]!.variant,
        n: good.length,
        tps: tps.length ? { median: median(tps)!, min: min(tps), max: max(tps) } : null,
        latencyMs: good.length ? median(good.map((r) => r.latencyMs!)) : null,
        p50Ms: median(good.map((r) => r.p50Ms).filter((x): x is number => x != null)),
        p99Ms: median(good.map((r) => r.p99Ms).filter((x): x is number => x != null)),
        failed: good.length ? good.reduce((a, r) => a + (r.failed ?? 0), 0) : null,
        connectMs: median(good.map((r) => r.connectMs).filter((x): x is number => x != null)),
        errors: rs.filter((r) => r.error).length,
        xDirect: t === 'direct' ? (good.length ? 1 : null) : median(ratios('direct', 'tps')),
        xPgbouncer: median(ratios('pgbouncer', 'tps')),
        tpsAt2Cores: good.length ? median(good.map((r) => r.tpsAt2Cores!)) : null,
        xDirectAt2Cores: median(ratios('direct', 'tpsAt2Cores')),
        proxyCores: cpu.length && t !== 'direct' ? median(cpu.map((u) => u.proxy / u.wallS)) : null,
        otherPct: cpu.length ? median(cpu.map((u) => (100 * u.other) / u.windowS)) : null,
        noisyRuns: rs.filter((r) => r.noisy).length,
      });
    }
  }
  return out;
}

export async function runPgbenchMatrix(ctx: BenchContext, spec: PgbenchScenarioSpec): Promise<MatrixResult> {
  const o = ctx.opts;
  const factories = resolveTargets(o.targets, ctx.log);
  if (factories.length === 0) throw new Error('no target can run here');
  const maxClients = Math.max(...o.clients);
  const started: Target[] = [];
  for (const f of factories) {
    ctx.log(`starting target ${f.name}…`);
    started.push(await f.start(ctx, { maxClients }));
  }
  const runs: RunRecord[] = [];
  const cells = o.modes.flatMap((mode) => o.clients.map((clients) => ({ mode, clients })));
  const total = cells.length * o.reps * started.length;
  ctx.log(
    `${total} runs of ${o.duration} s (${spec.name}, modes ${o.modes.join(',')}, clients ${o.clients.join(',')}, ` +
      `${o.reps} rep(s), targets ${started.map((t) => t.name).join(',')}): ~${Math.ceil((total * (o.duration + 1)) / 60)} min`,
  );
  if (o.warmup > 0) {
    for (const t of started) {
      if (isInterrupted()) throw new Error('interrupted');
      ctx.log(`warm-up ${t.name} (${o.warmup} s)`, true);
      await runPgbench({
        cluster: ctx.cluster,
        target: t,
        mode: o.modes[0]!,
        clients: o.clients[0]!,
        threads: o.threads,
        durationS: o.warmup,
        script: spec.script,
        latencyLogDir: spec.latencyLog ? ctx.runtimeDir : undefined,
      }).catch(
        (e: Error) =>
          isInterrupted() || ctx.log(`warm-up of ${t.name} failed: ${e.message.split('\n').slice(0, 6).join(' | ')}`),
      );
    }
  }
  let i = 0;
  for (const { mode, clients } of cells) {
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const t of started) {
        if (isInterrupted()) throw new Error('interrupted');
        i++;
        const rec: RunRecord = {
          mode,
          clients,
          rep,
          target: t.name,
          variant: t.variant(mode),
          tps: null,
          latencyMs: null,
          transactions: null,
          failed: null,
          connectMs: null,
          p50Ms: null,
          p99Ms: null,
          tpsAt2Cores: null,
          cpu: null,
          noisy: false,
          startedAt: new Date().toISOString(),
        };
        if (o.quietWait > 0) {
          const q = await waitForQuiet(o.maxNoise, o.quietWait);
          if (q.waitedS > 1.5)
            ctx.log(
              `waited ${q.waitedS.toFixed(0)} s for unrelated CPU to settle (last: ${q.pct.toFixed(0)} % of a core)`,
            );
        }
        const dead = t.deathNote?.();
        if (dead) {
          rec.error = dead;
          ctx.log(
            `[${i}/${total}] ${mode} c=${clients} rep ${rep} ${t.name}: SKIPPED: ${dead.split('\n').slice(0, 4).join(' | ')}`,
          );
          runs.push(rec);
          continue;
        }
        try {
          const r = await runPgbench({
            cluster: ctx.cluster,
            target: t,
            mode,
            clients,
            threads: o.threads,
            durationS: o.duration,
            script: spec.script,
            latencyLogDir: spec.latencyLog ? ctx.runtimeDir : undefined,
          });
          Object.assign(rec, {
            tps: r.tps,
            latencyMs: r.latencyMs,
            transactions: r.transactions,
            failed: r.failed,
            connectMs: r.avgConnectMs,
            p50Ms: r.latency?.p50Ms ?? null,
            p99Ms: r.latency?.p99Ms ?? null,
            tpsAt2Cores: r.tpsAt2Cores,
            cpu: r.cpu,
            noisy: (100 * r.cpu.other) / r.cpu.windowS > o.maxNoise,
          });
          const u = r.cpu;
          ctx.log(
            `[${i}/${total}] ${mode} c=${clients} rep ${rep} ${t.name.padEnd(9)} ${r.tps.toFixed(0).padStart(7)} tps ` +
              `${r.latencyMs.toFixed(3)} ms${r.avgConnectMs != null ? ` conn ${r.avgConnectMs.toFixed(3)} ms` : ''}${r.latency ? ` p99 ${r.latency.p99Ms.toFixed(2)}` : ''}${r.failed ? ` FAILED TX ${r.failed}` : ''}  cpu/s: pg ${(u.postgres / u.wallS).toFixed(2)} proxy ${(u.proxy / u.wallS).toFixed(2)} ` +
              `pgbench ${(u.pgbench / u.wallS).toFixed(2)} softirq ${(u.softirq / u.windowS).toFixed(2)} other ${(u.other / u.windowS).toFixed(2)}${rec.noisy ? '  NOISY' : ''}`,
          );
        } catch (e) {
          if (isInterrupted()) throw new Error('interrupted');
          rec.error = (e as Error).message;
          const died = t.deathNote?.();
          if (died) rec.error += `\n${died}`;
          ctx.log(
            `[${i}/${total}] ${mode} c=${clients} rep ${rep} ${t.name}: FAILED: ${rec.error.split('\n').slice(0, 3).join(' | ')}`,
          );
        }
        runs.push(rec);
      }
    }
  }
  for (const t of [...started].reverse()) await t.stop();
  const names = factories.map((f) => f.name);
  return {
    targets: started.map((t) => ({ name: t.name, label: t.label })),
    runs,
    summary: summarize(runs, names),
  };
}
