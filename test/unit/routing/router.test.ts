// The routing decision table: precedence, region/busy/rtt preference, lag exclusion, LSN policies, missing nodes.
import { describe, expect, it } from 'vitest';
import {
  catchUpMs,
  retryOnPrimary,
  route,
  type Decision,
  type RouteInput,
  type RouteNode,
  type RouteNodes,
  type RouterConfig,
} from '../../../src/routing/router.js';

const node = (name: string, over: Partial<RouteNode>): RouteNode => ({
  name,
  role: 'replica',
  healthy: true,
  verified: true,
  replayLsn: null,
  lagBytes: 0,
  lagMs: 0,
  rttMs: null,
  replayRate: null,
  busy: 0,
  ...over,
});

interface Topo {
  p: RouteNode | null;
  ams1: RouteNode;
  ams2: RouteNode;
  fra: RouteNode;
  extra: RouteNode[];
}

/** Fresh topology: primary in iad; two replicas in ams (our region), one in fra. */
function topo(): Topo {
  return {
    p: node('p', { role: 'primary', region: 'iad', rttMs: 80, lagBytes: null, lagMs: null }),
    ams1: node('ams1', { region: 'ams', busy: 1, rttMs: 1, replayLsn: 1000n, replayRate: 1_000_000 }),
    ams2: node('ams2', { region: 'ams', busy: 1, rttMs: 2, replayLsn: 900n, lagBytes: 100, lagMs: 5, replayRate: 2e6 }),
    fra: node('fra', { region: 'fra', busy: 0, rttMs: 15, replayLsn: 2000n, replayRate: 1_000_000 }),
    extra: [],
  };
}

const READ: RouteInput = {
  write: false,
  inTransaction: false,
  txnReadOnly: false,
  hint: null,
  sessionRoute: 'auto',
  rule: null,
  minLsn: null,
  knownWrite: false,
  serializable: false,
};

const CFG: RouterConfig = {
  region: 'ams',
  maxLagBytes: 1_000_000,
  maxLagMs: 10_000,
  policy: 'wait',
  maxWaitMs: 1000,
  transactions: 'read_only_to_replica',
};

interface Case {
  in?: Partial<RouteInput>;
  cfg?: Partial<RouterConfig>;
  topo?: (t: Topo) => void;
  /** [node, reason, waitLsn?] or null. */
  want: [string, Decision['reason'], bigint?] | null;
  detail?: string | RegExp;
}

const W = { write: true };
const RW_TXN = { inTransaction: true };
const RO_TXN = { inTransaction: true, txnReadOnly: true };
const hint = (h: RouteInput['hint']) => ({ hint: h });
const noPrimary = (t: Topo) => void (t.p = null);
const noReplicas = (t: Topo) => [t.ams1, t.ams2, t.fra].forEach((n) => (n.healthy = false));

