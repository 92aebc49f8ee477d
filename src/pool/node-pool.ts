// Server connections of one (node, user, database, startup parameters): PgBouncer-style limits, FIFO waiters, LIFO idle.
import { Fifo, type FifoHandle } from '../util/fifo.js';
import type { ServerCredentials } from './credentials.js';
import type { Connector, DbSlots, NodePoolOptions, PoolLimits, PoolStats, ReleaseOptions } from './pool-set.js';
import type { AcquireCancel } from './acquire-cancel.js';
import { aborted, poolClosed, poolFull, PoolTimeoutError } from './pool-errors.js';
import { type ConnState, LEGAL } from './conn-state.js';
import { ServerConn, type ServerReader } from './server-conn.js';

export { AcquireCancel } from './acquire-cancel.js';
export { PoolError, PoolTimeoutError } from './pool-errors.js';
export type { ConnState } from './conn-state.js';

/** How an acquire ends: a server, or the error (PoolError or the login's ServerError). */
export type Served = (err: Error | null, conn: ServerConn | null) => void;

interface Waiter {
  creds: ServerCredentials;
  since: number;
  done: Served;
  timer: NodeJS.Timeout | null;
  /** Set while queued. */
  handle: FifoHandle<Waiter> | null;
  settled: boolean;
  cancel: AcquireCancel | null;
}

type Entry = { state: ConnState; onClose: () => void; idleReader: ServerReader };

export class NodePool {
  readonly limits: PoolLimits;
  /** Every open server and its state; only transition() writes it. */
  private readonly conns = new Map<ServerConn, Entry>();
  /** Idle servers, most recently used last (LIFO keeps few servers warm). */
  private readonly idle: ServerConn[] = [];
  private readonly counts = { connecting: 0, idle: 0, active: 0, checking: 0, resetting: 0, closed: 0 };
  private readonly queue = new Fifo<Waiter>();
  /** Waiters out of the queue whose own login or probe is in flight. */
  private readonly inflight = new Set<Waiter>();
  private pending = 0;
  private readonly db: DbSlots;
  private readonly connector: Connector;
  private prewarmCreds: ServerCredentials | null = null;
  private prewarming = false;
  private prewarmRetryAt = 0;
  private closing = false;
  private pumping = false;
  private again = false;

  constructor(readonly opts: NodePoolOptions) {
    this.limits = opts.limits;
    this.db = opts.dbSlots ?? { used: 0, max: opts.limits.maxDbConnections, pools: new Set() };
    this.db.pools.add(this);
    this.connector = opts.connect ?? ((t, s, c, u, ms) => ServerConn.connect(t, s, c, u, ms));
  }

  /**
   * A server for this client: the most recently used idle one (probed first when unused for checkDelayMs), else a new
   * login with `creds` within the limits, else the oldest-first wait queue. Rejects with the login's ServerError, or a
   * PoolError (PoolTimeoutError, or full / closed / aborted: `cancel` fired before a server was handed over).
   */
  acquire(creds: ServerCredentials, cancel?: AcquireCancel): Promise<ServerConn> {
    return new Promise<ServerConn>((resolve, reject) =>
      this.request(creds, cancel ?? null, (err, conn) => (err ? reject(err) : resolve(conn!))),
    );
  }

  /**
   * acquire() as a callback, called exactly once and possibly before request() returns: a server released while
   * others wait reaches the oldest of them inside release(), with no promise hop per queued transaction.
   */
  request(creds: ServerCredentials, cancel: AcquireCancel | null, done: Served): void {
    if (this.closing) return done(poolClosed(), null);
    if (cancel?.cancelled) return done(aborted(), null);
    if (this.queue.length >= this.limits.maxWaiters) return done(poolFull(), null);
    const w: Waiter = { creds, since: Date.now(), done, timer: null, handle: null, settled: false, cancel: null };
    w.handle = this.queue.push(w);
    this.pump();
    // Served at once (the common case): no timer or cancel hook was worth arming.
    if (w.settled) return;
    if (this.limits.queryWaitTimeoutMs > 0) {
      w.timer = setTimeout(() => this.settle(w, new PoolTimeoutError()), this.limits.queryWaitTimeoutMs);
    }
    if (cancel) {
      w.cancel = cancel;
      cancel.hook = () => this.settle(w, aborted());
    }
  }

