// psycopg 3 through pgnear, transaction mode with routing: statement cache, pipelines, executemany, DDL, COPY.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { run } from '../support/drivers.js';
import { directClient, directUrl } from '../support/pooling.js';
import type { TestProxy } from '../support/proxy.js';
import { createReplicatedDatabase, problems, startRoutingProxy, waitForReplicaReads } from '../support/routing.js';

const DB = 'rpsycopg';
const PYTHON = '/usr/bin/python3';
const cluster = useCluster({ replicas: 1 }); // replica1 is in region ams, where pgnear runs
let proxy: TestProxy;
let admin: pg.Client; // direct to the primary, database DB

beforeAll(async () => {
  const probe = await run(PYTHON, ['-c', 'import psycopg; print(psycopg.__version__)']);
  if (probe.code !== 0)
    throw new Error(`psycopg 3 missing for ${PYTHON}: apt-get install -y python3-psycopg\n${probe.stderr}`);
  await createReplicatedDatabase(cluster(), DB, [
    'create table pipe_t(id serial primary key, v text)',
    'create table tx_t(id int primary key, v text)',
    'create table fail_t(id int primary key)',
    'create table many_t(a int primary key, b text)',
    'create table ddl_direct(a int)',
    'insert into ddl_direct values (1)',
    'create table ddl_proxy(a int)',
    'insert into ddl_proxy values (1)',
    'create table bin_t(a int primary key, b text)',
  ]);
  proxy = await startRoutingProxy(cluster(), 'ams');
  admin = await directClient(cluster(), DB);
  await waitForReplicaReads(proxy.url(undefined, undefined, DB));
});

afterAll(async () => {
  await admin?.end().catch(() => {});
  await proxy?.stop();
});

const PRELUDE = String.raw`
import json, os, time
import psycopg
from psycopg import errors
dsn = os.environ['DSN']
out = {}
def connect(url=None, **kw):
    return psycopg.connect(url or dsn, connect_timeout=10, **kw)
`;

