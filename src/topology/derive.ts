// Pure snapshot derivation: per-node probe records → roles, primary choice, verification, lag (no I/O).
import { lsnCaughtUp } from './lsn.js';
import type { NodeSpec, NodeState, ProbeResult, TopologySnapshot } from './types.js';

export const EWMA_ALPHA = 0.3;

export function ewma(prev: number | null, sample: number, alpha = EWMA_ALPHA): number {
  return prev === null ? sample : alpha * sample + (1 - alpha) * prev;
}

/** What the source knows about one node; mutated by the source, read here. */
export interface NodeRecord {
  readonly spec: NodeSpec;
  /** Position in the configuration (tie-breaker). */
  readonly index: number;
  readonly host: string;
  readonly port: number;
  /** spec.url without credentials. */
  readonly url: string;
  /** Last successful tick probe. */
  last: ProbeResult | null;
  /** Latest known LSN (tick probe, refreshReplay or waitForReplay). */
  lsn: bigint | null;
  /** Consecutive failed tick probes. */
  failures: number;
  everOk: boolean;
  lastProbeAt: number;
  lastError?: string;
  rttMs: number | null;
  replayRate: number | null;
}

/** The primary replicas are checked against; remembered while the primary is unreachable. */
export interface PrimaryIdentity {
  name: string;
  systemId: string | null;
  /** inet_server_port() and the configured URL port. */
  ports: number[];
}

export interface Derived {
  snapshot: TopologySnapshot;
  identity: PrimaryIdentity | null;
}

/** host and port of a postgres:// URL, and the URL without credentials. */
export function describeUrl(url: string): { host: string; port: number; url: string } {
  const u = new URL(url);
  const host = decodeURIComponent(u.hostname).replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = Number(u.port || 5432);
  u.username = '';
  u.password = '';
  return { host, port, url: u.toString() };
}

export function roleOf(r: NodeRecord): NodeState['role'] {
  if (!r.last) return 'unknown';
  return r.last.inRecovery ? 'replica' : 'primary';
}

export function isHealthy(r: NodeRecord, failThreshold: number): boolean {
  return r.everOk && r.failures < failThreshold;
}

/**
 * Among nodes whose last successful probe said "not in recovery": healthy first, then the highest timeline
 * (a promoted replica moves to a new one), then the configured primary, then configuration order.
 */
export function choosePrimary(records: readonly NodeRecord[], failThreshold: number): NodeRecord | null {
  const claims = records.filter((r) => roleOf(r) === 'primary');
  claims.sort(
    (a, b) =>
      Number(isHealthy(b, failThreshold)) - Number(isHealthy(a, failThreshold)) ||
      (b.last?.timeline ?? -1) - (a.last?.timeline ?? -1) ||
      Number(b.spec.configuredRole === 'primary') - Number(a.spec.configuredRole === 'primary') ||
      a.index - b.index,
  );
  return claims[0] ?? null;
}

function base(r: NodeRecord, healthy: boolean): NodeState {
  const s: NodeState = {
    name: r.spec.name,
    host: r.host,
    port: r.port,
    url: r.url,
    role: roleOf(r),
    healthy,
    verified: false,
    replayLsn: null,
    primaryLsn: null,
    lagBytes: null,
    lagMs: null,
    rttMs: r.rttMs,
    replayRate: r.replayRate,
    lastProbeAt: r.lastProbeAt,
  };
  if (r.spec.region !== undefined) s.region = r.spec.region;
  if (r.lastError !== undefined) s.lastError = r.lastError;
  return s;
}

function replicaVerified(r: NodeRecord, identity: PrimaryIdentity | null): boolean {
  const last = r.last;
  if (!last?.inRecovery || !identity) return false;
  if (last.systemId === null || identity.systemId === null || last.systemId !== identity.systemId) return false;
  return last.senderPort === null || identity.ports.includes(last.senderPort);
}

export function derive(
  records: readonly NodeRecord[],
  failThreshold: number,
  version: number,
  at: number,
  remembered: PrimaryIdentity | null,
): Derived {
  const chosen = choosePrimary(records, failThreshold);
  let identity = remembered;
  if (chosen?.last) {
    const ports = [chosen.port];
    if (chosen.last.serverPort !== null && chosen.last.serverPort !== chosen.port) ports.push(chosen.last.serverPort);
    identity = { name: chosen.spec.name, systemId: chosen.last.systemId, ports };
  }
  const primaryLsn = chosen?.lsn ?? null;
  let primary: NodeState | null = null;
  const replicas: NodeState[] = [];
  for (const r of records) {
    const healthy = isHealthy(r, failThreshold);
    const s = base(r, healthy);
    if (r === chosen) {
      s.verified = healthy;
      s.primaryLsn = r.lsn;
      s.lagBytes = 0;
      s.lagMs = 0;
      primary = s;
      continue;
    }
    if (s.role === 'primary') {
      // A second node out of recovery (split brain, or a stale old primary): never routable.
      s.primaryLsn = r.lsn;
      if (healthy) {
        s.healthy = false;
        s.lastError = `conflicting primary: ${chosen?.spec.name ?? '?'} was chosen`;
      }
    } else if (s.role === 'replica') {
      s.replayLsn = r.lsn;
      s.verified = healthy && replicaVerified(r, identity);
      if (primaryLsn !== null && r.lsn !== null) {
        const caughtUp = lsnCaughtUp(r.lsn, primaryLsn);
        s.lagBytes = caughtUp ? 0 : Number(primaryLsn - r.lsn);
        const age = r.last?.replayAgeMs ?? null;
        s.lagMs = caughtUp ? 0 : age === null ? null : Math.max(0, age);
      }
    }
    replicas.push(s);
  }
  return { snapshot: { version, at, primary, replicas }, identity };
}
