// The benchmark cluster: primary + 2 replicas tuned like docs/baselines.md, loaded once with `pgbench -i`.
import { spawn } from 'node:child_process';
import { type LocalCluster, startCluster } from '../../src/devcluster/cluster.js';
import { withClient } from '../../src/devcluster/sql.js';
import { onCleanup } from './cleanup.js';
import type { Log } from './context.js';

export interface BenchClusterOptions {
  maxConnections: number;
  scale: number;
  log: Log;
}

/** Settings shared with the baselines (shared/docs/baselines.md); max_connections varies by scenario. */
export function benchConf(maxConnections: number): Record<string, string> {
  return {
    shared_buffers: '256MB',
    max_connections: String(maxConnections),
    // The launcher defaults to fsync off; the baselines ran with fsync on (select-only does not care).
    fsync: 'on',
    // Keep the 1000-connection scenario from drowning the server log.
    log_connections: 'off',
    log_disconnections: 'off',
  };
}

export async function startBenchCluster(o: BenchClusterOptions): Promise<LocalCluster> {
  const t = Date.now();
  o.log(`starting cluster: primary (iad) + 2 replicas (ams, syd), max_connections ${o.maxConnections}`);
  const starting = startCluster({
    replicas: 2,
    regions: ['iad', 'ams', 'syd'],
    synchronousCommit: 'off',
    extraConf: benchConf(o.maxConnections),
    log: (m) => o.log(`  cluster: ${m}`, true),
  });
  // Registered before the start completes: a Ctrl-C during initdb/pg_basebackup waits for it, then stops it.
  onCleanup('stop cluster', async () => {
    const c = await starting.catch(() => null);
    await c?.stop();
  });
  const cluster = await starting;
  o.log(`cluster up in ${((Date.now() - t) / 1000).toFixed(1)} s; primary 127.0.0.1:${cluster.primary.port}`);
  return cluster;
}

/** Run a command to completion (stdout+stderr captured); rejects with the output on a non-zero exit. */
export function runTool(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
}

/** libpq environment for the superuser on 127.0.0.1 (no TLS anywhere: the targets are compared in clear text). */
export function pgEnv(cluster: LocalCluster): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: cluster.superuser.password, PGSSLMODE: 'disable', PGAPPNAME: 'pgnear-bench' };
}

/** `pgbench -i -s N` on the primary, then wait until both replicas replayed it. */
export async function loadPgbench(cluster: LocalCluster, scale: number, log: Log): Promise<void> {
  const t = Date.now();
  log(`pgbench -i -s ${scale} on the primary…`);
  await runTool(
    'pgbench',
    [
      '-i',
      '-q',
      '-s',
      String(scale),
      '-h',
      '127.0.0.1',
      '-p',
      String(cluster.primary.port),
      '-U',
      'postgres',
      'postgres',
    ],
    pgEnv(cluster),
  );
  await withClient({ port: cluster.primary.port, password: cluster.superuser.password }, (c) => c.query('CHECKPOINT'));
  await cluster.waitForReplay(120_000);
  log(`pgbench data loaded and replicated in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}

/** The superuser's SCRAM verifier as stored in pg_authid (for PgBouncer's userlist.txt). */
export async function superuserVerifier(cluster: LocalCluster): Promise<string> {
  return withClient({ port: cluster.primary.port, password: cluster.superuser.password }, async (c) => {
    const r = await c.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = 'postgres'");
    const p = r.rows[0]?.p;
    if (!p?.startsWith('SCRAM-SHA-256$')) throw new Error('the postgres role has no SCRAM verifier');
    return p;
  });
}
