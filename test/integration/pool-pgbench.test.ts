// pgbench through pgnear in transaction mode: 64 clients on 20 servers, in all three query modes. pgbench
// prepares its statements once per connection (-M prepared), so every server pgnear hands a client must get them
// transparently. Afterwards the TPC-B invariants (one history row per transaction, balances that add up) must hold,
// and pgnear must never have had more than pool_size servers on the database.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { run } from '../support/drivers.js';
import {
  createDatabase,
  directClient,
  directUrl,
  sampleServerBackends,
  serverBackends,
  serverEvents,
  startPoolProxy,
} from '../support/pooling.js';
import type { TestProxy } from '../support/proxy.js';

const PGBENCH = '/usr/lib/postgresql/15/bin/pgbench';
const DB = 'bench';
const POOL_SIZE = 20;
const cluster = useCluster({ replicas: 0 });
let proxy: TestProxy | undefined;
let admin: pg.Client;
let adminDb: pg.Client;

beforeAll(async () => {
  await createDatabase(cluster(), DB);
  // Initialised directly, so the runs below are the only traffic through pgnear.
  const init = await run(PGBENCH, ['-i', '-s', '1', '-q', directUrl(cluster(), DB)], { timeoutMs: 120_000 });
  if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
  admin = await directClient(cluster());
  adminDb = await directClient(cluster(), DB);
  proxy = await startPoolProxy(cluster(), 'transaction', { pool_size: POOL_SIZE });
});
afterAll(async () => {
  await proxy?.stop();
  await admin?.end().catch(() => {});
  await adminDb?.end().catch(() => {});
});

const url = () => {
  if (!proxy) throw new Error('the transaction-mode proxy did not start (see beforeAll)');
  return proxy.url(undefined, undefined, DB);
};

async function historyRows(): Promise<number> {
  return (await adminDb.query('select count(*)::int as n from pgbench_history')).rows[0].n;
}

/** Run pgbench through pgnear while sampling pgnear's server backends; check the outcome and the invariants. */
async function bench(mode: 'prepared' | 'extended' | 'simple', seconds: number, selectOnly: boolean): Promise<void> {
  const before = await historyRows();
  const sampler = await sampleServerBackends(cluster(), DB, 20);
  const args = [...(selectOnly ? ['-S'] : []), '-M', mode, '-c', '64', '-j', '2', '-T', String(seconds), '-n', url()];
  // A stuck run is killed 20 s past its duration; the servers' states then tell where it stuck.
  let stuck = '';
  const watchdog = setTimeout(
    () =>
      void admin
        .query(
          `select state, wait_event, left(query, 40) as query, count(*)::int as n from pg_stat_activity
            where datname = $1 and backend_type = 'client backend' group by 1, 2, 3`,
          [DB],
        )
        .then((q) => {
          stuck = JSON.stringify(q.rows);
        }),
    (seconds + 15) * 1000,
  );
  const r = await run(PGBENCH, args, { timeoutMs: (seconds + 20) * 1000 })
    .catch(async (e: unknown) => {
      await sampler.stop();
      throw e;
    })
    .finally(() => clearTimeout(watchdog));
  const s = await sampler.stop();
  const out = `${r.stdout}\n${r.stderr}${r.signal ? `\nkilled (${r.signal}); servers at the time: ${stuck}` : ''}`;
  expect(r.code, out).toBe(0);
  expect(r.stdout).toContain(`query mode: ${mode}`);
  expect(r.stdout).toContain('number of clients: 64');
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
  expect(processed, out).toBeGreaterThan(0);
  expect(/number of failed transactions: (\d+)/.exec(r.stdout)?.[1], out).toBe('0');
  expect(r.stderr, out).not.toMatch(/error|abort|fatal/i);
  expect(s.max, `server backends for ${DB}; pgnear: ${JSON.stringify(serverEvents(proxy!))}`).toBeLessThanOrEqual(
    POOL_SIZE,
  );
  expect(s.max, 'more than one server was used').toBeGreaterThan(1);

  const after = await historyRows();
  if (selectOnly) expect(after).toBe(before);
  else expect(after - before, 'one pgbench_history row per processed TPC-B transaction').toBe(processed);
  const sums = (
    await adminDb.query(`select (select sum(abalance) from pgbench_accounts)::bigint::text as a,
      (select sum(bbalance) from pgbench_branches)::bigint::text as b, (select sum(tbalance) from pgbench_tellers)::bigint::text as t,
      (select coalesce(sum(delta), 0) from pgbench_history)::bigint::text as h`)
  ).rows[0];
  expect([sums.a, sums.b, sums.t], 'TPC-B balances add up').toEqual([sums.h, sums.h, sums.h]);
  const left = await serverBackends(admin, DB);
  expect(left.idleInTransaction + left.active, 'nothing left running or in a transaction').toBe(0);
}

// Note on -M prepared with the TPC-B script and more clients than servers: pgbench 15 prepares a client's statements
// with blocking PQprepare calls (Parse+Sync each) the first time that client runs, which stalls its whole thread
// (-j 2: 32 clients each). Clients of that thread holding a server inside BEGIN … END then cannot go on, so unless
// pgnear can complete such a Parse+Sync without a free server (e.g. for a statement text it already prepared
// successfully), all pool_size servers end up idle in transaction and the run deadlocks.
describe('pgbench through pgnear, pool_mode transaction, 64 clients on pool_size 20', () => {
  it('-M prepared TPC-B (default script) -c 64 -j 2 -T 10: exit 0, 0 failed transactions, invariants hold', async () => {
    await bench('prepared', 10, false);
  });

  it('-M prepared -S -c 64 -j 2 -T 10', async () => {
    await bench('prepared', 10, true);
  });

  it('-M extended TPC-B and -S -T 3', async () => {
    await bench('extended', 3, false);
    await bench('extended', 3, true);
  });

  it('-M simple TPC-B and -S -T 3', async () => {
    await bench('simple', 3, false);
    await bench('simple', 3, true);
  });
});
