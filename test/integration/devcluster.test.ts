// Real-cluster tests of the dev cluster launcher: replication, apply delay, roles, teardown and orphan reaping.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findPgBinDir, type LocalCluster, PgBinariesMissingError, startCluster } from '../../src/devcluster/cluster.js';
import { useCluster, withCluster } from '../support/cluster.js';

const CLUSTER_SRC = fileURLToPath(new URL('../../src/devcluster/cluster.ts', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const ROLES = [
  { name: 'app_md5', password: "md5 p'w\\d", encryption: 'md5' as const },
  { name: 'app_scram', password: 'scram pw', encryption: 'scram-sha-256' as const },
];

/** Alive and not a zombie. */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function queryOnce<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []) {
  const client = await connect(url);
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** A base dir the postgres user can reach when we run as root (mkdtemp makes it 0700). */
async function makeBaseDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pgnear-devcluster-test-'));
  await chmod(dir, 0o755);
  return dir;
}

/**
 * Start a cluster in a child Node process; resolves with what it printed once the cluster is up.
 * mode 'exit': the child exits without calling stop(). mode 'hang': it keeps running until killed.
 */
function startClusterInChild(baseDir: string, mode: 'exit' | 'hang') {
  const script = `
    const { startCluster } = await import(${JSON.stringify(CLUSTER_SRC)});
    const c = await startCluster({ replicas: 1, baseDir: ${JSON.stringify(baseDir)} });
    process.stdout.write(JSON.stringify({ dir: c.dir, pids: c.nodes.map((n) => n.pid()) }) + '\\n');
    if (${JSON.stringify(mode)} === 'exit') process.exit(0);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const ready = new Promise<{ dir: string; pids: number[] }>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)));
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('exit', (code) => {
      if (!out.includes('\n')) reject(new Error(`child exited with ${code} before the cluster was up:\n${err}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, ready, exited };
}

describe('dev cluster: primary + 2 replicas (replica2 applies WAL 300 ms late)', () => {
  const cluster = useCluster({ replicas: 2, applyDelayMs: [undefined, 300], roles: ROLES });

  it('starts three nodes on distinct loopback ports with regions and URLs', () => {
    const c = cluster();
    expect(c.nodes.map((n) => [n.name, n.role, n.region])).toEqual([
      ['primary', 'primary', 'iad'],
      ['replica1', 'replica', 'ams'],
      ['replica2', 'replica', 'syd'],
    ]);
    expect(c.nodes[0]).toBe(c.primary);
    expect(new Set(c.nodes.map((n) => n.port)).size).toBe(3);
    for (const node of c.nodes) {
      expect(node.host).toBe('127.0.0.1');
      expect(node.pid()).toBeGreaterThan(0);
      expect(node.url).toBe(
        `postgres://postgres:${encodeURIComponent(c.superuser.password)}@127.0.0.1:${node.port}/postgres`,
      );
      expect(node.dataDir.startsWith(c.dir)).toBe(true);
    }
  });

  it('accepts psql over TCP', async () => {
    const c = cluster();
    const { stdout } = await promisify(execFile)(
      join(findPgBinDir(), 'psql'),
      ['-XAtc', 'SELECT 40 + 2', c.urlFor(c.replicas[0]!)],
      { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } },
    );
    expect(stdout.trim()).toBe('42');
  });

  it('has the replicas in recovery and the primary not', async () => {
    const c = cluster();
    for (const node of c.nodes) {
      const [row] = await queryOnce<{ r: boolean }>(node.url, 'SELECT pg_is_in_recovery() AS r');
      expect(row!.r, node.name).toBe(node.role === 'replica');
    }
    const streaming = await queryOnce<{ application_name: string }>(
      c.primary.url,
      "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' ORDER BY 1",
    );
    expect(streaming.map((r) => r.application_name)).toEqual(['replica1', 'replica2']);
  });

  it('replicates a row written on the primary to every replica', async () => {
    const c = cluster();
    await queryOnce(c.primary.url, 'CREATE TABLE visible_probe (id int PRIMARY KEY, note text)');
    await queryOnce(c.primary.url, "INSERT INTO visible_probe VALUES (1, 'hello')");
    await c.waitForReplay();
    for (const replica of c.replicas) {
      const rows = await queryOnce<{ note: string }>(replica.url, 'SELECT note FROM visible_probe WHERE id = 1');
      expect(rows, replica.name).toEqual([{ note: 'hello' }]);
    }
  });

  it('shows a new row on the delayed replica only after the apply delay', async () => {
    const c = cluster();
    await queryOnce(c.primary.url, 'CREATE TABLE lag_probe (id int PRIMARY KEY)');
    await c.waitForReplay();
    const primary = await connect(c.primary.url);
    const fast = await connect(c.replicas[0]!.url);
    const slow = await connect(c.replicas[1]!.url);
    try {
      const visibleAfter = async (client: pg.Client, since: number): Promise<number> => {
        for (;;) {
          const { rowCount } = await client.query('SELECT 1 FROM lag_probe WHERE id = 7');
          if (rowCount) return performance.now() - since;
          if (performance.now() - since > 10_000) throw new Error('row never became visible');
          await sleep(5);
        }
      };
      const t0 = performance.now();
      await primary.query('INSERT INTO lag_probe VALUES (7)');
      const [fastMs, slowMs] = await Promise.all([visibleAfter(fast, t0), visibleAfter(slow, t0)]);
      expect(fastMs).toBeLessThan(250);
      expect(slowMs).toBeGreaterThanOrEqual(250);
    } finally {
      await Promise.all([primary.end(), fast.end(), slow.end()]);
    }
  });

  it('creates md5 and scram roles that can log in on the primary and the replicas', async () => {
    const c = cluster();
    const stored = await queryOnce<{ rolname: string; kind: string }>(
      c.primary.url,
      "SELECT rolname, split_part(rolpassword, '$', 1) AS kind FROM pg_authid WHERE rolname LIKE 'app_%' ORDER BY 1",
    );
    expect(stored).toEqual([
      { rolname: 'app_md5', kind: expect.stringMatching(/^md5[0-9a-f]{32}$/) },
      { rolname: 'app_scram', kind: 'SCRAM-SHA-256' },
    ]);
    for (const node of c.nodes) {
      for (const role of ROLES) {
        const [row] = await queryOnce<{ u: string }>(
          c.urlFor(node, role.name, role.password),
          'SELECT current_user AS u',
        );
        expect(row!.u, `${role.name}@${node.name}`).toBe(role.name);
      }
    }
    await expect(queryOnce(c.urlFor(c.primary, 'app_scram', 'wrong'), 'SELECT 1')).rejects.toThrow(
      /password authentication failed/,
    );
  });

  it('stops and restarts a single node', async () => {
    const c = cluster();
    const replica = c.replicas[0]!;
    await c.stopNode(replica);
    expect(replica.pid()).toBeUndefined();
    await c.stopNode(replica); // already down: no-op
    await c.startNode(replica);
    expect(replica.pid()).toBeGreaterThan(0);
    const [row] = await queryOnce<{ r: boolean }>(replica.url, 'SELECT pg_is_in_recovery() AS r');
    expect(row!.r).toBe(true);
    await c.waitForReplay();
  });
});