/** Run PRELUDE + script with DSN = pgnear's URL for DB (unless env overrides it); the JSON line it prints. */
async function py(
  script: string,
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<Record<string, unknown>> {
  const r = await run(PYTHON, ['-c', PRELUDE + script], {
    env: { DSN: proxy.url(undefined, undefined, DB), ...env },
    timeoutMs,
  });
  const why = `exit ${r.code} ${r.signal ?? ''}${r.signal === 'SIGKILL' ? ` (killed after ${timeoutMs} ms: a hang?)` : ''}\n${r.stderr}\npgnear warnings/errors:\n${problems(proxy)}`;
  expect(r.stderr, why).toBe('');
  expect(r.code, why).toBe(0);
  return JSON.parse(r.stdout);
}

const count = async (table: string): Promise<number> =>
  (await admin.query(`select count(*)::int as n from ${table}`)).rows[0].n;

describe('psycopg 3 through pgnear (transaction mode, routing on)', () => {
  it('statement-cache eviction: DEALLOCATE _pg3_N and DEALLOCATE ALL are answered, in and out of transactions', async () => {
    const out = await py(String.raw`
conn = connect(autocommit=True)
conn.prepared_max = 3
conn.prepare_threshold = 0
def burst():
    s = 0
    for rep in range(2):
        for i in range(10):
            s += conn.execute("select %s::int + " + str(i), (i,)).fetchone()[0]
    return s
out['autocommit'] = burst()
out['autocommit_node'] = conn.execute("select pg_is_in_recovery()").fetchone()[0]
with conn.transaction():
    out['in_tx'] = burst()
    out['tx_node'] = conn.execute("select pg_is_in_recovery()").fetchone()[0]
try:
    with conn.transaction():
        burst()
        conn.execute("select 1 / %s::int", (0,))
except errors.DivisionByZero as e:
    out['error'] = e.sqlstate
out['after_rollback'] = burst()
out['cached'] = len(conn._prepared._names)
out['prepared'] = conn._prepared._prepared_idx
conn.close()
print(json.dumps(out))
`);
    expect(out).toEqual({
      autocommit: 180,
      autocommit_node: true,
      in_tx: 180,
      tx_node: false,
      error: '22012',
      after_rollback: 180,
      cached: 3,
      prepared: 83, // every execution of a 10-query cycle with 3 cache slots prepares anew: evictions happened
    });
  });

  it('pipeline in autocommit: a replica read, then INSERT … RETURNING on the primary, then a read of the new row', async () => {
    const out = await py(String.raw`
conn = connect(autocommit=True)
with conn.pipeline():
    out['before'] = list(conn.execute("select count(*), pg_is_in_recovery() from pipe_t").fetchone())
    out['insert'] = list(conn.execute("insert into pipe_t(v) values (%s) returning id, pg_is_in_recovery()", ('p1',)).fetchone())
    out['read'] = list(conn.execute("select v from pipe_t where id = %s", (out['insert'][0],)).fetchone())
conn.close()
print(json.dumps(out))
`);
    expect(out).toEqual({ before: [0, true], insert: [1, false], read: ['p1'] });
    expect(await count('pipe_t')).toBe(1);
  });

  it('pipeline: a fetched replica read, then a transaction with a write inside the pipeline; committed', async () => {
    const out = await py(
      String.raw`
conn = connect(autocommit=True)
with conn.pipeline():
    out['read'] = list(conn.execute("select count(*), pg_is_in_recovery() from tx_t").fetchone())
    with conn.transaction():
        conn.execute("insert into tx_t values (%s, %s)", (1, 'in tx'))
        out['in_tx'] = list(conn.execute("select count(*), pg_is_in_recovery() from tx_t").fetchone())
    out['after'] = conn.execute("select v from tx_t where id = 1").fetchone()[0]
conn.close()
print(json.dumps(out))
`,
      {},
      30_000,
    );
    expect(out).toEqual({ read: [0, true], in_tx: [1, false], after: 'in tx' });
    expect((await admin.query('select id, v from tx_t')).rows).toEqual([{ id: 1, v: 'in tx' }]);
  });

  it('pipeline whose first statement fails: DivisionByZero surfaces, the INSERT after it is skipped to Sync', async () => {
    const out = await py(
      String.raw`
conn = connect(autocommit=True)
try:
    with conn.pipeline() as p:
        conn.execute("select 1/0")
        conn.execute("insert into fail_t values (%s)", (1,))
        p.sync()
except errors.DivisionByZero as e:
    out['error'] = e.sqlstate
out['count'] = conn.execute("select count(*) from fail_t").fetchone()[0]
out['alive'] = conn.execute("select 'alive'").fetchone()[0]
conn.close()
print(json.dumps(out))
`,
      {},
      30_000,
    );
    expect(out).toEqual({ error: '22012', count: 0, alive: 'alive' });
    expect(await count('fail_t')).toBe(0);
  });

  it('executemany of 20,000 rows in autocommit and a pipeline of 5,000 selects', async () => {
    const out = await py(String.raw`
conn = connect(autocommit=True)
cur = conn.cursor()
cur.executemany("insert into many_t(a, b) values (%s, %s)", [(i, 'r%d' % i) for i in range(1, 20001)])
out['rowcount'] = cur.rowcount
out['stats'] = list(conn.execute("select count(*), sum(a) from many_t").fetchone())
with conn.pipeline():
    curs = [conn.execute("select %s::int", (i,)) for i in range(5000)]
    out['pipeline'] = [len(curs), sum(c.fetchone()[0] for c in curs)]
conn.close()
print(json.dumps(out))
`);
    expect(out).toEqual({ rowcount: 20_000, stats: [20_000, 200_010_000], pipeline: [5000, 12_497_500] });
    expect(await count('many_t')).toBe(20_000);
  });

  it('read_only + SERIALIZABLE runs on the primary (not 0A000 on a standby); plain read-only on the replica', async () => {
    const out = await py(String.raw`
conn = connect()
conn.read_only = True
conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
q = "select 1, pg_is_in_recovery(), current_setting('transaction_isolation'), current_setting('transaction_read_only')"
out['serializable'] = list(conn.execute(q).fetchone())
conn.commit()
conn.isolation_level = None
out['read_only'] = list(conn.execute(q).fetchone())
conn.commit()
conn.close()
print(json.dumps(out))
`);
    expect(out).toEqual({
      serializable: [1, false, 'serializable', 'on'],
      read_only: [1, true, 'read committed', 'on'],
    });
  });

  // A's statements get prepared on the replica (autocommit reads) and the primary (a transaction); the ALTER runs on a
  // direct connection (pgnear does not see it); B is a brand-new client. Run against Postgres directly first: the
  // control shows what psycopg sees there (B fine; A fails once, its rollback's DEALLOCATE ALL heals it).
  const ddlScript = String.raw`
table = os.environ['TABLE']
q = "select * from " + table + " where a = %s"
def attempt(c, tx):
    try:
        if tx:
            with c.transaction():
                return [list(r) for r in c.execute(q, (1,)).fetchall()]
        return [list(r) for r in c.execute(q, (1,)).fetchall()]
    except errors.FeatureNotSupported as e:
        return e.sqlstate
a = connect(autocommit=True)
a.prepare_threshold = 0
out['a_before'] = [attempt(a, False) for _ in range(3)] + [attempt(a, True)]
with connect(os.environ['PRIMARY'], autocommit=True) as ddl:
    ddl.execute("alter table " + table + " add column b text default 'z'")
with connect(os.environ['REPLICA'], autocommit=True) as rep:
    deadline = time.time() + 15
    while rep.execute("select count(*) from pg_attribute where attrelid = %s::regclass and attname = 'b'", (table,)).fetchone()[0] == 0:
        if time.time() > deadline:
            raise Exception('the replica did not replay the ALTER within 15 s')
        time.sleep(0.05)
b = connect(autocommit=True)
b.prepare_threshold = 0
out['b'] = [attempt(b, False), attempt(b, False), attempt(b, True)]
c = connect(autocommit=True)
out['c_unprepared'] = attempt(c, False)
out['a_after'] = [attempt(a, True), attempt(a, True)]
print(json.dumps(out))
`;

  it('DDL changing a result type: direct Postgres control (B works, A fails once then heals)', async () => {
    const c = cluster();
    const replica = c.urlFor(c.replicas[0], c.superuser.user, c.superuser.password, DB);
    const env = { DSN: directUrl(c, DB), PRIMARY: directUrl(c, DB), REPLICA: replica, TABLE: 'ddl_direct' };
    const out = await py(ddlScript, env, 40_000);
    expect(out).toEqual({
      a_before: [[[1]], [[1]], [[1]], [[1]]],
      b: [[[1, 'z']], [[1, 'z']], [[1, 'z']]],
      c_unprepared: [[1, 'z']],
      a_after: ['0A000', [[1, 'z']]],
    });
  });

  it('DDL changing a result type: after one 0A000 every client gets the new shape (was 0A000 forever)', async () => {
    const c = cluster();
    const replica = c.urlFor(c.replicas[0], c.superuser.user, c.superuser.password, DB);
    const out = await py(ddlScript, { PRIMARY: directUrl(c, DB), REPLICA: replica, TABLE: 'ddl_proxy' }, 40_000);
    // The servers' shared statement predates the ALTER: the first client to run it gets Postgres' 0A000 (B here,
    // which on Postgres directly would not), then pgnear prepares it afresh everywhere. A prepared it before the
    // ALTER, so it gets 0A000 once, as on Postgres directly; psycopg prepares it again and it works.
    const { b, ...rest } = out;
    expect(rest, JSON.stringify(out)).toEqual({
      a_before: [[[1]], [[1]], [[1]], [[1]]],
      c_unprepared: [[1, 'z']],
      a_after: ['0A000', [[1, 'z']]],
    });
    // B gets 0A000 once if its server held the stale statement (it usually does), never more.
    expect([
      ['0A000', [[1, 'z']], [[1, 'z']]],
      [[[1, 'z']], [[1, 'z']], [[1, 'z']]],
    ]).toContainEqual(b);
  });

  it('the read-your-writes token: SHOW pgnear.last_write_lsn after a write, SET pgnear.min_lsn on another connection', async () => {
    const out = await py(String.raw`
a = connect(autocommit=True)
b = connect(autocommit=True)
rows = []
for i in range(20):
    a.execute("insert into pipe_t(v) values (%s)", ['tok%d' % i])
    lsn = a.execute("show pgnear.last_write_lsn").fetchone()[0]
    b.execute("set pgnear.min_lsn = '%s'" % lsn)
    rows.append(b.execute("select count(*) from pipe_t where v = %s", ['tok%d' % i]).fetchone()[0])
out['lsn_shape'] = bool(__import__('re').match(r'^[0-9A-F]+/[0-9A-F]+$', lsn))
out['seen'] = rows
out['route'] = b.execute("show pgnear.route").fetchone()[0]
print(json.dumps(out))
`);
    expect(out).toEqual({ lsn_shape: true, seen: Array(20).fill(1), route: 'auto' });
  });

  it('binary COPY of 100,000 rows in and out, and a named cursor with itersize inside a transaction', async () => {
    const out = await py(String.raw`
n = 100000
conn = connect(autocommit=True)
cur = conn.cursor()
with cur.copy("copy bin_t (a, b) from stdin (format binary)") as cp:
    cp.set_types(['int4', 'text'])
    for i in range(1, n + 1):
        cp.write_row((i, 'bin-%d' % i))
out['copied_in'] = cur.rowcount
rows = []
with cur.copy("copy (select a, b from bin_t order by a) to stdout (format binary)") as cp:
    cp.set_types(['int4', 'text'])
    rows = list(cp.rows())
out['copied_out'] = [len(rows), list(rows[0]), list(rows[-1]), all(r == (i + 1, 'bin-%d' % (i + 1)) for i, r in enumerate(rows))]
with conn.transaction():
    with conn.cursor(name='srv') as sc:
        sc.itersize = 700
        sc.execute("select g, pg_is_in_recovery() from generate_series(1, 5000) g")
        got = list(sc)
        out['named_cursor'] = [len(got), sum(r[0] for r in got), got[0][1]]
conn.close()
print(json.dumps(out))
`);
    const n = 100_000;
    expect(out).toEqual({
      copied_in: n,
      copied_out: [n, [1, 'bin-1'], [n, `bin-${n}`], true],
      named_cursor: [5000, 12_502_500, false],
    });
    expect(await count('bin_t')).toBe(n);
  });
});
