// StaticProbeSource with a fake prober and fake timers: roles, failover, health, lag, EWMA, verification, waits.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseLsn } from '../../../src/topology/lsn.js';
import { StaticProbeSource, type StaticProbeOptions } from '../../../src/topology/static-source.js';
import type { NodeState, TopologySnapshot } from '../../../src/topology/types.js';
import { deferred, FakeProber, NODES, primaryResult, replicaResult } from './fake-prober.js';

const P_PORT = 5432;
const R1_PORT = 5433;

let prober: FakeProber;
let logs: Array<{ level: string; obj: Record<string, unknown>; msg: string }>;
let src: StaticProbeSource;

function make(opts: StaticProbeOptions = {}, nodes = NODES): StaticProbeSource {
  src = new StaticProbeSource(nodes, {
    prober,
    log: (level, obj, msg) => logs.push({ level, obj, msg }),
    ...opts,
  });
  return src;
}

function node(s: TopologySnapshot, name: string): NodeState {
  const found = [s.primary, ...s.replicas].find((n) => n?.name === name);
  if (!found) throw new Error(`no node ${name}`);
  return found;
}

const tick = (ms = 250) => vi.advanceTimersByTimeAsync(ms);

function healthyCluster(): void {
  prober
    .set('p', primaryResult('0/3000100'))
    .set('r1', replicaResult('0/3000100', P_PORT))
    .set('r2', replicaResult('0/3000000', P_PORT, { replayAgeMs: 1234 }));
}

beforeEach(() => {
  vi.useFakeTimers();
  prober = new FakeProber();
  logs = [];
});

afterEach(async () => {
  await src?.stop();
  vi.useRealTimers();
});

describe('roles and snapshot', () => {
  it('start() resolves with a first snapshot: primary, verified replicas, regions, credential-free URLs', async () => {
    healthyCluster();
    make();
    expect(src.current().version).toBe(0);
    await src.start();
    const s = src.current();
    expect(s.version).toBe(1);
    expect(s.primary).toMatchObject({
      name: 'p',
      role: 'primary',
      region: 'iad',
      host: '10.0.0.1',
      port: 5432,
      url: 'postgres://10.0.0.1:5432/postgres',
      healthy: true,
      verified: true,
      primaryLsn: parseLsn('0/3000100'),
      replayLsn: null,
    });
    expect(s.replicas.map((r) => [r.name, r.region, r.role, r.healthy, r.verified])).toEqual([
      ['r1', 'ams', 'replica', true, true],
      ['r2', 'syd', 'replica', true, true],
    ]);
    expect(src.current()).toBe(s); // no copies
    expect(JSON.stringify(s, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))).not.toContain('secret');
  });

  it('publishes a new snapshot every round and notifies subscribers until they unsubscribe', async () => {
    healthyCluster();
    make();
    const seen: number[] = [];
    const off = src.onSnapshot((s) => seen.push(s.version));
    await src.start();
    await tick();
    await tick();
    expect(seen).toEqual([1, 2, 3]);
    expect(prober.probeCalls.filter((n) => n === 'r1')).toHaveLength(3);
    off();
    await tick();
    expect(seen).toEqual([1, 2, 3]);
    expect(src.current().version).toBe(4);
  });

  it('a node never reachable is unknown and unhealthy; start() still resolves', async () => {
    healthyCluster();
    prober.set('r2', new Error('connect ECONNREFUSED'));
    make();
    await src.start();
    expect(node(src.current(), 'r2')).toMatchObject({
      role: 'unknown',
      healthy: false,
      verified: false,
      replayLsn: null,
      lastError: 'connect ECONNREFUSED',
    });
    expect(logs.some((l) => l.msg === 'node unhealthy' && l.obj.node === 'r2')).toBe(true);
  });

  it('a hanging probe times out (counted as a failure, connection reset) without stalling the round', async () => {
    healthyCluster();
    prober.set('r2', 'hang');
    make({ timeoutMs: 1000, failThreshold: 1 });
    const started = src.start();
    await tick(1000);
    await started;
    expect(node(src.current(), 'r2')).toMatchObject({ healthy: false, lastError: 'timed out after 1000 ms' });
    expect(prober.reset).toHaveBeenCalledWith('r2', 'probe');
    // Later rounds publish at the tick rate although r2 hangs again (its probe stays in flight).
    const v = src.current().version;
    await tick(1000);
    expect(src.current().version).toBeGreaterThanOrEqual(v + 4);
    expect(prober.probeCalls.filter((n) => n === 'r1').length).toBeGreaterThan(
      prober.probeCalls.filter((n) => n === 'r2').length + 2,
    );
  });
});

