// Transaction-mode pump: borrows a server for each transaction, forwards frames untouched where it can,
// and gives the server back at ReadyForQuery 'I' unless the client is pinned to it.
import type net from 'node:net';
import { decodeErrorFields, decodeParameterStatus, readyStatus } from '../protocol/backend.js';
import { BE, FE, type TxStatus } from '../protocol/codes.js';
import { FrameScanner, type FrameSink, watchTable } from '../protocol/framer.js';
import { CLIENT_WATCH, FRONTEND_TYPES } from '../protocol/frontend.js';
import { ProtocolError } from '../protocol/errors.js';
import type { ServerConn } from '../pool/server-conn.js';
import type { PinReason } from './context.js';
import { PLAN_WATCH, ResponsePlan, Verdict } from './response-plan.js';
import type { SessionParams } from './session-params.js';
import type { TxMessages, TxOutput } from './tx-messages.js';

const SERVER_WATCH = watchTable([...PLAN_WATCH, BE.ParameterStatus]);
const SERVER_MAX_FRAME = 0x40000000;
/** Client messages held while a server is being acquired; the client socket is paused meanwhile. */
const MAX_QUEUED = 10_000;

export interface TxRelayDeps {
  acquire(signal: AbortSignal): Promise<ServerConn>;
  /** Give a server back; reusable = idle, outside a transaction, at a message boundary. */
  release(conn: ServerConn, reusable: boolean): void;
  messages: TxMessages;
  params: SessionParams;
  maxMessage: number;
  idleTransactionTimeoutMs: number;
  onReady(status: TxStatus): void;
  onTerminate(): void;
  onPinned(reason: string): void;
  /** Fatal for the session: the error frame (or null) and a reason for logs. */
  onFatal(
    err: unknown,
    where: 'acquire' | 'server_gone' | 'protocol' | 'idle_in_transaction' | 'sync',
    canReport: boolean,
  ): void;
}

type State = 'idle' | 'acquiring' | 'attached' | 'finishing' | 'closed';

export class TxRelay implements TxOutput {
  private state: State = 'idle';
  private srv: ServerConn | null = null;
  private readonly clientScanner: FrameScanner;
  private readonly serverScanner = new FrameScanner(SERVER_WATCH, SERVER_MAX_FRAME);
  readonly plan: ResponsePlan;
  private queue: Buffer[] = [];
  private pinnedBy: string | null = null;
  private abort: AbortController | null = null;
  private readySeen = false;
  /** Messages went to the server since its last ReadyForQuery: an implicit transaction may be open. */
  private unsynced = false;
  private sawFatal = false;
  private serverFull = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly clientSink: FrameSink;
  private readonly serverSink: FrameSink;

  constructor(
    private readonly client: net.Socket,
    private readonly deps: TxRelayDeps,
  ) {
    this.clientScanner = new FrameScanner(CLIENT_WATCH, deps.maxMessage);
    this.plan = new ResponsePlan({
      emit: (b) => this.client.write(b),
      settled: (tag, ok) => deps.messages.settled(tag, ok),
    });
    this.clientSink = {
      passthrough: (b) => {
        // CopyData outside an attached COPY is ignored, as Postgres does.
        if (this.state === 'attached') this.srvWrite(b);
      },
      frame: (type, f) => this.onClientFrame(type, f),
    };
    this.serverSink = {
      passthrough: (b) => {
        if (!this.client.write(b)) this.srv?.socket.pause();
      },
      frame: (type, f) => this.onServerFrame(type, f),
    };
    client.on('drain', this.onClientDrain);
  }

  get server(): ServerConn {
    return this.srv!;
  }

  /** The server the client currently holds, if any (for cancel requests). */
  get attached(): ServerConn | null {
    return this.state === 'attached' || this.state === 'finishing' ? this.srv : null;
  }

  get pinned(): string | null {
    return this.pinnedBy;
  }

  /** Idle between transactions with nothing in flight (graceful shutdown may close it now). */
  quiet(): boolean {
    return this.state === 'idle' && this.clientScanner.atBoundary();
  }

  fromClient(chunk: Buffer): void {
    // Corked: a rewritten message and the pass-through run around it leave in one writev, not several writes.
    const s = this.srv?.socket;
    s?.cork();
    try {
      this.clientScanner.push(chunk, this.clientSink);
    } catch (e) {
      this.deps.onFatal(e, 'protocol', true);
    } finally {
      s?.uncork();
    }
  }

