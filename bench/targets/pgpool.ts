// Target "pgpool": Pgpool-II (Debian pgpool2 4.x) in streaming-replication mode, reads load-balanced to the replicas.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/devcluster/ports.js';
import { onCleanup } from '../lib/cleanup.js';
import { peerBinary, peerUnavailable } from '../lib/install.js';
import { sleep, startDaemon, waitForPort } from '../lib/proc.js';
import { pgOwner, type TargetFactory, writeConfig } from './types.js';

/**
 * After a write, what Pgpool does with the session's later reads. 'always' keeps every read of a session that has
 * written on the primary until the session ends: the closest Pgpool gets to read-your-writes (it has no LSN
 * tracking; the default 'transaction' only covers explicit transactions, so an autocommit UPDATE then SELECT may
 * read a replica that has not replayed it). BENCH_PGPOOL_ON_WRITE=transaction shows the default's stale reads.
 */
export const PGPOOL_ON_WRITE = process.env.BENCH_PGPOOL_ON_WRITE ?? 'always';

/** Per-node SELECT counters of SHOW POOL_NODES, for the share of reads Pgpool sent to replicas. */
export interface PoolNodeCounts {
  primary: number;
  replicas: number;
}

/** `SHOW POOL_NODES` through Pgpool: select_cnt summed by role (role as Pgpool sees it). */
export async function pgpoolSelectCounts(port: number, password: string): Promise<PoolNodeCounts> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', ssl: false });
  c.on('error', () => {});
  await c.connect();
  try {
    const r = await c.query<{ role: string; select_cnt: string }>('SHOW POOL_NODES');
    const out: PoolNodeCounts = { primary: 0, replicas: 0 };
    for (const row of r.rows) {
      if (row.role === 'primary') out.primary += Number(row.select_cnt);
      else out.replicas += Number(row.select_cnt);
    }
    return out;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Until Pgpool found the primary and sees every node up (it probes them with sr_check_user after start-up). */
async function waitForNodes(port: number, password: string, nodes: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + 20_000;
  let last = '';
  for (;;) {
    if (!alive()) throw new Error('pgpool exited during start-up');
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', ssl: false });
    c.on('error', () => {});
    try {
      await c.connect();
      const r = await c.query<{ status: string; role: string }>('SHOW POOL_NODES');
      last = r.rows.map((x) => `${x.role}:${x.status}`).join(', ');
      const up = r.rows.filter((x) => x.status === 'up' || x.status === 'waiting');
      if (up.length === nodes && r.rows.some((x) => x.role === 'primary')) return;
    } catch (e) {
      last = (e as Error).message;
    } finally {
      await c.end().catch(() => {});
    }
    if (Date.now() > deadline) throw new Error(`pgpool: nodes not ready within 20 s (${last})`);
    await sleep(250);
  }
}

/**
 * Pgpool keeps its state in System V shared memory (≈ 130 MB) that it removes only on a clean shutdown: after a
 * SIGKILL (a stop that timed out) the segments would stay. Remove those its main process created, once it is gone.
 */
function removeSharedMemory(creatorPid: number): void {
  const r = spawnSync('ipcs', ['-m', '-p'], { encoding: 'utf8' });
  for (const line of (r.stdout ?? '').split('\n')) {
    const f = line.trim().split(/\s+/); // shmid owner cpid lpid
    if (f.length >= 4 && Number(f[2]) === creatorPid) spawnSync('ipcrm', ['-m', f[0]!]);
  }
}

export const pgpool: TargetFactory = {
  name: 'pgpool',
  // Installed from Debian (package pgpool2) by the harness when missing (lib/install.ts).
  unavailable: () => peerUnavailable('pgpool', 'pgpool2'),
  async start(ctx, o) {
    const bin = peerBinary('pgpool');
    const c = ctx.cluster;
    const dir = ctx.runtimeDir;
    const port = await freePort();
    const pcpPort = await freePort();
    const password = c.superuser.password;
    // One child process per concurrent client session (Pgpool pools per child, session scope): sized so that no
    // client queues for a child, plus room for the harness's own SHOW POOL_NODES / setup connections.
    const children = o.maxClients + 10;
    // Cached backend connection sets per child, one per (user, database): the bench uses one pair; 2 for slack.
    const maxPool = 2;
    // Pgpool cannot pass a client's SCRAM exchange through (it caches backend connections across clients), so it
    // logs in to Postgres itself and checks clients against pool_passwd: SCRAM both ways needs the password in
    // clear ("TEXT" prefix) or AES-encrypted. Clear text in a 0600 file in the runtime dir, redacted in the copy.
    const passwd = writeConfig(ctx, 'pool_passwd', `postgres:TEXT${password}\n`, [password]);
    const hba = writeConfig(
      ctx,
      'pool_hba.conf',
      [
        '# generated by pgnear bench',
        'local all all scram-sha-256',
        'host all all 127.0.0.1/32 scram-sha-256',
        '',
      ].join('\n'),
    );
    // Empty: PCP (Pgpool's admin protocol) is not used; it listens on a unix socket in the runtime dir only.
    const pcp = writeConfig(ctx, 'pcp.conf', '# generated by pgnear bench: no PCP users\n');
    const nodes = [c.primary, ...c.replicas];
    const backends = nodes.flatMap((n, i) => [
      `backend_hostname${i} = '127.0.0.1'`,
      `backend_port${i} = ${n.port}`,
      // Reads go to the replicas only (weight 0 keeps load-balanced reads off the primary), as pgnear's routing
      // sends them to a replica: the primary gets writes and whatever Pgpool refuses to balance.
      `backend_weight${i} = ${i === 0 ? 0 : 1}`,
      // No failover in a benchmark: a node Pgpool thinks failed must not be detached mid-run.
      `backend_flag${i} = 'DISALLOW_TO_FAILOVER'`,
      `backend_application_name${i} = '${n.name}'`,
    ]);
    const conf = [
      '# generated by pgnear bench',
      "backend_clustering_mode = 'streaming_replication'",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `socket_dir = '${dir}'`,
      "pcp_listen_addresses = ''",
      `pcp_port = ${pcpPort}`,
      `pcp_socket_dir = '${dir}'`,
      `wd_ipc_socket_dir = '${dir}'`,
      'use_watchdog = off',
      `pid_file_name = '${join(dir, 'pgpool.pid')}'`,
      // pgpool_status (node up/down memory) lives here; -D discards it at start so an old run cannot mark nodes down.
      `logdir = '${dir}'`,
      ...backends,
      'enable_pool_hba = on',
      `pool_passwd = '${passwd}'`,
      'allow_clear_text_frontend_auth = off',
      'ssl = off',
      `num_init_children = ${children}`,
      `max_pool = ${maxPool}`,
      'reserved_connections = 0',
      'child_life_time = 0',
      'child_max_connections = 0',
      'connection_life_time = 0',
      'client_idle_limit = 0',
      'connection_cache = on',
      'load_balance_mode = on',
      `disable_load_balance_on_write = '${PGPOOL_ON_WRITE}'`,
      'statement_level_load_balance = off',
      'memory_cache_enabled = off',
      // Replica-delay checks and health checks as the superuser; their password comes from pool_passwd (empty here).
      'sr_check_period = 10',
      "sr_check_user = 'postgres'",
      "sr_check_password = ''",
      "sr_check_database = 'postgres'",
      // 0: no lag-based routing (Pgpool would send reads to the primary past a byte threshold; not read-your-writes).
      'delay_threshold = 0',
      'health_check_period = 10',
      'health_check_timeout = 5',
      "health_check_user = 'postgres'",
      "health_check_password = ''",
      "health_check_database = 'postgres'",
      'failover_on_backend_error = off',
      "failover_command = ''",
      // stderr is our pipe to pgpool.log in the runtime dir (copied to the results' logs/).
      "log_destination = 'stderr'",
      'logging_collector = off',
      'log_min_messages = warning',
      'log_connections = off',
      'log_disconnections = off',
      "log_line_prefix = '%m: %a pid %p: '",
      '',
    ].join('\n');
    const file = writeConfig(ctx, 'pgpool.conf', conf);
    // Pgpool has no `user` setting: when we are root, run it as postgres (like the cluster and PgBouncer).
    const owner = pgOwner();
    // Registered before the daemon's own stop, so (cleanups run newest first) it runs after pgpool has exited.
    let mainPid = 0;
    const sweep = () => {
      if (mainPid) removeSharedMemory(mainPid);
      mainPid = 0;
    };
    const unregisterSweep = onCleanup('remove pgpool shared memory', sweep);
    const d = startDaemon(bin, ['-n', '-D', '-f', file, '-a', hba, '-F', pcp], {
      name: 'pgpool',
      logFile: join(dir, 'pgpool.log'),
      // HOME: Pgpool looks for ~/.pgpoolkey (AES passwords); keep it off root's home when running as postgres.
      env: { ...process.env, HOME: dir },
      uid: owner?.uid,
      gid: owner?.gid,
    });
    mainPid = d.pid;
    const stop = async () => {
      await d.stop(5_000);
      sweep();
      unregisterSweep();
    };
    try {
      await waitForPort(port, d);
      await waitForNodes(port, password, nodes.length, () => !d.exited());
    } catch (e) {
      await stop();
      throw new Error(`${(e as Error).message}\n${d.tail()}`);
    }
    return {
      name: 'pgpool',
      label: `Pgpool-II (streaming replication, reads balanced to ${c.replicas.length} replicas, ${children} children, on write: ${PGPOOL_ON_WRITE})`,
      port,
      database: () => 'postgres',
      variant: () => `LB, ${children} children`,
      pids: () => [d.pid],
      mainPid: d.pid,
      deathNote: () => (d.exited() ? `${d.name} exited (${d.exitInfo()}); last output:\n${d.tail()}` : null),
      // SIGTERM to the whole process group (main process and every child), SIGKILL after the grace period.
      stop,
    };
  },
};