const CASES: Record<string, Case> = {
  // ---- precedence
  'plain read → preferred local replica': { want: ['ams1', 'read'] },
  'write → primary': { in: W, want: ['p', 'write'] },
  'known write → primary': { in: { knownWrite: true }, want: ['p', 'known_write'] },
  'write and known write → write': { in: { write: true, knownWrite: true }, want: ['p', 'write'] },
  'read in a read-write transaction → primary': { in: RW_TXN, want: ['p', 'in_transaction'] },
  'read in a read-only transaction → replica': { in: RO_TXN, want: ['ams1', 'read'] },
  'read-only transaction with transactions: primary → primary': {
    in: RO_TXN,
    cfg: { transactions: 'primary' },
    want: ['p', 'in_transaction'],
  },
  'write in a read-only transaction → primary (write)': { in: { ...RO_TXN, ...W }, want: ['p', 'write'] },
  'txnReadOnly outside a transaction is ignored': { in: { txnReadOnly: true }, want: ['ams1', 'read'] },
  'serializable read (hot standbys refuse it) → primary': { in: { serializable: true }, want: ['p', 'serializable'] },
  'serializable read-only transaction → primary': {
    in: { ...RO_TXN, serializable: true },
    want: ['p', 'serializable'],
  },
  'hint replica wins over serializable': {
    in: { serializable: true, ...hint({ route: 'replica' }) },
    want: ['ams1', 'hint'],
  },
  'hint primary on a read': { in: hint({ route: 'primary' }), want: ['p', 'hint'] },
  'hint replica on a write': { in: { ...W, ...hint({ route: 'replica' }) }, want: ['ams1', 'hint'] },
  'hint replica in a read-write transaction': {
    in: { ...RW_TXN, ...hint({ route: 'replica' }) },
    want: ['ams1', 'hint'],
  },
  'hint replica on a known write': { in: { knownWrite: true, ...hint({ route: 'replica' }) }, want: ['ams1', 'hint'] },
  'session route primary': { in: { sessionRoute: 'primary' }, want: ['p', 'session_route'] },
  'session route replica on a write': { in: { ...W, sessionRoute: 'replica' }, want: ['ams1', 'session_route'] },
  'session route auto falls through': { in: { ...W, sessionRoute: 'auto' }, want: ['p', 'write'] },
  'rule primary': { in: { rule: { route: 'primary' } }, want: ['p', 'rule'] },
  'rule replica on a known write': { in: { knownWrite: true, rule: { route: 'replica' } }, want: ['ams1', 'rule'] },
  'rule replica in a read-write transaction': { in: { ...RW_TXN, rule: { route: 'replica' } }, want: ['ams1', 'rule'] },
  'rule auto falls through to write': { in: { ...W, rule: { route: 'auto' } }, want: ['p', 'write'] },
  'rule auto falls through to read': { in: { rule: { route: 'auto' } }, want: ['ams1', 'read'] },
  'hint beats session route': {
    in: { sessionRoute: 'primary', ...hint({ route: 'replica' }) },
    want: ['ams1', 'hint'],
  },
  'hint beats rule': { in: { rule: { route: 'replica' }, ...hint({ route: 'primary' }) }, want: ['p', 'hint'] },
  'session route beats rule': {
    in: { sessionRoute: 'replica', rule: { route: 'primary' } },
    want: ['ams1', 'session_route'],
  },
  'session route beats rule (primary)': {
    in: { sessionRoute: 'primary', rule: { route: 'replica' } },
    want: ['p', 'session_route'],
  },
  'region-only hint does not override a write': { in: { ...W, ...hint({ region: 'fra' }) }, want: ['p', 'write'] },
  'region-only hint with session route primary': {
    in: { sessionRoute: 'primary', ...hint({ region: 'fra' }) },
    want: ['p', 'session_route'],
  },
  'primary override ignores minLsn': { in: { minLsn: 99_999n, ...hint({ route: 'primary' }) }, want: ['p', 'hint'] },

  // ---- region, busy, rtt
  'hint region prefers that region': { in: hint({ region: 'fra' }), want: ['fra', 'read'] },
  'hint replica + region': { in: hint({ route: 'replica', region: 'fra' }), want: ['fra', 'hint'] },
  'cfg region fra': { cfg: { region: 'fra' }, want: ['fra', 'read'] },
  'no region: one tier, fewest busy wins': { cfg: { region: undefined }, want: ['fra', 'read'] },
  'hint region without replicas there: others by busy': { in: hint({ region: 'sin' }), want: ['fra', 'read'] },
  'cfg region without replicas there: others by busy': { cfg: { region: 'sin' }, want: ['fra', 'read'] },
  'same region beats lower busy elsewhere': {
    topo: (t) => void (t.ams1.busy = 9),
    want: ['ams2', 'read'],
  },
  'busy beats rtt within a tier': {
    topo: (t) => void (t.ams1.busy = 3),
    want: ['ams2', 'read'],
  },
  'busy beats rtt within a tier (both busy, far one idle)': {
    topo: (t) => {
      t.ams1.busy = 4;
      t.ams2.busy = 4;
      t.ams2.rttMs = 0.5;
    },
    want: ['ams2', 'read'],
  },
  'equal busy: lower rtt': { topo: (t) => void (t.ams1.rttMs = 3), want: ['ams2', 'read'] },
  'unknown rtt loses to a known one': { topo: (t) => void (t.ams1.rttMs = null), want: ['ams2', 'read'] },
  'all equal: name order': { topo: (t) => void (t.ams2.rttMs = 1), want: ['ams1', 'read'] },
  'local tier unhealthy → other region': {
    topo: (t) => {
      t.ams1.healthy = false;
      t.ams2.healthy = false;
    },
    want: ['fra', 'read'],
  },
  'unverified replica skipped': { topo: (t) => void (t.ams1.verified = false), want: ['ams2', 'read'] },
  'primary busy/rtt does not matter for reads': {
    topo: (t) => void (t.p!.rttMs = 0),
    want: ['ams1', 'read'],
  },
  'later list position can win': {
    topo: (t) => t.extra.push(node('ams0', { region: 'ams', busy: 0, rttMs: 9 })),
    want: ['ams0', 'read'],
  },

  // ---- no replica / lag
  'no healthy replica → primary no_replica': { topo: noReplicas, want: ['p', 'no_replica'] },
  'all unverified → primary no_replica': {
    topo: (t) => [t.ams1, t.ams2, t.fra].forEach((n) => (n.verified = false)),
    want: ['p', 'no_replica'],
  },
  'hint replica without replicas → primary no_replica': {
    in: hint({ route: 'replica' }),
    topo: noReplicas,
    want: ['p', 'no_replica'],
    detail: 'hint',
  },
  'session replica without replicas → primary no_replica': {
    in: { sessionRoute: 'replica' },
    topo: noReplicas,
    want: ['p', 'no_replica'],
    detail: 'session_route',
  },
  'maxLagBytes excludes a replica': {
    cfg: { maxLagBytes: 50 },
    topo: (t) => void (t.ams1.busy = 5),
    want: ['ams1', 'read'],
  },
  'maxLagMs excludes a replica': { cfg: { maxLagMs: 3 }, topo: (t) => void (t.ams1.busy = 5), want: ['ams1', 'read'] },
  'lag exactly at the limit is allowed': {
    cfg: { maxLagBytes: 100 },
    topo: (t) => void (t.ams1.busy = 5),
    want: ['ams2', 'read'],
  },
  'unknown lag with a limit set is excluded': {
    topo: (t) => {
      t.ams1.lagBytes = null;
      t.ams2.lagMs = null;
    },
    want: ['fra', 'read'],
  },
  'unknown lag without limits is fine': {
    cfg: { maxLagBytes: undefined, maxLagMs: undefined },
    topo: (t) => [t.ams1, t.ams2, t.fra].forEach((n) => ((n.lagBytes = null), (n.lagMs = null))),
    want: ['ams1', 'read'],
  },
  'all over the lag limits → primary lag_excluded': {
    topo: (t) => [t.ams1, t.ams2, t.fra].forEach((n) => (n.lagMs = 60_000)),
    want: ['p', 'lag_excluded'],
  },
  'replica hint, all lagging → primary lag_excluded': {
    in: hint({ route: 'replica' }),
    topo: (t) => [t.ams1, t.ams2, t.fra].forEach((n) => (n.lagBytes = 5e9)),
    want: ['p', 'lag_excluded'],
    detail: 'hint',
  },
  'all lagging and no primary → the preferred lagging replica': {
    topo: (t) => {
      t.p = null;
      [t.ams1, t.ams2, t.fra].forEach((n) => (n.lagMs = 60_000));
    },
    want: ['ams1', 'read'],
  },

  // ---- read-your-writes
  'minLsn reached by the preferred replica': { in: { minLsn: 1000n }, want: ['ams1', 'read'] },
  'minLsn 0 is reached by any replica with a position': { in: { minLsn: 0n }, want: ['ams1', 'read'] },
  'minLsn reached only by another region': { in: { minLsn: 1001n }, want: ['fra', 'read'] },
  'minLsn reached in the local tier first': {
    in: { minLsn: 1200n },
    topo: (t) => void (t.ams2.replayLsn = 1500n),
    want: ['ams2', 'read'],
  },
  'minLsn reached only by a lag-excluded replica → not used': {
    in: { minLsn: 1500n },
    topo: (t) => void (t.fra.lagBytes = 5e9),
    want: ['ams1', 'lsn_wait', 1500n],
  },
  'minLsn reached only by an unhealthy replica → not used': {
    in: { minLsn: 1500n },
    topo: (t) => void (t.fra.healthy = false),
    want: ['ams1', 'lsn_wait', 1500n],
  },
  'policy wait → wait on the preferred replica': { in: { minLsn: 5000n }, want: ['ams1', 'lsn_wait', 5000n] },
  'policy wait, unknown replay positions': {
    in: { minLsn: 1n },
    topo: (t) => [t.ams1, t.ams2, t.fra].forEach((n) => (n.replayLsn = null)),
    want: ['ams1', 'lsn_wait', 1n],
  },
  'policy primary → lsn_fallback': { in: { minLsn: 5000n }, cfg: { policy: 'primary' }, want: ['p', 'lsn_fallback'] },
  'policy primary, reached → replica anyway': {
    in: { minLsn: 2000n },
    cfg: { policy: 'primary' },
    want: ['fra', 'read'],
  },
  'fastest: 4000 B at 1 MB/s = 4 ms < rtt 80 → wait': {
    in: { minLsn: 5000n },
    cfg: { policy: 'fastest' },
    want: ['ams1', 'lsn_wait', 5000n],
    detail: 'catch-up 4.00 ms vs primary rtt 80 ms',
  },
  'fastest: 100 kB at 1 MB/s = 100 ms > rtt 80 → primary': {
    in: { minLsn: 101_000n },
    cfg: { policy: 'fastest' },
    want: ['p', 'lsn_fallback'],
    detail: 'catch-up 100.00 ms vs primary rtt 80 ms',
  },
  'fastest: 100 ms < rtt 200 → wait': {
    in: { minLsn: 101_000n },
    cfg: { policy: 'fastest' },
    topo: (t) => void (t.p!.rttMs = 200),
    want: ['ams1', 'lsn_wait', 101_000n],
  },
  'fastest: 100 ms < rtt 200 but > maxWaitMs 50 → primary': {
    in: { minLsn: 101_000n },
    cfg: { policy: 'fastest', maxWaitMs: 50 },
    topo: (t) => void (t.p!.rttMs = 200),
    want: ['p', 'lsn_fallback'],
  },
  'fastest: estimate equal to rtt → primary (strict)': {
    in: { minLsn: 81_000n },
    cfg: { policy: 'fastest' },
    want: ['p', 'lsn_fallback'],
  },
  'fastest: unknown replay rate → primary': {
    in: { minLsn: 2010n },
    cfg: { policy: 'fastest', maxLagMs: undefined },
    topo: (t) => void ((t.ams1.replayRate = null), (t.ams1.lagMs = null)),
    want: ['p', 'lsn_fallback'],
    detail: 'catch-up unknown vs primary rtt 80 ms',
  },
  'fastest: zero replay rate → primary': {
    in: { minLsn: 2010n },
    cfg: { policy: 'fastest' },
    topo: (t) => void (t.ams1.replayRate = 0),
    want: ['p', 'lsn_fallback'],
  },
  'fastest: unknown replay position → primary': {
    in: { minLsn: 2500n },
    cfg: { policy: 'fastest' },
    topo: (t) => void (t.ams1.replayLsn = null),
    want: ['p', 'lsn_fallback'],
  },
  'fastest: unknown primary rtt counts as 1 ms (0.5 ms catch-up → wait)': {
    in: { minLsn: 1500n },
    cfg: { policy: 'fastest' },
    topo: (t) => void ((t.p!.rttMs = null), (t.fra.replayLsn = 100n)),
    want: ['ams1', 'lsn_wait', 1500n],
    detail: 'catch-up 0.50 ms vs primary rtt 1 ms',
  },
  'fastest: unknown primary rtt counts as 1 ms (2 ms catch-up → primary)': {
    in: { minLsn: 3000n },
    cfg: { policy: 'fastest' },
    topo: (t) => void ((t.p!.rttMs = null), (t.fra.replayLsn = 100n)),
    want: ['p', 'lsn_fallback'],
  },
  'fastest uses the preferred replica, not the fastest one': {
    in: { minLsn: 101_000n },
    cfg: { policy: 'fastest' },
    topo: (t) => void (t.ams2.replayRate = 1e9),
    want: ['p', 'lsn_fallback'],
  },
  'replica hint still honours minLsn (wait)': {
    in: { minLsn: 5000n, ...hint({ route: 'replica' }) },
    want: ['ams1', 'lsn_wait', 5000n],
    detail: 'hint',
  },
  'session replica still honours minLsn (primary policy)': {
    in: { minLsn: 5000n, sessionRoute: 'replica' },
    cfg: { policy: 'primary' },
    want: ['p', 'lsn_fallback'],
    detail: 'session_route',
  },
  'rule replica, minLsn reached': { in: { minLsn: 900n, rule: { route: 'replica' } }, want: ['ams1', 'rule'] },
  'rule replica, fastest fallback names the rule': {
    in: { minLsn: 101_000n, rule: { route: 'replica' } },
    cfg: { policy: 'fastest' },
    want: ['p', 'lsn_fallback'],
    detail: 'rule; catch-up 100.00 ms vs primary rtt 80 ms',
  },
  'minLsn on a write is irrelevant': { in: { ...W, minLsn: 5000n }, want: ['p', 'write'] },
  'read-only transaction honours minLsn': { in: { ...RO_TXN, minLsn: 5000n }, want: ['ams1', 'lsn_wait', 5000n] },

  // ---- no primary
  'no primary: write → null': { in: W, topo: noPrimary, want: null },
  'no primary: known write → null': { in: { knownWrite: true }, topo: noPrimary, want: null },
  'no primary: read-write transaction → null': { in: RW_TXN, topo: noPrimary, want: null },
  'no primary: hint primary → null': { in: hint({ route: 'primary' }), topo: noPrimary, want: null },
  'no primary: read → replica': { topo: noPrimary, want: ['ams1', 'read'] },
  'no primary: read-only txn with transactions: primary → replica': {
    in: RO_TXN,
    cfg: { transactions: 'primary' },
    topo: noPrimary,
    want: ['ams1', 'read'],
  },
  'no primary: unverified replicas are accepted': {
    topo: (t) => {
      t.p = null;
      [t.ams1, t.ams2, t.fra].forEach((n) => (n.verified = false));
    },
    want: ['ams1', 'read'],
  },
  'no primary: LSN fallback becomes a wait': {
    in: { minLsn: 5000n },
    cfg: { policy: 'primary' },
    topo: noPrimary,
    want: ['ams1', 'lsn_wait', 5000n],
    detail: 'no primary',
  },
  'no primary and no replica: read → null': {
    topo: (t) => {
      noPrimary(t);
      noReplicas(t);
    },
    want: null,
  },
  'unhealthy primary counts as none: write → null': {
    in: W,
    topo: (t) => void (t.p!.healthy = false),
    want: null,
  },
  'unhealthy primary, replicas lagging → lagging replica': {
    topo: (t) => {
      t.p!.healthy = false;
      t.ams1.lagBytes = 5e9;
    },
    want: ['ams2', 'read'],
  },
  'unhealthy primary, no replica → null': {
    topo: (t) => {
      t.p!.healthy = false;
      noReplicas(t);
    },
    want: null,
  },
};

