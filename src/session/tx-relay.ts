// Transaction-mode pump: borrows a server for each transaction, forwards frames untouched where it can,
// and gives the server back at ReadyForQuery 'I' unless the client is pinned to it.
import type net from 'node:net';
import { FE } from '../protocol/codes.js';
import { FrameScanner, type FrameSink } from '../protocol/framer.js';
import { CLIENT_WATCH, FRONTEND_TYPES, REQUEST_END, SYNC } from '../protocol/frontend.js';
import type { ServerConn, ServerReader } from '../pool/server-conn.js';
import { AcquireCancel } from '../pool/acquire-cancel.js';
import type { PinReason } from './context.js';
import { type PlanOutput, ResponsePlan, Slot } from './response-plan.js';
import { RequestQueue } from './request-queue.js';
import { endLease, type Lease, type LeaseReceiver } from './server-lease.js';
import type { TxOutput } from './tx-ports.js';
import type { TxRelayDeps } from './context.js';
import { ServerSink, type ServerSide } from './server-sink.js';

type State = 'idle' | 'acquiring' | 'attached' | 'finishing' | 'closed';

/** Reads the attached server (its ServerReader); is the client scanner's FrameSink and the response plan's output. */
export class TxRelay implements TxOutput, ServerReader, LeaseReceiver, FrameSink, PlanOutput, ServerSide {
  private state: State = 'idle';
  private srv: ServerConn | null = null;
  private lease: Lease | null = null;
  /** On a replica outside a transaction the routed request is complete: what follows is routed afresh. */
  private sealed = false;
  /** A request completed while idle: route it once the whole chunk is queued (pipelined writes count too). */
  private wantAcquire = false;
  private readonly clientScanner: FrameScanner;
  readonly plan: ResponsePlan = new ResponsePlan(this);
  private readonly queue = new RequestQueue();
  private pinnedBy: string | null = null;
  private readonly cancel = new AcquireCancel(); // abandons a queued acquire when the client leaves
  /** Messages went to the server since its last ReadyForQuery: an implicit transaction may be open. */
  private unsynced = false;
  /** pgnear ended the replica's part of a request with its own Sync (divert); the rest is routed afresh. */
  private diverted = false;
  private serverFull = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /** The server side: its scanner, the replies' bookkeeping and the 25006 retry. */
  private readonly sink: ServerSink;

  constructor(
    private readonly client: net.Socket,
    private readonly deps: TxRelayDeps,
  ) {
    this.clientScanner = new FrameScanner(CLIENT_WATCH, deps.maxMessage, false, FRONTEND_TYPES);
    this.sink = new ServerSink(this, deps.messages);
  }

  get server(): ServerConn {
    return this.srv!;
  }

  /** The server the client currently holds, if any (for cancel requests). */
  get attached(): ServerConn | null {
    return this.state === 'attached' || this.state === 'finishing' ? this.srv : null;
  }

  /** Idle between transactions with nothing in flight (graceful shutdown may close it now). */
  quiet(): boolean {
    return this.state === 'idle' && this.queue.length === 0 && this.clientScanner.atBoundary();
  }

  fromClient(chunk: Buffer): void {
    const s = this.srv?.socket;
    s?.cork(); // a rewritten message and the pass-through run around it leave in one writev
    try {
      this.clientScanner.push(chunk, this);
      if (this.wantAcquire && this.state === 'idle') this.startAcquire(false);
    } catch (e) {
      this.deps.onFatal(e, 'protocol', true);
    } finally {
      s?.uncork();
    }
  }

  send(b: Buffer): void {
    this.writeRun();
    this.clientScanner.flush();
    this.srvWrite(b);
  }

  /** Replayed frames not written yet go first (dropped when no server is attached any more). */
  private writeRun(): void {
    const run = this.queue.runOut();
    if (run && this.state === 'attached') this.srvWrite(run);
  }

