// Composition of read/write routing: topology snapshots + classifier + router + rules → what sessions call.
import { LRUCache } from 'lru-cache';
import type { Config } from './config/index.js';
import type { ServerTarget } from './pool/server-conn.js';
import { Fingerprinter } from './routing/fingerprint.js';
import { compileRules, matchRule } from './routing/rules.js';
import { route, type Decision, type RouteNode, type RouteNodes, type RouterConfig } from './routing/router.js';
import { NO_EFFECTS, type SqlAnalyzer } from './routing/sql-analysis.js';
import { provablyPlainRead } from './routing/sql-fast-path.js';
import { GlobalLsn, type RoutingServices } from './session/context.js';
import type { NodeState, TopologySource } from './topology/index.js';

export function buildRouting(
  cfg: Config,
  topology: TopologySource,
  analyzer: SqlAnalyzer,
  targets: Map<string, ServerTarget>,
  onDecision: (d: Decision) => void,
): RoutingServices {
  const r = cfg.routing;
  const routerCfg: RouterConfig = {
    region: cfg.region,
    maxLagBytes: r.max_replica_lag_bytes > 0 ? r.max_replica_lag_bytes : undefined,
    maxLagMs: r.max_replica_lag > 0 ? r.max_replica_lag : undefined,
    policy: r.lsn_policy,
    maxWaitMs: r.max_wait,
    transactions: r.transactions,
  };
  const rules = compileRules(r.rules);
  const fingerprinter = new Fingerprinter();
  const knownWrites = new LRUCache<string, true>({ max: 10_000 });
  const busy = new Map<string, number>();
  // Route nodes are rebuilt once per topology snapshot, not per request; only `busy` changes in between.
  let cachedFor: unknown = null;
  let cached: RouteNodes = { primary: null, replicas: [] };
  const toNode = (n: NodeState, role: 'primary' | 'replica'): RouteNode => ({
    name: n.name,
    role,
    region: n.region,
    healthy: n.healthy,
    verified: n.verified,
    replayLsn: n.replayLsn,
    lagBytes: n.lagBytes,
    lagMs: n.lagMs,
    rttMs: n.rttMs,
    replayRate: n.replayRate,
    busy: 0,
  });
  const nodes = (): RouteNodes => {
    const snap = topology.current();
    if (snap !== cachedFor) {
      cachedFor = snap;
      cached = {
        primary: snap.primary ? toNode(snap.primary, 'primary') : null,
        replicas: r.enabled ? snap.replicas.map((n) => toNode(n, 'replica')) : [],
      };
    }
    if (cached.primary) cached.primary.busy = busy.get(cached.primary.name) ?? 0;
    for (const n of cached.replicas) (n as RouteNode).busy = busy.get(n.name) ?? 0;
    return cached;
  };
  return {
    enabled: r.enabled,
    consistency: r.consistency,
    // 'fastest' bets on a replica that usually keeps up; a wrong bet must cost about one primary round trip.
    waitBudgetMs: () =>
      r.lsn_policy === 'fastest' ? Math.min(r.max_wait, Math.max(5, 3 * (nodes().primary?.rttMs ?? 1))) : r.max_wait,
    nodes,
    target: (node) => targets.get(node) ?? null,
    classify: (sql) => (provablyPlainRead(sql) ? NO_EFFECTS : analyzer.analyze(sql)),
    decide: (input, ns) => route(input, ns, routerCfg),
    matchRule: (who) =>
      rules.length === 0 ? null : matchRule(rules, { ...who, fingerprint: () => fingerprinter.fingerprint(who.sql) }),
    fingerprint: (sql) => fingerprinter.fingerprint(sql),
    // By fingerprint, so the same statement with other constants is known too.
    knownWrites: {
      has: (sql) => knownWrites.size > 0 && knownWrites.has(fingerprinter.fingerprint(sql) ?? sql),
      add: (sql) => void knownWrites.set(fingerprinter.fingerprint(sql) ?? sql, true),
    },
    global: new GlobalLsn(),
    busy,
    onDecision,
  };
}
