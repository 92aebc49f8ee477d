// One client connection: startup (TLS, cancel, version), authentication, server checkout, relay, teardown.
import type net from 'node:net';
import type { Logger } from 'pino';
import tls from 'node:tls';
import {
  AUTH_OK,
  encodeBackendKeyData,
  encodeError,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  RFQ_IDLE,
  type ErrorFields,
} from '../protocol/backend.js';
import { SQLSTATE } from '../protocol/codes.js';
import { ProtocolError } from '../protocol/errors.js';
import { decodeStartupPacket, startupPacketLength } from '../protocol/startup.js';
import type { NodePool } from '../pool/node-pool.js';
import { ServerError, type ServerConn } from '../pool/server-conn.js';
import { type Cancellable, sendCancel } from './cancel.js';
import { authenticateClient } from './client-auth.js';
import type { SessionContext } from './context.js';
import * as failures from './failures.js';
import { LoginIo } from './login-io.js';
import { bindSession, moveData, type SocketOwner } from './client-socket.js';
import { Relay } from './relay.js';
import type { ServerCredentials } from '../pool/credentials.js';
import type { ServerTarget } from '../pool/server-conn.js';
import { txLogin, txPool, txRelay, type TxSessionOwner } from './tx-login.js';
import type { TxStatus } from '../protocol/codes.js';
import type { TxRelayDeps } from './context.js';
import type { TxRelay } from './tx-relay.js';

type State = 'startup' | 'auth' | 'connecting' | 'active' | 'closed';

let nextSessionId = 1;
const EMPTY = Buffer.alloc(0);

export class ClientSession implements Cancellable, TxSessionOwner, SocketOwner {
  readonly id = nextSessionId++;
  private state: State = 'startup';
  private socket: net.Socket;
  private pending: Buffer = EMPTY;
  private tlsActive = false;
  /** The TLS handshake finished (before that, nothing can be flushed to the client). */
  private tlsReady = false;
  private counted = false;
  private loginTimer: NodeJS.Timeout | null;
  /** The login's conversation with the client; null before the startup packet and once active. */
  private io: LoginIo | null = null;
  private key: { pid: number; secret: number } | null = null;
  private user = '';
  private database = '';
  private pool: NodePool | null = null;
  private server: ServerConn | null = null;
  private relay: Relay | null = null;
  /** Transaction mode: the relay that borrows a server per transaction (relay/server stay null). */
  private tx: TxRelay | null = null;
  private logger: Logger | null = null;

  constructor(
    socket: net.Socket,
    private readonly ctx: SessionContext,
    /** Told once when the session ends (the listener's registry). */
    private onGone: ((s: ClientSession) => void) | null = null,
  ) {
    this.socket = socket;
    socket.setNoDelay(true);
    bindSession(socket, this);
    this.loginTimer = setTimeout(() => this.onLoginTimeout(), ctx.settings.loginTimeoutMs);
  }

  /** Built on first use: a child logger per idle client that never logs is ~1 KB each at 10,000 clients. */
  private get log(): Logger {
    const s = this.socket;
    return (this.logger ??= this.ctx.log.child({ client: this.id, remote: `${s.remoteAddress}:${s.remotePort}` }));
  }

  /** Debug logs are off in production: check the level before building the child logger. */
  private debug(obj: object, msg: string): void {
    if (this.ctx.log.isLevelEnabled('debug')) this.log.debug(obj, msg);
  }

  // ---- SocketOwner: the client socket's shared listeners -----------------------------------

  onSocketError(e: Error): void {
    this.debug({ err: e.message }, 'client socket error');
  }

  onSocketDrain(): void {
    (this.tx ?? this.relay)?.clientDrained();
  }

  /** Bytes from the client (the socket's shared 'data' listener). */
  onData(chunk: Buffer): void {
    try {
      if (this.state === 'active') (this.tx ?? this.relay!).fromClient(chunk);
      else if (this.state === 'startup') this.onStartupData(chunk);
      else if (this.state === 'auth' || this.state === 'connecting') this.io!.push(chunk);
    } catch (e) {
      this.failFromError(e);
    }
  }

  // ---- startup phase -------------------------------------------------------------------------

