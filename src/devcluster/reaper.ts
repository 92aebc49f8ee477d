// No orphan postmasters: owner.pid files, the process 'exit' kill switch, stale-cluster reaping, opt-in signals.
import { rmSync } from 'node:fs';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive, postmastersUnder, procStartTime, signal, waitDead, waitDeadSync } from './postmaster.js';

export const CLUSTER_DIR_PREFIX = 'pgnear-cluster-';
const OWNER_FILE = 'owner.pid';
/** A dir without owner.pid may be one another process is creating right now; leave it alone this long. */
const UNOWNED_GRACE_MS = 60_000;

/** owner.pid: line 1 our pid, line 2 our start time (so a reused pid is not mistaken for a live owner). */
export async function writeOwnerFile(clusterDir: string): Promise<void> {
  const start = procStartTime(process.pid) ?? '';
  await writeFile(join(clusterDir, OWNER_FILE), `${process.pid}\n${start}\n`);
}

function ownerAlive(text: string): boolean {
  const [pidLine, startLine] = text.split('\n');
  const pid = Number.parseInt(pidLine ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (!isAlive(pid)) return false;
  const recorded = startLine?.trim();
  const current = procStartTime(pid);
  return !recorded || current === undefined || recorded === current;
}

// --- exit kill switch -------------------------------------------------------------------------------------

/** Shared by every copy of this module in the process (test runners load it once per test file). */
const SHARED = Symbol.for('pgnear.devcluster.liveDirs');
const g = globalThis as unknown as Record<symbol, Set<string> | undefined>;
const liveDirs: Set<string> = (g[SHARED] ??= new Set<string>());
const HANDLER = Symbol.for('pgnear.devcluster.exitHandler');
const flags = globalThis as unknown as Record<symbol, boolean | undefined>;

/**
 * Policy: on process exit, every cluster this process still owns gets SIGQUIT (immediate shutdown) on its
 * postmasters and its dir removed. This must be synchronous; anything it misses is left to the reaper.
 */
function killOwnedClustersSync(): void {
  for (const dir of liveDirs) {
    const pids = postmastersUnder(dir);
    signal(pids, 'SIGQUIT');
    const stubborn = waitDeadSync(pids, 2_000);
    signal(stubborn, 'SIGKILL');
    waitDeadSync(stubborn, 500);
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 20 });
    } catch {
      // best effort: the next startCluster() reaps it (owner.pid names a dead process)
    }
  }
  liveDirs.clear();
}

export function trackClusterDir(dir: string): void {
  liveDirs.add(dir);
  if (!flags[HANDLER]) {
    process.on('exit', killOwnedClustersSync);
    flags[HANDLER] = true;
  }
}

export function untrackClusterDir(dir: string): void {
  liveDirs.delete(dir);
}

// --- reaper -----------------------------------------------------------------------------------------------

/** Immediate-stop every postmaster under `dir` (SIGQUIT, then SIGKILL after 5 s) and remove it. */
export async function destroyClusterDir(dir: string): Promise<void> {
  const pids = postmastersUnder(dir);
  signal(pids, 'SIGQUIT');
  const stubborn = await waitDead(pids, 5_000);
  signal(stubborn, 'SIGKILL');
  await waitDead(stubborn, 1_000);
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
}

/**
 * Scan `baseDir` for `pgnear-cluster-*` dirs whose owner process is gone (crashed, SIGKILLed test worker)
 * and destroy them. Returns the reaped dirs.
 */
export async function reapStaleClusters(baseDir: string, log?: (msg: string) => void): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(baseDir);
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const entry of entries) {
    if (!entry.startsWith(CLUSTER_DIR_PREFIX)) continue;
    const dir = join(baseDir, entry);
    if (liveDirs.has(dir)) continue;
    let owner: string | undefined;
    try {
      owner = await readFile(join(dir, OWNER_FILE), 'utf8');
    } catch {
      owner = undefined;
    }
    if (owner === undefined) {
      const info = await stat(dir).catch(() => undefined);
      if (!info?.isDirectory() || Date.now() - info.mtimeMs < UNOWNED_GRACE_MS) continue;
    } else if (ownerAlive(owner)) {
      continue;
    }
    log?.(`reaping stale cluster ${dir} (owner ${owner?.split('\n')[0] ?? 'unknown'} is gone)`);
    try {
      await destroyClusterDir(dir);
      reaped.push(dir);
    } catch (err) {
      log?.(`could not reap ${dir}: ${(err as Error).message}`);
    }
  }
  return reaped;
}
