// Everything a client session needs from the rest of pgnear, assembled once by the app.
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { AcquireCancel } from '../pool/node-pool.js';
import type { PoolSet } from '../pool/pool-set.js';
import type { ServerTarget } from '../pool/server-conn.js';
import type { CancelRegistry } from './cancel.js';
import type { AuthMethod } from './client-auth.js';
import type { SecretSource } from './secrets.js';
import type { SessionEffects as SqlEffects, SqlAnalysis } from '../routing/sql-analysis.js';
import type { Consistency, Decision, RouteInput, RouteNodes } from '../routing/router.js';
import type { TxStatus } from '../protocol/codes.js';
import type { LeaseReceiver } from './server-lease.js';
import type { TxMessages } from './tx-messages.js';

export type { PinReason, SessionEffects as SqlEffects } from '../routing/sql-analysis.js';

/** Session lifecycle events; observability subscribes, the session never imports metrics. */
export interface SessionEvents {
  clientOpened(): void;
  clientClosed(reason: string): void;
  loginFailed(sqlstate: string): void;
  loginSucceeded(): void;
  /** A transaction-mode client was pinned to its server. */
  clientPinned(reason: string): void;
}

export interface SessionSettings {
  authMethod: AuthMethod;
  tlsMode: 'disable' | 'allow' | 'require';
  maxClientConn: number;
  maxMessageSize: number;
  loginTimeoutMs: number;
  /** Per-server LRU of pgnear-managed prepared statements (transaction mode). */
  maxPreparedStatements: number;
  /** 0 = never. */
  idleTransactionTimeoutMs: number;
}

/**
 * The newest write LSN of this pgnear, and the writes whose LSN is still being read: a client's commit is
 * forwarded before its LSN is known, so a global-scope read waits for those (one round trip at most).
 */
export class GlobalLsn {
  lsn: bigint | null = null;
  private pending = 0;
  private waiters: (() => void)[] = [];

  begin(): void {
    this.pending++;
  }

  end(lsn: bigint | null): void {
    if (lsn !== null && (this.lsn === null || lsn > this.lsn)) this.lsn = lsn;
    if (--this.pending > 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves once no capture is in flight (or after `maxMs`); null when none is. */
  settled(maxMs: number): Promise<void> | null {
    if (this.pending === 0) return null;
    return new Promise((resolve) => {
      const t = setTimeout(resolve, maxMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** What sessions need for read/write routing; app.ts builds it from topology, routing and config. */
export interface RoutingServices {
  /** false: every request goes to the primary. */
  enabled: boolean;
  consistency: Consistency;
  /** How long a replica may be waited on for an LSN: max_wait, or under 'fastest' about what the primary costs. */
  waitBudgetMs(): number;
  /** Current nodes as the router sees them. */
  nodes(): RouteNodes;
  /** How to reach a node's servers. */
  target(node: string): ServerTarget | null;
  classify(sql: string): SqlAnalysis;
  decide(input: RouteInput, nodes: RouteNodes): Decision | null;
  matchRule(who: {
    user: string;
    database: string;
    applicationName: string;
    sql: string;
  }): { route: 'primary' | 'replica' | 'auto'; consistency?: Consistency } | null;
  fingerprint(sql: string): string | null;
  /** Statement texts a replica rejected with 25006. */
  knownWrites: { has(sql: string): boolean; add(sql: string): void };
  /** Newest write LSN this pgnear has seen (global consistency). */
  global: GlobalLsn;
  /** Servers borrowed per node right now (least outstanding work). */
  busy: Map<string, number>;
  onDecision(d: Decision): void;
}

export interface SessionContext {
  settings: SessionSettings;
  secrets: SecretSource;
  pools: PoolSet;
  cancels: CancelRegistry;
  secureContext: tls.SecureContext | null;
  log: Logger;
  events: SessionEvents;
  /** Where sessions go until routing lands: the primary. */
  primary(): ServerTarget;
  /** Pool mode and pool size (undefined = the configured default) for a (user, database). */
  poolFor(user: string, database: string): { mode: 'session' | 'transaction'; size: number | undefined };
  /** Session effects of a SQL string (cached; cheap for the common no-effect case). */
  analyze(sql: string): SqlEffects;
  routing: RoutingServices;
  /** Sessions past startup, counted against max_client_conn. */
  activeClients: { count: number };
  isShuttingDown(): boolean;
}

/** What a transaction-mode relay needs from its session (built by txRelay in tx-login.ts). */
export interface TxRelayDeps {
  /** Route the batch and borrow a server for it (settings synced, replica caught up when needed). */
  acquire(cancel: AcquireCancel, batch: readonly Buffer[], retry: boolean, to: LeaseReceiver): void;
  messages: TxMessages;
  /** On a replica, could this client message need another server (see RouteSession.mayWrite)? */
  leavesReplica(type: number, f: Buffer): boolean;
  maxMessage: number;
  idleTransactionTimeoutMs: number;
  onReady(status: TxStatus): void;
  onTerminate(): void;
  onPinned(reason: string): void;
  /** Fatal for the session: the error (or null) and where it happened. */
  onFatal(
    err: unknown,
    where: 'acquire' | 'server_gone' | 'protocol' | 'idle_in_transaction',
    canReport: boolean,
  ): void;
}