describe('failover', () => {
  it('follows a promotion: the configured primary in recovery, a replica out of it', async () => {
    healthyCluster();
    make();
    await src.start();
    prober
      .set('p', replicaResult('0/4000000', R1_PORT))
      .set('r1', primaryResult('0/4000000', { timeline: 2, serverPort: R1_PORT }))
      .set('r2', replicaResult('0/4000000', R1_PORT));
    await tick();
    const s = src.current();
    expect(s.primary?.name).toBe('r1');
    expect(s.primary?.verified).toBe(true);
    expect(node(s, 'p')).toMatchObject({ role: 'replica', verified: true, healthy: true });
    expect(node(s, 'r2').verified).toBe(true);
    expect(logs).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'primary changed' }));
    const roleWarnings = logs.filter((l) => l.msg === 'node role differs from configuration').map((l) => l.obj.node);
    expect(roleWarnings.sort()).toEqual(['p', 'r1']);
    // Logged on change only.
    await tick();
    expect(logs.filter((l) => l.msg === 'node role differs from configuration')).toHaveLength(2);
  });

  it('a promoted replica wins over the old primary when the latter is down', async () => {
    healthyCluster();
    make({ failThreshold: 1 });
    await src.start();
    prober.set('p', new Error('down')).set('r1', primaryResult('0/4000000', { timeline: 2 }));
    await tick();
    const s = src.current();
    expect(s.primary?.name).toBe('r1');
    expect(node(s, 'p')).toMatchObject({ role: 'primary', healthy: false, verified: false });
  });

  it('two healthy primaries on one timeline: the configured one wins, the other is unhealthy and unverified', async () => {
    healthyCluster();
    prober.set('r1', primaryResult('0/3000100'));
    make();
    await src.start();
    const s = src.current();
    expect(s.primary?.name).toBe('p');
    expect(node(s, 'r1')).toMatchObject({ role: 'primary', healthy: false, verified: false });
    expect(node(s, 'r1').lastError).toMatch(/conflicting primary/);
  });

  it('two healthy primaries: the higher timeline (the promoted one) wins over configuration', async () => {
    healthyCluster();
    prober.set('r1', primaryResult('0/3000100', { timeline: 3 }));
    make();
    await src.start();
    expect(src.current().primary?.name).toBe('r1');
    expect(node(src.current(), 'p').healthy).toBe(false);
  });
});

describe('health', () => {
  it('unhealthy after failThreshold consecutive failures, healthy again after one success', async () => {
    healthyCluster();
    make({ failThreshold: 3 });
    await src.start();
    prober.set('r1', new Error('boom'));
    await tick();
    await tick();
    expect(node(src.current(), 'r1')).toMatchObject({ healthy: true, verified: true, lastError: 'boom' });
    await tick();
    expect(node(src.current(), 'r1')).toMatchObject({ healthy: false, verified: false, lastError: 'boom' });
    // The last known data stays visible.
    expect(node(src.current(), 'r1').replayLsn).toBe(parseLsn('0/3000100'));
    prober.set('r1', replicaResult('0/3000200', P_PORT));
    await tick();
    expect(node(src.current(), 'r1')).toMatchObject({ healthy: true, verified: true });
    expect(node(src.current(), 'r1').lastError).toBeUndefined();
    expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['node unhealthy', 'node healthy']));
  });
});

