// Where pgnear sends each statement (issue 4, transaction pool mode): reads outside transactions to a replica (the
// one in pgnear's region, ams), writes and read-write transactions to the primary, READ ONLY transactions to a
// replica; comment hints, SET pgnear.route, config rules (pattern, fingerprint), EXPLAIN ROUTE (answered by pgnear,
// nothing runs), the 25006 safety net for reads that write, postgres.js pipelines (order + read-your-writes), and
// routing.enabled: false. Where a statement ran is what the server says: pg_is_in_recovery() / inet_server_port().
// Both replicas apply WAL 300 ms late, so read-your-writes failures show up as stale reads. Facts about effects
// (rows inserted) are checked on a direct connection to the primary.
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { errorFields, firstColumn, RawPgClient } from '../support/drivers.js';
import { directClient, sleep } from '../support/pooling.js';
import type { TestProxy } from '../support/proxy.js';
import {
  createReplicatedDatabase,
  laggingReplicas,
  explainRoute,
  logLines,
  NodeTally,
  nodeName,
  pgClient,
  problems,
  showPgnear,
  startRoutingProxy,
  waitForReplicaReads,
} from '../support/routing.js';

const DB = 'rrules';
const DELAY_MS = 300;
const cluster = useCluster(laggingReplicas(DELAY_MS));
const HOT_RULE = { match: { pattern: 'select .* from hot_table' }, route: 'primary' as const };

let proxy: TestProxy;
let admin: pg.Client; // direct to the primary, database DB
const extraProxies: TestProxy[] = [];
const clients = new Set<pg.Client>();
const pjs = new Set<postgres.Sql>();

async function client(p: TestProxy = proxy, query = ''): Promise<pg.Client> {
  const c = await pgClient(p.url(undefined, undefined, DB, query));
  clients.add(c);
  return c;
}

beforeAll(async () => {
  await createReplicatedDatabase(cluster(), DB, [
    'create table t(id serial primary key, v int not null default 0)',
    'insert into t(v) select g from generate_series(1, 10) g',
    'create sequence s',
    'create table hot_table(id int primary key, v int)',
    'insert into hot_table values (1, 1)',
    'create table cold_table(id int primary key, v int)',
    'insert into cold_table select g, g from generate_series(1, 100) g',
    'create table counters(id int primary key, v bigint not null)',
    'insert into counters select g, 0 from generate_series(1, 10) g',
    'create table fnlog(id serial primary key)',
    'create function my_writing_function() returns int language sql as $$ insert into fnlog default values returning id $$',
  ]);
  proxy = await startRoutingProxy(cluster(), 'ams', { rules: [HOT_RULE] });
  admin = await directClient(cluster(), DB);
  await waitForReplicaReads(proxy.url(undefined, undefined, DB));
});

afterEach(async () => {
  const cs = [...clients];
  clients.clear();
  const ss = [...pjs];
  pjs.clear();
  await Promise.allSettled([...cs.map((c) => c.end()), ...ss.map((s) => s.end({ timeout: 1 }))]);
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  await Promise.allSettled([proxy, ...extraProxies].map((p) => p?.stop()));
});

const where = async (c: pg.Client, sql: string, values?: unknown[]): Promise<string> => {
  const r = values ? await c.query(sql, values) : await c.query(sql);
  // A multi-statement simple query gives one result per statement: take the one with the port.
  const results = (Array.isArray(r) ? r : [r]) as pg.QueryResult[];
  const row = results.map((x) => x.rows?.[0]).find((x) => x && 'port' in x) as { port: number } | undefined;
  if (!row) throw new Error(`${sql}: no row`);
  return nodeName(cluster(), row.port);
};
const why = (p: TestProxy = proxy) => `pgnear warnings/errors:\n${problems(p)}`;
const ams = () => cluster().replicas[0]!.name;
const syd = () => cluster().replicas[1]!.name;

