// Child processes in their own process group (killed on cleanup), readiness probes, and /proc CPU/RSS readings.
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, createWriteStream, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { delimiter, join } from 'node:path';
import { onCleanup, trackGroup, untrackGroup } from './cleanup.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Absolute path of an executable on PATH or in the sbin dirs (Debian puts pgbouncer/haproxy there), else null. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return null;
}

export interface Daemon {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Last output lines (stdout and stderr), for error messages. */
  tail(): string;
  exited(): boolean;
  /** "exit code N" / "signal SIG" once exited, else null. */
  exitInfo(): string | null;
  /** SIGTERM the process group, SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

export interface DaemonOptions {
  name: string;
  /** Output of the process is appended here. */
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called for each output line (stdout and stderr). */
  onLine?: (line: string) => void;
  /** Run as this user/group (e.g. postgres when we are root, for daemons without a `user` setting of their own). */
  uid?: number;
  gid?: number;
}

/**
 * Spawn a long-running process detached in its own process group (so a terminal Ctrl-C reaches only us and
 * we stop children in order), with output tee'd to a log file. Registered for cleanup.
 */
export function startDaemon(cmd: string, args: string[], o: DaemonOptions): Daemon {
  const child = spawn(cmd, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: o.env ?? process.env,
    cwd: o.cwd,
    uid: o.uid,
    gid: o.gid,
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${o.name} (${cmd})`);
  trackGroup(pid);
  const log = createWriteStream(o.logFile, { flags: 'a' });
  const lines: string[] = [];
  let exitCode: number | null | undefined;
  let exitDesc: string | null = null;
  const exitedP = new Promise<void>((r) => {
    child.once('exit', (code, sig) => {
      exitCode = code ?? (sig ? -1 : null);
      exitDesc = sig ? `signal ${sig}` : `exit code ${code}`;
      untrackGroup(pid);
      r();
    });
  });
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.on('data', (b: Buffer) => {
      log.write(b);
      buf += b.toString();
      let i = buf.indexOf('\n');
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (lines.length > 40) lines.shift();
        o.onLine?.(line);
        i = buf.indexOf('\n');
      }
    });
  }
  let stopping: Promise<void> | null = null;
  const stop = (graceMs = 5_000): Promise<void> => {
    stopping ??= (async () => {
      if (exitCode === undefined) {
        killGroup(pid, 'SIGTERM');
        const t = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
        await exitedP;
        clearTimeout(t);
      }
      killGroup(pid, 'SIGKILL'); // anything the leader left behind in its group
      untrackGroup(pid);
      await new Promise<void>((r) => log.end(r));
      unregister();
    })();
    return stopping;
  };
  const unregister = onCleanup(`stop ${o.name}`, () => stop());
  return {
    name: o.name,
    pid,
    child,
    tail: () => lines.slice(-15).join('\n'),
    exited: () => exitCode !== undefined,
    exitInfo: () => exitDesc,
    stop,
  };
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // gone
  }
}

/** Resolve once a TCP connect to host:port succeeds; reject when the daemon exits or on timeout. */
export async function waitForPort(port: number, d: Daemon, timeoutMs = 15_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (d.exited()) throw new Error(`${d.name} exited during start-up:\n${d.tail()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline)
      throw new Error(`${d.name} did not listen on ${host}:${port} within ${timeoutMs} ms:\n${d.tail()}`);
    await sleep(50);
  }
}

// ---- /proc readings (Linux) -------------------------------------------------------------------------

interface Stat {
  ppid: number;
  /** utime + stime of the process (all threads), in clock ticks. */
  self: number;
  /** cutime + cstime: children it has reaped. */
  reaped: number;
}

/** Clock ticks per second (USER_HZ); 100 on every Linux we care about. */
export const CLK_TCK = 100;

function readStat(pid: number | string): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may hold spaces and parentheses: split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { ppid: Number(f[1]), self: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
}

/**
 * CPU ticks used by process trees rooted at `roots`: for every live process in a tree, its own time plus what
 * it reaped. Children that exited during a measurement move into their parent's reaped time, so deltas stay right.
 */
export function treeCpuTicks(roots: number[]): number {
  if (roots.length === 0) return 0;
  const children = new Map<number, number[]>();
  const stats = new Map<number, Stat>();
  for (const e of readdirSync('/proc')) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    const s = readStat(e);
    if (!s) continue;
    const pid = Number(e);
    stats.set(pid, s);
    const list = children.get(s.ppid);
    if (list) list.push(pid);
    else children.set(s.ppid, [pid]);
  }
  let total = 0;
  const seen = new Set<number>();
  const stack = [...roots];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const s = stats.get(pid);
    if (!s) continue;
    total += s.self + s.reaped;
    for (const c of children.get(pid) ?? []) stack.push(c);
  }
  if (process.env.BENCH_DEBUG_CPU) {
    process.stderr.write(
      `[cpu] roots ${roots.join(',')} procs ${seen.size} ticks ${total} root(self+reaped) ${roots.map((r) => `${stats.get(r)?.self}+${stats.get(r)?.reaped}`).join(' ')}\n`,
    );
  }
  return total;
}

/** Our own CPU ticks (self) and what our reaped children used (e.g. a finished pgbench). */
export function selfTicks(): { self: number; reaped: number } {
  const s = readStat('self')!;
  return { self: s.self, reaped: s.reaped };
}

/** Busy ticks of the whole machine (all CPUs): everything but idle and iowait; softirq (loopback TCP) apart. */
export function machineTicks(): { busy: number; softirq: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice (guest is already in user)
  return { busy: v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + (v[7] ?? 0), softirq: v[6]! };
}

export const machineBusyTicks = () => machineTicks().busy;

/** Resident set size in KiB from /proc/<pid>/status, or null when the process is gone. */
export function rssKiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Between runs our own processes are idle, so machine-wide busy CPU is other people's. Wait (up to `maxWaitS`)
 * for a 1 s window where it stays under `maxPct` % of one core; returns the last window's figure and the wait.
 */
export async function waitForQuiet(maxPct: number, maxWaitS: number): Promise<{ pct: number; waitedS: number }> {
  const t0 = Date.now();
  for (;;) {
    const b0 = machineBusyTicks();
    await sleep(1_000);
    const pct = ((machineBusyTicks() - b0) / CLK_TCK) * 100;
    const waitedS = (Date.now() - t0) / 1000;
    if (pct <= maxPct || waitedS >= maxWaitS) return { pct, waitedS };
  }
}
