// Topology contracts: node specs, per-node state, immutable snapshots, the source interface and the prober seam.

/** A node as configured: pgnear's own connection URL plus labels. */
export interface NodeSpec {
  name: string;
  /** postgres:// URL with pgnear's own credentials (used for monitoring only). */
  url: string;
  region?: string;
  configuredRole: 'primary' | 'replica';
}

/**
 * One node as last observed. Objects are immutable once published: a change produces a new object.
 *
 * Verification rule (replicas): `verified` is true when the node is healthy, in recovery, reports the same
 * `pg_control_system().system_identifier` as the current (or last known) primary, and — when its WAL receiver
 * row shows a sender port (needs superuser or pg_read_all_stats/pg_monitor) — that port equals the primary's
 * `inet_server_port()` or the port of its configured URL. Hosts are not compared (names vs addresses; on a
 * loopback cluster sender_host is 127.0.0.1). Primary: true when healthy, not in recovery and the one chosen.
 */
export interface NodeState {
  name: string;
  region?: string;
  host: string;
  port: number;
  /** The configured URL with user and password removed. */
  url: string;
  /** From pg_is_in_recovery() of the last successful probe; 'unknown' until one succeeds. */
  role: 'primary' | 'replica' | 'unknown';
  /** At least one probe succeeded and fewer than `failThreshold` consecutive probes failed since. */
  healthy: boolean;
  verified: boolean;
  /** Replicas: pg_last_wal_replay_lsn() (from the tick probe, refreshReplay or waitForReplay). */
  replayLsn: bigint | null;
  /** Primary: pg_current_wal_insert_lsn(). */
  primaryLsn: bigint | null;
  /** Replicas: primary's latest insert LSN − replayLsn (0 when caught up); primary: 0. */
  lagBytes: number | null;
  /** Replicas: server-side now() − pg_last_xact_replay_timestamp() while WAL is pending, 0 when caught up. */
  lagMs: number | null;
  /** EWMA (α 0.3) of the probe query's round trip. */
  rttMs: number | null;
  /** Bytes/s EWMA over tick probes: replay rate for replicas, WAL insert rate for the primary. */
  replayRate: number | null;
  /** When the last probe attempt finished (ms since epoch); `lastError` is set when it failed. */
  lastProbeAt: number;
  lastError?: string;
}

export interface TopologySnapshot {
  /** +1 per published snapshot. */
  version: number;
  at: number;
  /** The node chosen as primary (not in recovery at its last successful probe); null when none is known. */
  primary: NodeState | null;
  /** Every other node in configuration order, including unhealthy/unverified/unknown ones: filter on use. */
  replicas: NodeState[];
}

export interface TopologySource {
  /** Resolves once the first snapshot is ready (every node probed once; errors allowed). */
  start(): Promise<void>;
  /** Closes every connection and timer; idempotent. */
  stop(): Promise<void>;
  /** The latest snapshot object (not a copy). */
  current(): TopologySnapshot;
  /** Returns an unsubscribe function. */
  onSnapshot(cb: (s: TopologySnapshot) => void): () => void;
  /** Probe one replica's replay LSN now; concurrent callers share one in-flight probe. Null on failure. */
  refreshReplay(node: string): Promise<bigint | null>;
  /**
   * Wait (one server round trip, none when the known position suffices) until the replica's replay LSN reaches
   * `lsn` — or is page-aligned ≤ 40 bytes short of it, i.e. `lsn` came from pg_current_wal_insert_lsn() right
   * after a record that ended on a page boundary (see lsnCaughtUp). False on timeout or error.
   */
  waitForReplay(node: string, lsn: bigint, timeoutMs: number): Promise<boolean>;
}

/** One tick probe's answer. */
export interface ProbeResult {
  inRecovery: boolean;
  /** pg_last_wal_replay_lsn() in recovery, else pg_current_wal_insert_lsn(). */
  lsn: bigint | null;
  /** Server-side clock_timestamp() − pg_last_xact_replay_timestamp() in ms; null when nothing was replayed. */
  replayAgeMs: number | null;
  /** pg_stat_wal_receiver's sender (null without a receiver row or without the privilege to see it). */
  senderHost: string | null;
  senderPort: number | null;
  /** inet_server_port(). */
  serverPort: number | null;
  /** pg_control_system().system_identifier as text. */
  systemId: string | null;
  /** Current timeline (not in recovery only). */
  timeline: number | null;
}

/** How a source talks to nodes; the default uses `pg`, tests inject fakes. */
export interface Prober {
  probe(node: NodeSpec): Promise<ProbeResult>;
  /** The replay LSN now; null when the node is not in recovery. */
  replayLsn(node: NodeSpec): Promise<bigint | null>;
  /**
   * Server-side wait until the replay LSN reaches `lsn` or `timeoutMs` passes; resolves with the replay LSN
   * reached (null when not in recovery). Callers run at most one wait per node at a time.
   */
  waitReplay(node: NodeSpec, lsn: bigint, timeoutMs: number): Promise<bigint | null>;
  /** Drop a node's connection after a client-side timeout; the next call reconnects. */
  reset(node: string, channel: 'probe' | 'wait'): void;
  /** Close every connection. */
  close(): Promise<void>;
}

export type TopologyLog = (
  level: 'debug' | 'info' | 'warn' | 'error',
  obj: Record<string, unknown>,
  msg: string,
) => void;
