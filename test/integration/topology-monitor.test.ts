// StaticProbeSource against a real primary + replica (300 ms apply delay): roles, replay LSNs, waits, teardown.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalCluster } from '../../src/devcluster/cluster.js';
import { lsnCaughtUp, parseLsn } from '../../src/topology/lsn.js';
import { StaticProbeSource } from '../../src/topology/static-source.js';
import type { NodeSpec, NodeState, TopologySnapshot } from '../../src/topology/types.js';
import { useCluster } from '../support/cluster.js';

const DELAY_MS = 300;
const APP = 'pgnear-monitor';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const cluster = useCluster({ replicas: 1, regions: ['iad', 'ams'], applyDelayMs: [DELAY_MS] });
let primary: pg.Client;
let src: StaticProbeSource;

function specs(c: LocalCluster): NodeSpec[] {
  return c.nodes.map((n) => ({ name: n.name, url: c.urlFor(n), region: n.region, configuredRole: n.role }));
}

function replica(s: TopologySnapshot = src.current()): NodeState {
  const r = s.replicas.find((x) => x.name === 'replica1');
  if (!r) throw new Error('replica1 missing from the snapshot');
  return r;
}

/** Commits a row on the primary; returns the LSN a reader must see replayed (flushed WAL position). */
async function write(): Promise<bigint> {
  await primary.query('INSERT INTO topo_t VALUES (1)');
  const { rows } = await primary.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(rows[0]!.lsn);
}

async function monitorConnections(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url, application_name: 'pgnear-test' });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [APP],
    );
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

async function until(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - t0;
}

beforeAll(async () => {
  const c = cluster();
  primary = new pg.Client({ connectionString: c.urlFor(c.primary), application_name: 'pgnear-test' });
  primary.on('error', () => {});
  await primary.connect();
  await primary.query('CREATE TABLE topo_t (x int)');
  await c.waitForReplay();
  src = new StaticProbeSource(specs(c), { intervalMs: 250, applicationName: APP });
  await src.start();
});

afterAll(async () => {
  await src?.stop();
  await primary?.end().catch(() => {});
});

describe('topology monitor on a real cluster', () => {
  it('first snapshot: the primary and a verified, streaming replica with regions', () => {
    const c = cluster();
    const s = src.current();
    expect(s.version).toBeGreaterThanOrEqual(1);
    expect(s.primary).toMatchObject({
      name: 'primary',
      region: 'iad',
      role: 'primary',
      host: '127.0.0.1',
      port: c.primary.port,
      healthy: true,
      verified: true,
    });
    expect(s.primary!.primaryLsn).toBeGreaterThan(0n);
    expect(s.primary!.url).not.toContain(c.superuser.password);
    expect(s.replicas).toHaveLength(1);
    expect(replica(s)).toMatchObject({
      region: 'ams',
      role: 'replica',
      port: c.replicas[0]!.port,
      healthy: true,
      verified: true,
    });
    expect(replica(s).replayLsn).toBeGreaterThan(0n);
    expect(replica(s).rttMs).toBeGreaterThan(0);
  });

  it('publishes at the tick rate', async () => {
    const v = src.current().version;
    await sleep(1000);
    expect(src.current().version - v).toBeGreaterThanOrEqual(3);
    expect(src.current().version - v).toBeLessThanOrEqual(6);
  });

  it('the replica replay LSN reaches the primary insert LSN after the apply delay, not before', async () => {
    await primary.query('INSERT INTO topo_t VALUES (1)');
    const t0 = Date.now();
    const { rows } = await primary.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
    const target = parseLsn(rows[0]!.lsn);
    const early = await src.refreshReplay('replica1');
    expect(early).not.toBeNull();
    expect(early!).toBeLessThan(target);
    await until('the snapshot to show the replay', 3000, () => {
      const r = replica();
      return r.replayLsn !== null && lsnCaughtUp(r.replayLsn, target);
    });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(DELAY_MS - 100);
    expect(elapsed).toBeLessThan(2000);
    // Lag was visible in between and is gone once the primary's LSN stopped moving.
    await until('lag to settle', 3000, () => replica().lagBytes === 0 && replica().lagMs === 0);
  });

  it('waitForReplay: false with a 50 ms timeout while lagging, true after about the apply delay', async () => {
    const lsn = await write();
    const t0 = Date.now();
    expect(await src.waitForReplay('replica1', lsn, 50)).toBe(false);
    const short = Date.now() - t0;
    expect(short).toBeGreaterThanOrEqual(45);
    expect(short).toBeLessThan(250);
    expect(await src.waitForReplay('replica1', lsn, 2000)).toBe(true);
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeGreaterThanOrEqual(DELAY_MS - 100);
    expect(elapsed).toBeLessThan(1500);
    expect(replica().replayLsn! >= lsn).toBe(true);
    // Already reached: answered from the snapshot.
    const t1 = Date.now();
    expect(await src.waitForReplay('replica1', lsn, 2000)).toBe(true);
    expect(Date.now() - t1).toBeLessThan(20);
  });

  it('concurrent waits for the same write all succeed; a refresh agrees', async () => {
    const lsn = await write();
    const results = await Promise.all([
      src.waitForReplay('replica1', lsn, 2000),
      src.waitForReplay('replica1', lsn - 1n, 2000),
      src.waitForReplay('replica1', lsn, 2000),
    ]);
    expect(results).toEqual([true, true, true]);
    expect((await src.refreshReplay('replica1'))! >= lsn).toBe(true);
    // One probe connection per node plus the replica's wait connection.
    const c = cluster();
    expect(await monitorConnections(c.urlFor(c.primary))).toBe(1);
    expect(await monitorConnections(c.urlFor(c.replicas[0]!))).toBe(2);
  });

  it('survives the replica going away: unhealthy, then healthy and verified again after a restart', async () => {
    const c = cluster();
    const node = c.replicas[0]!;
    await c.stopNode(node, 'immediate');
    await until('replica1 unhealthy', 5000, () => !replica().healthy);
    expect(replica().verified).toBe(false);
    expect(replica().lastError).toBeTruthy();
    expect(src.current().primary?.healthy).toBe(true);
    const lsn = await write();
    expect(await src.waitForReplay('replica1', lsn + 1_000_000n, 100)).toBe(false);
    await c.startNode(node);
    await until('replica1 healthy and verified', 15_000, () => replica().healthy && replica().verified);
    expect(await src.waitForReplay('replica1', lsn, 5000)).toBe(true);
  });

  it('stop() closes every monitor connection', async () => {
    const c = cluster();
    expect(await monitorConnections(c.urlFor(c.primary))).toBeGreaterThan(0);
    await src.stop();
    await src.stop();
    for (const n of c.nodes) {
      await until(`no ${APP} sessions on ${n.name}`, 3000, async () => (await monitorConnections(c.urlFor(n))) === 0);
    }
    expect(await src.waitForReplay('replica1', 1n << 40n, 10)).toBe(false);
  });
});