CASES['fastest: rate unknown, apply lag 0.5 ms < rtt 80 → wait'] = {
  in: { minLsn: 2010n },
  cfg: { policy: 'fastest' },
  topo: (t) => void ((t.ams1.replayRate = null), (t.ams1.lagMs = 0.5)),
  want: ['ams1', 'lsn_wait', 2010n],
};
CASES['fastest: rate unknown, apply lag 300 ms (delayed replica) > rtt 80 → primary'] = {
  in: { minLsn: 2010n },
  cfg: { policy: 'fastest' },
  topo: (t) => void ((t.ams1.replayRate = null), (t.ams1.lagMs = 300)),
  want: ['p', 'lsn_fallback'],
};
CASES['fastest: the smaller of rate and apply-lag estimates wins'] = {
  in: { minLsn: 101_000n },
  cfg: { policy: 'fastest' },
  topo: (t) => void (t.ams1.lagMs = 3),
  want: ['ams1', 'lsn_wait', 101_000n],
};

describe('route', () => {
  it.each(Object.entries(CASES))('%s', (name, c) => {
    const t = topo();
    // The 'fastest' cases are about the replay-rate estimate unless they set an apply lag themselves
    // (9,999 ms: within the lag bound, never the smaller estimate).
    if (name.includes('fastest')) for (const n of [t.ams1, t.ams2, t.fra]) n.lagMs = 9_999;
    c.topo?.(t);
    const nodes: RouteNodes = { primary: t.p, replicas: [t.ams1, t.ams2, t.fra, ...t.extra] };
    const d = route({ ...READ, ...c.in }, nodes, { ...CFG, ...c.cfg });
    if (c.want === null) {
      expect(d).toBeNull();
      return;
    }
    const [nodeName, reason, waitLsn] = c.want;
    expect(d).not.toBeNull();
    expect({ node: d!.node, reason: d!.reason, waitLsn: d!.waitLsn }).toEqual({ node: nodeName, reason, waitLsn });
    expect(d!.role).toBe(nodeName === 'p' ? 'primary' : 'replica');
    if (c.detail !== undefined)
      expect(d!.detail).toEqual(c.detail instanceof RegExp ? expect.stringMatching(c.detail) : c.detail);
  });

  it('does not mutate its inputs', () => {
    const t = topo();
    const nodes: RouteNodes = Object.freeze({
      primary: Object.freeze(t.p!),
      replicas: Object.freeze([t.ams1, t.ams2, t.fra].map((n) => Object.freeze(n))),
    });
    const input = Object.freeze({ ...READ, minLsn: 5000n });
    expect(() => route(input, nodes, Object.freeze({ ...CFG, policy: 'fastest' as const }))).not.toThrow();
  });
});

