// The routing decision: which node runs a statement, given its class, overrides, read-your-writes LSN and topology.
//
// Pure: no I/O, no clock; the caller supplies the topology snapshot (health, lag, rtt, load) and the LSN to observe.
//
// Precedence, first that applies wins:
//   1. explicit hint (/* pgnear:primary|replica */)        reason 'hint'
//   2. session route (SET pgnear.route = primary|replica)  reason 'session_route'
//   3. operator rule with route primary|replica            reason 'rule'
//   4. write (classifier; unknown/unparsable count as write) → primary 'write';
//      knownWrite (this fingerprint failed with 25006 on a replica before) → primary 'known_write'
//   5. inside an explicit transaction that is not read-only, or any transaction with transactions: 'primary'
//      → primary 'in_transaction' (the caller keeps later statements of a transaction on the node its first got)
//   6. read → a replica ('read').
// An override to 'primary' always goes to the primary. An override to 'replica' takes the read path of 6, so it still
// honours health, lag limits and minLsn: consistency is not waived by a routing preference (reason: the override's,
// or the fallback's with `detail` naming the override). An override to 'replica' also applies to writes: the replica
// refuses them with 25006 and the caller may retry on the primary (retryOnPrimary, reason 'retry_25006').
//
// Read path: candidates = healthy replicas that are verified (streaming from the current primary; when there is no
// primary, unverified healthy replicas are accepted) and within maxLagBytes / maxLagMs (an unknown lag with a limit
// set counts as too far behind). None healthy+verified → primary 'no_replica'; all over the lag limits → primary
// 'lag_excluded' (with no primary, the lagging replicas are used after all). Preference order: region equal to the
// hint's region, else cfg.region, first; then fewest `busy`; then lowest rttMs (unknown last); then name.
// Read-your-writes (minLsn set): the first candidate in that order whose replayLsn ≥ minLsn ('read'); if none, by
// cfg.policy on the preferred candidate:
//   'primary' → primary 'lsn_fallback';
//   'wait'    → preferred replica with waitLsn = minLsn, 'lsn_wait' (the caller bounds the wait by maxWaitMs);
//   'fastest' → catch-up estimate (minLsn − replayLsn) / replayRate s (unknown replayLsn or rate ≤ 0/unknown: too
//               slow); wait on the replica if it is below both the primary's rttMs (unknown: 1 ms) and maxWaitMs,
//               else primary 'lsn_fallback'.
// With no (healthy) primary: reads still go to replicas (an LSN fallback becomes a wait); statements needing the
// primary get null. An unhealthy primary counts as none.
//
// Measured (2-vCPU dev VM, Node 20; now `npm run bench:micro -- classifier`, see bench/MICRO.md; noisy):
// warm analyze() + parseHints() + route() ≈ 130-195 ns/op (3 replicas in 2 regions + primary, 4 texts cycling);
// route() alone ≈ 40-70 ns/op, ≈ 210 ns/op on the 'fastest' fallback (it formats `detail`); parseHints ≈ 35 ns/op
// without a hint, ≈ 200 ns/op with one; warm fingerprint() ≈ 25-40 ns/op.

export type RouteReason =
  | 'write'
  | 'in_transaction'
  | 'hint'
  | 'rule'
  | 'session_route'
  | 'read'
  | 'lsn_wait'
  | 'lsn_fallback'
  | 'lag_excluded'
  | 'no_replica'
  | 'retry_25006'
  | 'known_write'
  | 'serializable';
export type Consistency = 'session' | 'global' | 'token' | 'eventual';
export type LsnPolicy = 'wait' | 'primary' | 'fastest';
export type RouteTarget = 'primary' | 'replica';

export interface RouteNode {
  name: string;
  role: 'primary' | 'replica';
  region?: string;
  healthy: boolean;
  /** Replica is streaming from the current primary (role verified). */
  verified: boolean;
  replayLsn: bigint | null;
  lagBytes: number | null;
  lagMs: number | null;
  /** Measured round trip from pgnear, ms. */
  rttMs: number | null;
  /** Bytes of WAL replayed per second recently (for 'fastest'). */
  replayRate: number | null;
  /** Servers of this node in use by pgnear now (least outstanding work). */
  busy: number;
}

