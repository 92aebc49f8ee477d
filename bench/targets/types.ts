// What a benchmark target is (direct Postgres or a proxy in front of the primary) and how configs are written.
import { chownSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchContext, PgbenchMode } from '../lib/context.js';

export interface Target {
  name: string;
  /** Human description for reports, e.g. "PgBouncer 1.18 (tx pool 20 / session)". */
  label: string;
  port: number;
  /** Database name a client uses for this pgbench mode (PgBouncer maps modes to differently pooled aliases). */
  database(mode: PgbenchMode): string;
  /** Database name for session-mode pooling (idle-clients), when it differs. */
  sessionDatabase?: string;
  /** Pooling variant used for a mode, for the report ("tx pool 20", "session", "tcp 2 threads"). */
  variant(mode: PgbenchMode): string;
  /** Root pids of the proxy's processes (CPU accounting); empty for direct. */
  pids(): number[];
  /** Main proxy process, for RSS; undefined for direct. */
  mainPid?: number;
  /** When the proxy process has exited: how (exit code / signal) and its last log lines; else null. */
  deathNote?(): string | null;
  stop(): Promise<void>;
}

export interface TargetStartOptions {
  /** Most clients a run will open at once (sizes session pools and connection limits). */
  maxClients: number;
}

export interface TargetFactory {
  name: string;
  /** Null when the target can run here, else the reason it is skipped. */
  unavailable(): string | null;
  start(ctx: BenchContext, o: TargetStartOptions): Promise<Target>;
}

/**
 * Write a generated config: the live copy in the runtime dir (owned by postgres, so PgBouncer can read it after
 * dropping root) and a copy with secrets replaced by "<redacted>" beside the results.
 */
export function writeConfig(ctx: BenchContext, file: string, text: string, secrets: string[] = []): string {
  const live = join(ctx.runtimeDir, file);
  writeFileSync(live, text, { mode: 0o600 });
  const pg = pgOwner();
  if (pg) chownSync(live, pg.uid, pg.gid);
  let saved = text;
  for (const s of secrets) if (s) saved = saved.split(s).join('<redacted>');
  writeFileSync(join(ctx.configDir, file), saved);
  return live;
}

/** uid/gid of the postgres user when we are root (Postgres and PgBouncer refuse to run as root). */
export function pgOwner(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === 'postgres') return { uid: Number(f[2]), gid: Number(f[3]) };
    }
  } catch {
    // no passwd: fall through
  }
  return null;
}