  get pinned(): boolean {
    return this.pinnedBy !== null;
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

  /** FrameSink: a run of the client's bytes that is not a watched message. */
  passthrough(b: Buffer): void {
    // CopyData outside an attached COPY is ignored, as Postgres does.
    if (this.state === 'attached') this.srvWrite(b);
  }

  /** PlanOutput: pgnear's own reply bytes, in their place in the stream. */
  emit(b: Buffer): boolean {
    // While a 25006 retry is possible nothing reaches the client, pgnear's own replies included.
    if (this.sink.retry.armed) {
      this.sink.retry.hold(b);
      return true;
    }
    return this.client.write(b);
  }

  /** PlanOutput: a tagged slot got its reply or failed. */
  settled(tag: number, ok: boolean): void {
    this.deps.messages.settled(tag, ok);
  }

  /** FrameSink: a whole watched client message. */
  frame(type: number, f: Buffer): boolean {
    if (type === FE.Terminate) {
      this.deps.onTerminate();
      return false;
    }
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    if (this.state === 'attached' && !this.sealed) {
      // A replica outside a transaction, after a Flush or within a long request: whatever may write goes elsewhere.
      if (this.lease!.retryable && !this.pinnedBy) {
        if (this.deps.leavesReplica(type, f)) return this.divert(f);
        // More of the request streams to the replica than the 25006 retry would redo: no retry any more.
        if (this.sink.retry.armed) this.sink.writeHeld();
      }
      return this.handle(type, f);
    }
    if (this.state === 'closed') return false;
    if (this.state === 'idle' && this.queue.length === 0 && this.deps.messages.handleIdle(type, f, this.plan))
      return false;
    this.queue.push(f);
    // The route depends on the whole request: borrow a server once it is complete (Query, Sync, Flush, call), or
    // once it is long (a pipeline of thousands of Bind/Execute): what follows streams to that server.
    if (this.state !== 'idle') this.client.pause();
    else if (REQUEST_END[type] || this.queue.long) this.wantAcquire = true;
    return false;
  }

  /**
   * End the replica's part of the request before f (null: before the queued rest): pgnear's own Sync closes the
   * replica's implicit transaction (a read needs none), and what follows is routed afresh once it answers.
   */
  private divert(f: Buffer | null): false {
    this.sealed = true;
    this.diverted = true;
    if (f) {
      this.queue.push(f);
      this.client.pause();
    }
    this.send(SYNC);
    this.plan.push(Slot.HiddenSync);
    return false;
  }

  /** One client message for the attached server; true = forward it unchanged. */
  private handle(type: number, f: Buffer): boolean {
    this.unsynced = true;
    const keep = this.deps.messages.handle(type, f, this);
    if (REQUEST_END[type]) {
      if (type !== FE.Flush && this.lease!.retryable && !this.pinnedBy) this.sealed = true;
      // pgnear answered the request itself (SHOW pgnear.*, a local DEALLOCATE): no server reply will release
      // what the 25006 retry holds, and no statement of it can fail.
      if (this.plan.pending === 0 && this.sink.retry.armed) this.sink.writeHeld();
    }
    return keep;
  }

  private startAcquire(retry: boolean): void {
    this.state = 'acquiring';
    this.wantAcquire = false;
    this.deps.acquire(this.cancel, this.queue.items, retry, this);
    // Still waiting (the fast path attached already): hold the client's further bytes meanwhile.
    if (this.state === 'acquiring') this.client.pause();
  }

  /** LeaseReceiver: the acquire startAcquire began ended, possibly before it returned. */
  onLease(err: unknown, lease: Lease | null): void {
    if (!lease) {
      if (this.state === 'acquiring') this.deps.onFatal(err, 'acquire', true);
      return;
    }
    if (this.state !== 'acquiring' || this.cancel.cancelled) return lease.release(true);
    this.attach(lease);
  }

  private attach(lease: Lease): void {
    const conn = lease.conn;
    this.lease = lease;
    this.sink.retry.arm(lease.retryable ? this.queue.items.slice(0, lease.covers) : null);
    this.srv = conn;
    this.state = 'attached';
    this.diverted = false;
    const s = conn.socket;
    this.sink.attach(conn);
    conn.reader = this;
    s.cork(); // the queued request leaves in one writev, not one write per message
    this.deps.messages.closeEvicted(this);
    if (lease.begin) {
      // The transaction pgnear answered BEGIN for starts here, right before its first statement.
      this.unsynced = true;
      this.send(lease.begin);
      this.plan.push(Slot.HiddenSync);
    }
    this.replayQueue();
    s.uncork();
  }

  private replayQueue(all = false): void {
    // A replica outside a transaction runs only what it was chosen for; anything else may write.
    const q = this.queue.take(this.lease!.retryable && !all ? this.lease!.covers : this.queue.length);
    for (const f of q) {
      if (this.state !== 'attached') break;
      try {
        const before = this.handle(f[0], f) ? this.queue.runAdd(f) : null;
        if (before) this.srvWrite(before);
      } catch (e) {
        this.queue.runOut(); // the session ends: nothing more goes to this server
        this.deps.onFatal(e, 'protocol', true);
        return;
      }
    }
    this.writeRun();
    // The replica's part ended with a Flush and a write waits behind it (see plan's covers).
    const l = this.lease;
    if (l?.retryable && !this.sealed && !this.pinnedBy && this.queue.length > 0 && this.state === 'attached') {
      this.divert(null);
      return;
    }
    if (!this.serverFull) this.client.resume();
  }

  private detach(): ServerConn | null {
    const conn = this.srv;
    if (!conn) return null;
    if (conn.reader === this) conn.reader = null;
    this.sink.detach();
    const s = conn.socket;
    if (s.isPaused()) s.resume();
    this.srv = null;
    if (this.serverFull) {
      this.serverFull = false;
      if (this.state !== 'closed') this.client.resume();
    }
    return conn;
  }

  /** ServerSide: a ReadyForQuery arrived; if it answers the last request, no implicit transaction is open. */
  onReadyFrame(): void {
    if (this.plan.pending <= 1) this.unsynced = false;
  }

  onData(chunk: Buffer): void {
    const c = this.client;
    c.cork();
    try {
      this.sink.scanner.push(chunk, this.sink);
    } catch (e) {
      this.deps.onFatal(e, 'protocol', false);
      return;
    } finally {
      c.uncork();
    }
    if (this.sink.readySeen) {
      this.sink.readySeen = false;
      this.afterReady();
    }
  }

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
    const lease = this.lease!;
    if (this.sink.retry.active) {
      const redo = this.sink.retry.take();
      this.deps.messages.undoParses(redo);
      this.queue.unshift(redo);
      this.detach();
      return this.next(lease, true, true);
    }
    if (this.pinnedBy && this.queue.length) {
      this.sealed = false; // pinned (e.g. a hinted PREPARE on a replica): what waited goes to this server
      return this.replayQueue(true);
    }
    if (this.diverted) {
      this.diverted = false;
      // The replica failed before pgnear's Sync: Postgres would have skipped the client's messages up to its Sync.
      if (this.sink.failedBeforeReady) this.deps.messages.skipUntilSync();
    }
    // Once sealed, bytes of a next request are not this server's business.
    if (this.pinnedBy || (!this.clientScanner.atBoundary() && !this.sealed) || !this.sink.scanner.atBoundary()) return;
    const job = lease.finish();
    if (!job) {
      this.detach();
      return this.next(lease, true);
    }
    // Settings changed or a write committed: learn what the server now holds before another client can get it.
    this.state = 'finishing';
    this.detach();
    this.srv = conn;
    job.then((ok) => this.afterFinishing(lease, ok));
  }

