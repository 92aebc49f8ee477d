// Transaction-mode login: borrow a server to prove the login and learn its parameters, give it back,
// and hand the client a relay that borrows servers per transaction.
import type net from 'node:net';
import { encodeParameterStatus } from '../protocol/backend.js';
import type { NodePool } from '../pool/node-pool.js';
import type { Logger } from 'pino';
import { ServerError, type ServerConn, type ServerTarget } from '../pool/server-conn.js';
import type { ServerCredentials } from '../pool/credentials.js';
import type { SessionContext } from './context.js';
import { SessionParams } from './session-params.js';
import { TxMessages } from './tx-messages.js';
import { LeaseProvider } from './server-lease.js';
import { RouteSession } from './route-session.js';
import { TxRelay } from './tx-relay.js';
import type { TxRelayDeps } from './context.js';

/** The ParameterStatus frames a client gets at login: the server's, after the client's settings were applied. */
export async function txLogin(
  pool: NodePool,
  creds: ServerCredentials,
  startup: Map<string, string>,
): Promise<{ params: SessionParams; status: Buffer[]; server: ServerConn }> {
  const params = new SessionParams(startup);
  const server = await pool.acquire(creds);
  try {
    await params.syncTo(server);
  } catch (e) {
    pool.release(server, { reusable: !server.closed && server.txStatus === 'I', reset: false });
    // A startup parameter the server refuses fails the login, as it would on a direct connection.
    if (e instanceof ServerError) throw new ServerError(e.message, e.sqlstate, null, 'FATAL');
    throw e;
  }
  const status: Buffer[] = [];
  for (const [k, v] of server.params) status.push(encodeParameterStatus(k, v));
  return { params, status, server };
}

/** Transaction-mode pools log in with user and database only; the client's settings are applied per transaction. */
export function txPool(
  ctx: SessionContext,
  target: ServerTarget,
  user: string,
  database: string,
  size?: number,
): NodePool {
  const startup: [string, string][] = [
    ['user', user],
    ['database', database],
  ];
  return ctx.pools.get(target, { user, database, startup }, size);
}

/** What the client session gives its relay: its logger (built on first use) and lifecycle hooks. */
export type TxSessionHooks = Pick<TxRelayDeps, 'onReady' | 'onTerminate' | 'onFatal'> & { log: () => Logger };

export function txRelay(
  socket: net.Socket,
  ctx: SessionContext,
  who: { user: string; database: string; size?: number; startup: Map<string, string> },
  creds: ServerCredentials,
  params: SessionParams,
  { log, ...hooks }: TxSessionHooks,
): TxRelay {
  const s = ctx.settings;
  // Closures below capture these, not `who` (its startup map would stay alive per idle client).
  const { user, database, size } = who;
  const route = new RouteSession(
    ctx.routing,
    { user, database, applicationName: who.startup.get('application_name') ?? '' },
    who.startup,
  );
  const primary = ctx.primary();
  const messages = new TxMessages(
    (sql) => ctx.analyze(sql),
    (query, status, detached) => route.intercept(query, status, detached),
    params,
    s.maxPreparedStatements,
    `${primary.host}:${primary.port}/${database}`,
    () => route.deferredTxn,
    (sql) => route.applySetting(sql),
  );
  // The pool of the node used last: no Map per client, most requests go where the previous one went.
  let lastNode = '';
  let lastPool: NodePool | null = null;
  const leases = new LeaseProvider({
    ctx,
    creds,
    params,
    route,
    statementSql: (name) => messages.statements.get(name)?.sql,
    poolOf: (node) => {
      if (node === lastNode && lastPool) return lastPool;
      const target = ctx.routing.target(node);
      if (!target) return null;
      lastNode = node;
      return (lastPool = txPool(ctx, target, user, database, size));
    },
  });
  return new TxRelay(socket, {
    onPinned: (reason) => {
      log().info({ reason }, 'client pinned to its server connection');
      ctx.events.clientPinned(reason);
    },
    acquire: (cancel, batch, retry, to) => leases.acquire(cancel, batch, retry, to),
    messages,
    maxMessage: s.maxMessageSize,
    idleTransactionTimeoutMs: s.idleTransactionTimeoutMs,
    ...hooks,
  });
}