export interface RouteInput {
  /** From the classifier (unknown/unparsable → true). */
  write: boolean;
  /** An explicit transaction is open on this client. */
  inTransaction: boolean;
  /** BEGIN READ ONLY / SET TRANSACTION READ ONLY / default_transaction_read_only. */
  txnReadOnly: boolean;
  hint: { route?: RouteTarget; region?: string } | null;
  /** SET pgnear.route. */
  sessionRoute: RouteTarget | 'auto';
  rule: { route: RouteTarget | 'auto' } | null;
  /** What this read must observe (already resolved by scope by the caller), null = none. */
  minLsn: bigint | null;
  /** Fingerprint previously failed with 25006 on a replica. */
  knownWrite: boolean;
  /** Serializable isolation (the transaction's, or the session's default): a hot standby refuses it (0A000). */
  serializable: boolean;
}

export interface RouterConfig {
  region?: string;
  maxLagBytes?: number;
  maxLagMs?: number;
  policy: LsnPolicy;
  maxWaitMs: number;
  transactions: 'primary' | 'read_only_to_replica';
}

export interface Decision {
  node: string;
  role: 'primary' | 'replica';
  reason: RouteReason;
  /** When set, the caller makes the replica wait (bounded by maxWaitMs) until its replay LSN reaches this value before running the statement. */
  waitLsn?: bigint;
  detail?: string;
}

export interface RouteNodes {
  primary: RouteNode | null;
  replicas: readonly RouteNode[];
}

const DEFAULT_PRIMARY_RTT_MS = 1;

const toPrimary = (p: RouteNode | null, reason: RouteReason, detail?: string): Decision | null =>
  p === null
    ? null
    : detail === undefined
      ? { node: p.name, role: 'primary', reason }
      : { node: p.name, role: 'primary', reason, detail };

/** Whether a is preferred over b (region tier, busy, rtt, name). */
function better(a: RouteNode, b: RouteNode, region: string | undefined): boolean {
  if (region !== undefined) {
    const ra = a.region === region;
    if (ra !== (b.region === region)) return ra;
  }
  if (a.busy !== b.busy) return a.busy < b.busy;
  const ta = a.rttMs ?? Infinity;
  const tb = b.rttMs ?? Infinity;
  if (ta !== tb) return ta < tb;
  return a.name < b.name;
}

function withinLag(n: RouteNode, cfg: RouterConfig): boolean {
  if (cfg.maxLagBytes !== undefined && (n.lagBytes === null || n.lagBytes > cfg.maxLagBytes)) return false;
  if (cfg.maxLagMs !== undefined && (n.lagMs === null || n.lagMs > cfg.maxLagMs)) return false;
  return true;
}

/** Estimated ms for `n` to replay up to `lsn`; Infinity when unknown. */
export function catchUpMs(n: RouteNode, lsn: bigint): number {
  if (n.replayLsn === null) return Infinity;
  if (n.replayLsn >= lsn) return 0;
  // Two estimates, the smaller wins: WAL still to replay at the recent replay rate (poor when little is written,
  // as the rate is then near zero), and the replica's recent apply lag in time (near zero for a streaming
  // replica that kept up; its configured delay for a delayed one).
  const byRate =
    n.replayRate !== null && n.replayRate > 0 ? (Number(lsn - n.replayLsn) / n.replayRate) * 1000 : Infinity;
  const byLag = n.lagMs ?? Infinity;
  return Math.min(byRate, byLag);
}

