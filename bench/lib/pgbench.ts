// One pgbench run against a target: spawn, parse TPS/latency, and account the CPU of every process group meanwhile.
import { spawn } from 'node:child_process';
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
  cpu: CpuUse;
  /** transactions per CPU-second of (postgres + proxy + pgbench), ×2 cores: robust to unrelated load. */
  tpsAt2Cores: number;
  output: string;
}

function num(re: RegExp, text: string): number | null {
  const m = re.exec(text);
  return m ? Number(m[1]) : null;
}

/** Parse pgbench 15's summary. Throws when the run produced no TPS line. */
export function parsePgbench(
  text: string,
): Pick<PgbenchResult, 'tps' | 'latencyMs' | 'transactions' | 'failed' | 'connectMs'> {
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
    a.target.database(a.mode),
  ];
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
  if (code !== 0) throw new Error(`pgbench exited with ${code}:\n${out.slice(-1500)}`);
  const parsed = parsePgbench(out);
  const ours = cpu.postgres + cpu.proxy + cpu.pgbench;
  return { ...parsed, cpu, tpsAt2Cores: ours > 0 ? (parsed.transactions / ours) * 2 : 0, output: out };
}
