// Borrows the server a request's route calls for: the node's pool, the client's settings applied, a replica
// caught up to the client's last write (or the primary instead), and what to learn before giving it back.
import type { AcquireCancel, NodePool } from '../pool/node-pool.js';
import type { ServerCredentials } from '../pool/credentials.js';
import { ServerError, type ServerConn } from '../pool/server-conn.js';
import { encodeQuery } from '../protocol/frontend.js';
import { waitSql } from '../topology/pg-prober.js';
import { parseLsn } from '../util/lsn.js';
import type { Decision } from '../routing/router.js';
import type { SessionContext } from './context.js';
import type { RoutePlan, RouteSession } from './route-session.js';
import type { SessionParams } from './session-params.js';

/** A server borrowed for one transaction, from the pool the route chose. */
export interface Lease {
  readonly conn: ServerConn;
  /** Give the server back; reusable = idle, outside a transaction, at a message boundary. */
  release(reusable: boolean): void;
  /** Work on the server after the transaction ends and before it goes back (settings read-back, write LSN). */
  finish(): Promise<boolean> | null;
  /** The batch ran on a replica outside a transaction: a read-only rejection (25006) may be retried on the primary. */
  readonly retryable: boolean;
  /** Queued messages this server was chosen for; later ones are routed once they are done. */
  readonly covers: number;
  /** A deferred BEGIN to send first, its replies hidden (a Query message), or null. */
  readonly begin: Buffer | null;
}

/**
 * The client left: a server it holds goes back only when provably clean; a transaction left open is rolled back
 * first; anything else (mid-message, replies pending, pinned session state) closes the server.
 */
export function endLease(lease: Lease, clean: boolean): void {
  const conn = lease.conn;
  if (!clean || conn.closed) lease.release(false);
  else if (conn.txStatus === 'I') lease.release(true);
  else {
    conn.query('ROLLBACK').then(
      () => lease.release(conn.txStatus === 'I'),
      () => lease.release(false),
    );
  }
}

/** Hears how an acquire ended: a lease, or the error that ends the session. */
export interface LeaseReceiver {
  onLease(err: unknown, lease: Lease | null): void;
}

const unreachable = (node: string) => new ServerError(`node ${node} is not reachable`, '08006', null, 'ERROR');

function deliver(p: Promise<Lease>, to: LeaseReceiver): void {
  p.then(
    (lease) => to.onLease(null, lease),
    (e: unknown) => to.onLease(e, null),
  );
}

export interface LeaseDeps {
  ctx: SessionContext;
  creds: ServerCredentials;
  /** The pool of a node for this client's (user, database). */
  poolOf(node: string): NodePool | null;
  params: SessionParams;
  route: RouteSession;
  statementSql(name: string): string | undefined;
}

export class LeaseProvider {
  constructor(private readonly d: LeaseDeps) {}

  /**
   * Route the batch and borrow its server; `to` hears the outcome exactly once, possibly before acquire() returns:
   * at once when nothing has to be waited for (an idle server that already carries the client's settings, no
   * global-scope settle, no replay wait), else when the pool hands over a server (inside the release that frees it,
   * no promise hop) or the waits end. `cancel` abandons a queued acquire.
   */
  acquire(cancel: AcquireCancel, batch: readonly Buffer[], retry: boolean, to: LeaseReceiver): void {
    const { route, ctx } = this.d;
    const settled = route.global ? ctx.routing.global.settled(ctx.routing.waitBudgetMs() + 1_000) : null;
    if (settled)
      return deliver(
        settled.then(() => this.borrowFor(this.plan(batch, retry), batch, cancel)),
        to,
      );
    let plan: RoutePlan;
    try {
      plan = this.plan(batch, retry);
    } catch (e) {
      return to.onLease(e, null);
    }
    const decision = plan.decision;
    if (decision.waitLsn !== undefined) return deliver(this.borrowFor(plan, batch, cancel), to);
    const pool = this.d.poolOf(decision.node);
    if (!pool) return to.onLease(unreachable(decision.node), null);
    const conn = pool.tryAcquire();
    if (conn) return this.served(plan, decision, conn, batch.length, to);
    pool.request(this.d.creds, cancel, (err, c) =>
      err ? to.onLease(err, null) : this.served(plan, decision, c!, batch.length, to),
    );
  }

  /** A server for a plan without waits: the lease, after applying the client's settings when the server differs. */
  private served(plan: RoutePlan, decision: Decision, conn: ServerConn, queued: number, to: LeaseReceiver): void {
    this.busy(decision.node, 1);
    if (this.d.params.syncSql(conn) === null) return to.onLease(null, this.leaseFor(plan, decision, conn, queued));
    deliver(
      this.synced(decision.node, conn).then((c) => this.leaseFor(plan, decision, c, queued)),
      to,
    );
  }

