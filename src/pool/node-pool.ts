// Server connections of one (node, user, database, startup parameters): idle LIFO stack, active set, reset on release.
import type { ServerCredentials } from './credentials.js';
import { ServerConn, type ServerTarget } from './server-conn.js';

export interface PoolKey {
  user: string;
  database: string;
  /** Startup parameters sent to the server (user/database included). */
  startup: [string, string][];
}

export interface NodePoolOptions {
  target: ServerTarget;
  key: PoolKey;
  connectTimeoutMs: number;
  resetQuery: string;
  idleTimeoutMs: number;
  /** Observability hook; the pool never logs by itself. */
  onEvent?: (event: 'server_open' | 'server_close', conn: ServerConn, reason: string) => void;
}

export class NodePool {
  /** Idle servers, most recently used last (LIFO keeps few servers warm). */
  private readonly idle: ServerConn[] = [];
  private readonly active = new Set<ServerConn>();

  constructor(readonly opts: NodePoolOptions) {}

  get size(): { idle: number; active: number } {
    return { idle: this.idle.length, active: this.active.size };
  }

  /** An idle server if one is healthy, else a new login with the client's credentials. */
  async acquire(creds: ServerCredentials): Promise<ServerConn> {
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      if (!c.closed && !c.socket.destroyed) {
        this.active.add(c);
        return c;
      }
    }
    const { target, key, connectTimeoutMs } = this.opts;
    const conn = await ServerConn.connect(target, key.startup, creds, key.user, connectTimeoutMs);
    conn.socket.once('close', () => this.forget(conn, 'server closed the connection'));
    this.opts.onEvent?.('server_open', conn, 'login');
    this.active.add(conn);
    return conn;
  }

  /**
   * Give a server back. Reusable only when it is idle outside a transaction and the reset query
   * succeeds; anything in an unknown state is closed, never reused.
   */
  async release(conn: ServerConn, reusable: boolean): Promise<void> {
    this.active.delete(conn);
    if (!reusable || conn.closed || conn.txStatus !== 'I') {
      this.close(conn, reusable ? `released in state ${conn.txStatus}` : 'released unusable');
      return;
    }
    try {
      if (this.opts.resetQuery) await conn.query(this.opts.resetQuery);
    } catch {
      this.close(conn, 'reset query failed');
      return;
    }
    if (conn.closed) return;
    conn.lastUsedAt = Date.now();
    this.idle.push(conn);
  }

  /** Close idle servers unused for longer than the idle timeout. Called by the janitor. */
  expireIdle(now = Date.now()): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const c = this.idle[i];
      if (now - c.lastUsedAt > this.opts.idleTimeoutMs) {
        this.idle.splice(i, 1);
        this.close(c, 'server_idle_timeout');
      }
    }
  }

  closeAll(reason: string): void {
    for (const c of this.idle.splice(0)) this.close(c, reason);
    for (const c of this.active) this.close(c, reason);
    this.active.clear();
  }

  private close(conn: ServerConn, reason: string): void {
    if (!conn.closed) {
      conn.close(reason);
      this.opts.onEvent?.('server_close', conn, reason);
    }
  }

  private forget(conn: ServerConn, reason: string): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.active.delete(conn);
    if (!conn.closed) {
      conn.closed = true;
      conn.closeReason = reason;
      this.opts.onEvent?.('server_close', conn, reason);
    }
  }
}