describe('reads and writes outside transactions', () => {
  it('SELECT goes to the replica in pgnear’s region (simple and extended protocol)', async () => {
    const c = await client();
    expect(await where(c, 'select inet_server_port() as port')).toBe(ams());
    expect(await where(c, 'select inet_server_port() as port, $1::int as x', [1])).toBe(ams());
    expect(await where(c, 'select inet_server_port() as port, count(*) from cold_table')).toBe(ams());
    expect((await c.query('select pg_is_in_recovery() as r')).rows[0].r).toBe(true);
  });

  // [what, simple-protocol text, extended-protocol text with $1 = 7]
  it.each([
    [
      'INSERT',
      'insert into t(v) values (1) returning inet_server_port() as port',
      'insert into t(v) values ($1) returning inet_server_port() as port',
    ],
    [
      'UPDATE',
      'update t set v = v where id = 1 returning inet_server_port() as port',
      'update t set v = v where id = $1 returning inet_server_port() as port',
    ],
    [
      'DELETE',
      'delete from t where id = (select max(id) from t) returning inet_server_port() as port',
      'delete from t where id = (select max(id) from t where v <> $1 + 1000) returning inet_server_port() as port',
    ],
    [
      'SELECT … FOR UPDATE',
      'select inet_server_port() as port from t where id = 2 for update',
      'select inet_server_port() as port from t where id = $1 - 5 for update',
    ],
    [
      'SELECT … FOR SHARE',
      'select inet_server_port() as port from t where id = 2 for share',
      'select inet_server_port() as port from t where id = $1 - 5 for share',
    ],
    [
      'SELECT … FOR NO KEY UPDATE',
      'select inet_server_port() as port from t where id = 2 for no key update',
      'select inet_server_port() as port from t where id = $1 - 5 for no key update',
    ],
    [
      'nextval()',
      "select nextval('s') as n, inet_server_port() as port",
      "select nextval('s') + $1 as n, inet_server_port() as port",
    ],
    [
      'writable CTE (INSERT)',
      'with x as (insert into t(v) values (2) returning id) select inet_server_port() as port from x',
      'with x as (insert into t(v) values ($1) returning id) select inet_server_port() as port from x',
    ],
    [
      'writable CTE (UPDATE)',
      'with x as (update t set v = v where id = 3 returning id) select inet_server_port() as port from x',
      'with x as (update t set v = v where id = $1 - 4 returning id) select inet_server_port() as port from x',
    ],
  ])('%s goes to the primary (simple and extended)', async (_what, simple, extended) => {
    const c = await client();
    expect(await where(c, simple), why()).toBe('primary');
    const c2 = await client(); // a client that has not written (no read-your-writes state)
    expect(await where(c2, extended, [7]), why()).toBe('primary');
  });

  it('a fresh connection’s reads stay on replicas, whatever other clients write', async () => {
    const w = await client();
    const r = await client();
    const tally = new NodeTally(cluster());
    for (let i = 0; i < 40; i++) {
      await w.query('update t set v = v + 1 where id = 4');
      tally.add(
        (await r.query('select inet_server_port() as port from cold_table where id = $1', [i + 1])).rows[0].port,
      );
    }
    console.log(`[routing-rules] session scope, another client writing: reads ${tally}`);
    expect(tally.on(cluster().replicas[0]!), why()).toBe(40);
  });
});

