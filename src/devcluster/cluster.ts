// The local dev cluster: a primary + N streaming replicas from local binaries (used by `pgnear dev`, tests, bench).
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { conninfo, renderCommonConf, renderHba, renderStandbyAutoConf } from './conf.js';
import { ClusterStartError, ClusterTimeoutError, NodeDownError } from './errors.js';
import {
  buildUrl,
  type ClusterNode,
  PgNode,
  startPgNode,
  startWithPortRetry,
  stopPgNode,
  tailFile,
  writeNodeConf,
} from './node.js';
import { chownToPg, findPgBinDir, type PgExec, pgCanWrite, resolveRunAs, runPgTool } from './pgbin.js';
import { freePort } from './ports.js';
import {
  CLUSTER_DIR_PREFIX,
  destroyClusterDir,
  reapStaleClusters,
  trackClusterDir,
  untrackClusterDir,
  writeOwnerFile,
} from './reaper.js';
import { quoteIdent, quoteLiteral, withClient } from './sql.js';

export {
  ClusterCommandError,
  ClusterStartError,
  ClusterTimeoutError,
  DevClusterError,
  type DevClusterErrorCode,
  NodeDownError,
  PgBinariesMissingError,
  PostgresUserError,
} from './errors.js';
export type { ClusterNode } from './node.js';
export { findPgBinDir } from './pgbin.js';
export { reapStaleClusters } from './reaper.js';

export interface RoleSpec {
  name: string;
  password: string;
  encryption?: 'scram-sha-256' | 'md5';
  superuser?: boolean;
}

export interface ClusterOptions {
  /** Default 2. */
  replicas?: number;
  /** [primaryRegion, ...replicaRegions]; default ['iad', 'ams', 'syd', 'fra', 'sin', ...] sliced. */
  regions?: string[];
  /** Per replica recovery_min_apply_delay (ms), for real replication lag. */
  applyDelayMs?: Array<number | undefined>;
  /** Default 'on'. */
  synchronousCommit?: string;
  /** Default: random hex. The superuser is always 'postgres'. */
  superuserPassword?: string;
  /** Created on the primary before the replicas are cloned. */
  roles?: RoleSpec[];
  /** Parent dir (default os.tmpdir()); the cluster dir is mkdtemp(baseDir/pgnear-cluster-). */
  baseDir?: string;
  /** Appended to postgresql.conf of every node. */
  extraConf?: Record<string, string>;
  log?: (msg: string) => void;
}

export interface LocalCluster {
  dir: string;
  superuser: { user: 'postgres'; password: string };
  primary: ClusterNode;
  replicas: ClusterNode[];
  nodes: ClusterNode[];
  urlFor(node: ClusterNode, user?: string, password?: string, database?: string): string;
  stopNode(node: ClusterNode, mode?: 'fast' | 'immediate'): Promise<void>;
  startNode(node: ClusterNode): Promise<void>;
  /** Wait until every running replica replayed the primary's current LSN. */
  waitForReplay(timeoutMs?: number): Promise<void>;
  /** Idempotent: stop all postmasters (fast, then immediate after 5 s), remove the dir. */
  stop(): Promise<void>;
}

const DEFAULT_REGIONS = ['iad', 'ams', 'syd', 'fra', 'sin', 'gru', 'nrt', 'lhr', 'ord', 'bom'] as const;
const STREAMING_TIMEOUT_MS = 60_000;
/** sizeof(sockaddr_un.sun_path) - 1: longer socket paths make the postmaster refuse to start. */
const MAX_SOCKET_PATH = 107;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function regionFor(index: number, regions: string[] | undefined): string {
  return regions?.[index] ?? DEFAULT_REGIONS[index] ?? `region${index}`;
}

