// All node pools, keyed by node address, user, database and startup parameters: limits, shared db slots, janitor.
import { NodePool } from './node-pool.js';
import type { ServerConn, ServerTarget } from './server-conn.js';

export interface PoolKey {
  user: string;
  database: string;
  /** Startup parameters sent to the server (user/database included). */
  startup: [string, string][];
}

/** Pool limits and timers (PgBouncer names in brackets); durations in milliseconds. */
export const DEFAULT_POOL_LIMITS = {
  /** Max servers of this pool, logins in flight included [default_pool_size]. */
  poolSize: 20,
  /** Servers kept open once a login proved the credentials, opened one at a time in the background [min_pool_size]. */
  minPoolSize: 0,
  /** Max servers across all pools of one node + database, 0 = unlimited [max_db_connections]. */
  maxDbConnections: 0,
  /** How long an acquire may wait for a server, 0 = forever [query_wait_timeout]. */
  queryWaitTimeoutMs: 120_000,
  /** Login timeout of one server; also bounds the check and reset queries [server_connect_timeout]. */
  connectTimeoutMs: 5_000,
  /** Close idle servers unused for longer (never below minPoolSize), 0 = never [server_idle_timeout]. */
  idleTimeoutMs: 600_000,
  /** Close servers older than this when released or found idle, never mid-transaction; 0 = never [server_lifetime]. */
  lifetimeMs: 3_600_000,
  /** Probe an idle server unused for longer before handing it out, 0 = always [server_check_delay]. */
  checkDelayMs: 30_000,
  /** The probe; '' disables probing [server_check_query]. */
  checkQuery: ';',
  /** Run at release when the caller asks for a reset (session mode); '' = none [server_reset_query]. */
  resetQuery: 'DISCARD ALL',
  /** Max acquirers queued at once; beyond, acquire fails at once (PGNEAR_E_POOL_FULL, 53300). */
  maxWaiters: 10_000,
};
export type PoolLimits = typeof DEFAULT_POOL_LIMITS;

/**
 * Exactly one 'server_open' and one 'server_close' per server. Close reasons include 'server_idle_timeout',
 * 'server_lifetime', 'check_failed', 'reset query failed', 'released unusable', 'server in transaction state T|E',
 * 'unexpected data from idle server', 'server closed the connection', 'evicted (max_db_connections)', or closeAll's.
 */
export type PoolEventHook = (event: 'server_open' | 'server_close', conn: ServerConn, reason: string) => void;

/** Server slots shared by all pools of one node + database (max_db_connections); PoolSet owns one per pair. */
export interface DbSlots {
  used: number;
  readonly max: number;
  readonly pools: Set<NodePool>;
}

export interface PoolStats {
  idle: number;
  active: number;
  tested: number; // being probed (check query) or reset
  connecting: number; // logins in flight
  total: number; // idle + active + tested + connecting
  waiting: number; // acquirers not served yet (queued, or their own login / probe in flight)
  maxWaitMs: number; // age of the oldest waiter, 0 when none
}

/** Opens one logged-in server connection (ServerConn.connect by default; tests inject fakes). */
export type Connector = (...args: Parameters<typeof ServerConn.connect>) => Promise<ServerConn>;

export interface NodePoolOptions {
  target: ServerTarget;
  key: PoolKey;
  /** Complete limits: resolveLimits() in pool-set.ts applies the defaults. */
  limits: PoolLimits;
  /** Shared max_db_connections counter; a private one (from limits.maxDbConnections) when absent. */
  dbSlots?: DbSlots;
  connect?: Connector;
  /** Observability hook; the pool never logs by itself. */
  onEvent?: PoolEventHook;
  /** Pool-internal anomalies (illegal state transition, background login failure); log them as errors. */
  onError?: (message: string, conn: ServerConn | null) => void;
}

/** reusable: the caller saw the server idle at a message boundary (false closes it); reset: run resetQuery first. */
export type ReleaseOptions = { reusable: boolean; reset?: boolean };

/** Defaults for the limits left undefined; minPoolSize is capped at poolSize. */
export function resolveLimits(partial: Partial<PoolLimits>): PoolLimits {
  const limits: PoolLimits = { ...DEFAULT_POOL_LIMITS };
  for (const k of Object.keys(limits) as (keyof PoolLimits)[]) {
    if (partial[k] !== undefined) (limits as Record<string, unknown>)[k] = partial[k];
  }
  limits.poolSize = Math.max(1, limits.poolSize);
  limits.minPoolSize = Math.min(limits.minPoolSize, limits.poolSize);
  return limits;
}

export type PoolSettings = Partial<PoolLimits> &
  Pick<NodePoolOptions, 'connect' | 'onEvent' | 'onError'> & {
    /** Janitor period (idle/lifetime expiry, min_pool_size top-up). Default 1000. */
    janitorIntervalMs?: number;
  };

export interface PoolSetStats extends PoolStats {
  node: string;
  host: string;
  port: number;
  user: string;
  database: string;
}

export class PoolSet {
  private readonly pools = new Map<string, NodePool>();
  /** max_db_connections counters per node address + database. */
  private readonly dbs = new Map<string, DbSlots>();
  private janitor: NodeJS.Timeout | null = null;
  readonly limits: PoolLimits;

  constructor(private readonly settings: PoolSettings) {
    this.limits = resolveLimits(settings);
    this.janitor = setInterval(() => this.maintain(), settings.janitorIntervalMs ?? 1_000);
    this.janitor.unref();
  }

  /** The pool of this node and (user, database, startup parameters in any order), created on first use. */
  /** `poolSize` overrides the configured size for this pool (per-user or per-database setting). */
  get(target: ServerTarget, key: PoolKey, poolSize?: number): NodePool {
    const addr = `${target.host}:${target.port}`;
    const params = [...key.startup].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`);
    const id = [target.node, addr, target.sslmode, key.user, key.database, ...params].join('\0');
    let p = this.pools.get(id);
    if (!p) {
      const dbId = `${addr}\0${key.database}`;
      let db = this.dbs.get(dbId);
      if (!db) {
        db = { used: 0, max: this.limits.maxDbConnections, pools: new Set() };
        this.dbs.set(dbId, db);
      }
      const { connect, onEvent, onError } = this.settings;
      const limits = poolSize
        ? { ...this.limits, poolSize, minPoolSize: Math.min(this.limits.minPoolSize, poolSize) }
        : this.limits;
      p = new NodePool({ target, key, limits, dbSlots: db, connect, onEvent, onError });
      this.pools.set(id, p);
    }
    return p;
  }

  all(): Iterable<NodePool> {
    return this.pools.values();
  }

  stats(now = Date.now()): PoolSetStats[] {
    return [...this.pools.values()].map((p) => ({
      node: p.opts.target.node,
      host: p.opts.target.host,
      port: p.opts.target.port,
      user: p.opts.key.user,
      database: p.opts.key.database,
      ...p.stats(now),
    }));
  }

  /**
   * One janitor pass: idle/lifetime expiry and min_pool_size top-up in every pool. Pools are never dropped: sessions
   * (transaction mode) keep a pool across transactions, and a second pool for the same key would double its limits.
   */
  maintain(now = Date.now()): void {
    for (const p of this.pools.values()) p.maintain(now);
  }

  /** Stop the janitor, reject all waiters (57P01) and close every server. */
  closeAll(reason: string): void {
    if (this.janitor) clearInterval(this.janitor);
    this.janitor = null;
    for (const p of this.pools.values()) p.closeAll(reason);
  }
}