describe('lag, rtt and replay rate', () => {
  it('lag from the primary insert LSN; 0 when caught up (including a page-header gap)', async () => {
    healthyCluster();
    make();
    await src.start();
    expect(node(src.current(), 'r1')).toMatchObject({ lagBytes: 0, lagMs: 0 });
    expect(node(src.current(), 'r2')).toMatchObject({ lagBytes: 256, lagMs: 1234 });
    expect(src.current().primary).toMatchObject({ lagBytes: 0, lagMs: 0 });
    prober.set('p', primaryResult('0/3002018')).set('r1', replicaResult('0/3002000', P_PORT, { replayAgeMs: 9999 }));
    await tick();
    expect(node(src.current(), 'r1')).toMatchObject({ lagBytes: 0, lagMs: 0 });
    // Clock skew never yields negative lag.
    prober.set('r2', replicaResult('0/3000000', P_PORT, { replayAgeMs: -5 }));
    await tick();
    expect(node(src.current(), 'r2').lagMs).toBe(0);
  });

  it('rttMs is an EWMA (α 0.3) of probe durations', async () => {
    healthyCluster();
    prober.delays.set('r1', 10);
    make();
    const started = src.start();
    await tick(10);
    await started;
    expect(node(src.current(), 'r1').rttMs).toBeCloseTo(10);
    prober.delays.set('r1', 20);
    await tick(240 + 20); // the next round starts at 250 and r1 answers at 270
    expect(node(src.current(), 'r1').rttMs).toBeCloseTo(0.3 * 20 + 0.7 * 10);
  });

  it('replayRate is an EWMA of bytes/s between tick probes, reset by a role change', async () => {
    healthyCluster();
    make();
    await src.start();
    expect(node(src.current(), 'r1').replayRate).toBeNull();
    prober.set('r1', replicaResult('0/3000500', P_PORT)); // +1024 bytes in 250 ms
    await tick();
    expect(node(src.current(), 'r1').replayRate).toBeCloseTo(4096, 0);
    await tick(); // no progress
    expect(node(src.current(), 'r1').replayRate).toBeCloseTo(0.7 * 4096, 0);
    prober.set('r1', primaryResult('0/3000600', { timeline: 2 }));
    await tick();
    expect(node(src.current(), 'r1').replayRate).toBeNull();
  });
});

describe('verification', () => {
  it.each([
    ['sender port is the primary URL port', { senderPort: P_PORT }, true],
    ['no visible sender (no privilege / no receiver row)', { senderPort: null, senderHost: null }, true],
    ['sender port is another server', { senderPort: 6000 }, false],
    ['another cluster (system identifier)', { systemId: '42' }, false],
  ])('%s → verified %s', async (_what, over, verified) => {
    healthyCluster();
    prober.set('r1', replicaResult('0/3000100', P_PORT, over));
    make();
    await src.start();
    expect(node(src.current(), 'r1').verified).toBe(verified);
  });

  it("accepts the primary's own inet_server_port when it differs from its URL port (NAT, proxy)", async () => {
    healthyCluster();
    prober.set('p', primaryResult('0/3000100', { serverPort: 7000 })).set('r1', replicaResult('0/3000100', 7000));
    make();
    await src.start();
    expect(node(src.current(), 'r1').verified).toBe(true);
  });

  it('replicas stay verified against the last known primary while it is unreachable; none before any', async () => {
    prober.set('p', new Error('down')).set('r1', replicaResult('0/3000100', P_PORT));
    make({ failThreshold: 1 }, NODES.slice(0, 2));
    await src.start();
    expect(src.current().primary).toBeNull();
    expect(node(src.current(), 'r1').verified).toBe(false);
    prober.set('p', primaryResult('0/3000100'));
    await tick();
    expect(node(src.current(), 'r1').verified).toBe(true);
    prober.set('p', new Error('down again'));
    await tick();
    expect(src.current().primary).toMatchObject({ name: 'p', healthy: false });
    expect(node(src.current(), 'r1').verified).toBe(true);
  });
});

