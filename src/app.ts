// Composition root: builds every component from a Config, wires events to metrics and logs; no logic of its own.
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { type Config, splitHostPort } from './config/index.js';
import { startAdminHttp } from './observability/admin-http.js';
import { Metrics } from './observability/metrics.js';
import { PoolSet } from './pool/pool-set.js';
import type { ServerTarget } from './pool/server-conn.js';
import { CancelRegistry } from './session/cancel.js';
import type { SessionContext } from './session/context.js';
import { Listener } from './session/listener.js';
import { Secrets } from './session/secrets.js';
import { initSqlAnalysis, SqlAnalyzer } from './routing/sql-analysis.js';
import { selfSignedCert } from './util/selfsigned.js';
import { buildRouting } from './routing-services.js';
import { type NodeSpec, StaticProbeSource } from './topology/index.js';

export interface App {
  /** Where clients connect. */
  listen: { host: string; port: number };
  admin: { host: string; port: number } | null;
  /** Stop accepting, let transactions finish (up to `graceMs`), close everything. */
  stop(graceMs?: number): Promise<void>;
}

/** A server target from a node URL (host, port and sslmode only; credentials stay with the caller). */
export function targetFromUrl(url: string, node: string): ServerTarget {
  const u = new URL(url);
  const mode = u.searchParams.get('sslmode');
  return {
    node,
    host: decodeURIComponent(u.hostname).replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(u.port || 5432),
    sslmode:
      mode === 'require' || mode === 'verify-ca' || mode === 'verify-full'
        ? 'require'
        : mode === 'prefer'
          ? 'prefer'
          : 'disable',
  };
}

function secureContext(cfg: Config, log: Logger): tls.SecureContext | null {
  if (cfg.tls.mode === 'disable') return null;
  if (cfg.tls.cert && cfg.tls.key) {
    return tls.createSecureContext({ cert: readFileSync(cfg.tls.cert), key: readFileSync(cfg.tls.key) });
  }
  if (!cfg.tls.self_signed) return null;
  try {
    return tls.createSecureContext(selfSignedCert());
  } catch (e) {
    log.warn(
      { err: (e as Error).message },
      'cannot generate a self-signed certificate (is openssl installed?); TLS disabled',
    );
    return null;
  }
}

/** Nodes as configured: the primary first; names default to the role and region. */
function nodeSpecs(cfg: Config): NodeSpec[] {
  const used = new Set<string>();
  const unique = (name: string) => {
    let n = name;
    for (let i = 2; used.has(n); i++) n = `${name}-${i}`;
    used.add(n);
    return n;
  };
  const p = cfg.primary!;
  return [
    { name: unique(p.name ?? 'primary'), url: p.url, region: p.region, configuredRole: 'primary' as const },
    ...cfg.replicas.map((r) => ({
      name: unique(r.name ?? (r.region ? `replica-${r.region}` : 'replica')),
      url: r.url,
      region: r.region,
      configuredRole: 'replica' as const,
    })),
  ];
}

export async function startApp(cfg: Config, log: Logger): Promise<App> {
  const metrics = new Metrics();
  const primaryUrl = cfg.primary!.url;
  const specs = nodeSpecs(cfg);
  const targets = new Map(specs.map((n) => [n.name, targetFromUrl(n.url, n.name)]));
  const primary = targets.get(specs[0].name)!;
  const topology = new StaticProbeSource(specs, {
    intervalMs: cfg.routing.monitor_interval,
    log: (level, obj, msg) => log[level](obj, msg),
  });
  await topology.start();
  await initSqlAnalysis();
  const analyzer = new SqlAnalyzer({ extraWriteFunctions: cfg.routing.write_functions });
  const p = cfg.pool;
  const pools = new PoolSet({
    poolSize: p.pool_size,
    minPoolSize: p.min_pool_size,
    maxDbConnections: p.max_db_connections,
    queryWaitTimeoutMs: p.query_wait_timeout,
    connectTimeoutMs: cfg.limits.server_connect_timeout,
    idleTimeoutMs: p.server_idle_timeout,
    lifetimeMs: p.server_lifetime,
    checkDelayMs: p.server_check_delay,
    checkQuery: p.server_check_query,
    resetQuery: p.server_reset_query,
    maxWaiters: cfg.limits.max_client_conn,
    onEvent: (event, conn, reason) => {
      metrics.serverEvent(conn.target.node, event);
      log.debug({ server: conn.id, node: conn.target.node, reason }, event);
    },
    onError: (message, conn) => log.error({ server: conn?.id, node: conn?.target.node }, message),
  });
  metrics.watchPools(() => pools.stats());
  const aqDb = cfg.auth.query_database ?? (decodeURIComponent(new URL(primaryUrl).pathname.slice(1)) || undefined);
  const secrets = new Secrets(cfg.auth.users, { url: primaryUrl, database: aqDb, query: cfg.auth.query });
  const activeClients = { count: 0 };
  let shuttingDown = false;
  const ctx: SessionContext = {
    settings: {
      authMethod: cfg.auth.type,
      tlsMode: cfg.tls.mode,
      maxClientConn: cfg.limits.max_client_conn,
      maxMessageSize: cfg.limits.max_message_size,
      loginTimeoutMs: cfg.limits.client_login_timeout,
      maxPreparedStatements: p.max_prepared_statements,
      idleTransactionTimeoutMs: p.idle_transaction_timeout,
    },
    secrets,
    pools,
    cancels: new CancelRegistry(),
    secureContext: secureContext(cfg, log),
    log,
    events: metrics.sessionEvents(),
    primary: () => primary,
    poolFor: (user, database) => {
      const u = cfg.auth.users.find((x) => x.name === user);
      const d = cfg.databases.find((x) => x.name === database);
      return { mode: u?.pool_mode ?? d?.pool_mode ?? cfg.pool_mode, size: u?.pool_size ?? d?.pool_size };
    },
    analyze: (sql) => analyzer.effects(sql),
    routing: buildRouting(cfg, topology, analyzer, targets, (d) => metrics.routeDecision(d.node, d.role, d.reason)),
    activeClients,
    isShuttingDown: () => shuttingDown,
  };
  const listener = new Listener(ctx, cfg.limits.max_client_conn + 1024);
  const { host, port } = splitHostPort(cfg.listen);
  const listen = await listener.listen(host, port);
  let admin: App['admin'] = null;
  let adminServer: { close(): void } | null = null;
  if (cfg.admin_listen) {
    const a = splitHostPort(cfg.admin_listen);
    const started = await startAdminHttp(metrics, a.host, a.port, () => ({
      ok: !shuttingDown,
      detail: { clients: activeClients.count, primary: `${primary.host}:${primary.port}` },
    }));
    admin = { host: a.host, port: started.port };
    adminServer = started.server;
  }
  log.info(
    {
      listen: `${listen.host}:${listen.port}`,
      admin: admin ? `${admin.host}:${admin.port}` : undefined,
      pool_mode: cfg.pool_mode,
    },
    'pgnear listening',
  );
  return {
    listen,
    admin,
    async stop(graceMs = cfg.limits.shutdown_grace) {
      shuttingDown = true;
      await listener.shutdown(graceMs);
      pools.closeAll('shutdown');
      await topology.stop();
      adminServer?.close();
      await secrets.close();
    },
  };
}
