// One pgbench run against a target: spawn, parse TPS/latency, and account the CPU of every process group meanwhile.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalCluster } from '../../src/devcluster/cluster.js';
import type { Target } from '../targets/index.js';
import { onCleanup, trackGroup, untrackGroup } from './cleanup.js';
import { pgEnv } from './cluster.js';
import type { PgbenchMode } from './context.js';
import { CLK_TCK, machineTicks, selfTicks, sleep, treeCpuTicks } from './proc.js';

export interface PgbenchArgs {
  cluster: LocalCluster;
  target: Target;
  mode: PgbenchMode;
  clients: number;
  threads: number;
  durationS: number;
  /** Workload flags, e.g. ['-S'] for select-only, [] for TPC-B-like, ['-f', file] for a custom script. */
  script: string[];
  /**
   * When set, pgbench writes a per-transaction log (`-l`) into a temp dir under this directory; the result then
   * carries latency percentiles computed from every transaction (the dir is removed afterwards).
   */
  latencyLogDir?: string;
}

/** Per-transaction latency percentiles from pgbench's `-l` log (ms). */
export interface LatencyPercentiles {
  /** Transactions in the log (failed ones excluded). */
  n: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Lines whose time is "failed" (pgbench 15 logs failed transactions when --failures-detailed/retries apply). */
  failedInLog: number;
}

/** CPU seconds used during the run, by group. */
export interface CpuUse {
  /** pgbench's run time. */
  wallS: number;
  /** Measurement window: the run plus the wait for exiting backends to be reaped (divide `other` by this). */
  windowS: number;
  postgres: number;
  proxy: number;
  pgbench: number;
  harness: number;
  /** Kernel softirq time, machine-wide: mostly our loopback TCP, charged to no process. */
  softirq: number;
  /** Busy CPU on the machine not accounted to the above (other tenants, other test runs…). */
  other: number;
}

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
  failed: number;
  connectMs: number | null;
  /** `-C` (new connection per transaction): pgbench's "average connection time", ms; else null. */
  avgConnectMs: number | null;
  cpu: CpuUse;
  /** transactions per CPU-second of (postgres + proxy + pgbench), ×2 cores: robust to unrelated load. */
  tpsAt2Cores: number;
  /** From the per-transaction log, when `latencyLogDir` was given. */
  latency: LatencyPercentiles | null;
  output: string;
}

/**
 * Read every file pgbench wrote with `-l --log-prefix=<dir>/tx` (one per thread: tx.<pid>, tx.<pid>.<n>) and
 * compute latency percentiles. Line format (pgbench 15): client_id transaction_no time script_no time_epoch
 * time_us [schedule_lag] [retries]; `time` is the latency in µs, or "failed" / "skipped".
 */
export function latencyFromLogs(dir: string): LatencyPercentiles | null {
  const chunks: Float64Array[] = [];
  let n = 0;
  let failedInLog = 0;
  for (const f of readdirSync(dir)) {
    const text = readFileSync(join(dir, f), 'latin1');
    const arr = new Float64Array(text.length / 20 + 16);
    let k = 0;
    let start = 0;
    for (;;) {
      const end = text.indexOf('\n', start);
      const line = end < 0 ? text.slice(start) : text.slice(start, end);
      if (line.length > 0) {
        // third field
        const a = line.indexOf(' ');
        const b = line.indexOf(' ', a + 1);
        const c = line.indexOf(' ', b + 1);
        const t = line.slice(b + 1, c < 0 ? undefined : c);
        if (t === 'failed') failedInLog++;
        else if (t !== 'skipped') {
          const v = Number(t);
          if (Number.isFinite(v)) arr[k++] = v / 1000;
        }
      }
      if (end < 0) break;
      start = end + 1;
    }
    chunks.push(arr.subarray(0, k));
    n += k;
  }
  if (n === 0) return null;
  const all = new Float64Array(n);
  let off = 0;
  for (const c of chunks) {
    all.set(c, off);
    off += c.length;
  }
  all.sort();
  const at = (p: number) => all[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))]!;
  return { n, p50Ms: at(50), p90Ms: at(90), p99Ms: at(99), maxMs: all[n - 1]!, failedInLog };
}

