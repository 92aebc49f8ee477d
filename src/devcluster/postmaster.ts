// Finding, probing and signalling postmasters through their data dirs' postmaster.pid (sync, exit-safe).
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Alive = signalable and not a zombie waiting for a (possibly negligent) init to reap it. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else (we are not root): still alive.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return procState(pid) !== 'Z';
}

/** Single-letter state from /proc/<pid>/stat (after the parenthesised comm), or undefined off Linux. */
function procState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

/** Process start time (clock ticks since boot), to tell a live owner from a reused pid. */
export function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after comm start at field 3 (state); starttime is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** On Linux, guard against pid reuse: the process must still be a `postgres`. */
function looksLikePostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('postgres');
  } catch (err) {
    // No /proc (not Linux) or not readable: trust the liveness check alone.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !isProcMounted();
  }
}

let procMounted: boolean | undefined;
function isProcMounted(): boolean {
  if (procMounted === undefined) {
    try {
      readFileSync('/proc/self/comm');
      procMounted = true;
    } catch {
      procMounted = false;
    }
  }
  return procMounted;
}

/** The running postmaster of `dataDir`, or undefined if it is down (or the pid file is stale). */
export function postmasterPid(dataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return undefined;
  }
  const [pidLine, dirLine] = text.split('\n');
  const pid = Number.parseInt(pidLine ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (dirLine !== undefined && dirLine !== '' && resolve(dirLine) !== resolve(dataDir)) return undefined;
  return isAlive(pid) && looksLikePostgres(pid) ? pid : undefined;
}

/** Every running postmaster whose data dir is a direct child of `clusterDir`. */
export function postmastersUnder(clusterDir: string): number[] {
  let entries: string[];
  try {
    entries = readdirSync(clusterDir);
  } catch {
    return [];
  }
  const pids: number[] = [];
  for (const entry of entries) {
    const pid = postmasterPid(join(clusterDir, entry));
    if (pid !== undefined) pids.push(pid);
  }
  return pids;
}

export function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

export function aliveOf(pids: number[]): number[] {
  return pids.filter(isAlive);
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Blocking wait (for the process 'exit' handler, where nothing async runs). */
export function waitDeadSync(pids: number[], timeoutMs: number): number[] {
  const deadline = Date.now() + timeoutMs;
  let alive = aliveOf(pids);
  while (alive.length > 0 && Date.now() < deadline) {
    Atomics.wait(sleepCell, 0, 0, 20);
    alive = aliveOf(alive);
  }
  return alive;
}

export async function waitDead(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = aliveOf(pids);
  while (alive.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    alive = aliveOf(alive);
  }
  return alive;
}

export { isAlive };
