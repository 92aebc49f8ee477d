// Maps whatever ended a session (login refusal, server error, protocol violation, pool timeout) to the
// ErrorResponse the client gets and to one structured log line.
import { encodeError, type ErrorFields } from '../protocol/backend.js';
import { SQLSTATE } from '../protocol/codes.js';
import { ProtocolError } from '../protocol/errors.js';
import { ServerError } from '../pool/server-conn.js';
import { AuthFailure } from './client-auth.js';
import type { SessionContext } from './context.js';
import { SecretLookupError } from './secrets.js';

/** A login refused by pgnear itself, reported as FATAL with a Postgres SQLSTATE. */
export class LoginError extends Error {
  readonly code = 'PGNEAR_E_LOGIN';
  constructor(
    readonly sqlstate: string,
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** Startup checks before authentication; returns the user name or throws the LoginError Postgres would send. */
export function checkStartup(
  params: Map<string, string>,
  ctx: Pick<SessionContext, 'settings' | 'isShuttingDown' | 'activeClients'>,
  tlsActive: boolean,
): string {
  const s = ctx.settings;
  if (s.tlsMode === 'require' && !tlsActive) {
    throw new LoginError(SQLSTATE.InvalidAuthorization, 'SSL required', 'pgnear is configured with tls.mode: require');
  }
  if (ctx.isShuttingDown()) throw new LoginError(SQLSTATE.CannotConnectNow, 'the database system is shutting down');
  const user = params.get('user');
  if (!user) throw new LoginError(SQLSTATE.InvalidAuthorization, 'no PostgreSQL user name specified in startup packet');
  const repl = params.get('replication');
  if (repl !== undefined && replicationRequested(repl)) {
    throw new LoginError(SQLSTATE.FeatureNotSupported, 'replication connections are not supported by pgnear');
  }
  if (ctx.activeClients.count >= s.maxClientConn) {
    throw new LoginError(SQLSTATE.TooManyConnections, 'sorry, too many clients already');
  }
  return user;
}

export const ADMIN_SHUTDOWN: ErrorFields = {
  severity: 'FATAL',
  code: SQLSTATE.AdminShutdown,
  message: 'terminating connection due to administrator command',
};

export const SERVER_GONE: ErrorFields = {
  severity: 'FATAL',
  code: SQLSTATE.ConnectionFailure,
  message: 'server closed the connection unexpectedly',
  detail: 'This probably means the server terminated abnormally before or while processing the request.',
};

/** PgBouncer's wording. */
export const LOGIN_TIMEOUT: ErrorFields = {
  severity: 'FATAL',
  code: SQLSTATE.ProtocolViolation,
  message: 'client_login_timeout (server down or wrong credentials?)',
};

/** Worded as Postgres words its own idle_in_transaction_session_timeout. */
export const IDLE_IN_TRANSACTION: ErrorFields = {
  severity: 'FATAL',
  code: '25P03',
  message: 'terminating connection due to idle-in-transaction timeout',
};

export interface Failure {
  frame: Buffer;
  sqlstate: string;
  /** Counts as a failed login in metrics. */
  loginFailed: boolean;
  level: 'info' | 'warn' | 'error';
  event: string;
  logMessage: string;
  reason: string;
}

/** The pool could not give a server in time (PoolTimeoutError and friends carry this code). */
function isPoolError(e: unknown): e is Error & { sqlstate: string } {
  const code = (e as { code?: string } | null)?.code;
  return code === 'PGNEAR_E_POOL_TIMEOUT' || code === 'PGNEAR_E_POOL_FULL' || code === 'PGNEAR_E_POOL_CLOSED';
}

export function describeFailure(e: unknown): Failure {
  const fatal = (code: string, message: string, detail?: string) =>
    encodeError({ severity: 'FATAL', code, message, detail });
  if (e instanceof LoginError || e instanceof AuthFailure) {
    return {
      frame: fatal(e.sqlstate, e.message, e.detail),
      sqlstate: e.sqlstate,
      loginFailed: true,
      level: 'info',
      event: 'login rejected',
      logMessage: e.message,
      reason: e.message,
    };
  }
  if (isPoolError(e)) {
    // Worded like PgBouncer's "ERROR: query_wait_timeout" so operators recognise it; the client is then closed.
    const frame = encodeError({ severity: 'ERROR', code: e.sqlstate, message: e.message });
    return {
      frame,
      sqlstate: e.sqlstate,
      loginFailed: false,
      level: 'warn',
      event: 'no server connection for client',
      logMessage: e.message,
      reason: e.message,
    };
  }
  if (e instanceof ServerError) {
    const frame = e.frame ?? fatal(e.sqlstate, e.message);
    return {
      frame,
      sqlstate: e.sqlstate,
      loginFailed: true,
      level: 'info',
      event: 'server refused login',
      logMessage: e.message,
      reason: 'server error',
    };
  }
  if (e instanceof SecretLookupError) {
    const code = SQLSTATE.ConnectionFailure;
    return {
      frame: fatal(code, e.message),
      sqlstate: code,
      loginFailed: true,
      level: 'warn',
      event: 'cannot look up the role secret',
      logMessage: e.message,
      reason: e.message,
    };
  }
  if (e instanceof ProtocolError) {
    return {
      frame: fatal(e.sqlstate, e.message),
      sqlstate: e.sqlstate,
      loginFailed: false,
      level: 'info',
      event: 'client protocol violation',
      logMessage: e.message,
      reason: 'protocol violation',
    };
  }
  const msg = (e as Error)?.message ?? String(e);
  return {
    frame: fatal(SQLSTATE.InternalError, `pgnear internal error: ${msg}`),
    sqlstate: SQLSTATE.InternalError,
    loginFailed: false,
    level: 'error',
    event: 'session failed',
    logMessage: (e as Error)?.stack ?? msg,
    reason: 'internal error',
  };
}

/** Does a startup `replication` value ask for a replication connection? 22023 for one Postgres refuses too. */
function replicationRequested(v: string): boolean {
  if (v.toLowerCase() === 'database') return true;
  const on = pgBool(v);
  if (on === null) {
    throw new LoginError(SQLSTATE.InvalidParameterValue, `invalid value for parameter "replication": "${v}"`);
  }
  return on;
}

/** Postgres' parse_bool: true/false, yes/no, on/off, 1/0 and their unambiguous prefixes, in any case. */
export function pgBool(v: string): boolean | null {
  const s = v.toLowerCase();
  if (s === '') return null;
  if (s === '1' || s === 'on' || 'true'.startsWith(s) || 'yes'.startsWith(s)) return true;
  if (s === '0' || 'false'.startsWith(s) || 'no'.startsWith(s) || (s.length >= 2 && 'off'.startsWith(s))) return false;
  return null;
}