export async function startCluster(opts: ClusterOptions = {}): Promise<LocalCluster> {
  const started = Date.now();
  const log = opts.log ?? (() => {});
  const replicaCount = opts.replicas ?? 2;
  if (!Number.isInteger(replicaCount) || replicaCount < 0 || replicaCount > 8) {
    throw new ClusterStartError(`replicas must be an integer in 0..8, got ${replicaCount}`);
  }
  const binDir = findPgBinDir();
  const runAs = resolveRunAs();
  const baseDir = resolve(opts.baseDir ?? tmpdir());
  await reapStaleClusters(baseDir, log);

  const dir = await mkdtemp(join(baseDir, CLUSTER_DIR_PREFIX));
  trackClusterDir(dir);
  const exec: PgExec = { binDir, runAs, cwd: dir };
  const password = opts.superuserPassword ?? randomBytes(12).toString('hex');
  const nodes: PgNode[] = [];
  const lap = (what: string, since: number) => log(`${what} (${Date.now() - since} ms)`);

  try {
    await writeOwnerFile(dir);
    await chownToPg(exec, dir);
    if (!(await pgCanWrite(exec, dir))) {
      throw new ClusterStartError(
        `${dir} is not writable by the postgres user (we run as root, so Postgres runs as postgres): ` +
          'every parent of baseDir must be searchable by it (chmod o+x), e.g. use a baseDir under /tmp',
      );
    }
    const socketDir = await makeSocketDir(exec, dir);

    const primary = new PgNode({
      name: 'primary',
      role: 'primary',
      region: regionFor(0, opts.regions),
      port: await freePort(),
      clusterDir: dir,
      superuserPassword: password,
    });
    nodes.push(primary);
    let t = Date.now();
    await initPrimary(exec, primary, password, {
      socketDir,
      synchronousCommit: opts.synchronousCommit ?? 'on',
      extraConf: opts.extraConf ?? {},
    });
    lap('initdb primary', t);
    t = Date.now();
    await startWithPortRetry(exec, primary);
    lap(`primary up on 127.0.0.1:${primary.port}`, t);
    await createRoles(primary.port, password, opts.roles ?? []);

    t = Date.now();
    const replicas: PgNode[] = [];
    for (let i = 1; i <= replicaCount; i++) {
      const replica = new PgNode({
        name: `replica${i}`,
        role: 'replica',
        region: regionFor(i, opts.regions),
        port: await freePort(),
        clusterDir: dir,
        superuserPassword: password,
        applyDelayMs: opts.applyDelayMs?.[i - 1],
      });
      replicas.push(replica);
      nodes.push(replica);
    }
    // Concurrent non-exclusive base backups are safe; each streams its own WAL through its own slot.
    const clones = await Promise.allSettled(replicas.map((r) => cloneReplica(exec, primary, r, password)));
    const failed = clones.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    if (failed) throw failed.reason;
    lap(`${replicaCount} replica(s) cloned and started`, t);
    t = Date.now();
    await waitForStreaming(primary, replicas, password, STREAMING_TIMEOUT_MS);
    lap('replicas streaming', t);
    log(`cluster ready in ${dir} (${Date.now() - started} ms)`);
    return makeCluster(exec, dir, password, primary, replicas);
  } catch (err) {
    await destroyClusterDir(dir).catch(() => {});
    untrackClusterDir(dir);
    if (err instanceof ClusterStartError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    throw new ClusterStartError(`could not start dev cluster in ${dir}: ${message}`, { cause: err });
  }
}

async function makeSocketDir(exec: PgExec, dir: string): Promise<string> {
  const socketDir = join(dir, 'run');
  await mkdir(socketDir, { mode: 0o700 });
  await chownToPg(exec, socketDir);
  // Too long a path would stop the postmaster; TCP is what matters, so fall back to no unix socket.
  return Buffer.byteLength(join(socketDir, '.s.PGSQL.65535')) > MAX_SOCKET_PATH ? '' : socketDir;
}

async function initPrimary(
  exec: PgExec,
  primary: PgNode,
  password: string,
  conf: { socketDir: string; synchronousCommit: string; extraConf: Record<string, string> },
): Promise<void> {
  const pwfile = join(exec.cwd, 'superuser.pw');
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  await chownToPg(exec, pwfile);
  try {
    await runPgTool(exec, 'initdb', [
      '--nosync',
      '-A',
      'scram-sha-256',
      '--pwfile',
      pwfile,
      '--locale=C',
      '-E',
      'UTF8',
      '-U',
      'postgres',
      '-D',
      primary.dataDir,
    ]);
  } finally {
    await rm(pwfile, { force: true });
  }
  // Files initdb created belong to postgres already; overwriting/appending as root keeps that owner.
  await appendFile(join(primary.dataDir, 'postgresql.conf'), renderCommonConf(conf));
  await writeFile(join(primary.dataDir, 'pg_hba.conf'), renderHba());
  await writeNodeConf(exec, primary);
}

async function createRoles(port: number, password: string, roles: RoleSpec[]): Promise<void> {
  if (roles.length === 0) return;
  await withClient({ port, password }, async (client) => {
    for (const role of roles) {
      await client.query(`SET password_encryption = ${quoteLiteral(role.encryption ?? 'scram-sha-256')}`);
      await client.query(
        `CREATE ROLE ${quoteIdent(role.name)} LOGIN${role.superuser ? ' SUPERUSER' : ''} ` +
          `PASSWORD ${quoteLiteral(role.password)}`,
      );
    }
  });
}

async function cloneReplica(exec: PgExec, primary: PgNode, replica: PgNode, password: string): Promise<void> {
  // A distinct application_name keeps the backup's own WAL stream from passing for the replica.
  const source = conninfo({
    host: '127.0.0.1',
    port: primary.port,
    user: 'postgres',
    application_name: `pgnear_basebackup_${replica.name}`,
  });
  await runPgTool(
    exec,
    'pg_basebackup',
    ['-D', replica.dataDir, '-R', '-X', 'stream', '-c', 'fast', '-C', '-S', replica.name, '-d', source],
    { env: { PGPASSWORD: password } },
  );
  const autoConf = join(replica.dataDir, 'postgresql.auto.conf');
  await writeFile(autoConf, renderStandbyAutoConf({ name: replica.name, primaryPort: primary.port, password }));
  await chownToPg(exec, autoConf);
  await writeNodeConf(exec, replica);
  await startWithPortRetry(exec, replica);
}

/** Count by application_name: each replica's walreceiver must be in state 'streaming'. */
async function waitForStreaming(
  primary: PgNode,
  replicas: PgNode[],
  password: string,
  timeoutMs: number,
): Promise<void> {
  if (replicas.length === 0) return;
  const names = replicas.map((r) => r.name);
  const deadline = Date.now() + timeoutMs;
  await withClient({ port: primary.port, password }, async (client) => {
    for (;;) {
      const { rows } = await client.query<{ application_name: string }>(
        "SELECT DISTINCT application_name FROM pg_stat_replication WHERE state = 'streaming' AND application_name = ANY($1)",
        [names],
      );
      const streaming = new Set(rows.map((r) => r.application_name));
      const missing = replicas.filter((r) => !streaming.has(r.name));
      if (missing.length === 0) return;
      const dead = missing.find((r) => r.pid() === undefined);
      if (dead || Date.now() > deadline) {
        const culprit = dead ?? missing[0]!;
        const why = dead ? `${dead.name} is not running` : `timed out after ${timeoutMs} ms`;
        throw new ClusterStartError(
          `replicas not streaming (${missing.map((r) => r.name).join(', ')}): ${why}\n` +
            `${culprit.name} log (${culprit.logFile}), last lines:\n${await tailFile(culprit.logFile)}`,
        );
      }
      await sleep(25);
    }
  });
}

async function waitForReplay(primary: PgNode, replicas: PgNode[], password: string, timeoutMs: number) {
  if (primary.pid() === undefined) throw new NodeDownError('waitForReplay: the primary is not running');
  const target = await withClient({ port: primary.port, password }, async (client) => {
    const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    return rows[0]!.lsn;
  });
  const deadline = Date.now() + timeoutMs;
  const running = replicas.filter((r) => r.pid() !== undefined);
  await Promise.all(
    running.map((replica) =>
      withClient({ port: replica.port, password }, async (client) => {
        for (;;) {
          const { rows } = await client.query<{ done: boolean | null; at: string | null }>(
            'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done, pg_last_wal_replay_lsn()::text AS at',
            [target],
          );
          if (rows[0]?.done) return;
          if (Date.now() > deadline) {
            throw new ClusterTimeoutError(
              `${replica.name} replayed up to ${rows[0]?.at ?? 'nothing'} but the primary is at ${target} ` +
                `after ${timeoutMs} ms`,
            );
          }
          await sleep(10);
        }
      }),
    ),
  );
}

function makeCluster(exec: PgExec, dir: string, password: string, primary: PgNode, replicas: PgNode[]): LocalCluster {
  const nodes = [primary, ...replicas];
  // Accept copies of a node too (e.g. {...node}): nodes are identified by name.
  const own = (node: ClusterNode): PgNode => {
    const found = nodes.find((n) => n.name === node.name);
    if (!found) throw new NodeDownError(`unknown node ${node.name} (cluster ${dir})`);
    return found;
  };
  let stopping: Promise<void> | undefined;

  const stopAll = async (): Promise<void> => {
    await Promise.all(
      nodes.map(async (node) => {
        try {
          await stopPgNode(exec, node, 'fast', 5);
        } catch {
          await stopPgNode(exec, node, 'immediate', 10).catch(() => {});
        }
      }),
    );
    await destroyClusterDir(dir); // SIGQUIT/SIGKILL anything left, then rm -rf
    untrackClusterDir(dir);
  };

  return {
    dir,
    superuser: { user: 'postgres', password },
    primary,
    replicas,
    nodes,
    urlFor(node, user = 'postgres', pw, database = 'postgres') {
      return buildUrl(own(node).port, user, pw ?? (user === 'postgres' ? password : undefined), database);
    },
    stopNode: (node, mode = 'fast') => stopPgNode(exec, own(node), mode),
    startNode: (node) => startPgNode(exec, own(node)),
    waitForReplay: (timeoutMs = 30_000) => waitForReplay(primary, replicas, password, timeoutMs),
    stop: () => {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