  send(b: Buffer): void {
    this.clientScanner.flush();
    this.srvWrite(b);
  }

  pin(reason: PinReason | string): void {
    if (this.pinnedBy) return;
    this.pinnedBy = reason;
    this.deps.onPinned(reason);
  }

  private srvWrite(b: Buffer): void {
    if (!this.srv!.socket.write(b) && !this.serverFull) {
      this.serverFull = true;
      this.client.pause();
    }
  }

  private onClientFrame(type: number, f: Buffer): boolean {
    if (!FRONTEND_TYPES[type]) throw new ProtocolError(`invalid frontend message type ${type}`);
    if (type === FE.Terminate) {
      this.deps.onTerminate();
      return false;
    }
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (this.state === 'attached') {
      this.unsynced = true;
      return this.deps.messages.handle(type, f, this);
    }
    if (this.state === 'closed') return false;
    if (this.state === 'idle' && this.deps.messages.handleIdle(type, f, this.plan)) return false;
    if (this.queue.length >= MAX_QUEUED)
      throw new ProtocolError('too many messages while waiting for a server connection');
    this.queue.push(f);
    this.client.pause();
    if (this.state === 'idle') this.startAcquire();
    return false;
  }

  private startAcquire(): void {
    this.state = 'acquiring';
    this.client.pause();
    const abort = new AbortController();
    this.abort = abort;
    this.deps.acquire(abort.signal).then(
      (conn) => {
        if (this.state !== 'acquiring' || abort.signal.aborted) return this.deps.release(conn, true);
        this.abort = null;
        const sql = this.deps.params.syncSql(conn);
        if (!sql) return this.attach(conn);
        conn.query(sql).then(
          () => {
            this.deps.params.synced(conn);
            if (this.state === 'acquiring') this.attach(conn);
            else this.deps.release(conn, true);
          },
          (e) => {
            this.deps.release(conn, !conn.closed && conn.txStatus === 'I');
            if (this.state === 'acquiring') this.deps.onFatal(e, 'sync', true);
          },
        );
      },
      (e) => {
        if (this.state === 'acquiring') this.deps.onFatal(e, 'acquire', true);
      },
    );
  }

  private attach(conn: ServerConn): void {
    this.srv = conn;
    this.state = 'attached';
    this.sawFatal = false;
    const s = conn.socket;
    s.on('data', this.onServerData);
    s.on('drain', this.onServerDrain);
    s.on('close', this.onServerClose);
    this.deps.messages.closeEvicted(this);
    this.replayQueue();
  }

  private replayQueue(): void {
    const q = this.queue;
    this.queue = [];
    for (const f of q) {
      if (this.state !== 'attached') break;
      try {
        this.unsynced = true;
        if (this.deps.messages.handle(f[0], f, this)) this.srvWrite(f);
      } catch (e) {
        this.deps.onFatal(e, 'protocol', true);
        return;
      }
    }
    if (!this.serverFull) this.client.resume();
  }

  private detach(): ServerConn | null {
    const conn = this.srv;
    if (!conn) return null;
    const s = conn.socket;
    s.off('data', this.onServerData);
    s.off('drain', this.onServerDrain);
    s.off('close', this.onServerClose);
    s.resume();
    this.srv = null;
    if (this.serverFull) {
      this.serverFull = false;
      if (this.state !== 'closed') this.client.resume();
    }
    return conn;
  }

  private onServerFrame(type: number, f: Buffer): boolean {
    const conn = this.srv!;
    if (type === BE.ParameterStatus) {
      const [k, v] = decodeParameterStatus(f);
      conn.params.set(k, v);
      return true;
    }
    if (type === BE.ReadyForQuery) {
      conn.txStatus = readyStatus(f);
      this.readySeen = true;
      if (this.plan.pending <= 1) this.unsynced = false;
    } else if (type === BE.ErrorResponse) {
      const sev = decodeErrorFields(f).get('V');
      if (sev === 'FATAL' || sev === 'PANIC') this.sawFatal = true;
    }
    const verdict = this.plan.onServerFrame(type);
    if (verdict === Verdict.Drop) {
      this.serverScanner.flush();
      this.plan.drainSynthetic();
      return false;
    }
    if (this.plan.syntheticDue) {
      this.serverScanner.flush();
      this.client.write(f);
      this.plan.drainSynthetic();
      return false;
    }
    return true;
  }

