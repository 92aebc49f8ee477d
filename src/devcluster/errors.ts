// Typed devcluster failures: one class per failure mode, each with a stable `code` string.

export type DevClusterErrorCode =
  | 'PGNEAR_E_PG_BINARIES_MISSING'
  | 'PGNEAR_E_POSTGRES_USER'
  | 'PGNEAR_E_CLUSTER_START'
  | 'PGNEAR_E_CLUSTER_COMMAND'
  | 'PGNEAR_E_CLUSTER_TIMEOUT'
  | 'PGNEAR_E_NODE_DOWN';

export class DevClusterError extends Error {
  readonly code: DevClusterErrorCode;

  constructor(code: DevClusterErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** initdb / pg_ctl / postgres / pg_basebackup could not be found. */
export class PgBinariesMissingError extends DevClusterError {
  constructor(message: string) {
    super('PGNEAR_E_PG_BINARIES_MISSING', message);
  }
}

/** We run as root but there is no `postgres` system user to run the server as. */
export class PostgresUserError extends DevClusterError {
  constructor(message: string) {
    super('PGNEAR_E_POSTGRES_USER', message);
  }
}

/** startCluster() failed; the message carries the failing step and the tail of the node's log. */
export class ClusterStartError extends DevClusterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PGNEAR_E_CLUSTER_START', message, options);
  }
}

/** A Postgres tool (initdb, pg_ctl, pg_basebackup) exited non-zero or timed out. */
export class ClusterCommandError extends DevClusterError {
  readonly command: string;
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(command: string, exitCode: number | null, stderr: string, detail?: string) {
    const status = exitCode === null ? 'was killed or timed out' : `exited with code ${exitCode}`;
    const parts = [`${command} ${status}`];
    if (stderr.trim()) parts.push(`stderr:\n${stderr.trim()}`);
    if (detail) parts.push(detail);
    super('PGNEAR_E_CLUSTER_COMMAND', parts.join('\n'));
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** A wait (streaming, replay) did not finish before its deadline. */
export class ClusterTimeoutError extends DevClusterError {
  constructor(message: string) {
    super('PGNEAR_E_CLUSTER_TIMEOUT', message);
  }
}

/** An operation needed a node (usually the primary) that is not running. */
export class NodeDownError extends DevClusterError {
  constructor(message: string) {
    super('PGNEAR_E_NODE_DOWN', message);
  }
}
