// Everything a client session needs from the rest of pgnear, assembled once by the app.
import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { PoolSet } from '../pool/pool-set.js';
import type { ServerTarget } from '../pool/server-conn.js';
import type { CancelRegistry } from './cancel.js';
import type { AuthMethod } from './client-auth.js';
import type { SecretSource } from './secrets.js';

/** Session lifecycle events; observability subscribes, the session never imports metrics. */
export interface SessionEvents {
  clientOpened(): void;
  clientClosed(reason: string): void;
  loginFailed(sqlstate: string): void;
  loginSucceeded(): void;
}

export interface SessionSettings {
  authMethod: AuthMethod;
  tlsMode: 'disable' | 'allow' | 'require';
  maxClientConn: number;
  maxMessageSize: number;
  loginTimeoutMs: number;
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
  /** Sessions past startup, counted against max_client_conn. */
  activeClients: { count: number };
  isShuttingDown(): boolean;
}