describe('dev cluster teardown', () => {
  let baseDir: string;
  let started: LocalCluster[] = [];

  beforeEach(async () => {
    baseDir = await makeBaseDir();
  });
  afterEach(async () => {
    await Promise.all(started.map((c) => c.stop()));
    started = [];
    await rm(baseDir, { recursive: true, force: true });
  });

  it('stop() leaves no postmaster running and removes the dir, idempotently', async () => {
    const c = await withCluster({ replicas: 1, baseDir });
    started.push(c);
    const pids = c.nodes.map((n) => n.pid());
    expect(pids.every((p) => p !== undefined && isRunning(p))).toBe(true);
    await Promise.all([c.stop(), c.stop()]);
    await c.stop();
    expect(pids.filter((p) => isRunning(p!))).toEqual([]);
    expect(existsSync(c.dir)).toBe(false);
  });

  it('kills the postmasters when the owning process exits without stop()', async () => {
    const { ready, exited } = startClusterInChild(baseDir, 'exit');
    const { dir, pids } = await ready;
    expect(await exited).toBe(0);
    expect(pids.filter(isRunning)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });

  it('reaps the cluster of a SIGKILLed owner at the next startCluster()', async () => {
    const { child, ready, exited } = startClusterInChild(baseDir, 'hang');
    const orphan = await ready;
    child.kill('SIGKILL');
    await exited;
    expect(orphan.pids.filter(isRunning)).toHaveLength(2); // orphaned: the exit handler cannot run on SIGKILL
    const c = await startCluster({ replicas: 0, baseDir });
    started.push(c);
    expect(orphan.pids.filter(isRunning)).toEqual([]);
    expect(existsSync(orphan.dir)).toBe(false);
    expect(c.primary.pid()).toBeGreaterThan(0);
  });
});

describe('findPgBinDir', () => {
  const saved = process.env.PGNEAR_PG_BIN;
  afterAll(() => {
    if (saved === undefined) delete process.env.PGNEAR_PG_BIN;
    else process.env.PGNEAR_PG_BIN = saved;
  });

  it('finds a directory with the server binaries', () => {
    const dir = findPgBinDir();
    for (const tool of ['initdb', 'pg_ctl', 'postgres', 'pg_basebackup']) {
      expect(existsSync(join(dir, tool)), tool).toBe(true);
    }
  });

  it('honours PGNEAR_PG_BIN and names the package to install when it is wrong', () => {
    delete process.env.PGNEAR_PG_BIN;
    const discovered = findPgBinDir();
    process.env.PGNEAR_PG_BIN = '/nonexistent/pg/bin';
    let caught: unknown;
    try {
      findPgBinDir();
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PgBinariesMissingError);
    expect((caught as PgBinariesMissingError).code).toBe('PGNEAR_E_PG_BINARIES_MISSING');
    expect((caught as Error).message).toMatch(/apt-get install postgresql-15/);
    process.env.PGNEAR_PG_BIN = discovered;
    expect(findPgBinDir()).toBe(discovered);
  });
});
