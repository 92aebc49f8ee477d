// The one YAML config file, as a strict zod schema: the single source of truth for fields, defaults and docs.
import { z } from 'zod';

/** Milliseconds from a number or a string such as "500ms", "15s", "2m", "1h". */
const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(v);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `invalid duration "${v}" (use e.g. 500ms, 15s, 2m)` });
    return z.NEVER;
  }
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms'] ?? 1;
  return Math.round(Number(m[1]) * mult);
});

const hostPort = z.string().regex(/^(\[[^\]]+\]|[^:]+):\d{1,5}$/, 'expected HOST:PORT, e.g. 127.0.0.1:6432');

const pgUrl = z
  .string()
  .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL, e.g. postgres://user:pass@host:5432/db');

const region = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'region names are lower-case letters, digits and dashes');

const node = z.strictObject({
  /** Connection URL; its credentials are what pgnear uses for its own connections (health checks, auth_query). */
  url: pgUrl,
  /** Region label, e.g. "ams". */
  region: region.optional(),
  /** Display name; defaults to host:port. */
  name: z.string().optional(),
});

const user = z.strictObject({
  name: z.string().min(1),
  /** Plain password, "md5…" hash or "SCRAM-SHA-256$…" verifier (plain is needed for cleartext server auth). */
  password: z.string().optional(),
  pool_mode: z.enum(['session', 'transaction']).optional(),
  /** Servers per (node, user, database) for this user; overrides pool.pool_size. */
  pool_size: z.number().int().positive().optional(),
});

/** Per-database overrides (a user's own setting wins over its database's). */
const database = z.strictObject({
  name: z.string().min(1),
  pool_mode: z.enum(['session', 'transaction']).optional(),
  pool_size: z.number().int().positive().optional(),
});

const routeTarget = z.enum(['primary', 'replica', 'auto']);
const consistency = z.enum(['session', 'global', 'token', 'eventual']);

const rule = z.strictObject({
  /** Every given field must match; first matching rule wins. */
  match: z
    .strictObject({
      user: z.string().optional(),
      database: z.string().optional(),
      application_name: z.string().optional(),
      /** Regular expression (case-insensitive) tested against the statement text. */
      pattern: z.string().optional(),
      /** Statement fingerprint as shown by EXPLAIN ROUTE. */
      fingerprint: z
        .string()
        .regex(/^[0-9a-f]{16}$/, 'a fingerprint is 16 hex digits (see EXPLAIN ROUTE)')
        .optional(),
    })
    .prefault({}),
  route: routeTarget.default('auto'),
  consistency: consistency.optional(),
});

export const configSchema = z.strictObject({
  /** Where clients connect. */
  listen: hostPort.default('127.0.0.1:6432'),
  /** HTTP listener for /metrics and /health; off when unset. */
  admin_listen: hostPort.optional(),
  /** This pgnear's region (falls back to PGNEAR_REGION, then FLY_REGION). */
  region: region.optional(),
  primary: node.optional(),
  replicas: z.array(node).default([]),
  /** transaction: a server per transaction (needed for per-statement routing); session: a server per client. */
  pool_mode: z.enum(['session', 'transaction']).default('transaction'),
  databases: z.array(database).default([]),
  auth: z
    .strictObject({
      /** How clients authenticate to pgnear. */
      type: z.enum(['scram-sha-256', 'md5', 'plain', 'trust']).default('scram-sha-256'),
      /** Reads a role's secret from the primary when it is not in `users` (PgBouncer's default query). */
      query: z.string().default('SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1'),
      /** Database auth_query runs in; default: the primary URL's database. */
      query_database: z.string().optional(),
      users: z.array(user).default([]),
    })
    .prefault({}),
  tls: z
    .strictObject({
      /** disable: refuse SSLRequest; allow: TLS when asked; require: reject clients without TLS. */
      mode: z.enum(['disable', 'allow', 'require']).default('allow'),
      cert: z.string().optional(),
      key: z.string().optional(),
      /** Generate a self-signed certificate when cert/key are unset (dev). */
      self_signed: z.boolean().default(false),
    })
    .prefault({}),
  limits: z
    .strictObject({
      max_client_conn: z.number().int().positive().default(10_000),
      /** Largest message a client may send; bigger ones are refused with 08P01. */
      max_message_size: z
        .number()
        .int()
        .min(1024)
        .max(1_073_741_824)
        .default(256 * 1024 * 1024),
      /** Time a client has to finish startup and authentication. */
      client_login_timeout: duration.default(15_000),
      server_connect_timeout: duration.default(5_000),
      /** On SIGTERM: how long running transactions may take before connections are closed. */
      shutdown_grace: duration.default(30_000),
    })
    .prefault({}),
  pool: z
    .strictObject({
      /** Server connections per (node, user, database). */
      pool_size: z.number().int().positive().default(20),
      /** Servers kept open per pool even when idle (opened once a client has logged in). */
      min_pool_size: z.number().int().nonnegative().default(0),
      /** Cap on servers per (node, database) across users; 0 = no cap. */
      max_db_connections: z.number().int().nonnegative().default(0),
      /** How long a client may wait for a server before ERROR query_wait_timeout (08P01); 0 = forever. */
      query_wait_timeout: duration.default(120_000),
      /** Query run on a server before another client reuses it in session mode. */
      server_reset_query: z.string().default('DISCARD ALL'),
      server_idle_timeout: duration.default(600_000),
      /** Servers older than this are closed between transactions. */
      server_lifetime: duration.default(3_600_000),
      /** An idle server unused this long is checked with server_check_query before reuse. */
      server_check_delay: duration.default(30_000),
      server_check_query: z.string().default(';'),
      /** A client idle inside a transaction longer than this is disconnected (25P03); 0 = never. */
      idle_transaction_timeout: duration.default(0),
      /** Statements pgnear keeps prepared per server connection in transaction mode (LRU). */
      max_prepared_statements: z.number().int().positive().default(1000),
    })
    .prefault({}),
  routing: z
    .strictObject({
      /** off: everything goes to the primary (replicas unused). */
      enabled: z.boolean().default(true),
      /** Explicit transactions: to the primary, or to a replica when they are READ ONLY. */
      transactions: z.enum(['primary', 'read_only_to_replica']).default('read_only_to_replica'),
      /** Read-your-writes scope: session (per connection), global (this pgnear), token (pgnear.min_lsn), eventual. */
      consistency: consistency.default('session'),
      /** A read whose replica has not replayed the needed LSN: wait there, go to the primary, or pick the faster. */
      lsn_policy: z.enum(['wait', 'primary', 'fastest']).default('fastest'),
      /** Longest a read waits for a replica to catch up before going to the primary. */
      max_wait: duration.default(1_000),
      /** Replicas further behind than this get no reads (0 = no bound). */
      max_replica_lag_bytes: z.number().int().nonnegative().default(0),
      max_replica_lag: duration.default(0),
      /** How often replicas' replay LSN and health are probed. */
      monitor_interval: duration.default(250),
      /** Extra functions that make a SELECT a write (built-ins such as nextval are always included). */
      write_functions: z.array(z.string()).default([]),
      rules: z.array(rule).default([]),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
      pretty: z.boolean().default(false),
    })
    .prefault({}),
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type NodeConfig = z.output<typeof node>;
export type UserConfig = z.output<typeof user>;
export type DatabaseConfig = z.output<typeof database>;
export type RuleConfig = z.output<typeof rule>;