  private plan(batch: readonly Buffer[], retry: boolean): RoutePlan {
    const { route, ctx } = this.d;
    const plan = route.plan(batch, (n) => this.d.statementSql(n), retry);
    if (!plan) throw new ServerError('no primary server is available', '08006', null, 'ERROR');
    // Hot path: no log object is built unless trace is on.
    if (ctx.log.isLevelEnabled('trace')) {
      const d = plan.decision;
      ctx.log.trace({ node: d.node, reason: d.reason, covers: plan.covers, queued: batch.length }, 'route');
    }
    return plan;
  }

  /** With waits: a server, a replica caught up to the client's writes, else the primary instead. */
  private async borrowFor(plan: RoutePlan, batch: readonly Buffer[], cancel: AcquireCancel): Promise<Lease> {
    const { ctx } = this.d;
    let decision = plan.decision;
    let conn = await this.borrow(decision, cancel);
    if (decision.waitLsn !== undefined) {
      const caughtUp = await this.waitReplay(conn, decision.waitLsn, ctx.routing.waitBudgetMs());
      if (!caughtUp) {
        this.give(decision.node, conn, !conn.closed && conn.txStatus === 'I');
        const primary = ctx.routing.nodes().primary;
        if (!primary) throw new ServerError('no primary server is available', '08006', null, 'ERROR');
        decision = { node: primary.name, role: 'primary', reason: 'lsn_fallback' };
        ctx.routing.onDecision(decision);
        conn = await this.borrow(decision, cancel);
      }
    }
    return this.leaseFor(plan, decision, conn, batch.length);
  }

  private leaseFor(plan: RoutePlan, decision: Decision, conn: ServerConn, queued: number): Lease {
    const replica = decision.role === 'replica';
    const lease = this.lease(
      decision,
      conn,
      plan.captureLsn,
      plan.retryable && replica,
      replica ? plan.covers : queued,
    );
    return plan.begin === null ? lease : { ...lease, begin: encodeQuery(plan.begin) };
  }

  private async borrow(decision: Decision, cancel: AcquireCancel): Promise<ServerConn> {
    const pool = this.d.poolOf(decision.node);
    if (!pool) throw unreachable(decision.node);
    const conn = await pool.acquire(this.d.creds, cancel);
    this.busy(decision.node, 1);
    // No extra await (a microtask per queued transaction) when the server already carries the settings.
    return this.d.params.syncSql(conn) === null ? conn : this.synced(decision.node, conn);
  }

  /** The client's settings applied to a borrowed server (given back on failure). */
  private async synced(node: string, conn: ServerConn): Promise<ServerConn> {
    try {
      await this.d.params.syncTo(conn);
    } catch (e) {
      this.give(node, conn, !conn.closed && conn.txStatus === 'I');
      throw e;
    }
    return conn;
  }

  private busy(node: string, delta: number): void {
    const busy = this.d.ctx.routing.busy;
    busy.set(node, Math.max(0, (busy.get(node) ?? 0) + delta));
  }

  /** One round trip on the borrowed replica itself (the monitor's loop, failing when the target is not reached). */
  private async waitReplay(conn: ServerConn, lsn: bigint, ms: number): Promise<boolean> {
    try {
      await conn.query(waitSql(lsn, ms, true, true), ms + 5_000);
      return true;
    } catch {
      return false;
    }
  }

  private give(node: string, conn: ServerConn, reusable: boolean): void {
    this.busy(node, -1);
    void this.d.poolOf(node)?.release(conn, { reusable, reset: false });
  }

  private lease(decision: Decision, conn: ServerConn, captureLsn: boolean, retryable: boolean, covers: number): Lease {
    const { params, route } = this.d;
    let released = false;
    return {
      conn,
      retryable,
      covers,
      begin: null,
      release: (reusable) => {
        if (released) return;
        released = true;
        this.give(decision.node, conn, reusable);
      },
      finish: () => {
        const rb = params.readBackSql();
        if (!rb && !captureLsn) return null;
        // One round trip: the settings read back, then (for a write) the WAL position at or past its commit.
        const sql = `${rb ? `${rb.sql}; ` : ''}${captureLsn ? 'SELECT pg_catalog.pg_current_wal_insert_lsn()::text' : ''}`;
        if (captureLsn) route.writing();
        return conn.query(sql).then(
          (rows) => {
            if (rb) params.readBack(conn, rb.names, rows.slice(0, rb.names.length));
            if (captureLsn) route.noteWrite(parseLsn(rows[rows.length - 1] ?? ''));
            return true;
          },
          () => {
            if (captureLsn) route.noteWrite(null);
            return false;
          },
        );
      },
    };
  }
}