function num(re: RegExp, text: string): number | null {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

/** Parse pgbench 15's summary. Throws when the run produced no TPS line. */
export function parsePgbench(
  text: string,
): Pick<PgbenchResult, 'tps' | 'latencyMs' | 'transactions' | 'failed' | 'connectMs' | 'avgConnectMs'> {
  // Without -C: "tps = N (without initial connection time)"; with -C: "tps = N (including reconnection times)".
  const tps = num(/^tps = ([\d.]+) \(without initial connection time\)/m, text) ?? num(/^tps = ([\d.]+)/m, text);
  const latencyMs = num(/^latency average = ([\d.]+) ms/m, text);
  const transactions = num(/^number of transactions actually processed: (\d+)/m, text);
  if (tps === null || latencyMs === null || transactions === null) {
    throw new Error(`could not parse pgbench output:\n${text.slice(-1500)}`);
  }
  return {
    tps,
    latencyMs,
    transactions,
    failed: num(/^number of failed transactions: (\d+)/m, text) ?? 0,
    connectMs: num(/^initial connection time = ([\d.]+) ms/m, text),
    avgConnectMs: num(/^average connection time = ([\d.]+) ms/m, text),
  };
}

function cpuRoots(a: PgbenchArgs): { pg: number[]; proxy: number[] } {
  const pg = a.cluster.nodes.map((n) => n.pid()).filter((p): p is number => p !== undefined);
  return { pg, proxy: a.target.pids() };
}

export async function runPgbench(a: PgbenchArgs): Promise<PgbenchResult> {
  const args = [
    ...a.script,
    '-M',
    a.mode,
    '-c',
    String(a.clients),
    '-j',
    String(Math.max(1, Math.min(a.threads, a.clients))),
    '-T',
    String(a.durationS),
    '-n', // no vacuum before the run: the tables are shared by all targets
    '-h',
    '127.0.0.1',
    '-p',
    String(a.target.port),
    '-U',
    'postgres',
  ];
  const logDir = a.latencyLogDir ? mkdtempSync(join(a.latencyLogDir, 'pgbench-log-')) : null;
  if (logDir) args.push('-l', `--log-prefix=${join(logDir, 'tx')}`);
  args.push(a.target.database(a.mode));
  const roots = cpuRoots(a);
  const before = {
    pg: treeCpuTicks(roots.pg),
    proxy: treeCpuTicks(roots.proxy),
    me: selfTicks(),
    machine: machineTicks(),
    t: process.hrtime.bigint(),
  };
  const child = spawn('pgbench', args, { env: pgEnv(a.cluster), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid!;
  trackGroup(pid);
  const unregister = onCleanup('stop pgbench', () => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    out += b.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c)); // after the pipes drained
  });
  const tExit = process.hrtime.bigint();
  untrackGroup(pid);
  unregister();
  // Backends of pgbench's connections exit now. One that has exited but is not yet reaped by its postmaster
  // is in neither the tree nor the postmaster's reaped time: wait until the tree's CPU total stops moving.
  let last = treeCpuTicks(roots.pg);
  for (let i = 0; i < 15; i++) {
    await sleep(200);
    const now = treeCpuTicks(roots.pg);
    if (now === last) break;
    last = now;
  }
  const after = {
    pg: treeCpuTicks(roots.pg),
    proxy: treeCpuTicks(roots.proxy),
    me: selfTicks(),
    machine: machineTicks(),
    t: process.hrtime.bigint(),
  };
  const s = (ticks: number) => ticks / CLK_TCK;
  const cpu: CpuUse = {
    wallS: Number(tExit - before.t) / 1e9,
    windowS: Number(after.t - before.t) / 1e9,
    postgres: s(after.pg - before.pg),
    proxy: s(after.proxy - before.proxy),
    // pgbench was reaped by us, so its CPU shows up in our children's time.
    pgbench: s(after.me.reaped - before.me.reaped),
    harness: s(after.me.self - before.me.self),
    softirq: s(after.machine.softirq - before.machine.softirq),
    other: 0,
  };
  const busy = s(after.machine.busy - before.machine.busy);
  cpu.other = Math.max(0, busy - cpu.postgres - cpu.proxy - cpu.pgbench - cpu.harness - cpu.softirq);
  let latency: LatencyPercentiles | null = null;
  try {
    if (code !== 0) throw new Error(`pgbench exited with ${code}:\n${out.slice(-1500)}`);
    if (logDir) latency = latencyFromLogs(logDir);
  } finally {
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  }
  const parsed = parsePgbench(out);
  const ours = cpu.postgres + cpu.proxy + cpu.pgbench;
  return { ...parsed, cpu, tpsAt2Cores: ours > 0 ? (parsed.transactions / ours) * 2 : 0, latency, output: out };
}
