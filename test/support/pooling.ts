// Helpers for the pooling suites (pool-*.test.ts): proxies with pool settings, a dedicated database whose only
// client backends are pgnear's servers, a sampler of those backends, and client bookkeeping.
import pg from 'pg';
import postgres from 'postgres';
import type { ConfigInput } from '../../src/config/index.js';
import type { LocalCluster } from '../../src/devcluster/cluster.js';
import { startProxy, type TestProxy } from './proxy.js';

/** The `pool:` section, including the transaction-pooling settings (typed loosely: the schema is growing). */
export interface PoolSettings {
  pool_size?: number;
  min_pool_size?: number;
  max_db_connections?: number;
  query_wait_timeout?: string | number;
  server_lifetime?: string | number;
  server_idle_timeout?: string | number;
  server_check_delay?: string | number;
  server_check_query?: string;
  server_reset_query?: string;
  idle_transaction_timeout?: string | number;
  max_prepared_statements?: number;
}

/** Config overrides for `startProxy`: pool_mode plus the `pool:` section. */
export function poolingConfig(
  mode: 'session' | 'transaction',
  pool: PoolSettings = {},
  extra: Record<string, unknown> = {},
): Partial<ConfigInput> {
  const cfg: Record<string, unknown> = { pool_mode: mode, ...extra };
  if (Object.keys(pool).length) cfg.pool = pool;
  return cfg as Partial<ConfigInput>;
}

export function startPoolProxy(
  cluster: LocalCluster,
  mode: 'session' | 'transaction',
  pool: PoolSettings = {},
  extra: Record<string, unknown> = {},
): Promise<TestProxy> {
  return startProxy(cluster, poolingConfig(mode, pool, extra));
}

/** A URL straight to the primary for a database (the superuser). */
export function directUrl(cluster: LocalCluster, database = 'postgres'): string {
  return cluster.urlFor(cluster.primary, cluster.superuser.user, cluster.superuser.password, database);
}

/** application_name of the tests' own direct connections, which serverBackends leaves out. */
export const ADMIN_APP = 'pool-test-admin';

/** A connected pg client straight to the primary (application_name ADMIN_APP). */
export async function directClient(cluster: LocalCluster, database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: directUrl(cluster, database), application_name: ADMIN_APP });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Create a database used only by pgnear's servers in a test file (so its client backends are exactly pgnear's). */
export async function createDatabase(cluster: LocalCluster, name: string, setupSql: string[] = []): Promise<void> {
  const admin = await directClient(cluster);
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  if (setupSql.length === 0) return;
  const c = await directClient(cluster, name);
  try {
    for (const s of setupSql) await c.query(s);
  } finally {
    await c.end();
  }
}

export interface BackendStats {
  /** Client backends connected to the database (the direct connection asking is not counted). */
  total: number;
  idleInTransaction: number;
  active: number;
  pids: number[];
}

/** pgnear's server backends on the primary for `database`: every client backend there but the tests' direct ones. */
export async function serverBackends(admin: pg.Client, database: string): Promise<BackendStats> {
  const r = await admin.query(
    `select pid, state from pg_stat_activity
      where datname = $1 and backend_type = 'client backend' and pid <> pg_backend_pid()
        and application_name is distinct from $2`,
    [database, ADMIN_APP],
  );
  const rows = r.rows as { pid: number; state: string | null }[];
  return {
    total: rows.length,
    idleInTransaction: rows.filter((x) => x.state?.startsWith('idle in transaction')).length,
    active: rows.filter((x) => x.state === 'active').length,
    pids: rows.map((x) => x.pid),
  };
}

export interface BackendSampler {
  /** Highest number of server backends seen so far. */
  readonly max: number;
  readonly samples: number;
  /** Every pid seen in any sample. */
  readonly pids: Set<number>;
  stop(): Promise<{ max: number; samples: number; pids: Set<number> }>;
}

/** Poll serverBackends every `everyMs` on its own direct connection until stopped. */
export async function sampleServerBackends(
  cluster: LocalCluster,
  database: string,
  everyMs = 20,
): Promise<BackendSampler> {
  const admin = await directClient(cluster);
  let max = 0;
  let samples = 0;
  const pids = new Set<number>();
  let running = true;
  const loop = (async () => {
    while (running) {
      const s = await serverBackends(admin, database);
      max = Math.max(max, s.total);
      for (const p of s.pids) pids.add(p);
      samples++;
      await sleep(everyMs);
    }
  })();
  return {
    get max() {
      return max;
    },
    get samples() {
      return samples;
    },
    pids,
    async stop() {
      running = false;
      try {
        await loop;
      } finally {
        await admin.end().catch(() => {});
      }
      return { max, samples, pids };
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type PjsOptions = postgres.Options<Record<string, postgres.PostgresType>>;

/** Every client a test opens, so afterAll/finally can close them all whatever happened. */
export class ClientBag {
  private readonly pgs = new Set<pg.Client>();
  private readonly pjs = new Set<postgres.Sql>();

  /** A connected node-postgres client; 'error' events are swallowed (tests look at query results). */
  async pg(config: string | pg.ClientConfig): Promise<pg.Client> {
    const c = new pg.Client(typeof config === 'string' ? { connectionString: config } : config);
    c.on('error', () => {});
    this.pgs.add(c);
    await c.connect();
    return c;
  }

  /** A postgres.js instance with its defaults (prepare: true, pipelining) and ONE connection unless told. */
  postgres(url: string, opts: PjsOptions = {}): postgres.Sql {
    const sql = postgres(url, { max: 1, onnotice: () => {}, ...opts });
    this.pjs.add(sql);
    return sql;
  }

  async end(c: pg.Client): Promise<void> {
    this.pgs.delete(c);
    await c.end().catch(() => {});
  }

  async closeAll(): Promise<void> {
    const pgs = [...this.pgs];
    const pjs = [...this.pjs];
    this.pgs.clear();
    this.pjs.clear();
    await Promise.allSettled([...pgs.map((c) => c.end()), ...pjs.map((s) => s.end({ timeout: 1 }))]);
  }
}

/** The socket under a pg.Client, to kill it the way a crashing client would. */
export function pgSocket(c: pg.Client): import('node:net').Socket {
  return (c as unknown as { connection: { stream: import('node:net').Socket } }).connection.stream;
}

export type PgErr = Error & { code?: string; severity?: string };

/** Settle a promise into a value or an error, with the time it took. */
export async function timed<T>(
  p: Promise<T>,
): Promise<{ ok: true; value: T; ms: number } | { ok: false; error: PgErr; ms: number }> {
  const t0 = Date.now();
  try {
    const value = await p;
    return { ok: true, value, ms: Date.now() - t0 };
  } catch (e) {
    return { ok: false, error: e as PgErr, ms: Date.now() - t0 };
  }
}

/** Throw a descriptive error unless `actual` deep-equals `expected` (for use inside concurrent workers). */
export function same(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

/** pgnear's own account of its servers, from its log: "server_open: login" / "server_close: <reason>" → count. */
export function serverEvents(proxy: { logs: Record<string, unknown>[] }): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of proxy.logs) {
    if (l.msg !== 'server_open' && l.msg !== 'server_close') continue;
    const k = `${String(l.msg)}: ${String(l.reason)}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