describe('refreshReplay', () => {
  it('coalesces concurrent callers into one probe and republishes the new LSN', async () => {
    healthyCluster();
    make();
    await src.start();
    const d = deferred<bigint | null>();
    prober.replayLsn.mockImplementation(() => d.promise);
    const a = src.refreshReplay('r2');
    const b = src.refreshReplay('r2');
    expect(prober.replayLsn).toHaveBeenCalledTimes(1);
    const v = src.current().version;
    d.resolve(parseLsn('0/3000100'));
    expect(await a).toBe(parseLsn('0/3000100'));
    expect(await b).toBe(parseLsn('0/3000100'));
    expect(src.current().version).toBe(v + 1);
    expect(node(src.current(), 'r2')).toMatchObject({ replayLsn: parseLsn('0/3000100'), lagBytes: 0 });
    prober.replayLsn.mockResolvedValue(parseLsn('0/3000100'));
    await src.refreshReplay('r2');
    expect(prober.replayLsn).toHaveBeenCalledTimes(2);
  });

  it('resolves null on failure or timeout, rejects an unknown node', async () => {
    healthyCluster();
    make({ timeoutMs: 100 });
    await src.start();
    prober.replayLsn.mockRejectedValueOnce(new Error('gone'));
    expect(await src.refreshReplay('r1')).toBeNull();
    prober.replayLsn.mockImplementationOnce(() => new Promise(() => {}));
    const pending = src.refreshReplay('r1');
    await tick(100);
    expect(await pending).toBeNull();
    expect(prober.reset).toHaveBeenCalledWith('r1', 'probe');
    expect(() => src.refreshReplay('nope')).toThrow(/unknown node/);
  });

  it('a tick probe sent before a newer refreshed value does not move the LSN back', async () => {
    healthyCluster();
    prober.delays.set('r2', 100);
    make();
    const started = src.start();
    await tick(100);
    await started;
    await tick(150); // next round starts; r2's probe (answering 0/3000000) is in flight for 100 ms
    prober.replayLsn.mockResolvedValue(parseLsn('0/3000100'));
    await src.refreshReplay('r2');
    await tick(100);
    expect(node(src.current(), 'r2').replayLsn).toBe(parseLsn('0/3000100'));
  });
});