  private onStartupData(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      if (this.state !== 'startup') return;
      const len = startupPacketLength(this.pending);
      if (len < 0) return;
      const pkt = this.pending.subarray(0, len);
      this.pending = this.pending.subarray(len);
      this.onStartupPacket(pkt);
    }
  }

  private onStartupPacket(pkt: Buffer): void {
    const p = decodeStartupPacket(pkt);
    if (p.kind === 'ssl') {
      if (this.tlsActive) throw new ProtocolError('SSLRequest received on an encrypted connection');
      if (!this.ctx.secureContext || this.ctx.settings.tlsMode === 'disable') {
        this.socket.write('N');
        return;
      }
      // Bytes sent after SSLRequest but before the handshake would be unencrypted injection (CVE-2021-23214).
      if (this.pending.length) throw new ProtocolError('received unencrypted data after SSL request');
      this.socket.write('S');
      this.upgradeToTls();
      return;
    }
    if (p.kind === 'gssenc') {
      this.socket.write('N');
      return;
    }
    if (p.kind === 'cancel') {
      this.state = 'closed';
      const target = this.ctx.cancels.find(p.pid, p.secret)?.cancelTarget();
      if (target) void sendCancel(target.target, target.pid, target.secret);
      this.debug({ matched: Boolean(target) }, 'cancel request');
      this.socket.end();
      return;
    }
    if (p.major !== 3) {
      throw new ProtocolError(
        `unsupported frontend protocol ${p.major}.${p.minor}: server supports 3.0 to 3.0`,
        SQLSTATE.FeatureNotSupported,
      );
    }
    const unrecognized = [...p.params.keys()].filter((k) => k.startsWith('_pq_.'));
    if (p.minor > 0 || unrecognized.length) this.socket.write(encodeNegotiateProtocolVersion(0, unrecognized));
    for (const k of unrecognized) p.params.delete(k);
    this.beginLogin(p.params);
  }

  private upgradeToTls(): void {
    const raw = this.socket;
    const t = new tls.TLSSocket(raw, { isServer: true, secureContext: this.ctx.secureContext! });
    moveData(raw, t, this);
    t.once('secure', () => {
      this.tlsReady = true;
    });
    t.on('error', (e) => {
      this.debug({ err: e.message }, 'TLS error');
      t.destroy();
    });
    this.socket = t;
    this.tlsActive = true;
  }

  private beginLogin(params: Map<string, string>): void {
    const user = failures.checkStartup(params, this.ctx, this.tlsActive);
    this.ctx.activeClients.count++;
    this.counted = true;
    this.ctx.events.clientOpened();
    this.user = user;
    this.database = params.get('database') || user;
    params.set('database', this.database);
    this.state = 'auth';
    this.io = new LoginIo(this.socket);
    if (this.pending.length) this.io.push(this.pending);
    this.pending = EMPTY;
    void this.login(params).catch((e) => this.failFromError(e));
  }

  // ---- authentication and server checkout ----------------------------------------------------

  private async login(params: Map<string, string>): Promise<void> {
    const secret = await this.ctx.secrets.lookup(this.user);
    if (this.isClosed()) return;
    const io = this.io!;
    const creds = await authenticateClient(io, this.ctx.settings.authMethod, this.user, secret);
    if (this.isClosed()) return;
    io.send(AUTH_OK);
    this.state = 'connecting';
    // Hold further client bytes in the kernel until the relay is ready.
    this.socket.pause();
    const target = this.ctx.primary();
    const { mode, size } = this.ctx.poolFor(this.user, this.database);
    if (mode === 'transaction') return this.loginTransaction(target, creds, params, size);
    const startup: [string, string][] = [...params.entries()];
    const pool = this.ctx.pools.get(target, { user: this.user, database: this.database, startup }, size);
    const server = await this.serverLogin(() => pool.acquire(creds));
    if (this.isClosed()) {
      void pool.release(server, { reusable: true, reset: true });
      return;
    }
    this.pool = pool;
    this.server = server;
    this.key = this.ctx.cancels.register(this);
    const out: Buffer[] = [];
    for (const [k, v] of server.params) out.push(encodeParameterStatus(k, v));
    out.push(encodeBackendKeyData(this.key.pid, this.key.secret), RFQ_IDLE);
    this.socket.write(Buffer.concat(out));
    this.startRelay(server);
  }

  /** A server login failing with a wrong password means the cached secret is stale. */
  private async serverLogin<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ServerError && e.sqlstate === SQLSTATE.InvalidPassword) this.ctx.secrets.invalidate(this.user);
      throw e;
    }
  }

  private async loginTransaction(
    target: ServerTarget,
    creds: ServerCredentials,
    startup: Map<string, string>,
    size?: number,
  ): Promise<void> {
    const pool = txPool(this.ctx, target, this.user, this.database, size);
    const { params, status, server } = await this.serverLogin(() => txLogin(pool, creds, startup));
    if (server) void pool.release(server, { reusable: true, reset: false });
    if (this.isClosed()) return;
    this.pool = pool;
    this.key = this.ctx.cancels.register(this);
    this.socket.write(Buffer.concat([status, encodeBackendKeyData(this.key.pid, this.key.secret), RFQ_IDLE]));
    const who = { user: this.user, database: this.database, size, startup };
    this.tx = txRelay(this.socket, this.ctx, who, creds, params, this);
    this.activate();
  }

  // ---- TxSessionOwner: what the transaction relay reports --------------------------------------

  txLog(): Logger {
    return this.log;
  }

  txReady(status: TxStatus): void {
    this.onReady(status, this.tx!.plan.pending);
  }

  txTerminate(): void {
    this.close('client terminated');
  }

  txFatal(...[err, where, canReport]: Parameters<TxRelayDeps['onFatal']>): void {
    if (where === 'server_gone') this.onServerGone(canReport, null);
    else if (where === 'idle_in_transaction') this.fatal(failures.IDLE_IN_TRANSACTION);
    else this.failFromError(err);
  }

  private onReady(status: string, pending: number): void {
    if (status === 'I' && this.ctx.isShuttingDown() && pending === 0) this.fatal(failures.ADMIN_SHUTDOWN);
  }

  private onServerGone(canReport: boolean, server: ServerConn | null): void {
    this.log.warn({ server: server?.id, node: server?.target.node }, 'server connection lost mid-session');
    if (canReport) this.fatal(failures.SERVER_GONE);
    else this.close('server closed');
  }

  private activate(): void {
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = null;
    this.state = 'active';
    this.ctx.events.loginSucceeded();
    this.debug(
      { user: this.user, database: this.database, mode: this.tx ? 'transaction' : 'session' },
      'client logged in',
    );
    const pump = this.tx ?? this.relay!;
    const pipelined = this.io?.finish() ?? [];
    this.io = null; // per-client memory
    for (const f of pipelined) pump.fromClient(f);
    this.socket.resume();
  }

  private startRelay(server: ServerConn): void {
    this.relay = new Relay(this.socket, server, this.ctx.settings.maxMessageSize, {
      onReady: (status) => this.onReady(status, this.relay?.pendingReplies ?? 0),
      onTerminate: () => this.close('client terminated'),
      onServerGone: (canReport) => this.onServerGone(canReport, server),
      onProtocolError: (err, fromClient) => {
        if (fromClient) this.failFromError(err);
        else {
          this.log.error({ err: err.message }, 'protocol error from server');
          this.close('server protocol error');
        }
      },
    });
    this.activate();
  }

  private isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Is the session idle enough to close right now during shutdown? */
  idle(): boolean {
    return this.state !== 'active' || (this.tx ? this.tx.quiet() : this.relay!.reusable());
  }

  cancelTarget() {
    const s = this.tx ? this.tx.attached : this.server;
    return s && !s.closed ? { target: s.target, pid: s.pid, secret: s.secret } : null;
  }

  // ---- errors and teardown -------------------------------------------------------------------

  private onLoginTimeout(): void {
    this.loginTimer = null;
    if (this.state === 'active' || this.state === 'closed') return;
    this.log.info({ state: this.state }, 'client login timeout');
    this.fatal(failures.LOGIN_TIMEOUT, 'login timeout');
  }

  private failFromError(e: unknown): void {
    if (this.state === 'closed') return;
    const f = failures.describeFailure(e);
    if (f.loginFailed) this.ctx.events.loginFailed(f.sqlstate);
    this.log[f.level]({ user: this.user || undefined, sqlstate: f.sqlstate, err: f.logMessage }, f.event);
    this.endWith(f.frame, f.reason);
  }

  /** Send an ErrorResponse and close. */
  fatal(f: ErrorFields, reason = f.message): void {
    this.endWith(encodeError(f), reason);
  }

  private endWith(frame: Buffer, reason: string): void {
    if (this.state === 'closed') return;
    // A TLS socket whose handshake never finished cannot flush anything: drop it at once.
    if (this.tlsActive && !this.tlsReady) this.socket.destroy();
    else if (!this.socket.destroyed && this.socket.writable) this.socket.end(frame);
    this.close(reason);
  }

  /** Close the client (flushing what is written) and give the server back. */
  close(reason: string): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.end();
    setTimeout(() => this.socket.destroy(), 2_000).unref();
    this.teardown(reason);
  }

  /** The client's socket closed: the session is gone once its bytes are flushed. */
  socketClosed(): void {
    this.teardown('client closed');
    this.onGone?.(this);
    this.onGone = null;
  }

  private teardown(reason: string): void {
    if (this.state === 'closed' && !this.server && !this.counted) return;
    this.state = 'closed';
    if (this.loginTimer) clearTimeout(this.loginTimer);
    this.loginTimer = null;
    this.io?.abandon(); // the pending login promise is abandoned; it re-checks state
    if (this.key) this.ctx.cancels.unregister(this.key.pid);
    this.key = null;
    this.tx?.close();
    this.tx = null;
    const server = this.server;
    if (server) {
      this.server = null;
      const reusable = this.relay?.reusable() ?? false;
      this.relay?.detach();
      void this.pool!.release(server, { reusable, reset: true });
    }
    if (this.counted) {
      this.counted = false;
      this.ctx.activeClients.count--;
      this.ctx.events.clientClosed(reason);
    }
  }
}