  private readonly onServerData = (chunk: Buffer): void => {
    const c = this.client;
    c.cork();
    try {
      this.serverScanner.push(chunk, this.serverSink);
    } catch (e) {
      this.deps.onFatal(e, 'protocol', false);
      return;
    } finally {
      c.uncork();
    }
    if (this.readySeen) {
      this.readySeen = false;
      this.afterReady();
    }
  };

  /** ReadyForQuery reached the client: release the server if the transaction and every request are done. */
  private afterReady(): void {
    const conn = this.srv;
    if (!conn || this.state !== 'attached') return;
    const status = conn.txStatus;
    this.deps.onReady(status);
    if (this.state !== 'attached' || this.plan.pending > 0) return;
    if (status !== 'I') {
      const ms = this.deps.idleTransactionTimeoutMs;
      if (ms > 0) this.idleTimer = setTimeout(() => this.onIdleInTransaction(), ms);
      return;
    }
    if (this.pinnedBy || !this.clientScanner.atBoundary() || !this.serverScanner.atBoundary()) return;
    const rb = this.deps.params.readBackSql();
    if (!rb) {
      this.state = 'idle';
      this.deps.release(this.detach()!, true);
      return;
    }
    // The client changed settings: learn their real values before another client can get this server.
    this.state = 'finishing';
    this.detach();
    this.srv = conn;
    conn.query(rb.sql).then(
      (values) => {
        this.deps.params.readBack(conn, rb.names, values);
        this.afterFinishing(conn, true);
      },
      () => this.afterFinishing(conn, false),
    );
  }

  private afterFinishing(conn: ServerConn, ok: boolean): void {
    if (this.state !== 'finishing') return; // closed meanwhile: teardown released it
    this.srv = null;
    if (!ok) {
      this.deps.release(conn, false);
      this.state = 'idle';
      if (this.queue.length) this.startAcquire();
      return;
    }
    if (this.queue.length) {
      this.state = 'acquiring';
      this.attach(conn);
    } else {
      this.state = 'idle';
      this.deps.release(conn, true);
    }
  }

  private onIdleInTransaction(): void {
    this.idleTimer = null;
    if (this.state === 'attached' && this.plan.pending === 0) this.deps.onFatal(null, 'idle_in_transaction', true);
  }

  private readonly onServerDrain = (): void => {
    if (this.serverFull) {
      this.serverFull = false;
      if (this.state === 'attached') this.client.resume();
    }
  };

  private readonly onClientDrain = (): void => {
    this.srv?.socket.resume();
  };

  private readonly onServerClose = (): void => {
    if (this.state !== 'attached') return;
    const canReport = !this.sawFatal && this.serverScanner.atBoundary();
    this.detach();
    this.state = 'idle';
    this.plan.clear();
    this.deps.onFatal(null, 'server_gone', canReport);
  };

  /**
   * The session ends: a server it holds goes back only when provably clean; a transaction left open is
   * rolled back first; anything else (mid-message, replies pending) closes the server.
   */
  close(): void {
    if (this.state === 'closed') return;
    const prev = this.state;
    this.state = 'closed';
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.client.off('drain', this.onClientDrain);
    this.abort?.abort();
    if (prev === 'finishing') {
      const conn = this.srv!;
      this.srv = null;
      this.deps.release(conn, false);
      return;
    }
    // Messages since the last ReadyForQuery may have opened an implicit transaction that only the server knows.
    const clean =
      !this.unsynced && this.plan.pending === 0 && this.clientScanner.atBoundary() && this.serverScanner.atBoundary();
    this.plan.clear();
    const conn = this.detach();
    if (!conn) return;
    if (!clean || conn.closed || this.pinnedBy) {
      // A pinned server carries the client's session state (temp tables, locks, LISTEN): never reuse it.
      this.deps.release(conn, false);
    } else if (conn.txStatus === 'I') this.deps.release(conn, true);
    else {
      conn.query('ROLLBACK').then(
        () => this.deps.release(conn, conn.txStatus === 'I'),
        () => this.deps.release(conn, false),
      );
    }
  }
}