describe('waitForReplay', () => {
  it('answers from the known replay LSN without a round trip', async () => {
    healthyCluster();
    make();
    await src.start();
    expect(await src.waitForReplay('r1', parseLsn('0/3000100'), 1000)).toBe(true);
    expect(prober.waitReplay).not.toHaveBeenCalled();
  });

  it('a page-aligned replay position a page header short of an insert LSN counts as reached', async () => {
    healthyCluster();
    prober.set('r2', replicaResult('0/3002000', P_PORT));
    make();
    await src.start();
    expect(await src.waitForReplay('r2', parseLsn('0/3002018'), 1000)).toBe(true);
    expect(prober.waitReplay).not.toHaveBeenCalled();
    prober.waitReplay.mockResolvedValueOnce(parseLsn('0/3004000'));
    expect(await src.waitForReplay('r2', parseLsn('0/3004018'), 1000)).toBe(true);
    expect(prober.waitReplay).toHaveBeenCalledTimes(1);
  });

  it('one server wait per node; waits for lower or equal LSNs share it', async () => {
    healthyCluster();
    make();
    await src.start();
    const d = deferred<bigint | null>();
    prober.waitReplay.mockImplementation(() => d.promise);
    const high = src.waitForReplay('r2', parseLsn('0/3000200'), 2000);
    const low = src.waitForReplay('r2', parseLsn('0/3000180'), 2000);
    const same = src.waitForReplay('r2', parseLsn('0/3000200'), 2000);
    expect(prober.waitReplay).toHaveBeenCalledTimes(1);
    expect(prober.waitReplay.mock.calls[0]![1]).toBe(parseLsn('0/3000200'));
    expect(prober.waitReplay.mock.calls[0]![2]).toBe(2000);
    const v = src.current().version;
    d.resolve(parseLsn('0/3000208'));
    expect(await Promise.all([high, low, same])).toEqual([true, true, true]);
    expect(node(src.current(), 'r2').replayLsn).toBe(parseLsn('0/3000208'));
    expect(src.current().version).toBe(v + 1);
  });

  it('a higher LSN queues behind the running wait and is answered locally when the first reached it', async () => {
    healthyCluster();
    make();
    await src.start();
    const d = deferred<bigint | null>();
    prober.waitReplay.mockImplementation(() => d.promise);
    const first = src.waitForReplay('r2', parseLsn('0/3000200'), 2000);
    const second = src.waitForReplay('r2', parseLsn('0/3000300'), 2000);
    expect(prober.waitReplay).toHaveBeenCalledTimes(1);
    d.resolve(parseLsn('0/3000400'));
    expect(await Promise.all([first, second])).toEqual([true, true]);
    expect(prober.waitReplay).toHaveBeenCalledTimes(1);
  });

  it('a queued wait runs its own server wait with the time it has left', async () => {
    healthyCluster();
    make();
    await src.start();
    const d1 = deferred<bigint | null>();
    prober.waitReplay.mockImplementationOnce(() => d1.promise).mockResolvedValueOnce(parseLsn('0/3000300'));
    const first = src.waitForReplay('r2', parseLsn('0/3000200'), 2000);
    const second = src.waitForReplay('r2', parseLsn('0/3000300'), 1000);
    await tick(300);
    d1.resolve(parseLsn('0/3000200'));
    expect(await first).toBe(true);
    expect(await second).toBe(true);
    expect(prober.waitReplay).toHaveBeenCalledTimes(2);
    expect(prober.waitReplay.mock.calls[1]![2]).toBe(700);
  });

  it('false at the caller’s own timeout, even when sharing a longer wait', async () => {
    healthyCluster();
    make();
    await src.start();
    const d = deferred<bigint | null>();
    prober.waitReplay.mockImplementation(() => d.promise);
    const long = src.waitForReplay('r2', parseLsn('0/3000200'), 2000);
    const short = src.waitForReplay('r2', parseLsn('0/3000200'), 50);
    await tick(50);
    expect(await short).toBe(false);
    d.resolve(parseLsn('0/3000200'));
    expect(await long).toBe(true);
  });

  it('false when the server wait ends short or fails', async () => {
    healthyCluster();
    make();
    await src.start();
    prober.waitReplay.mockResolvedValueOnce(parseLsn('0/3000010'));
    expect(await src.waitForReplay('r2', parseLsn('0/3000200'), 100)).toBe(false);
    prober.waitReplay.mockRejectedValueOnce(new Error('conn lost'));
    expect(await src.waitForReplay('r2', parseLsn('0/3000200'), 100)).toBe(false);
    expect(prober.waitReplay).toHaveBeenCalledTimes(2);
  });

  it('a hung server wait is reset after its timeout plus timeoutMs', async () => {
    healthyCluster();
    make({ timeoutMs: 500 });
    await src.start();
    prober.waitReplay.mockImplementation(() => new Promise(() => {}));
    const w = src.waitForReplay('r2', parseLsn('0/3000200'), 100);
    await tick(100);
    expect(await w).toBe(false);
    expect(prober.reset).not.toHaveBeenCalledWith('r2', 'wait');
    await tick(500);
    expect(prober.reset).toHaveBeenCalledWith('r2', 'wait');
  });
});

describe('stop', () => {
  it('clears every timer, closes the prober, settles pending waits; idempotent', async () => {
    healthyCluster();
    make();
    await src.start();
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    prober.waitReplay.mockImplementation(() => new Promise(() => {}));
    const w = src.waitForReplay('r2', parseLsn('0/3000200'), 60_000);
    await src.stop();
    await src.stop();
    expect(await w).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    expect(prober.close).toHaveBeenCalledTimes(1);
    const calls = prober.probeCalls.length;
    await tick(5000);
    expect(prober.probeCalls).toHaveLength(calls);
    expect(await src.refreshReplay('r1')).toBeNull();
    expect(await src.waitForReplay('r1', parseLsn('9/0'), 10)).toBe(false);
  });

  it('stop() during a start() whose probes hang lets start() resolve', async () => {
    prober.set('p', 'hang').set('r1', 'hang').set('r2', 'hang');
    make();
    const started = src.start();
    await src.stop();
    await expect(started).resolves.toBeUndefined();
    expect(vi.getTimerCount()).toBe(0);
  });
});
