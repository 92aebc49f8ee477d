// pool_mode: session (no longer the default): each client keeps one server for its whole session, and a server goes
// back to the pool only after server_reset_query (DISCARD ALL), so the next client never sees the previous one's
// settings, prepared statements, temp tables, LISTENs or advisory locks.
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { useCluster } from '../support/cluster.js';
import {
  ClientBag,
  createDatabase,
  directClient,
  sampleServerBackends,
  serverBackends,
  startPoolProxy,
} from '../support/pooling.js';
import type { TestProxy } from '../support/proxy.js';

const DB = 'poolsess';
const cluster = useCluster({ replicas: 0 });
const bag = new ClientBag();
let proxy: TestProxy;
let admin: pg.Client;

beforeAll(async () => {
  await createDatabase(cluster(), DB, [
    'create schema s_schema',
    'create table counter(id int primary key, n int not null)',
  ]);
  admin = await directClient(cluster());
  proxy = await startPoolProxy(cluster(), 'session');
});
afterEach(async () => {
  await bag.closeAll();
});
afterAll(async () => {
  await bag.closeAll();
  await admin?.end().catch(() => {});
  await proxy?.stop();
});

const url = (query = '') => proxy.url(undefined, undefined, DB, query);
const pidOf = async (c: pg.Client): Promise<number> => (await c.query('select pg_backend_pid() as pid')).rows[0].pid;

/** Wait until the primary shows the server idle after the reset query, i.e. back in the pool. */
async function waitForReset(pid: number): Promise<void> {
  await vi.waitFor(
    async () => {
      const r = await admin.query('select state, query from pg_stat_activity where pid = $1', [pid]);
      expect(r.rows[0]).toEqual({ state: 'idle', query: 'DISCARD ALL' });
    },
    { timeout: 10_000, interval: 50 },
  );
}

describe('pool_mode session', () => {
  it('gives each of 8 concurrent clients its own server for its whole session', async () => {
    const n = 8;
    const sampler = await sampleServerBackends(cluster(), DB, 20);
    const clients = await Promise.all(Array.from({ length: n }, () => bag.pg(url())));
    try {
      const seen = await Promise.all(
        clients.map(async (c, i) => {
          const pids = new Set<number>();
          for (let k = 0; k < 15; k++) {
            if (k % 3 === 0) {
              await c.query('begin');
              pids.add(await pidOf(c));
              await c.query('select pg_sleep(0.002)');
              await c.query('commit');
            } else if (k % 3 === 1) {
              pids.add(
                (await c.query({ name: 'pid', text: 'select pg_backend_pid() as pid, $1::int as i', values: [i] }))
                  .rows[0].pid,
              );
            } else pids.add(await pidOf(c));
          }
          return [...pids];
        }),
      );
      expect(
        seen.map((p) => p.length),
        'one server per client for its whole session',
      ).toEqual(Array(n).fill(1));
      expect(new Set(seen.flat()).size, 'no two clients share a server').toBe(n);
      const now = await serverBackends(admin, DB);
      expect(now.pids.sort()).toEqual(seen.flat().sort());
    } finally {
      const s = await sampler.stop();
      expect(s.max).toBe(n);
    }
  });

  it('keeps session state within a session: SET, temp tables and prepared statements (visible in pg_prepared_statements)', async () => {
    const c = await bag.pg(url());
    await c.query('set search_path to s_schema, public');
    await c.query('create temp table sess_tt(a int)');
    await c.query('prepare sq as select $1::int * 2 as v');
    expect((await c.query({ name: 'named_pg', text: 'select $1::int + 1 as v', values: [1] })).rows[0].v).toBe(2);
    for (let i = 0; i < 3; i++) {
      await c.query('begin');
      await c.query('insert into sess_tt values ($1)', [i]);
      await c.query('commit');
    }
    const r = await c.query(
      "select name, statement from pg_prepared_statements where name in ('sq', 'named_pg') order by name",
    );
    expect(r.rows).toEqual([
      { name: 'named_pg', statement: 'select $1::int + 1 as v' },
      { name: 'sq', statement: 'prepare sq as select $1::int * 2 as v' },
    ]);
    expect((await c.query('execute sq(21)')).rows[0].v).toBe(42);
    expect((await c.query({ name: 'named_pg', text: 'select $1::int + 1 as v', values: [41] })).rows[0].v).toBe(42);
    expect((await c.query('select count(*)::int as n from sess_tt')).rows[0].n).toBe(3);
    expect((await c.query('show search_path')).rows[0].search_path).toBe('s_schema, public');
  });

  it('resets a server with DISCARD ALL before the next client gets it: no settings, statements, temp tables, LISTEN or locks leak', async () => {
    const c1 = await bag.pg(url());
    const pid = await pidOf(c1);
    await c1.query('set search_path to s_schema');
    await c1.query("set statement_timeout = '1234ms'");
    await c1.query("set time zone 'Asia/Kathmandu'");
    await c1.query("set application_name = 'leaky'");
    await c1.query('prepare leak as select 1');
    await c1.query({ name: 'leak_pg', text: 'select $1::int as v', values: [1] });
    await c1.query('create temp table leak_tt(a int)');
    await c1.query('listen leak_chan');
    await c1.query('select pg_advisory_lock(11)');
    await c1.query('begin');
    await c1.query('insert into public.counter values (1, 1)');
    await c1.query('commit');
    const fresh = await directClient(cluster(), DB);
    const defaults = (
      await fresh.query(
        "select current_setting('search_path') sp, current_setting('statement_timeout') st, current_setting('TimeZone') tz",
      )
    ).rows[0];
    await fresh.end();
    await bag.end(c1);
    await waitForReset(pid);

    const c2 = await bag.pg(url());
    expect(await pidOf(c2), 'the same server, reused').toBe(pid);
    const r = await c2.query(`select current_setting('search_path') sp, current_setting('statement_timeout') st,
      current_setting('TimeZone') tz, current_setting('application_name') app,
      (select count(*)::int from pg_prepared_statements) prepared, to_regclass('leak_tt') is null as no_tt,
      (select count(*)::int from pg_listening_channels()) listening,
      (select count(*)::int from pg_locks where pid = pg_backend_pid() and locktype = 'advisory') advisory`);
    expect(r.rows[0]).toEqual({ ...defaults, app: '', prepared: 0, no_tt: true, listening: 0, advisory: 0 });
    // The committed work of the previous client is of course still there.
    expect((await c2.query('select n from counter where id = 1')).rows[0].n).toBe(1);
    // And the lock is really free: another session can take it.
    const direct = await directClient(cluster(), DB);
    try {
      expect((await direct.query('select pg_try_advisory_lock(11) as ok')).rows[0].ok).toBe(true);
    } finally {
      await direct.end();
    }
  });

  it('does not reuse a server whose client vanished inside a transaction (it is closed or rolled back)', async () => {
    const c1 = await bag.pg(url());
    const pid = await pidOf(c1);
    await c1.query('insert into counter values (2, 2)');
    await c1.query('begin');
    await c1.query('update counter set n = n + 100 where id = 2');
    (c1 as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    await vi.waitFor(
      async () => {
        const r = await admin.query('select state from pg_stat_activity where pid = $1', [pid]);
        expect(r.rows[0]?.state ?? 'gone').not.toMatch(/in transaction/);
      },
      { timeout: 5000, interval: 50 },
    );
    const c2 = await bag.pg(url());
    const r = await c2.query('select n from counter where id = 2 for update nowait');
    expect(r.rows[0].n, 'the UPDATE was rolled back and its row lock released').toBe(2);
  });
});