  private afterFinishing(lease: Lease, ok: boolean): void {
    if (this.state !== 'finishing') return; // closed meanwhile: teardown released it
    this.srv = null;
    this.next(lease, ok);
  }

  /** The request is done and its server goes back; what the client sent meanwhile is routed afresh. */
  private next(lease: Lease, reusable: boolean, retry = false): void {
    this.state = 'idle';
    this.lease = null;
    this.sealed = false;
    lease.release(reusable);
    // What pgnear answers itself (SHOW pgnear.*, a known Parse, …) must not borrow a server that never replies.
    if (!retry) this.queue.consumeWhile((f) => this.deps.messages.handleIdle(f[0], f, this.plan));
    if (retry || this.queue.long || this.queue.hasRequest()) this.startAcquire(retry);
    else this.client.resume();
  }

  private onIdleInTransaction(): void {
    this.idleTimer = null;
    if (this.state === 'attached' && this.plan.pending === 0) this.deps.onFatal(null, 'idle_in_transaction', true);
  }

  retainsChunk(): boolean {
    return this.client.writableLength > 0;
  }

  onDrain(): void {
    if (this.serverFull) {
      this.serverFull = false;
      if (this.state === 'attached') this.client.resume();
    }
  }

  /** The client's socket drained (its session's shared listener): resume the server held back for it. */
  clientDrained(): void {
    this.srv?.socket.resume();
  }

  onClose(): void {
    if (this.state !== 'attached') return;
    const canReport = !this.sink.sawFatal && this.sink.scanner.atBoundary();
    this.detach();
    this.lease?.release(false);
    this.lease = null;
    this.state = 'idle';
    this.plan.clear();
    this.deps.onFatal(null, 'server_gone', canReport);
  }

  /** The session ends: see endLease for what happens to a server it holds. */
  close(): void {
    if (this.state === 'closed') return;
    const prev = this.state;
    this.state = 'closed';
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.cancel.cancel();
    const lease = this.lease;
    if (prev === 'finishing') return lease!.release(false);
    // Messages since the last ReadyForQuery may have opened an implicit transaction that only the server knows.
    const clean =
      !this.unsynced && this.plan.pending === 0 && this.clientScanner.atBoundary() && this.sink.scanner.atBoundary();
    this.plan.clear();
    if (this.detach() && lease) endLease(lease, clean && !this.pinnedBy);
  }
}