/** The read path: a replica (possibly with a wait) or a fallback to the primary. `via` names an override. */
function read(
  input: RouteInput,
  nodes: RouteNodes,
  primary: RouteNode | null,
  cfg: RouterConfig,
  via: RouteReason | undefined,
): Decision | null {
  const region = input.hint?.region ?? cfg.region;
  const minLsn = input.minLsn;
  let best: RouteNode | undefined; // preferred candidate within lag limits
  let caught: RouteNode | undefined; // preferred candidate that has replayed minLsn
  let bestLagging: RouteNode | undefined; // preferred candidate ignoring lag limits
  let caughtLagging: RouteNode | undefined;
  for (const n of nodes.replicas) {
    if (!n.healthy || !(n.verified || primary === null)) continue;
    const hasLsn = minLsn !== null && n.replayLsn !== null && n.replayLsn >= minLsn;
    if (withinLag(n, cfg)) {
      if (best === undefined || better(n, best, region)) best = n;
      if (hasLsn && (caught === undefined || better(n, caught, region))) caught = n;
    } else if (primary === null) {
      if (bestLagging === undefined || better(n, bestLagging, region)) bestLagging = n;
      if (hasLsn && (caughtLagging === undefined || better(n, caughtLagging, region))) caughtLagging = n;
    } else bestLagging ??= n;
  }
  if (best === undefined) {
    if (bestLagging === undefined) return toPrimary(primary, 'no_replica', via);
    if (primary !== null) return toPrimary(primary, 'lag_excluded', via);
    best = bestLagging; // no primary: stale beats nothing
    caught = caughtLagging;
  }
  const plain: RouteReason = via ?? 'read';
  if (minLsn === null) return { node: best.name, role: 'replica', reason: plain };
  if (caught !== undefined) return { node: caught.name, role: 'replica', reason: plain };
  if (primary === null) return waitOn(best, minLsn, via, 'no primary');
  switch (cfg.policy) {
    case 'wait':
      return waitOn(best, minLsn, via, undefined);
    case 'primary':
      return toPrimary(primary, 'lsn_fallback', via);
    case 'fastest': {
      const est = catchUpMs(best, minLsn);
      const rtt = primary.rttMs ?? DEFAULT_PRIMARY_RTT_MS;
      const why = `catch-up ${Number.isFinite(est) ? `${est.toFixed(2)} ms` : 'unknown'} vs primary rtt ${rtt} ms`;
      if (est < rtt && est < cfg.maxWaitMs) return waitOn(best, minLsn, via, why);
      return toPrimary(primary, 'lsn_fallback', via === undefined ? why : `${via}; ${why}`);
    }
  }
}

function waitOn(n: RouteNode, lsn: bigint, via: RouteReason | undefined, why: string | undefined): Decision {
  const d: Decision = { node: n.name, role: 'replica', reason: 'lsn_wait', waitLsn: lsn };
  const text = via === undefined ? why : why === undefined ? via : `${via}; ${why}`;
  if (text !== undefined) d.detail = text;
  return d;
}

/** Where a statement runs; null when it needs the primary and there is none (see the file comment for the rules). */
export function route(input: RouteInput, nodes: RouteNodes, cfg: RouterConfig): Decision | null {
  const primary = nodes.primary !== null && nodes.primary.healthy ? nodes.primary : null;
  let target: RouteTarget | undefined;
  let via: RouteReason = 'read';
  if (input.hint?.route !== undefined) {
    target = input.hint.route;
    via = 'hint';
  } else if (input.sessionRoute !== 'auto') {
    target = input.sessionRoute;
    via = 'session_route';
  } else if (input.rule !== null && input.rule.route !== 'auto') {
    target = input.rule.route;
    via = 'rule';
  }
  if (target === 'primary') return toPrimary(primary, via);
  if (target === 'replica') return read(input, nodes, primary, cfg, via);
  if (input.write) return toPrimary(primary, 'write');
  if (input.knownWrite) return toPrimary(primary, 'known_write');
  if (input.serializable) return toPrimary(primary, 'serializable');
  if (input.inTransaction) {
    if (!input.txnReadOnly) return toPrimary(primary, 'in_transaction');
    if (cfg.transactions === 'primary' && primary !== null) return toPrimary(primary, 'in_transaction');
  }
  return read(input, nodes, primary, cfg, undefined);
}

/** The decision after a replica refused a statement with 25006 (read-only transaction): rerun it on the primary. */
export function retryOnPrimary(nodes: RouteNodes): Decision | null {
  return toPrimary(nodes.primary !== null && nodes.primary.healthy ? nodes.primary : null, 'retry_25006');
}
