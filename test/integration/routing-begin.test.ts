// Deferred BEGIN (issue 4, part 2): pgnear answers BEGIN / SET TRANSACTION itself and starts the transaction on
// the server chosen for its first real statement, sent together with it; COMMIT/ROLLBACK of a transaction that
// never ran a statement need no server. Where a statement ran is what the server says (pg_is_in_recovery()).
import type pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { directClient } from '../support/pooling.js';
import type { TestProxy } from '../support/proxy.js';
import { createReplicatedDatabase, pgClient, startRoutingProxy, waitForReplicaReads } from '../support/routing.js';

const DB = 'rbegin';
const cluster = useCluster({ replicas: 1, regions: ['iad', 'ams'] });
let proxy: TestProxy;
let admin: pg.Client;
const clients: pg.Client[] = [];

async function client(): Promise<pg.Client> {
  const c = await pgClient(proxy.url(undefined, undefined, DB));
  clients.push(c);
  return c;
}

/** Server backends of DB in a transaction, seen directly on the primary. */
async function openTransactionsOnPrimary(): Promise<number> {
  const r = await admin.query(
    "select count(*)::int as n from pg_stat_activity where datname = $1 and state like 'idle in transaction%'",
    [DB],
  );
  return r.rows[0].n;
}

beforeAll(async () => {
  await createReplicatedDatabase(cluster(), DB, [
    'create table t(id int primary key, v int)',
    'insert into t values (1, 1)',
  ]);
  proxy = await startRoutingProxy(cluster(), 'ams', {});
  admin = await directClient(cluster(), DB);
  await waitForReplicaReads(proxy.url(undefined, undefined, DB));
});

afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await admin?.end();
  await proxy?.stop();
});

describe('deferred BEGIN', () => {
  it('BEGIN then SET TRANSACTION READ ONLY: the whole transaction runs on a replica', async () => {
    const c = await client();
    expect((await c.query('begin')).command).toBe('BEGIN');
    expect((await c.query('set transaction read only')).command).toBe('SET');
    const a = await c.query(
      "select pg_is_in_recovery() as r, current_setting('transaction_read_only') as ro, pg_backend_pid() as pid",
    );
    const b = await c.query('select pg_is_in_recovery() as r, pg_backend_pid() as pid');
    expect(a.rows[0]).toMatchObject({ r: true, ro: 'on' });
    expect(b.rows[0].pid).toBe(a.rows[0].pid); // one server for the whole transaction
    expect((await c.query('commit')).command).toBe('COMMIT');
  });

  it('a plain BEGIN goes to the primary with its first statement, and its options are kept', async () => {
    const c = await client();
    await c.query('begin isolation level repeatable read');
    const r = await c.query("select pg_is_in_recovery() as r, current_setting('transaction_isolation') as iso");
    expect(r.rows[0]).toEqual({ r: false, iso: 'repeatable read' });
    await c.query('update t set v = v + 1 where id = 1');
    await c.query('rollback');
    expect((await admin.query('select v from t where id = 1')).rows[0].v).toBe(1);
  });

  it('a hint on the first statement of a READ ONLY transaction picks its node', async () => {
    const c = await client();
    await c.query('begin read only');
    const r = await c.query('/* pgnear:primary */ select pg_is_in_recovery() as r');
    expect(r.rows[0].r).toBe(false);
    await c.query('commit');
  });

  it('BEGIN … COMMIT with no statement in between holds no server, and the client sees transaction status T', async () => {
    const c = await client();
    const before = await openTransactionsOnPrimary();
    const statuses: string[] = [];
    const conn = (c as unknown as { connection: NodeJS.EventEmitter }).connection;
    const onReady = (m: { status: string }) => statuses.push(m.status);
    conn.on('readyForQuery', onReady);
    await c.query('begin');
    expect(await openTransactionsOnPrimary()).toBe(before);
    await c.query('rollback');
    await c.query('start transaction');
    await c.query('end');
    conn.off('readyForQuery', onReady);
    expect(statuses).toEqual(['T', 'I', 'T', 'I']);
  });

  it('an error in a deferred transaction aborts it exactly as on Postgres (25P02, then ROLLBACK)', async () => {
    const c = await client();
    await c.query('begin');
    await expect(c.query('select 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(c.query('select 1')).rejects.toMatchObject({ code: '25P02' });
    expect((await c.query('rollback')).command).toBe('ROLLBACK');
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
  });

  it('EXPLAIN ROUTE and SHOW pgnear.* inside a deferred transaction report status T', async () => {
    const c = await client();
    await c.query('begin');
    const conn = (c as unknown as { connection: NodeJS.EventEmitter }).connection;
    const statuses: string[] = [];
    const onReady = (m: { status: string }) => statuses.push(m.status);
    conn.on('readyForQuery', onReady);
    await c.query('show pgnear.route');
    conn.off('readyForQuery', onReady);
    expect(statuses).toEqual(['T']);
    await c.query('commit');
  });
});

describe('SET pgnear.* through the extended protocol (postgres.js)', () => {
  it('SET pgnear.route = primary / RESET pgnear.route move the reads that follow', async () => {
    const sql = postgres(proxy.url(undefined, undefined, DB), { max: 1, onnotice: () => {} });
    try {
      const where = async () => (await sql`select pg_is_in_recovery() as r`)[0].r as boolean;
      expect(await where()).toBe(true);
      await sql`set pgnear.route = 'primary'`;
      expect(await where()).toBe(false);
      expect(await where()).toBe(false);
      await sql`reset pgnear.route`;
      expect(await where()).toBe(true);
    } finally {
      await sql.end();
    }
  });
});
