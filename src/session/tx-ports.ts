// What the transaction-mode message handler (TxMessages) needs of its relay, the client's routing state and the
// SQL analyzer: objects with methods, not closures (a closure and its context per client cost memory per idle client).
import type { TxStatus } from '../protocol/codes.js';
import type { ServerConn } from '../pool/server-conn.js';
import type { PinReason, SqlEffects } from './context.js';
import type { ResponsePlan } from './response-plan.js';
import type { LocalAnswer } from './local-statements.js';
import type { Intercepted } from './route-session.js';

/** What the handler needs from the relay that owns the server connection. */
export interface TxOutput {
  /** Write bytes to the server after whatever the client scanner has pending. */
  send(bytes: Buffer): void;
  readonly plan: ResponsePlan;
  readonly server: ServerConn;
  pin(reason: PinReason): void;
  /** The client keeps this server until it leaves (SQL-level PREPAREs may live on it). */
  readonly pinned: boolean;
}

/** What TxMessages asks of the client's routing state (RouteSession implements it). */
export interface TxRouteHooks {
  /** pgnear's own reply to a Query, without ReadyForQuery; null = not ours. */
  intercept(query: Buffer, status: TxStatus, detached: boolean): Intercepted | null;
  /** The client is in a transaction pgnear deferred (its idle Sync answers 'T'). */
  readonly deferredTxn: boolean;
  /** A SET/RESET pgnear.* that ran through the extended protocol. */
  applySetting(sql: string): void;
  /** pgnear's answer to SHOW pgnear.* / EXPLAIN ROUTE sent as an unnamed extended-protocol statement; null = not ours. */
  ownAnswer(sql: string, status: TxStatus): LocalAnswer | null;
}

/** The SQL analyzer (session effects of a statement). */
export interface SqlAnalyzerHook {
  analyze(sql: string): SqlEffects;
}