  /**
   * The transaction-pooling fast path: the most recently used idle server, handed over synchronously, when nobody
   * waits and it needs no probe; else null (then acquire() queues, opens or probes as usual).
   */
  tryAcquire(): ServerConn | null {
    if (this.closing || this.queue.length > 0) return null;
    const conn = this.takeIdle();
    if (!conn) return null;
    if (this.limits.checkQuery && Date.now() - conn.lastUsedAt >= this.limits.checkDelayMs) return null;
    return this.transition(conn, 'active', 'acquired') ? conn : null;
  }

  /**
   * Give a server back; the old boolean form means { reusable, reset: true } (session mode). Closed unless reusable,
   * open, idle outside a transaction ('I'), younger than lifetimeMs and, when `reset`, reset successfully; then handed
   * to the oldest waiter or kept idle. Never throws.
   */
  async release(conn: ServerConn, opts: boolean | ReleaseOptions): Promise<void> {
    const { reusable, reset = false } = typeof opts === 'boolean' ? { reusable: opts, reset: true } : opts;
    const state = this.conns.get(conn)?.state;
    if (state === undefined && conn.closed) return; // already closed and forgotten
    if (state !== 'active') {
      this.illegal(conn, state ?? 'new', 'idle', 'release of a server not handed out');
      return;
    }
    const why = reusable ? this.unfit(conn, Date.now()) : 'released unusable';
    if (why) {
      this.transition(conn, 'closed', why);
      return;
    }
    if (reset && this.limits.resetQuery) {
      this.transition(conn, 'resetting', 'reset');
      const ok = await conn.query(this.limits.resetQuery, this.limits.connectTimeoutMs).then(
        () => conn.txStatus === 'I' && !conn.closed,
        () => false,
      );
      if (this.conns.get(conn)?.state !== 'resetting') return; // died or closeAll meanwhile
      if (!ok) {
        this.transition(conn, 'closed', 'reset query failed');
        return;
      }
    }
    // On top of the LIFO stack: the pump hands it straight to the oldest waiter, if any; at max_db_connections,
    // waiters of other pools of the database may take its slot (evicting it).
    this.transition(conn, 'idle', 'released');
    if (this.dbFull()) this.slotFreed();
    else this.pump();
  }

  /** Janitor tick: close idle servers past lifetimeMs or idleTimeoutMs, then serve waiters and top up minPoolSize. */
  maintain(now = Date.now()): void {
    const { idleTimeoutMs, minPoolSize } = this.limits;
    for (const conn of [...this.idle]) {
      const expired = idleTimeoutMs > 0 && now - conn.lastUsedAt > idleTimeoutMs && this.total() > minPoolSize;
      const why = this.unfit(conn, now) ?? (expired ? 'server_idle_timeout' : null);
      if (why) this.transition(conn, 'closed', why);
    }
    this.pump();
  }

  /** Reject every waiter with PoolClosedError, close every server; later acquires fail the same way. */
  closeAll(reason: string): void {
    this.closing = true;
    for (const w of [...this.queue, ...this.inflight]) this.settle(w, poolClosed());
    for (const conn of [...this.conns.keys()]) this.transition(conn, 'closed', reason);
    this.db.pools.delete(this);
  }

  stats(now = Date.now()): PoolStats {
    let oldest = this.queue.peek()?.since ?? now;
    for (const w of this.inflight) oldest = Math.min(oldest, w.since);
    const c = this.counts;
    return {
      idle: c.idle,
      active: c.active,
      tested: c.checking + c.resetting,
      connecting: this.pending + c.connecting,
      total: this.total(),
      waiting: this.queue.length + this.inflight.size,
      maxWaitMs: now - oldest,
    };
  }

  /** The pool's view of a server; undefined once closed or when not ours. */
  stateOf(conn: ServerConn): ConnState | undefined {
    return this.conns.get(conn)?.state;
  }

