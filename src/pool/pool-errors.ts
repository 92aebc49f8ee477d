// Errors the pool raises itself, with stable codes and the SQLSTATE a client sees.

/**
 * An error raised by the pool itself; report it to the client with `sqlstate` and `severity`. Codes:
 * PGNEAR_E_POOL_TIMEOUT (PoolTimeoutError), PGNEAR_E_POOL_FULL 53300 (maxWaiters queued), PGNEAR_E_POOL_CLOSED 57P01
 * (closeAll), PGNEAR_E_POOL_ABORTED 57014 (the acquire was cancelled).
 */
export class PoolError extends Error {
  readonly severity = 'FATAL';
  constructor(
    readonly code: string,
    readonly sqlstate: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** No server within queryWaitTimeoutMs; the message is PgBouncer's so operators recognise it. */
export class PoolTimeoutError extends PoolError {
  constructor() {
    super('PGNEAR_E_POOL_TIMEOUT', '08P01', 'query_wait_timeout');
  }
}

export const poolFull = () =>
  new PoolError('PGNEAR_E_POOL_FULL', '53300', 'no more connections allowed (max_client_conn)');
export const poolClosed = () =>
  new PoolError('PGNEAR_E_POOL_CLOSED', '57P01', 'terminating connection due to administrator command');
export const aborted = () =>
  new PoolError('PGNEAR_E_POOL_ABORTED', '57014', 'canceled while waiting for a server connection');
