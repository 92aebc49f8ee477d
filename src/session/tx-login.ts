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
import { type LeaseDeps, LeaseProvider, type LeaseReceiver } from './server-lease.js';
import type { AcquireCancel } from '../pool/acquire-cancel.js';
import { FE, type TxStatus } from '../protocol/codes.js';
import { bindStatement, decodeParse } from '../protocol/extended.js';
import { decodeQuery } from '../protocol/frontend.js';
import { RouteSession } from './route-session.js';
import { TxRelay } from './tx-relay.js';
import type { TxRelayDeps } from './context.js';

/**
 * The welcome (ParameterStatus frames) of a transaction-mode login, by pool and startup settings (interned per
 * distinct set, see SessionParams.settingsKey): a login whose settings a server of the pool accepted within
 * WELCOME_TTL_MS is answered from it without borrowing a server, as PgBouncer does, so a login neither waits for
 * a busy pool nor costs a server round trip. An empty pool (its node down or never reached) goes to a server.
 */
const WELCOME_TTL_MS = 30_000;
const welcomes = new WeakMap<NodePool, WeakMap<object, { status: Buffer; at: number }>>();

/**
 * The ParameterStatus frames a client gets at login: the server's, after the client's settings were applied;
 * `server` is the one borrowed for it, to release (null: answered from the pool's cached welcome).
 */
export async function txLogin(
  pool: NodePool,
  creds: ServerCredentials,
  startup: Map<string, string>,
): Promise<{ params: SessionParams; status: Buffer; server: ServerConn | null }> {
  const params = new SessionParams(startup);
  const cached = welcomes.get(pool)?.get(params.settingsKey);
  if (cached && Date.now() - cached.at < WELCOME_TTL_MS && pool.stats().total > 0) {
    return { params, status: cached.status, server: null };
  }
  const server = await pool.acquire(creds);
  try {
    await params.syncTo(server);
  } catch (e) {
    pool.release(server, { reusable: !server.closed && server.txStatus === 'I', reset: false });
    // A startup parameter the server refuses fails the login, as it would on a direct connection.
    if (e instanceof ServerError) throw new ServerError(e.message, e.sqlstate, null, 'FATAL');
    throw e;
  }
  const frames: Buffer[] = [];
  for (const [k, v] of server.params) frames.push(encodeParameterStatus(k, v));
  const status = Buffer.concat(frames);
  let byPool = welcomes.get(pool);
  if (!byPool) welcomes.set(pool, (byPool = new WeakMap()));
  byPool.set(params.settingsKey, { status, at: Date.now() });
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

/** The client session a relay serves; ClientSession implements it with methods (no closures per idle client). */
export interface TxSessionOwner {
  /** Its logger, built on first use. */
  txLog(): Logger;
  txReady(status: TxStatus): void;
  txTerminate(): void;
  txFatal(...a: Parameters<TxRelayDeps['onFatal']>): void;
}

/**
 * Per-client scope strings ("host:port/database") are equal for every client of a database: one copy is kept.
 * Bounded: cleared when it grows past 256.
 */
const scopes = new Map<string, string>();
function scopeOf(host: string, port: number, database: string): string {
  const s = `${host}:${port}/${database}`;
  const have = scopes.get(s);
  if (have !== undefined) return have;
  if (scopes.size >= 256) scopes.clear();
  scopes.set(s, s);
  return s;
}

/** One client's wiring of relay, leases and statements: methods on one object rather than closures per client. */
class TxClient implements TxRelayDeps, LeaseDeps {
  readonly route: RouteSession;
  readonly messages: TxMessages;
  readonly maxMessage: number;
  readonly idleTransactionTimeoutMs: number;
  private readonly leases: LeaseProvider;
  /** The pool of the node used last: no Map per client, most requests go where the previous one went. */
  private lastNode = '';
  private lastPool: NodePool | null = null;

  constructor(
    readonly ctx: SessionContext,
    readonly creds: ServerCredentials,
    readonly params: SessionParams,
    private readonly user: string,
    private readonly database: string,
    private readonly size: number | undefined,
    private readonly owner: TxSessionOwner,
    startup: Map<string, string>,
  ) {
    const s = ctx.settings;
    this.maxMessage = s.maxMessageSize;
    this.idleTransactionTimeoutMs = s.idleTransactionTimeoutMs;
    this.route = new RouteSession(
      ctx.routing,
      { user, database, applicationName: startup.get('application_name') ?? '' },
      startup,
      params,
    );
    const primary = ctx.primary();
    const scope = scopeOf(primary.host, primary.port, database);
    this.messages = new TxMessages(ctx, this.route, params, s.maxPreparedStatements, scope);
    this.leases = new LeaseProvider(this);
  }

  acquire(cancel: AcquireCancel, batch: readonly Buffer[], retry: boolean, to: LeaseReceiver): void {
    this.leases.acquire(cancel, batch, retry, to);
  }

  statementSql(name: string): string | undefined {
    return this.messages.statements.get(name)?.sql;
  }

  leavesReplica(type: number, f: Buffer): boolean {
    if (type === FE.FunctionCall) return true;
    const sql =
      type === FE.Query
        ? decodeQuery(f)
        : type === FE.Parse
          ? decodeParse(f).sql
          : type === FE.Bind
            ? this.statementSql(bindStatement(f))
            : undefined;
    return sql !== undefined && this.route.mayWrite(sql);
  }

  poolOf(node: string): NodePool | null {
    if (node === this.lastNode && this.lastPool) return this.lastPool;
    const target = this.ctx.routing.target(node);
    if (!target) return null;
    this.lastNode = node;
    return (this.lastPool = txPool(this.ctx, target, this.user, this.database, this.size));
  }

  onPinned(reason: string): void {
    this.owner.txLog().info({ reason }, 'client pinned to its server connection');
    this.ctx.events.clientPinned(reason);
  }

  onReady(status: TxStatus): void {
    this.owner.txReady(status);
  }

  onTerminate(): void {
    this.owner.txTerminate();
  }

  onFatal(...a: Parameters<TxRelayDeps['onFatal']>): void {
    this.owner.txFatal(...a);
  }
}

/** The relay of a client logged in under transaction pooling. */
export function txRelay(
  socket: net.Socket,
  ctx: SessionContext,
  who: { user: string; database: string; size?: number; startup: Map<string, string> },
  creds: ServerCredentials,
  params: SessionParams,
  owner: TxSessionOwner,
): TxRelay {
  return new TxRelay(socket, new TxClient(ctx, creds, params, who.user, who.database, who.size, owner, who.startup));
}