  /** Serve waiters oldest first; re-entrant calls (a close inside the loop) fold into the running loop. */
  pump(): void {
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    try {
      do this.again = false;
      while (this.serveOne() || this.again);
    } finally {
      this.pumping = false;
    }
    this.topUp();
  }

  private serveOne(): boolean {
    if (this.queue.length === 0) return false;
    const conn = this.takeIdle();
    if (!conn && !this.canOpen()) return false;
    const w = this.queue.shift()!;
    w.handle = null;
    if (!conn) this.open(w, w.creds);
    else if (this.limits.checkQuery && Date.now() - conn.lastUsedAt >= this.limits.checkDelayMs) this.check(conn, w);
    else this.give(w, conn);
    return true;
  }

  /** The most recently used idle server still worth handing out; dead or too old ones are closed on the way. */
  private takeIdle(): ServerConn | null {
    for (let conn = this.idle.at(-1); conn; conn = this.idle.at(-1)) {
      const why = this.unfit(conn, Date.now());
      if (!why) return conn;
      this.transition(conn, 'closed', why);
    }
    return null;
  }

  private canOpen(): boolean {
    if (this.closing || this.total() >= this.limits.poolSize) return false;
    if (!this.dbFull()) return true;
    // Like PgBouncer: at max_db_connections, close the oldest idle server of another pool of the database.
    const donor = [...this.db.pools].find((p) => p !== this && p.idle.length > 0);
    donor?.transition(donor.idle[0], 'closed', 'evicted (max_db_connections)');
    return !this.dbFull();
  }

  private open(w: Waiter | null, creds: ServerCredentials): void {
    if (w) this.inflight.add(w);
    this.pending++;
    this.db.used++;
    const { target, key } = this.opts;
    this.connector(target, key.startup, creds, key.user, this.limits.connectTimeoutMs).then(
      (conn) => this.opened(conn, w, creds),
      (err: Error) => this.openFailed(err, w),
    );
  }

  private opened(conn: ServerConn, w: Waiter | null, creds: ServerCredentials): void {
    this.pending--;
    if (w) this.inflight.delete(w);
    else this.prewarming = false;
    this.prewarmCreds = creds; // proven by this login
    this.transition(conn, 'connecting', 'login');
    if (this.closing) this.transition(conn, 'closed', 'pool closed');
    else if (!(w && this.give(w, conn))) this.transition(conn, 'idle', w ? 'acquirer gone' : 'min_pool_size');
    this.pump();
  }

  private openFailed(err: Error, w: Waiter | null): void {
    this.pending--;
    this.db.used--;
    if (w) {
      this.inflight.delete(w);
      if (!w.settled) this.settle(w, err);
      else this.opts.onError?.(`server login failed after its acquirer left: ${err.message}`, null);
    } else {
      this.prewarming = false;
      this.prewarmRetryAt = Date.now() + 1_000;
      if (/^28/.test((err as { sqlstate?: string }).sqlstate ?? '')) this.prewarmCreds = null;
      this.opts.onError?.(`min_pool_size login failed: ${err.message}`, null);
    }
    this.slotFreed();
  }

  private check(conn: ServerConn, w: Waiter): void {
    this.transition(conn, 'checking', 'server_check_delay');
    this.inflight.add(w);
    const after = (ok: boolean) => {
      this.inflight.delete(w);
      if (!ok || conn.txStatus !== 'I' || conn.closed || this.conns.get(conn)?.state !== 'checking') {
        if (!w.settled) w.handle = this.queue.unshift(w); // first in line for the next server
        this.transition(conn, 'closed', 'check_failed');
      } else if (!this.give(w, conn)) this.transition(conn, 'idle', 'checked');
      this.pump();
    };
    conn.query(this.limits.checkQuery, this.limits.connectTimeoutMs).then(
      () => after(true),
      () => after(false),
    );
  }

  /** Hand a server to a waiter (refused move: the waiter goes back to the front); false when the waiter left. */
  private give(w: Waiter, conn: ServerConn): boolean {
    if (w.settled) return false;
    if (this.transition(conn, 'active', 'acquired')) this.settle(w, conn);
    else w.handle = this.queue.unshift(w);
    return true;
  }

