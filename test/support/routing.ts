// Helpers for the read/write routing suites (routing-*.test.ts): proxies with a `routing:` section and a region,
// where a statement ran (by the server port it reports), counters of reads per node, EXPLAIN ROUTE, and the
// pgnear log lines worth showing when an assertion fails.
import pg from 'pg';
import type { ConfigInput } from '../../src/config/index.js';
import type { ClusterNode, ClusterOptions, LocalCluster } from '../../src/devcluster/cluster.js';
import { createDatabase, sleep } from './pooling.js';
import { startProxy, type TestProxy } from './proxy.js';

/** The routing suites' cluster: primary iad, replicas ams and syd applying WAL `delayMs` late (real lag). */
export const laggingReplicas = (delayMs: number): ClusterOptions => ({
  replicas: 2,
  regions: ['iad', 'ams', 'syd'],
  applyDelayMs: [delayMs, delayMs],
});

/** The `routing:` section (typed loosely: the schema is growing). */
export interface RoutingSettings {
  enabled?: boolean;
  transactions?: 'primary' | 'read_only_to_replica';
  consistency?: 'session' | 'global' | 'token' | 'eventual';
  lsn_policy?: 'wait' | 'primary' | 'fastest';
  max_wait?: string | number;
  max_replica_lag_bytes?: number;
  max_replica_lag?: string | number;
  monitor_interval?: string | number;
  write_functions?: string[];
  rules?: {
    match: { user?: string; database?: string; application_name?: string; pattern?: string; fingerprint?: string };
    route?: 'primary' | 'replica' | 'auto';
    consistency?: 'session' | 'global' | 'token' | 'eventual';
  }[];
}

/** A transaction-mode pgnear in `region` with a routing section; `extra` merges over the top-level config. */
export function startRoutingProxy(
  cluster: LocalCluster,
  region: string | undefined,
  routing: RoutingSettings = {},
  extra: Record<string, unknown> = {},
): Promise<TestProxy> {
  const cfg: Record<string, unknown> = { pool_mode: 'transaction', routing, ...extra };
  if (region !== undefined) cfg.region = region;
  return startProxy(cluster, cfg as Partial<ConfigInput>);
}

/** Create `db` on the primary with its schema, then wait until every replica replayed it (apply delays included). */
export async function createReplicatedDatabase(cluster: LocalCluster, db: string, setupSql: string[]): Promise<void> {
  await createDatabase(cluster, db, setupSql);
  await cluster.waitForReplay(30_000);
}

/** The cluster node listening on `port` (what inet_server_port() returned), or undefined. */
export function nodeByPort(cluster: LocalCluster, port: number | string): ClusterNode | undefined {
  return cluster.nodes.find((n) => n.port === Number(port));
}

/** Name of the node on `port`, or 'unknown:<port>'. */
export function nodeName(cluster: LocalCluster, port: number | string | null | undefined): string {
  return nodeByPort(cluster, Number(port))?.name ?? `unknown:${String(port)}`;
}

/** A tally of statements per node name. */
export class NodeTally {
  readonly counts: Record<string, number> = {};
  constructor(private readonly cluster: LocalCluster) {}
  add(port: number | string | null | undefined): string {
    const n = nodeName(this.cluster, port);
    this.counts[n] = (this.counts[n] ?? 0) + 1;
    return n;
  }
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }
  /** Statements that ran on any replica. */
  get onReplicas(): number {
    const names = new Set(this.cluster.replicas.map((r) => r.name));
    return Object.entries(this.counts)
      .filter(([k]) => names.has(k))
      .reduce((a, [, v]) => a + v, 0);
  }
  on(node: ClusterNode): number {
    return this.counts[node.name] ?? 0;
  }
  toString(): string {
    return JSON.stringify(this.counts);
  }
}

/** A connected node-postgres client ('error' events swallowed: tests look at query results). */
export async function pgClient(url: string, extra: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, ...extra });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Run `fn` with a fresh client and always close it. */
export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = await pgClient(url);
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
}

/** One row of EXPLAIN ROUTE (simple protocol: pgnear answers it itself). */
export interface RouteRow {
  node: string | null;
  role: string | null;
  reason: string | null;
  wait_lsn: string | null;
  min_lsn: string | null;
  fingerprint: string | null;
}

export async function explainRoute(c: pg.Client, sql: string): Promise<RouteRow> {
  const r = await c.query(`EXPLAIN ROUTE ${sql}`);
  if (r.rows.length !== 1) throw new Error(`EXPLAIN ROUTE ${sql}: expected 1 row, got ${JSON.stringify(r.rows)}`);
  return r.rows[0] as RouteRow;
}

/** Columns of the last EXPLAIN ROUTE-like result, in order. */
export async function explainRouteColumns(c: pg.Client, sql: string): Promise<string[]> {
  const r = await c.query(`EXPLAIN ROUTE ${sql}`);
  return r.fields.map((f) => f.name);
}

/** Names of the configured pgnear nodes as pgnear reports them (config `name` = the cluster node name). */
export const replicaNames = (cluster: LocalCluster): string[] => cluster.replicas.map((r) => r.name);

/**
 * Wait until a plain read through pgnear lands on a replica (the topology monitor has probed and verified the
 * replicas); throws with the last answer after `timeoutMs`.
 */
export async function waitForReplicaReads(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  const c = await pgClient(url);
  try {
    for (;;) {
      try {
        const r = await c.query('select pg_is_in_recovery() as r');
        if (r.rows[0]?.r === true) return;
        last = 'ran on the primary';
      } catch (e) {
        last = (e as Error).message;
      }
      if (Date.now() > deadline)
        throw new Error(`reads through pgnear never reached a replica in ${timeoutMs} ms (${last})`);
      await sleep(100);
    }
  } finally {
    await c.end().catch(() => {});
  }
}

/** pgnear log lines whose JSON matches `re` (last `max`), for failure messages. */
export function logLines(proxy: TestProxy, re: RegExp, max = 20): string {
  return proxy.logs
    .map((l) => JSON.stringify(l))
    .filter((s) => re.test(s))
    .slice(-max)
    .join('\n');
}

/** warn/error lines of pgnear's log (last `max`). */
export function problems(proxy: TestProxy, max = 20): string {
  return proxy.logs
    .filter((l) => typeof l.level === 'number' && l.level >= 40)
    .slice(-max)
    .map((l) => JSON.stringify(l))
    .join('\n');
}

/** Percentile (nearest rank) of an unsorted array. */
export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Simple-protocol SHOW of a pgnear setting. */
export async function showPgnear(c: pg.Client, name: string): Promise<string> {
  const r = await c.query(`SHOW pgnear.${name}`);
  const row = r.rows[0] as Record<string, string> | undefined;
  if (!row) throw new Error(`SHOW pgnear.${name}: no row`);
  return String(Object.values(row)[0]);
}