describe('helpers', () => {
  it('retryOnPrimary', () => {
    const t = topo();
    expect(retryOnPrimary({ primary: t.p, replicas: [] })).toEqual({
      node: 'p',
      role: 'primary',
      reason: 'retry_25006',
    });
    expect(retryOnPrimary({ primary: null, replicas: [t.ams1] })).toBeNull();
  });

  it('catchUpMs', () => {
    const n = node('x', { replayLsn: 1000n, replayRate: 2_000_000, lagMs: null });
    expect(catchUpMs(n, 1000n)).toBe(0);
    expect(catchUpMs(n, 500n)).toBe(0);
    expect(catchUpMs(n, 3000n)).toBe(1);
    expect(catchUpMs({ ...n, replayRate: null }, 3000n)).toBe(Infinity);
    expect(catchUpMs({ ...n, replayRate: -5 }, 3000n)).toBe(Infinity);
    expect(catchUpMs({ ...n, replayLsn: null }, 3000n)).toBe(Infinity);
    expect(catchUpMs({ ...n, replayRate: null }, 1000n)).toBe(0);
    // The replica's apply lag in time is the other estimate; the smaller wins.
    expect(catchUpMs({ ...n, replayRate: null, lagMs: 7 }, 3000n)).toBe(7);
    expect(catchUpMs({ ...n, lagMs: 0.25 }, 3000n)).toBe(0.25);
    expect(catchUpMs({ ...n, lagMs: 300 }, 3000n)).toBe(1);
  });
});