  /** Resolve or reject a waiter once, dropping its queue entry, timer and abort listener. */
  private settle(w: Waiter, result: ServerConn | Error): void {
    if (w.settled) return;
    w.settled = true;
    if (w.handle) this.queue.remove(w.handle);
    w.handle = null;
    this.inflight.delete(w);
    if (w.timer) clearTimeout(w.timer);
    if (w.cancel) w.cancel.hook = null;
    try {
      if (result instanceof Error) w.done(result, null);
      else w.done(null, result);
    } catch (e) {
      // The callback runs inside pool bookkeeping (release, pump): its failure must not leave the pool half-updated.
      this.opts.onError?.(`acquire callback failed: ${(e as Error).message}`, result instanceof Error ? null : result);
    }
  }

  /** Open servers in the background, one at a time, up to minPoolSize, with the last proven credentials. */
  private topUp(): void {
    const creds = this.prewarmCreds;
    if (!creds || this.prewarming || this.closing || this.total() >= this.limits.minPoolSize) return;
    if (this.dbFull() || Date.now() < this.prewarmRetryAt) return;
    this.prewarming = true;
    this.open(null, creds);
  }

  private slotFreed(): void {
    this.pump();
    if (this.db.max > 0) for (const p of this.db.pools) if (p !== this) p.pump();
  }

  private dbFull(): boolean {
    return this.db.max > 0 && this.db.used >= this.db.max;
  }

  private total(): number {
    return this.conns.size + this.pending;
  }

  /** Why a server must not be reused ('server_lifetime': rotated between transactions), or null. */
  private unfit(conn: ServerConn, now: number): string | null {
    if (conn.closed || conn.socket.destroyed) return 'server closed the connection';
    if (conn.txStatus !== 'I') return `server in transaction state ${conn.txStatus}`;
    return this.limits.lifetimeMs > 0 && now - conn.createdAt > this.limits.lifetimeMs ? 'server_lifetime' : null;
  }

  private illegal(conn: ServerConn, from: ConnState | 'new', to: ConnState, reason: string): void {
    this.opts.onError?.(`illegal server state transition ${from} -> ${to} (${reason}); closing server`, conn);
    if (this.conns.has(conn)) this.transition(conn, 'closed', `illegal transition ${from} -> ${to}`);
    else conn.close(`illegal transition ${from} -> ${to}`);
  }

  /**
   * The only place a server changes state: keeps the idle stack, counts, listeners, db slots and events consistent.
   * Illegal moves are reported through onError and close the server. Returns false when the move was refused.
   */
  private transition(conn: ServerConn, to: ConnState, reason: string): boolean {
    const e = this.conns.get(conn);
    const from = e?.state ?? 'new';
    if (!e && to === 'closed') return true; // already closed and forgotten
    if (!LEGAL[from].includes(to)) {
      this.illegal(conn, from, to, reason);
      return false;
    }
    const entry: Entry = e ?? {
      state: to,
      onClose: () => this.transition(conn, 'closed', conn.closeReason || 'server closed the connection'),
      idleReader: {
        onData: () => this.transition(conn, 'closed', 'unexpected data from idle server'),
        onDrain: () => {},
        onClose: () => {},
        retainsChunk: () => false,
      },
    };
    if (e) this.counts[from as ConnState]--;
    if (from === 'idle') {
      const at = this.idle.lastIndexOf(conn);
      if (at === this.idle.length - 1) this.idle.pop();
      else this.idle.splice(at, 1);
      if (conn.reader === entry.idleReader) conn.reader = null;
    }
    entry.state = to;
    switch (to) {
      case 'connecting':
        this.conns.set(conn, entry);
        conn.socket.once('close', entry.onClose);
        this.opts.onEvent?.('server_open', conn, reason);
        break;
      case 'idle':
        conn.lastUsedAt = Date.now();
        this.idle.push(conn);
        conn.reader = entry.idleReader;
        break;
      case 'closed':
        this.conns.delete(conn);
        conn.socket.off('close', entry.onClose);
        conn.close(reason);
        this.db.used--;
        this.opts.onEvent?.('server_close', conn, reason);
        this.slotFreed();
        return true;
    }
    this.counts[to]++;
    return true;
  }
}