describe('explicit transactions', () => {
  it('BEGIN … COMMIT runs on the primary (separate statements and one simple query string)', async () => {
    const c = await client();
    await c.query('begin');
    const p1 = await where(c, 'select inet_server_port() as port');
    const p2 = await where(c, 'select inet_server_port() as port, $1::int as x', [1]);
    await c.query('commit');
    expect([p1, p2]).toEqual(['primary', 'primary']);
    expect(await where(c, 'begin; select inet_server_port() as port; commit')).toBe('primary');
    expect(await where(c, 'start transaction; select inet_server_port() as port; commit')).toBe('primary');
    await c.query('begin read write');
    expect(await where(c, 'select inet_server_port() as port')).toBe('primary');
    await c.query('rollback');
  });

  it('BEGIN READ ONLY runs on a replica, and the whole transaction stays there', async () => {
    const c = await client();
    for (const begin of [
      'begin read only',
      'start transaction read only',
      'begin isolation level repeatable read, read only',
    ]) {
      await c.query(begin);
      const ports = [
        await where(c, 'select inet_server_port() as port'),
        await where(c, 'select inet_server_port() as port, $1::int as x', [1]),
        await where(c, 'select inet_server_port() as port from cold_table limit 1'),
      ];
      await c.query('commit');
      expect(ports, begin).toEqual([ams(), ams(), ams()]);
    }
    expect(await where(c, 'begin read only; select inet_server_port() as port; commit')).toBe(ams());
  });

  it('a write inside BEGIN READ ONLY fails with 25006 as Postgres would (no retry inside a transaction)', async () => {
    const c = await client();
    const before = Number((await admin.query('select count(*) as n from t')).rows[0].n);
    await c.query('begin read only');
    await expect(c.query('insert into t(v) values (99)')).rejects.toMatchObject({ code: '25006' });
    await c.query('rollback');
    expect(Number((await admin.query('select count(*) as n from t')).rows[0].n)).toBe(before);
    expect((await c.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('routing.transactions: primary sends READ ONLY transactions to the primary too', async () => {
    const p = await startRoutingProxy(cluster(), 'ams', { transactions: 'primary' });
    extraProxies.push(p);
    await waitForReplicaReads(p.url(undefined, undefined, DB));
    const c = await client(p);
    expect(await where(c, 'begin read only; select inet_server_port() as port; commit')).toBe('primary');
    // Plain reads still go to replicas (a fresh client: no read-your-writes state from the transaction above).
    expect(await where(await client(p), 'select inet_server_port() as port')).toBe(ams());
    await p.stop();
  });
});

describe('hints and SET pgnear.route', () => {
  it('comment hints: pgnear:primary, pgnear:replica, pgnear:region=…', async () => {
    const c = await client();
    expect(await where(c, '/* pgnear:primary */ select inet_server_port() as port')).toBe('primary');
    expect(await where(c, '/* pgnear:primary */ select inet_server_port() as port, $1::int as x', [1])).toBe('primary');
    expect(await where(c, '/* pgnear:replica */ select inet_server_port() as port')).toBe(ams());
    expect(await where(c, '/* pgnear:region=syd */ select inet_server_port() as port')).toBe(syd());
    expect(await where(c, '/* pgnear:region=syd */ select inet_server_port() as port, $1::int as x', [1])).toBe(syd());
    expect(await where(c, '/* pgnear:region=ams */ select inet_server_port() as port')).toBe(ams());
    expect(await where(c, '-- pgnear:primary\nselect inet_server_port() as port')).toBe('primary');
    expect(await where(c, 'select inet_server_port() as port /* pgnear:primary */')).toBe('primary');
    // Not a hint: inside a string literal.
    expect(await where(c, "select inet_server_port() as port, '/* pgnear:primary */' as s")).toBe(ams());
  });

  it('SET / SHOW / RESET pgnear.route', async () => {
    const c = await client();
    expect(await showPgnear(c, 'route')).toBe('auto');
    await c.query('SET pgnear.route = primary');
    expect(await showPgnear(c, 'route')).toBe('primary');
    expect(await where(c, 'select inet_server_port() as port')).toBe('primary');
    expect(await where(c, 'select inet_server_port() as port, $1::int as x', [1])).toBe('primary');
    await c.query("SET pgnear.route TO 'replica'");
    expect(await showPgnear(c, 'route')).toBe('replica');
    expect(await where(c, 'select inet_server_port() as port')).toBe(ams());
    await c.query('SET pgnear.route = auto');
    expect(await where(c, 'select inet_server_port() as port')).toBe(ams());
    await c.query('SET pgnear.route = primary');
    await c.query('RESET pgnear.route');
    expect(await showPgnear(c, 'route')).toBe('auto');
    expect(await where(c, 'select inet_server_port() as port')).toBe(ams());
    await expect(c.query('SET pgnear.route = sideways')).rejects.toMatchObject({ code: '22023' });
    await expect(c.query('SHOW pgnear.no_such_thing')).rejects.toMatchObject({ code: '42704' });
    // Writes still go to the primary with route = auto.
    expect(await where(c, 'update t set v = v where id = 1 returning inet_server_port() as port')).toBe('primary');
  });

  it('the route is per client: another client of the same pgnear is not affected', async () => {
    const a = await client();
    const b = await client();
    await a.query('SET pgnear.route = primary');
    expect(await where(a, 'select inet_server_port() as port')).toBe('primary');
    expect(await where(b, 'select inet_server_port() as port')).toBe(ams());
  });
});

describe('config rules', () => {
  it('pattern `select .* from hot_table` → primary; other reads still on the replica', async () => {
    const c = await client();
    expect(await where(c, 'select v, inet_server_port() as port from hot_table')).toBe('primary');
    expect(await where(c, 'SELECT v, inet_server_port() AS port FROM hot_table WHERE id = $1', [1])).toBe('primary');
    expect(await where(c, 'select v, inet_server_port() as port from cold_table where id = 1')).toBe(ams());
    const e = await explainRoute(c, 'select v from hot_table');
    expect(e).toMatchObject({ role: 'primary', reason: 'rule', node: 'primary' });
  });

  it('a fingerprint rule (fingerprint from EXPLAIN ROUTE) matches the same statement with other constants', async () => {
    const c = await client();
    const fp = (await explainRoute(c, 'select v, inet_server_port() as port from cold_table where id = 1')).fingerprint;
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    const p = await startRoutingProxy(cluster(), 'ams', {
      rules: [{ match: { fingerprint: fp! }, route: 'primary' }],
    });
    extraProxies.push(p);
    await waitForReplicaReads(p.url(undefined, undefined, DB));
    const d = await client(p);
    expect(await where(d, 'select v, inet_server_port() as port from cold_table where id = 42')).toBe('primary');
    expect(await where(d, 'select v, inet_server_port() as port from cold_table where id > 42 limit 1')).toBe(ams());
    expect(await where(d, 'select v, inet_server_port() as port from hot_table where id = 1')).toBe(ams());
    await p.stop();
  });
});

describe('EXPLAIN ROUTE', () => {
  it('one row: node, role, reason, wait_lsn, min_lsn, fingerprint; the statement does not run', async () => {
    const c = await client();
    const before = Number((await admin.query('select count(*) as n from t')).rows[0].n);
    const r = await c.query('EXPLAIN ROUTE insert into t(v) values (1)');
    expect(r.fields.map((f) => f.name)).toEqual(['node', 'role', 'reason', 'wait_lsn', 'min_lsn', 'fingerprint']);
    expect(r.rows).toHaveLength(1);
    expect(r.rows[0]).toMatchObject({
      node: 'primary',
      role: 'primary',
      reason: 'write',
      wait_lsn: null,
      min_lsn: null,
    });
    expect(r.rows[0].fingerprint).toMatch(/^[0-9a-f]{16}$/);
    await sleep(50);
    expect(Number((await admin.query('select count(*) as n from t')).rows[0].n)).toBe(before);

    expect(await explainRoute(c, 'select 1')).toMatchObject({ node: ams(), role: 'replica', reason: 'read' });
    expect(await explainRoute(c, 'select * from t where id = 1 for update')).toMatchObject({
      role: 'primary',
      reason: 'write',
    });
    expect(await explainRoute(c, "select nextval('s')")).toMatchObject({ role: 'primary', reason: 'write' });
    expect(await explainRoute(c, '/* pgnear:primary */ select 1')).toMatchObject({ role: 'primary', reason: 'hint' });
    expect(await explainRoute(c, '/* pgnear:region=syd */ select 1')).toMatchObject({ node: syd(), role: 'replica' });
    expect(await explainRoute(c, 'begin read only')).toMatchObject({ role: 'replica' });
    expect(await explainRoute(c, 'begin')).toMatchObject({ role: 'primary', reason: 'in_transaction' });
    // Same fingerprint for other constants, different for another table.
    const f1 = (await explainRoute(c, 'select v from cold_table where id = 1')).fingerprint;
    const f2 = (await explainRoute(c, 'select v from cold_table where id = 2')).fingerprint;
    const f3 = (await explainRoute(c, 'select v from t where id = 1')).fingerprint;
    expect(f1).toBe(f2);
    expect(f1).not.toBe(f3);
  });

  it('after a write: min_lsn is the client’s last write LSN and the read must observe it', async () => {
    const c = await client();
    await c.query('update t set v = v where id = 1');
    const lsn = await showPgnear(c, 'last_write_lsn');
    expect(lsn).toMatch(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/);
    const e = await explainRoute(c, 'select 1');
    console.log(`[routing-rules] EXPLAIN ROUTE select 1 right after a write: ${JSON.stringify(e)}`);
    expect(e.min_lsn).toBe(lsn);
    // Within 300 ms no replica has replayed it: wait there (wait_lsn) or go to the primary.
    if (e.role === 'replica') expect(e).toMatchObject({ reason: 'lsn_wait', wait_lsn: lsn });
    else expect(e).toMatchObject({ role: 'primary', reason: 'lsn_fallback' });
    // Once the replicas caught up, the read is a plain replica read again.
    await sleep(DELAY_MS + 700);
    expect(await explainRoute(c, 'select 1')).toMatchObject({
      node: ams(),
      role: 'replica',
      reason: 'read',
      min_lsn: lsn,
    });
  });
});

describe('the 25006 safety net', () => {
  function replicaErrors(): number {
    // ERROR lines of the replicas' server logs about INSERT in a read-only transaction.
    let n = 0;
    for (const r of cluster().replicas) {
      const text = readFileSync(r.logFile, 'utf8');
      n += text.split('cannot execute INSERT in a read-only transaction').length - 1;
    }
    return n;
  }
  const fnlogCount = async () => Number((await admin.query('select count(*) as n from fnlog')).rows[0].n);

  it('a “read” that writes is retried on the primary once, transparently, then goes straight there', async () => {
    const c = await client();
    expect(await explainRoute(c, 'select my_writing_function() as id')).toMatchObject({
      role: 'replica',
      reason: 'read',
    });
    const n0 = await fnlogCount();
    const e0 = replicaErrors();

    const r1 = await c.query('select my_writing_function() as id'); // simple protocol, outside a transaction
    expect(r1.rows).toHaveLength(1);
    expect(await fnlogCount(), 'the function ran exactly once (on the primary)').toBe(n0 + 1);
    await sleep(200); // let the replica's log catch up
    const e1 = replicaErrors();
    const line = `[routing-rules] 25006: replica errors ${e0} → ${e1}; pgnear log:\n${logLines(proxy, /25006|retry|read-only/i, 10)}`;
    console.log(line);
    expect(e1, line).toBe(e0 + 1);

    expect(await explainRoute(c, 'select my_writing_function() as id')).toMatchObject({
      role: 'primary',
      reason: 'known_write',
    });
    const r2 = await c.query('select my_writing_function() as id');
    expect(Number(r2.rows[0].id)).toBeGreaterThan(Number(r1.rows[0].id));
    expect(await fnlogCount()).toBe(n0 + 2);
    // Known for every client of this pgnear, and it did not go to a replica again.
    const other = await client();
    await other.query('select my_writing_function() as id');
    expect(await fnlogCount()).toBe(n0 + 3);
    await sleep(200);
    expect(replicaErrors(), line).toBe(e1);
  });

  it('SET pgnear.route = replica: an INSERT (simple protocol) is refused by the replica and rerun on the primary', async () => {
    const c = await client();
    await c.query('SET pgnear.route = replica');
    const e0 = replicaErrors();
    const before = Number((await admin.query('select count(*) as n from t')).rows[0].n);
    await c.query('insert into t(v) values (4242)');
    expect(Number((await admin.query('select count(*) as n from t')).rows[0].n)).toBe(before + 1);
    await sleep(200);
    expect(replicaErrors(), 'the replica refused it first').toBe(e0 + 1);
  });

  it('routing.write_functions makes such a function a write from the start', async () => {
    const p = await startRoutingProxy(cluster(), 'ams', { write_functions: ['my_writing_function'] });
    extraProxies.push(p);
    await waitForReplicaReads(p.url(undefined, undefined, DB));
    const c = await client(p);
    expect(await explainRoute(c, 'select my_writing_function()')).toMatchObject({ role: 'primary', reason: 'write' });
    const e0 = replicaErrors();
    await c.query('select my_writing_function(), $1::int', [1]); // extended protocol: no retry needed
    await sleep(200);
    expect(replicaErrors()).toBe(e0);
    await p.stop();
  });
});

describe('postgres.js (extended protocol, pipelining)', () => {
  it('Promise.all of reads and writes: results in order, 0 stale over 200 iterations (session scope)', async () => {
    const sql = postgres(proxy.url(undefined, undefined, DB), { max: 1, onnotice: () => {} });
    pjs.add(sql);
    const id = 7;
    const reads = new NodeTally(cluster());
    const writes = new NodeTally(cluster());
    const problemsSeen: string[] = [];
    let prev = Number((await admin.query('select v from counters where id = $1', [id])).rows[0].v);
    const errors: string[] = [];
    for (let i = 0; i < 200; i++) {
      const results = await Promise.allSettled([
        sql`select v, 'before' as kind, inet_server_port() as port from counters where id = ${id}`,
        sql`update counters set v = v + 1 where id = ${id} returning v, 'write' as kind, inet_server_port() as port`,
        sql`select v, 'after' as kind, inet_server_port() as port from counters where id = ${id}`,
        sql`select ${i}::int as i, 'echo' as kind`,
      ]);
      const failed = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
      if (failed.length) {
        errors.push(
          `#${i}: ${failed.map((x) => `${(x.reason as { code?: string }).code} ${(x.reason as Error).message}`).join(' / ')}`,
        );
        continue;
      }
      const [before, w, after, echo] = results.map(
        (x) => (x as PromiseFulfilledResult<postgres.RowList<postgres.Row[]>>).value,
      );
      const kinds = [before[0]?.kind, w[0]?.kind, after[0]?.kind, echo[0]?.kind];
      if (kinds.join() !== 'before,write,after,echo' || echo[0]?.i !== i)
        problemsSeen.push(`#${i}: order ${kinds}, echo ${echo[0]?.i}`);
      const wv = Number(w[0]!.v);
      const bv = Number(before[0]!.v);
      const av = Number(after[0]!.v);
      writes.add(w[0]!.port);
      reads.add(before[0]!.port);
      const node = reads.add(after[0]!.port);
      // `before` must see the previous iteration's write, `after` this one's.
      if (bv < prev) problemsSeen.push(`#${i}: before-read ${bv} < previous write ${prev}`);
      if (av < wv) problemsSeen.push(`#${i}: after-read ${av} < write ${wv} (on ${node})`);
      prev = wv;
    }
    const line =
      `[routing-rules] postgres.js pipelines: 200 iterations, failed ${errors.length}, wrong order/stale ${problemsSeen.length}, ` +
      `writes ${writes}, reads ${reads}${errors.length ? `; errors e.g. ${errors.slice(0, 3).join('; ')}` : ''}` +
      `${problemsSeen.length ? `; e.g. ${problemsSeen.slice(0, 5).join('; ')}` : ''}`;
    console.log(line);
    expect(errors, `${line}\n${why()}`).toEqual([]);
    expect(problemsSeen, `${line}\n${why()}`).toEqual([]);
    expect(writes.counts).toEqual({ primary: 200 });

    // Reads not preceded by a write (after the replicas caught up) go to the replica.
    await sleep(DELAY_MS + 700);
    const later = new NodeTally(cluster());
    for (let i = 0; i < 20; i++) {
      const rows = await Promise.all([
        sql`select inet_server_port() as port, ${i}::int as i`,
        sql`select inet_server_port() as port from cold_table where id = ${i + 1}`,
      ]);
      for (const r of rows) later.add(r[0]!.port);
    }
    console.log(`[routing-rules] postgres.js reads without writes: ${later}`);
    expect(later.on(cluster().replicas[0]!), why()).toBeGreaterThan(later.total / 2);
  });
});

describe('requests pipelined behind a read that went to a replica', () => {
  it('postgres.js: Promise.all([read, write]) on a fresh connection: the write runs on the primary', async () => {
    const errors: string[] = [];
    const writes = new NodeTally(cluster());
    const reads = new NodeTally(cluster());
    for (let i = 0; i < 10; i++) {
      // A fresh connection has no read-your-writes state: its first read goes to a replica.
      const sql = postgres(proxy.url(undefined, undefined, DB), { max: 1, onnotice: () => {} });
      pjs.add(sql);
      const [r, w] = await Promise.allSettled([
        sql`select inet_server_port() as port from cold_table where id = ${i + 1}`,
        sql`update counters set v = v + 1 where id = 8 returning inet_server_port() as port`,
      ]);
      if (r.status === 'fulfilled') reads.add(r.value[0]!.port);
      else errors.push(`#${i} read: ${(r.reason as Error).message}`);
      if (w.status === 'fulfilled') writes.add(w.value[0]!.port);
      else errors.push(`#${i} write: ${(w.reason as { code?: string }).code} ${(w.reason as Error).message}`);
      await sql.end({ timeout: 1 });
      pjs.delete(sql);
    }
    const line = `[routing-rules] postgres.js [read, write] pipelines: reads ${reads}, writes ${writes}, errors ${errors.length}${errors.length ? ` e.g. ${errors.slice(0, 3).join('; ')}` : ''}`;
    console.log(line);
    expect(errors, `${line}\n${why()}`).toEqual([]);
    expect(writes.counts).toEqual({ primary: 10 });
  });

  it('raw protocol: a write Query sent while a read runs on a replica succeeds, on the primary', async () => {
    const c = await RawPgClient.connect({
      port: proxy.port,
      user: cluster().superuser.user,
      password: cluster().superuser.password,
      database: DB,
    });
    try {
      // Both in one socket write: pgnear may route the pair as one request (both to the primary is fine).
      c.send(
        serialize.query('select inet_server_port()::text from cold_table where id = 1'),
        serialize.query('insert into t(v) values (77) returning inet_server_port()::text'),
      );
      let msgs = await c.untilReady(2);
      let errs = msgs.filter((m) => m.type === 'E').map((m) => `${errorFields(m).C} ${errorFields(m).M}`);
      let ran = firstColumn(msgs).map((p) => nodeName(cluster(), p ?? ''));
      const l1 = `[routing-rules] raw [read, write] in one socket write: ran on ${ran}, errors ${JSON.stringify(errs)}`;
      console.log(l1);
      expect(errs, l1).toEqual([]);
      expect(ran[1], l1).toBe('primary');
      // The write arrives while the read (a fresh client's, so on a replica) still runs there.
      const fresh = await RawPgClient.connect({
        port: proxy.port,
        user: cluster().superuser.user,
        password: cluster().superuser.password,
        database: DB,
      });
      try {
        fresh.send(serialize.query('select pg_sleep(0.2)::text || inet_server_port()::text'));
        await sleep(30);
        fresh.send(serialize.query('insert into t(v) values (78) returning inet_server_port()::text'));
        msgs = await fresh.untilReady(2);
        errs = msgs.filter((m) => m.type === 'E').map((m) => `${errorFields(m).C} ${errorFields(m).M}`);
        ran = firstColumn(msgs).map((p) => nodeName(cluster(), p ?? ''));
        const l2 = `[routing-rules] raw write sent while a replica read runs: ran on ${ran}, errors ${JSON.stringify(errs)}`;
        console.log(l2);
        expect(errs, `${l2}\n${why()}`).toEqual([]);
        expect(ran, l2).toEqual([ams(), 'primary']);
      } finally {
        fresh.destroy();
      }
    } finally {
      c.destroy();
    }
  });
});

describe('routing.enabled: false', () => {
  it('everything runs on the primary', async () => {
    const p = await startRoutingProxy(cluster(), 'ams', { enabled: false });
    extraProxies.push(p);
    const c = await client(p);
    const ran = [
      await where(c, 'select inet_server_port() as port'),
      await where(c, 'select inet_server_port() as port, $1::int as x', [1]),
      await where(c, '/* pgnear:replica */ select inet_server_port() as port'),
      await where(c, '/* pgnear:region=syd */ select inet_server_port() as port'),
      await where(c, 'begin read only; select inet_server_port() as port; commit'),
    ];
    await c.query('SET pgnear.route = replica').catch(() => {});
    ran.push(await where(c, 'select inet_server_port() as port'));
    expect(ran, why(p)).toEqual(Array(ran.length).fill('primary'));
    const sql = postgres(p.url(undefined, undefined, DB), { max: 1, onnotice: () => {} });
    pjs.add(sql);
    const rows = await Promise.all([
      sql`select inet_server_port() as port`,
      sql`select inet_server_port() as port, 1 as x`,
    ]);
    expect(rows.map((r) => nodeName(cluster(), r[0]!.port))).toEqual(['primary', 'primary']);
    await p.stop();
  });
});
