// Everything a client session needs from the rest of pgnear, assembled once by the app.
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { PoolSet } from '../pool/pool-set.js';
import type { ServerTarget } from '../pool/server-conn.js';
import type { CancelRegistry } from './cancel.js';
import type { AuthMethod } from './client-auth.js';
import type { SecretSource } from './secrets.js';
import type { SessionEffects as SqlEffects } from '../routing/sql-analysis.js';

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
  /** Sessions past startup, counted against max_client_conn. */
  activeClients: { count: number };
  isShuttingDown(): boolean;
}
