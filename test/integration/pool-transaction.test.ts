// Transaction pooling (pool_mode: transaction) against a real primary: many clients share few servers, and every
// client still sees exactly what it would see on a direct connection: its results, its session settings, its
// prepared statements, its pinned session state (LISTEN, temp tables, session advisory locks, SQL PREPARE), and no
// trace of other clients. Server-side facts (how many backends pgnear holds, open transactions, locks) are checked on
// a direct connection to the primary. pgnear's servers are the only client backends of the database DB, so
// pg_stat_activity for DB counts exactly pgnear's servers. No replicas: every server lives on the primary.
import type pg from 'pg';
import type postgres from 'postgres';
import { serialize } from 'pg-protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import {
  type BackendMsg,
  errorFields,
  firstColumn,
  nextEvent,
  paramTypes,
  RawPgClient,
  rowDescription,
  rowValues,
  run,
  typesOf,
} from '../support/drivers.js';
import {
  ClientBag,
  createDatabase,
  directClient,
  type PgErr,
  type PoolSettings,
  same,
  sampleServerBackends,
  serverBackends,
  serverEvents,
  sleep,
  startPoolProxy,
  timed,
} from '../support/pooling.js';
import type { TestProxy } from '../support/proxy.js';
import { waitFor } from '../support/rawclient.js';

const DB = 'pooltx';
const cluster = useCluster({ replicas: 0 });
const bag = new ClientBag();
/** Direct connection to the primary, database postgres (so it never counts as one of pgnear's servers). */
let admin: pg.Client;
/** Direct connection to the primary, database DB. */
let adminDb: pg.Client;
let serverDefaults: { sp: string; st: string; tz: string; ds: string };

beforeAll(async () => {
  await createDatabase(cluster(), DB, [
    'create table items(client text not null, iter int not null, v int not null)',
    'create schema a_schema',
    'create schema b_schema',
    "create table a_schema.marker(v text); insert into a_schema.marker values ('a')",
    "create table b_schema.marker(v text); insert into b_schema.marker values ('b')",
    "create table public.marker(v text); insert into public.marker values ('public')",
    'create table lockrow(id int primary key, v int not null); insert into lockrow values (1, 100)',
    'create table py_items(id int, who text)',
  ]);
  admin = await directClient(cluster());
  adminDb = await directClient(cluster(), DB);
  serverDefaults = (
    await adminDb.query(
      "select current_setting('search_path') sp, current_setting('statement_timeout') st, current_setting('TimeZone') tz, current_setting('DateStyle') ds",
    )
  ).rows[0];
});

// Clients opened by a test are closed after it: a client with pinned session state would keep its server.
afterEach(async () => {
  await bag.closeAll();
});
afterAll(async () => {
  await bag.closeAll();
  await admin?.end().catch(() => {});
  await adminDb?.end().catch(() => {});
});

/**
 * A transaction-mode pgnear for the tests of one describe block. query_wait_timeout defaults to 10 s here, so a
 * client left holding a server by a failed step makes the others fail soon instead of hanging for 120 s.
 */
function useTxProxy(pool: PoolSettings): () => TestProxy {
  let proxy: TestProxy | undefined;
  beforeAll(async () => {
    proxy = await startPoolProxy(cluster(), 'transaction', { query_wait_timeout: '10s', ...pool });
  });
  afterAll(async () => {
    await bag.closeAll();
    await proxy?.stop();
  });
  return () => {
    if (!proxy) throw new Error('the transaction-mode proxy did not start (see beforeAll)');
    return proxy;
  };
}

const urlOf = (proxy: TestProxy, query = '') => proxy.url(undefined, undefined, DB, query);
const codeOf = (p: Promise<unknown>): Promise<string | null> =>
  p.then(
    () => null,
    (e: PgErr) => e.code ?? `no code: ${e.message}`,
  );
const pidOf = async (c: pg.Client): Promise<number> => (await c.query('select pg_backend_pid() as pid')).rows[0].pid;

/** Collect failures of concurrent workers instead of losing all but the first. */
async function runAll(workers: [string, () => Promise<unknown>][]): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    workers.map(([name, w]) =>
      w().catch((e: PgErr) => {
        failures.push(`${name}: ${e.code ? `${e.code} ` : ''}${e.message}`);
      }),
    ),
  );
  return failures;
}

// ---- 1. many clients, few servers -----------------------------------------------------------------------------

/** node-postgres: named and unnamed extended queries, simple multi-statement queries, commits, rollbacks, errors. */
async function pgWorker(c: pg.Client, tag: string, id: number, iterations: number): Promise<number> {
  try {
    return await pgSteps(c, tag, id, iterations);
  } catch (e) {
    await c.query('rollback').catch(() => {}); // do not keep a server while the others finish
    throw e;
  }
}

async function pgSteps(c: pg.Client, tag: string, id: number, iterations: number): Promise<number> {
  let commits = 0;
  for (let k = 0; k < iterations; k++) {
    const step = `${tag} iteration ${k}`;
    switch ((k + id) % 6) {
      case 0: {
        // Named prepared statements: pg parses each name once per connection and then only binds it, whatever
        // server pgnear picks for this transaction.
        const m = k % 3;
        const r = await c.query({
          name: `q${m}`,
          text: `select $1::int * ${m + 2} as v, $2::text as who`,
          values: [k, tag],
        });
        same(r.rows, [{ v: k * (m + 2), who: tag }], `${step} q${m}`);
        break;
      }
      case 1: {
        const r = await c.query('select $1::int + $2::int as s, $3::text as t', [id, k, tag]);
        same(r.rows, [{ s: id + k, t: tag }], `${step} unnamed`);
        break;
      }
      case 2: {
        const r = (await c.query(`select ${id} as a; select '${tag}' as b`)) as unknown as pg.QueryResult[];
        same(
          r.map((x) => x.rows[0]),
          [{ a: id }, { b: tag }],
          `${step} multi-statement`,
        );
        break;
      }
      case 3: {
        await c.query('begin');
        await c.query('insert into items values ($1, $2, $3)', [tag, k, id]);
        const n = await c.query({
          name: 'count',
          text: 'select count(*)::int as n from items where client = $1',
          values: [tag],
        });
        same(n.rows[0].n, commits + 1, `${step} count inside the committed transaction`);
        same((await c.query('commit')).command, 'COMMIT', `${step} commit`);
        commits++;
        break;
      }
      case 4: {
        await c.query('begin');
        await c.query('insert into items values ($1, $2, $3)', [tag, -1 - k, id]);
        const n = await c.query({
          name: 'count',
          text: 'select count(*)::int as n from items where client = $1',
          values: [tag],
        });
        same(n.rows[0].n, commits + 1, `${step} count inside the rolled-back transaction`);
        same((await c.query('rollback')).command, 'ROLLBACK', `${step} rollback`);
        break;
      }
      default: {
        await c.query('begin');
        same(await codeOf(c.query('select 1/0')), '22012', `${step} error inside a transaction`);
        same(await codeOf(c.query('select $1::int', [k])), '25P02', `${step} aborted transaction`);
        same((await c.query('rollback')).command, 'ROLLBACK', `${step} rollback after error`);
        same(await codeOf(c.query('select $1::int', ['nope'])), '22P02', `${step} error outside a transaction`);
        break;
      }
    }
  }
  return commits;
}

class Rollback extends Error {}

/** postgres.js with its defaults: named statements, pipelined batches and transactions, errors mid-pipeline. */
async function pjsWorker(sql: postgres.Sql, tag: string, id: number, iterations: number): Promise<number> {
  let commits = 0;
  for (let k = 0; k < iterations; k++) {
    const step = `${tag} iteration ${k}`;
    switch ((k + id) % 6) {
      case 0: {
        const rs = await Promise.all(
          Array.from({ length: 6 }, (_, j) => sql`select ${k}::int + ${j}::int as v, ${tag}::text as who`),
        );
        same(
          rs.map((r) => [r[0].v, r[0].who]),
          Array.from({ length: 6 }, (_, j) => [k + j, tag]),
          `${step} pipelined batch`,
        );
        break;
      }
      case 1: {
        // A pipelined transaction: BEGIN, both statements and COMMIT go out without waiting for each other.
        const [, cnt] = await sql.begin((tx) => [
          tx`insert into items values (${tag}, ${k}, ${id})`,
          tx`select count(*)::int as n from items where client = ${tag}`,
        ]);
        same(cnt[0].n, commits + 1, `${step} count in the pipelined transaction`);
        commits++;
        break;
      }
      case 2: {
        const settled = await Promise.allSettled([
          sql`select ${1}::int as v`,
          sql`select ${k}::int / ${0}::int as v`,
          sql`select ${k}::int as v`,
          sql`select ${`x${tag}`}::text as v`,
        ]);
        same(
          settled.map((s) => (s.status === 'fulfilled' ? s.value[0].v : (s.reason as PgErr).code)),
          [1, '22012', k, `x${tag}`],
          `${step} error mid-pipeline`,
        );
        break;
      }
      case 3: {
        const r = await sql
          .begin(async (tx) => {
            await tx`insert into items values (${tag}, ${-1 - k}, ${id})`;
            const [row] = await tx`select count(*)::int as n from items where client = ${tag}`;
            same(row.n, commits + 1, `${step} count inside the rolled-back transaction`);
            throw new Rollback('roll back');
          })
          .then(
            () => 'committed',
            (e: Error) => (e instanceof Rollback ? 'rolled back' : `failed: ${e.message}`),
          );
        same(r, 'rolled back', `${step} sql.begin rollback`);
        break;
      }
      case 4: {
        const code = await codeOf(
          sql.begin((tx) => [
            tx`insert into items values (${tag}, ${-1000 - k}, ${id})`,
            tx`select ${1}::int / ${0}::int`,
            tx`select 2`,
          ]),
        );
        same(code, '22012', `${step} error inside a pipelined transaction`);
        break;
      }
      default: {
        const [row] = await sql`select ${tag}::text as t, ${k}::int as k`;
        same([row.t, row.k], [tag, k], `${step} parameterised`);
        const u = await sql.unsafe(`select '${tag}' as t; select ${k} as k`);
        same(u.length, 2, `${step} unsafe multi-statement`);
        break;
      }
    }
  }
  return commits;
}

describe('transaction pooling: 50 clients on pool_size 5', () => {
  const proxy = useTxProxy({ pool_size: 5 });

  it('25 node-postgres + 25 postgres.js clients get correct results; never more than 5 server backends; nothing left idle in transaction', async () => {
    const iterations = 20;
    const sampler = await sampleServerBackends(cluster(), DB, 10);
    const commits = new Map<string, number>();
    let failures: string[] = [];
    try {
      const pgs = await Promise.all(
        Array.from({ length: 25 }, (_, i) => bag.pg(urlOf(proxy(), `application_name=pool_pg${i}`))),
      );
      const pjs = Array.from({ length: 25 }, () => bag.postgres(urlOf(proxy())));
      failures = await runAll([
        ...pgs.map((c, i): [string, () => Promise<unknown>] => [
          `pg${i}`,
          async () => commits.set(`pg${i}`, await pgWorker(c, `pg${i}`, i, iterations)),
        ]),
        ...pjs.map((s, i): [string, () => Promise<unknown>] => [
          `pj${i}`,
          async () => commits.set(`pj${i}`, await pjsWorker(s, `pj${i}`, i, iterations)),
        ]),
      ]);
      // All 50 clients are still connected and idle: no server may be left in a transaction.
      await waitFor(
        async () => (await serverBackends(admin, DB)).idleInTransaction === 0,
        3000,
        'no pgnear server idle in transaction while all clients are idle',
      );
    } finally {
      const s = await sampler.stop();
      await bag.closeAll();
      expect(failures).toEqual([]);
      expect(s.samples).toBeGreaterThan(10);
      expect(s.max, 'the sampler saw pgnear servers at all').toBeGreaterThan(0);
      expect(
        s.max,
        `server backends for DB (pool_size 5); pgnear: ${JSON.stringify(serverEvents(proxy()))}`,
      ).toBeLessThanOrEqual(5);
    }
    // Exactly the committed rows exist; no rolled-back row survived.
    const rows = (
      await adminDb.query(
        'select client, count(*) filter (where iter >= 0)::int as kept, count(*) filter (where iter < 0)::int as rolled from items group by client',
      )
    ).rows as { client: string; kept: number; rolled: number }[];
    const byClient = Object.fromEntries(rows.map((r) => [r.client, [r.kept, r.rolled]]));
    for (const [client, n] of commits) expect(byClient[client] ?? [0, 0], client).toEqual([n, 0]);
    expect(commits.size).toBe(50);
    const after = await serverBackends(admin, DB);
    expect(after.idleInTransaction).toBe(0);
    expect(after.total).toBeLessThanOrEqual(5);
  });
});

// ---- 2. session parameters ------------------------------------------------------------------------------------

interface Probe {
  sp: string;
  st: string;
  tz: string;
  ds: string;
  app: string;
  m: string;
  d: string;
  pid: number;
}
const PROBE = `select current_setting('search_path') sp, current_setting('statement_timeout') st,
  current_setting('TimeZone') tz, current_setting('DateStyle') ds, current_setting('application_name') app,
  (select v from marker) m, '2024-03-05'::date::text d, pg_backend_pid() pid`;

/** The client's settings, alternately through the simple and the extended protocol, plus SHOW. */
async function probe(c: pg.Client, round: number): Promise<Probe> {
  const r = round % 2 ? await c.query(PROBE) : await c.query(`${PROBE}, $1::int as round`, [round]);
  const { round: _r, ...row } = r.rows[0];
  if (round % 3 === 0) {
    const show = (await c.query('show search_path')).rows[0].search_path;
    if (show !== row.sp) throw new Error(`SHOW search_path ${show} but current_setting ${row.sp}`);
    const st = (await c.query('show statement_timeout')).rows[0].statement_timeout;
    if (st !== row.st) throw new Error(`SHOW statement_timeout ${st} but current_setting ${row.st}`);
  }
  return row as Probe;
}

describe('transaction pooling: session parameters follow the client across servers', () => {
  const proxy = useTxProxy({ pool_size: 2 });

  it('SET, SET LOCAL, SET in committed/rolled-back transactions, RESET, RESET ALL and startup application_name stay per client', async () => {
    const A = await bag.pg(urlOf(proxy(), 'application_name=client_a'));
    const B = await bag.pg(urlOf(proxy(), 'application_name=client_b'));
    const C = await bag.pg(urlOf(proxy(), 'application_name=client_c'));
    const noise = await Promise.all([0, 1, 2].map(() => bag.pg(urlOf(proxy()))));

    await A.query('SET search_path TO a_schema, public');
    await A.query("SET statement_timeout = '1234ms'");
    await A.query("SET TIME ZONE 'America/New_York'");
    await A.query("SET DateStyle = 'SQL, DMY'");
    await B.query('set search_path = b_schema');
    await B.query("set statement_timeout to '4321ms'");
    await B.query("set time zone 'Asia/Kathmandu'");
    await B.query('set datestyle to German');

    const d = serverDefaults;
    const expected: Record<'A' | 'B' | 'C', Omit<Probe, 'pid'>> = {
      A: {
        sp: 'a_schema, public',
        st: '1234ms',
        tz: 'America/New_York',
        ds: 'SQL, DMY',
        app: 'client_a',
        m: 'a',
        d: '05/03/2024',
      },
      B: {
        sp: 'b_schema',
        st: '4321ms',
        tz: 'Asia/Kathmandu',
        ds: 'German, DMY',
        app: 'client_b',
        m: 'b',
        d: '05.03.2024',
      },
      C: { sp: d.sp, st: d.st, tz: d.tz, ds: d.ds, app: 'client_c', m: 'public', d: '2024-03-05' },
    };
    const clients = { A, B, C };
    const pids = { A: new Set<number>(), B: new Set<number>(), C: new Set<number>() };

    /** Interleave the three clients with noise transactions that hold servers, so servers keep changing hands. */
    async function rounds(n: number, label: string): Promise<void> {
      for (let r = 0; r < n; r++) {
        const failures = await runAll([
          ...(['A', 'B', 'C'] as const).map((name): [string, () => Promise<unknown>] => [
            `${label} round ${r} client ${name}`,
            async () => {
              await sleep((r * 7 + name.charCodeAt(0)) % 4);
              const { pid, ...got } = await probe(clients[name], r);
              pids[name].add(pid);
              same(got, expected[name], `${label} round ${r} client ${name}`);
            },
          ]),
          ...noise.map((c, i): [string, () => Promise<unknown>] => [
            `noise ${i}`,
            async () => {
              await c.query('begin');
              try {
                await c.query('select pg_sleep($1)', [((r + i) % 3) * 0.002]);
                same((await c.query(PROBE)).rows[0].sp, d.sp, `${label} noise ${i} search_path`);
              } finally {
                await c.query('commit').catch(() => {});
              }
            },
          ]),
        ]);
        expect(failures).toEqual([]);
      }
    }

    await rounds(12, 'after SET');
    // The premise: servers really changed hands between A, B and C.
    const shared =
      [...pids.A].filter((p) => pids.B.has(p) || pids.C.has(p)).length +
      [...pids.B].filter((p) => pids.C.has(p)).length;
    expect(shared, `A ${[...pids.A]} B ${[...pids.B]} C ${[...pids.C]}`).toBeGreaterThan(0);

    // SET LOCAL lasts until the end of its transaction only.
    await A.query('begin');
    await A.query("set local statement_timeout = '99ms'");
    await A.query('set local search_path = b_schema');
    const inTx = (await A.query(PROBE)).rows[0];
    expect([inTx.st, inTx.sp, inTx.m]).toEqual(['99ms', 'b_schema', 'b']);
    await A.query('commit');
    // A SET inside a rolled-back transaction is undone; one inside a committed transaction sticks.
    await A.query('begin');
    await A.query('set search_path to b_schema');
    await A.query('rollback');
    await B.query('begin');
    await B.query("set time zone 'UTC'");
    await B.query('commit');
    expected.B.tz = 'UTC';
    await rounds(6, 'after SET LOCAL / rolled-back SET / SET in a committed transaction');

    // statement_timeout really applies on whatever server A runs next, and does not leak to C.
    const [slowA, slowC] = await Promise.all([
      timed(A.query('select pg_sleep(2)')),
      timed(C.query('select pg_sleep(1.5)')),
    ]);
    expect(slowA.ok ? 'completed' : slowA.error.code).toBe('57014');
    expect(slowA.ms).toBeGreaterThan(1000);
    expect(slowA.ms).toBeLessThan(1900);
    expect(slowC.ok, 'C has no statement_timeout').toBe(true);

    await A.query('RESET statement_timeout');
    expected.A.st = d.st;
    await B.query('RESET ALL'); // back to the session defaults, which include the startup application_name
    expected.B = { ...expected.C, app: 'client_b' };
    await rounds(6, 'after RESET / RESET ALL');
  });
});

// ---- 3. a client killed mid-transaction -----------------------------------------------------------------------

describe('transaction pooling: a client killed mid-transaction', () => {
  const proxy = useTxProxy({ pool_size: 5 });

  it('leaves no open transaction, no advisory lock and no row lock behind; another client takes the lock', async () => {
    const su = cluster().superuser;
    const victim = await RawPgClient.connect({
      port: proxy().port,
      user: su.user,
      password: su.password,
      database: DB,
    });
    let last: BackendMsg[] = [];
    try {
      for (const q of ['BEGIN', 'SELECT pg_advisory_xact_lock(42)', 'UPDATE lockrow SET v = v + 1 WHERE id = 1']) {
        victim.send(serialize.query(q));
        last = await victim.untilReady();
        expect(last.filter((m) => m.type === 'E').map((m) => errorFields(m).M)).toEqual([]);
      }
    } catch (e) {
      victim.destroy();
      throw e;
    }
    expect(last.at(-1)!.body.toString()).toBe('T');
    const lockQuery = `select count(*)::int as n from pg_locks
      where locktype = 'advisory' and classid = 0 and objid = 42 and database = (select oid from pg_database where datname = $1)`;
    expect((await admin.query(lockQuery, [DB])).rows[0].n, 'the victim holds advisory lock 42').toBe(1);
    expect((await adminDb.query('select pg_try_advisory_xact_lock(42) as ok')).rows[0].ok).toBe(false);

    victim.destroy(); // no Terminate: the client just vanishes
    await waitFor(
      async () => {
        const s = await serverBackends(admin, DB);
        const locks = (await admin.query(lockQuery, [DB])).rows[0].n;
        return s.idleInTransaction === 0 && s.active === 0 && locks === 0;
      },
      5000,
      'the abandoned transaction and its advisory lock to go away',
    );
    expect((await adminDb.query('select v from lockrow where id = 1')).rows[0].v, 'the UPDATE was rolled back').toBe(
      100,
    );

    const c = await bag.pg(urlOf(proxy()));
    await c.query('begin');
    expect((await c.query('select pg_try_advisory_xact_lock(42) as ok')).rows[0].ok).toBe(true);
    expect((await c.query('select v from lockrow where id = 1 for update nowait')).rows[0].v).toBe(100);
    await c.query('commit');
    expect((await serverBackends(admin, DB)).idleInTransaction).toBe(0);
  });
});

// ---- 4. waiting for a server -----------------------------------------------------------------------------------

describe('transaction pooling: query_wait_timeout', () => {
  const proxy = useTxProxy({ pool_size: 1, query_wait_timeout: '500ms' });

  it('a client queued behind an open transaction gets 08P01 query_wait_timeout after ~0.5 s; the pool recovers', async () => {
    const A = await bag.pg(urlOf(proxy()));
    const B = await bag.pg(urlOf(proxy()));
    await A.query('begin');
    await A.query('select 1');
    const r = await timed(B.query('select 2 as two'));
    expect(r.ok, 'B must not get a server while A holds the only one').toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe('08P01');
      expect(r.error.message).toMatch(/query_wait_timeout/);
    }
    expect(r.ms).toBeGreaterThanOrEqual(400);
    expect(r.ms).toBeLessThan(3000);
    // A's transaction is untouched and can finish.
    expect((await A.query('select 3 as three')).rows[0].three).toBe(3);
    expect((await A.query('commit')).command).toBe('COMMIT');
    const B2 = await bag.pg(urlOf(proxy()));
    expect((await B2.query('select 4 as four')).rows[0].four).toBe(4);
    expect((await A.query('select 5 as five')).rows[0].five).toBe(5);
  });

  it('a login while A holds the only server is answered from the welcome of earlier logins, not queued', async () => {
    await (await bag.pg(urlOf(proxy()))).query('select 1'); // a login with these settings went through a server
    const A = await bag.pg(urlOf(proxy()));
    await A.query('begin');
    await A.query('select 1');
    // A login needing the server would wait behind A and fail after query_wait_timeout (500 ms).
    const C = await bag.pg(urlOf(proxy()));
    const p = C.query('select current_setting($1) as v', ['server_version_num']);
    await A.query('commit');
    expect(Number((await p).rows[0].v)).toBeGreaterThanOrEqual(150000);
  });
});

// ---- 5. pinning -----------------------------------------------------------------------------------------------

interface Noise {
  readonly iterations: number;
  /** Resolves after `n` more noise iterations (all clients together). */
  rounds(n: number): Promise<void>;
  /** Stop and return the failures. */
  stop(): Promise<string[]>;
}

/**
 * Clients looping short transactions and queries through pgnear. Each checks that the server it got carries no
 * pinned state of another client: no temp table pin_tt, no prepared statement "p", no LISTEN, no advisory lock.
 */
async function startNoise(url: string, n: number): Promise<Noise> {
  const clients = await Promise.all(Array.from({ length: n }, () => bag.pg(url)));
  const failures: string[] = [];
  let iterations = 0;
  let running = true;
  const clean = `select to_regclass('pin_tt') is null as no_tt,
    (select count(*)::int from pg_prepared_statements where name = 'p') as prep,
    (select count(*)::int from pg_listening_channels()) as listen,
    (select count(*)::int from pg_locks where pid = pg_backend_pid() and locktype = 'advisory') as adv`;
  const want = { no_tt: true, prep: 0, listen: 0, adv: 0 };
  const loops = clients.map(async (c, j) => {
    for (let i = 0; running; i++) {
      try {
        if (i % 3 === 0) same((await c.query(clean)).rows[0], want, `noise ${j} simple`);
        else if (i % 3 === 1) {
          await c.query('begin');
          same((await c.query(`${clean}, $1::int as i`, [i])).rows[0], { ...want, i }, `noise ${j} in transaction`);
          await c.query('commit');
        } else same((await c.query({ name: 'noise', text: clean })).rows[0], want, `noise ${j} prepared`);
      } catch (e) {
        failures.push((e as Error).message);
        await c.query('rollback').catch(() => {});
      }
      iterations++;
      await sleep(1);
    }
  });
  return {
    get iterations() {
      return iterations;
    },
    async rounds(k) {
      const target = iterations + k;
      await waitFor(() => iterations >= target || failures.length > 0, 10_000, `${k} noise iterations`, 5);
    },
    async stop() {
      running = false;
      await Promise.all(loops);
      return failures;
    },
  };
}

describe('transaction pooling: session state pins the client to its server, exactly as on a direct connection', () => {
  // A pool exhausted by pins that were never released fails in 10 s rather than hanging for the default 120 s.
  const proxy = useTxProxy({ pool_size: 5, query_wait_timeout: '10s' });

  it('LISTEN/NOTIFY: the listener receives notifications after other traffic, idle and between its own transactions', async () => {
    const A = await bag.pg(urlOf(proxy()));
    const N = await bag.pg(urlOf(proxy()));
    const noise = await startNoise(urlOf(proxy()), 4);
    try {
      await A.query('listen pool_chan');
      await noise.rounds(40);
      const first = nextEvent<pg.Notification>(A, 'notification');
      await N.query("select pg_notify('pool_chan', 'p1')");
      expect((await first).payload).toBe('p1'); // A is idle: its server must still be its own and relayed
      for (let i = 0; i < 5; i++) {
        await A.query('begin');
        expect((await A.query('select $1::int as i', [i])).rows[0].i).toBe(i);
        await A.query('commit');
        await noise.rounds(5);
      }
      const second = nextEvent<pg.Notification>(A, 'notification');
      await N.query('begin');
      await N.query("notify pool_chan, 'p2'");
      await N.query('commit');
      expect((await second).payload).toBe('p2');
      expect((await A.query('select pg_listening_channels() as ch')).rows).toEqual([{ ch: 'pool_chan' }]);
      await A.query('unlisten *');
    } finally {
      expect(await noise.stop()).toEqual([]);
    }
  });

  it('a temp table created outside a transaction stays visible to its client only, across many transactions', async () => {
    const A = await bag.pg(urlOf(proxy()));
    const noise = await startNoise(urlOf(proxy()), 4);
    try {
      await A.query('create temp table pin_tt(a int)');
      for (let i = 1; i <= 20; i++) {
        if (i % 2) {
          await A.query('begin');
          await A.query('insert into pin_tt values ($1)', [i]);
          await A.query('commit');
        } else await A.query(`insert into pin_tt values (${i})`);
        const n = await A.query({ name: 'count_tt', text: 'select count(*)::int as n, sum(a)::int as s from pin_tt' });
        expect(n.rows[0]).toEqual({ n: i, s: (i * (i + 1)) / 2 });
        await noise.rounds(3);
      }
      await bag.end(A);
      // After A is gone, whatever happened to its server, nobody sees pin_tt.
      await noise.rounds(30);
    } finally {
      expect(await noise.stop()).toEqual([]);
    }
  });

  it('a session advisory lock held by A blocks B until A unlocks it', async () => {
    const A = await bag.pg(urlOf(proxy()));
    const B = await bag.pg(urlOf(proxy()));
    const noise = await startNoise(urlOf(proxy()), 4);
    try {
      expect((await A.query('select pg_advisory_lock(7)')).rowCount).toBe(1);
      for (let i = 0; i < 3; i++) {
        await noise.rounds(10);
        expect((await B.query('select pg_try_advisory_lock(7) as ok')).rows[0].ok).toBe(false);
        await A.query('begin');
        await A.query('select 1');
        await A.query('commit');
      }
      expect((await A.query('select pg_advisory_unlock(7) as ok')).rows[0].ok).toBe(true);
      expect((await B.query('select pg_try_advisory_lock(7) as ok')).rows[0].ok).toBe(true);
      expect((await B.query('select pg_advisory_unlock(7) as ok')).rows[0].ok).toBe(true);
      const locks = await admin.query(
        "select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = 7",
      );
      expect(locks.rows[0].n).toBe(0);
    } finally {
      expect(await noise.stop()).toEqual([]);
    }
  });

  it('SQL-level PREPARE/EXECUTE works across transactions, per client (two clients, one name)', async () => {
    const A = await bag.pg(urlOf(proxy()));
    const B = await bag.pg(urlOf(proxy()));
    const noise = await startNoise(urlOf(proxy()), 4);
    try {
      await A.query('PREPARE p AS SELECT $1::int AS v');
      await B.query("PREPARE p(text) AS SELECT $1 || '-b' AS v");
      for (let i = 0; i < 8; i++) {
        await noise.rounds(5);
        if (i % 2) await A.query('begin');
        expect((await A.query(`EXECUTE p(${i + 5})`)).rows).toEqual([{ v: i + 5 }]);
        if (i % 2) await A.query('commit');
        expect((await B.query(`EXECUTE p('x${i}')`)).rows).toEqual([{ v: `x${i}-b` }]);
      }
      await A.query('DEALLOCATE p');
      expect(await codeOf(A.query('EXECUTE p(1)'))).toBe('26000');
      expect((await B.query("EXECUTE p('still')")).rows).toEqual([{ v: 'still-b' }]);
      await B.query('DEALLOCATE ALL');
    } finally {
      expect(await noise.stop()).toEqual([]);
    }
  });
});

describe('transaction pooling: temp tables ON COMMIT DROP do not pin', () => {
  const proxy = useTxProxy({ pool_size: 2, query_wait_timeout: '5s' });

  it('10 clients on pool_size 2 loop create temp table … on commit drop without errors or long waits', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => bag.pg(urlOf(proxy()))));
    const sampler = await sampleServerBackends(cluster(), DB, 10);
    let slowest = 0;
    const t0 = Date.now();
    let failures: string[] = [];
    try {
      failures = await runAll(
        clients.map((c, i): [string, () => Promise<unknown>] => [
          `client ${i}`,
          async () => {
            for (let j = 0; j < 10; j++) {
              const t = Date.now();
              await c.query('begin');
              await c.query('create temp table w(a int) on commit drop');
              await c.query('insert into w select generate_series(1, $1::int)', [i + j + 1]);
              const s = (await c.query('select sum(a)::int as s from w')).rows[0].s;
              await c.query('commit');
              same(s, ((i + j + 1) * (i + j + 2)) / 2, `client ${i} loop ${j}`);
              slowest = Math.max(slowest, Date.now() - t);
            }
          },
        ]),
      );
    } finally {
      const s = await sampler.stop();
      expect(failures).toEqual([]);
      expect(s.max, `server backends; pgnear: ${JSON.stringify(serverEvents(proxy()))}`).toBeLessThanOrEqual(2);
    }
    expect(slowest, 'longest transaction including its wait for a server (ms)').toBeLessThan(3000);
    expect(Date.now() - t0).toBeLessThan(15_000);
  });
});

// ---- 6. server_lifetime -----------------------------------------------------------------------------------------

describe('transaction pooling: server_lifetime rotates servers between transactions', () => {
  const proxy = useTxProxy({ pool_size: 5, server_lifetime: '300ms' });

  it('20 clients loop for ~3 s with zero errors; more distinct server pids than pool_size', async () => {
    const pgs = await Promise.all(Array.from({ length: 15 }, () => bag.pg(urlOf(proxy()))));
    const pjs = Array.from({ length: 5 }, () => bag.postgres(urlOf(proxy())));
    const seen = new Set<number>();
    const until = Date.now() + 3000;
    let queries = 0;
    const failures = await runAll([
      ...pgs.map((c, i): [string, () => Promise<unknown>] => [
        `pg${i}`,
        async () => {
          for (let k = 0; Date.now() < until; k++) {
            if (k % 10 === 9) {
              // A transaction outliving server_lifetime keeps its server to the end.
              await c.query('begin');
              const p1 = await pidOf(c);
              await c.query('select pg_sleep(0.4)');
              const p2 = await pidOf(c);
              await c.query('commit');
              same(p2, p1, `pg${i} server changed inside a transaction`);
              seen.add(p1);
            } else if (k % 2) {
              seen.add(await pidOf(c));
            } else {
              const r = await c.query({
                name: 'pid',
                text: 'select pg_backend_pid() as pid, $1::int as k',
                values: [k],
              });
              same(r.rows[0].k, k, `pg${i} prepared`);
              seen.add(r.rows[0].pid);
            }
            queries++;
          }
        },
      ]),
      ...pjs.map((sql, i): [string, () => Promise<unknown>] => [
        `pj${i}`,
        async () => {
          for (let k = 0; Date.now() < until; k++) {
            const rs = await Promise.all([
              sql`select pg_backend_pid() as pid, ${k}::int as k`,
              sql`select ${i}::int as i`,
            ]);
            same([rs[0][0].k, rs[1][0].i], [k, i], `pj${i}`);
            seen.add(rs[0][0].pid);
            queries++;
          }
        },
      ]),
    ]);
    expect(failures).toEqual([]);
    expect(queries).toBeGreaterThan(100);
    expect(seen.size, `distinct server pids: ${[...seen].join(' ')}`).toBeGreaterThan(5);
    await waitFor(
      async () => (await serverBackends(admin, DB)).total <= 5,
      5000,
      'at most pool_size servers after the load',
    );
  });
});

// ---- 7. prepared statements on the wire -------------------------------------------------------------------------

const S = serialize;
const text = (v: Buffer | null) => v?.toString('utf8') ?? null;
/** Data rows as arrays of text values. */
const rowsOf = (msgs: BackendMsg[]) => msgs.filter((m) => m.type === 'D').map((m) => rowValues(m).map(text));
const errorsOf = (msgs: BackendMsg[]) =>
  msgs
    .filter((m) => m.type === 'E')
    .map((m) => {
      const f = errorFields(m);
      return { C: f.C, M: f.M };
    });

describe('transaction pooling: prepared statements on the wire (pool_size 2)', () => {
  const proxy = useTxProxy({ pool_size: 2, query_wait_timeout: '10s' });
  /** Holders that steer other clients onto or off a server; kept across the tests of this block. */
  const holders = new ClientBag();
  let h1: pg.Client;
  let h2: pg.Client;
  beforeAll(async () => {
    h1 = await holders.pg(urlOf(proxy()));
    h2 = await holders.pg(urlOf(proxy()));
  });
  afterAll(async () => {
    await holders.closeAll();
  });

  async function raw(target: 'proxy' | 'direct' = 'proxy'): Promise<RawPgClient> {
    const su = cluster().superuser;
    const port = target === 'proxy' ? proxy().port : cluster().primary.port;
    return RawPgClient.connect({ port, user: su.user, password: su.password, database: DB });
  }

  /**
   * Make the next transaction of an idle client run ON (or OFF) the server with `pid`: both holders open a
   * transaction (pool_size 2 → they hold both servers), then the one holding the wanted server commits.
   */
  async function steer(where: 'on' | 'off', pid: number): Promise<{ release(): Promise<void> }> {
    await h1.query('begin');
    const a = await pidOf(h1);
    await h2.query('begin');
    const b = await pidOf(h2);
    let keep: pg.Client | null;
    if (where === 'on') keep = a === pid ? h2 : b === pid ? h1 : null;
    else keep = a === pid ? h1 : h2;
    if (!keep || a === b) {
      await h1.query('commit');
      await h2.query('commit');
      throw new Error(`cannot steer ${where} server ${pid}: the holders got ${a} and ${b}`);
    }
    await (keep === h1 ? h2 : h1).query('commit');
    return { release: async () => void (await keep.query('commit')) };
  }

  /** Bind + Execute + Sync of a named statement whose last column is pg_backend_pid(). */
  async function execNamed(c: RawPgClient, name: string, values: (string | null)[] = []) {
    c.send(S.bind({ statement: name, values }), S.execute({}), S.sync());
    const msgs = await c.untilReady();
    const rows = rowsOf(msgs);
    return { types: typesOf(msgs), rows, errors: errorsOf(msgs), pid: Number(rows[0]?.at(-1)) };
  }

  it('one statement name, two clients, two texts: each client always runs its own, on any server', async () => {
    const X = await raw();
    const Y = await raw();
    try {
      X.send(S.parse({ name: 'same', text: 'select $1::int + 1 as v, pg_backend_pid() as pid' }), S.sync());
      expect(typesOf(await X.untilReady())).toBe('1Z');
      Y.send(S.parse({ name: 'same', text: "select $1::text || '!' as v, pg_backend_pid() as pid" }), S.sync());
      expect(typesOf(await Y.untilReady())).toBe('1Z');
      let x = await execNamed(X, 'same', ['1']);
      expect(x.rows[0][0]).toBe('2');
      const seen = new Set<number>([x.pid]);
      for (let i = 0; i < 6; i++) {
        const held = await steer(i % 2 ? 'on' : 'off', x.pid);
        const prev = x.pid;
        try {
          x = await execNamed(X, 'same', [String(i)]);
          const y = await execNamed(Y, 'same', [String(i)]);
          expect([x.types, x.rows[0][0], y.types, y.rows[0][0]]).toEqual(['2DCZ', String(i + 1), '2DCZ', `${i}!`]);
          expect(y.pid, 'X and Y ran on the one free server').toBe(x.pid);
          if (i % 2 === 0) expect(x.pid, 'steered off the previous server').not.toBe(prev);
          else expect(x.pid, 'steered onto the previous server').toBe(prev);
          seen.add(x.pid);
        } finally {
          await held.release();
        }
      }
      expect(seen.size).toBe(2);
    } finally {
      X.destroy();
      Y.destroy();
    }
  });

  it('node-postgres named statements with one name and different texts on two clients, across server swaps', async () => {
    const P = await bag.pg(urlOf(proxy()));
    const Q = await bag.pg(urlOf(proxy()));
    let pid = (await P.query({ name: 'st', text: 'select $1::int * 10 as v, pg_backend_pid() as pid', values: [1] }))
      .rows[0].pid;
    expect((await Q.query({ name: 'st', text: "select $1::text || '-q' as v", values: ['a'] })).rows[0].v).toBe('a-q');
    for (let i = 0; i < 4; i++) {
      const held = await steer(i % 2 ? 'on' : 'off', pid);
      try {
        const r = await P.query({ name: 'st', text: 'select $1::int * 10 as v, pg_backend_pid() as pid', values: [i] });
        expect(r.rows[0].v).toBe(i * 10);
        if (i % 2 === 0) expect(r.rows[0].pid).not.toBe(pid);
        pid = r.rows[0].pid;
        expect((await Q.query({ name: 'st', text: "select $1::text || '-q' as v", values: [`b${i}`] })).rows[0].v).toBe(
          `b${i}-q`,
        );
      } finally {
        await held.release();
      }
    }
  });

  it('Describe of a statement prepared on another server returns the same ParameterDescription/RowDescription as Postgres', async () => {
    const sqlText = 'select $1::int4 as n, $2::text as t, pg_backend_pid() as pid';
    const direct = await raw('direct');
    const X = await raw();
    try {
      direct.send(S.parse({ name: 'd', text: sqlText }), S.sync());
      await direct.untilReady();
      direct.send(S.describe({ type: 'S', name: 'd' }), S.sync());
      const want = await direct.untilReady();
      expect(typesOf(want)).toBe('tTZ');

      X.send(
        S.parse({ name: 'd', text: sqlText }),
        S.bind({ statement: 'd', values: ['1', 'x'] }),
        S.execute({}),
        S.sync(),
      );
      const first = await X.untilReady();
      const pid = Number(rowsOf(first)[0][2]);
      for (const where of ['off', 'on'] as const) {
        const held = await steer(where, pid);
        try {
          X.send(S.describe({ type: 'S', name: 'd' }), S.sync());
          const got = await X.untilReady();
          expect(typesOf(got)).toBe('tTZ');
          expect(paramTypes(got[0])).toEqual([23, 25]);
          expect(rowDescription(got[1]).map((c) => [c.name, c.typeOid])).toEqual([
            ['n', 23],
            ['t', 25],
            ['pid', 23],
          ]);
          expect(got[0].body.equals(want[0].body), 'ParameterDescription byte-identical').toBe(true);
          expect(got[1].body.equals(want[1].body), 'RowDescription byte-identical').toBe(true);
        } finally {
          await held.release();
        }
      }
    } finally {
      direct.destroy();
      X.destroy();
    }
  });

  it('Close then Bind → 26000, duplicate Parse → 42P05, exactly as Postgres, on the old and on another server', async () => {
    const direct = await raw('direct');
    const X = await raw();
    try {
      // What Postgres says.
      direct.send(S.parse({ name: 'dup', text: 'select 1 as v' }), S.sync());
      await direct.untilReady();
      direct.send(S.parse({ name: 'dup', text: 'select 2 as v' }), S.sync());
      const wantDup = await direct.untilReady();
      direct.send(S.parse({ name: 'c', text: 'select 1 as v' }), S.close({ type: 'S', name: 'c' }), S.sync());
      expect(typesOf(await direct.untilReady())).toBe('13Z');
      direct.send(S.bind({ statement: 'c' }), S.execute({}), S.sync());
      const wantGone = await direct.untilReady();
      expect(typesOf(wantDup)).toBe('EZ');
      expect(errorsOf(wantDup)).toEqual([{ C: '42P05', M: 'prepared statement "dup" already exists' }]);
      expect(typesOf(wantGone)).toBe('EZ');
      expect(errorsOf(wantGone)).toEqual([{ C: '26000', M: 'prepared statement "c" does not exist' }]);

      // Duplicate Parse through pgnear, on the server that has it and on one that does not.
      X.send(S.parse({ name: 'dup', text: 'select 1 as v, pg_backend_pid() as pid' }), S.sync());
      expect(typesOf(await X.untilReady())).toBe('1Z');
      const d0 = await execNamed(X, 'dup');
      expect(d0.rows[0][0]).toBe('1');
      for (const where of ['off', 'on'] as const) {
        const held = await steer(where, d0.pid);
        try {
          X.send(S.parse({ name: 'dup', text: 'select 2 as v, pg_backend_pid() as pid' }), S.sync());
          const got = await X.untilReady();
          expect([typesOf(got), errorsOf(got)], `duplicate Parse steered ${where}`).toEqual([
            typesOf(wantDup),
            errorsOf(wantDup),
          ]);
          const still = await execNamed(X, 'dup');
          expect(still.rows[0][0], 'the original statement is kept').toBe('1');
        } finally {
          await held.release();
        }
      }

      // Close on another server, then Bind on the server that prepared it, and on another one.
      X.send(S.parse({ name: 'c', text: 'select 1 as v, pg_backend_pid() as pid' }), S.sync());
      expect(typesOf(await X.untilReady())).toBe('1Z');
      const c0 = await execNamed(X, 'c');
      let held = await steer('off', c0.pid);
      try {
        X.send(S.close({ type: 'S', name: 'c' }), S.sync());
        expect(typesOf(await X.untilReady())).toBe('3Z');
      } finally {
        await held.release();
      }
      for (const where of ['on', 'off'] as const) {
        held = await steer(where, c0.pid);
        try {
          const gone = await execNamed(X, 'c');
          expect([gone.types, gone.errors], `Bind after Close, steered ${where}`).toEqual([
            typesOf(wantGone),
            errorsOf(wantGone),
          ]);
        } finally {
          await held.release();
        }
      }
      // Closing a statement that does not exist is not an error, as in Postgres.
      X.send(S.close({ type: 'S', name: 'never' }), S.sync());
      expect(typesOf(await X.untilReady())).toBe('3Z');
      // And the name is free again.
      X.send(S.parse({ name: 'c', text: "select 'again' as v, pg_backend_pid() as pid" }), S.sync());
      expect(typesOf(await X.untilReady())).toBe('1Z');
      expect((await execNamed(X, 'c')).rows[0][0]).toBe('again');
    } finally {
      direct.destroy();
      X.destroy();
    }
  });

  it('a syntax error in Parse → 42601 like Postgres; the name stays free and the session continues', async () => {
    const scenario = async (c: RawPgClient) => {
      c.send(S.parse({ name: 'bad', text: 'selec 1' }), S.bind({ statement: 'bad' }), S.execute({}), S.sync());
      const err = await c.untilReady();
      c.send(S.parse({ name: 'bad', text: 'select 7 as v' }), S.bind({ statement: 'bad' }), S.execute({}), S.sync());
      const ok = await c.untilReady();
      c.send(S.query('select 8 as v'));
      const simple = await c.untilReady();
      const e = err.filter((m) => m.type === 'E').map((m) => errorFields(m));
      return {
        err: typesOf(err),
        fields: e.map((f) => [f.C, f.M, f.P]),
        ok: [typesOf(ok), firstColumn(ok)],
        simple: [typesOf(simple), firstColumn(simple)],
      };
    };
    const direct = await raw('direct');
    const X = await raw();
    try {
      const want = await scenario(direct);
      expect(want.fields).toEqual([['42601', 'syntax error at or near "selec"', '1']]);
      expect(await scenario(X)).toEqual(want);
    } finally {
      direct.destroy();
      X.destroy();
    }
  });

  it('the unnamed statement: pipelines of Parse/Bind/Describe/Execute, several per Sync and an error in between, match Postgres', async () => {
    const scenario = async (c: RawPgClient) => {
      c.send(
        S.parse({ text: 'select $1::int * 2 as v' }),
        S.bind({ values: ['21'] }),
        S.describe({ type: 'P' }),
        S.execute({}),
        S.parse({ text: "select 'second' as v" }),
        S.bind({}),
        S.describe({ type: 'P' }),
        S.execute({}),
        S.sync(),
        S.parse({ text: 'select 1/0 as v' }),
        S.bind({}),
        S.execute({}),
        S.sync(),
        S.parse({ text: 'select $1::text as v' }),
        S.describe({ type: 'S' }),
        S.bind({ values: ['third'] }),
        S.execute({}),
        S.sync(),
      );
      const msgs = await c.untilReady(3);
      return { types: typesOf(msgs), rows: firstColumn(msgs), errors: errorsOf(msgs) };
    };
    const direct = await raw('direct');
    const X = await raw();
    try {
      const want = await scenario(direct);
      expect(want.rows).toEqual(['42', 'second', 'third']);
      // Other clients take and release servers in between, so each Sync may run elsewhere.
      for (let i = 0; i < 3; i++) {
        const held = await steer(i % 2 ? 'on' : 'off', await pidOf(h1));
        try {
          expect(await scenario(X)).toEqual(want);
        } finally {
          await held.release();
        }
      }
    } finally {
      direct.destroy();
      X.destroy();
    }
  });
});

describe('transaction pooling: max_prepared_statements evicts and re-prepares transparently', () => {
  const proxy = useTxProxy({ pool_size: 2, max_prepared_statements: 3 });

  it('clients cycling through 10 named statements each always get the right statement', async () => {
    const clients = await Promise.all(Array.from({ length: 4 }, () => bag.pg(urlOf(proxy()))));
    const failures = await runAll(
      clients.map((c, i): [string, () => Promise<unknown>] => [
        `client ${i}`,
        async () => {
          for (let k = 0; k < 40; k++) {
            const s = (k * 7) % 10;
            const r = await c.query({
              name: `s${s}`,
              text: `select $1::int + ${s * 100} as v, ${i} as c`,
              values: [k],
            });
            same(r.rows[0], { v: k + s * 100, c: i }, `client ${i} statement s${s}`);
          }
        },
      ]),
    );
    expect(failures).toEqual([]);
  });
});

// ---- 8. psycopg2 ------------------------------------------------------------------------------------------------

describe('transaction pooling: psycopg2', () => {
  const proxy = useTxProxy({ pool_size: 2 });

  it('four connections interleave transactions with SET settings, rollback/commit, a named cursor and an error', async () => {
    const script = String.raw`
import json, os
import psycopg2, psycopg2.errors
dsn = os.environ['DSN']
out = {}
conns = [psycopg2.connect(dsn, application_name='py%d' % i) for i in range(4)]
for i, c in enumerate(conns):
    cur = c.cursor()
    cur.execute("set timezone to %s", ('Etc/GMT-%d' % (i + 1),))  # inside psycopg2's implicit transaction
    c.commit()
ok = True
bad = []
for r in range(10):
    for i, c in enumerate(conns):
        cur = c.cursor()
        cur.execute("select current_setting('TimeZone'), current_setting('application_name'), %s::int * 2", (r,))
        got = list(cur.fetchone())
        if got != ['Etc/GMT-%d' % (i + 1), 'py%d' % i, r * 2]:
            bad.append(got)
        c.commit()
out['settings_bad'] = bad
c = conns[0]
cur = c.cursor()
cur.execute("insert into py_items values (%s, %s)", (1, 'rolled back'))
cur.execute("select count(*) from py_items")
out['in_tx'] = cur.fetchone()[0]
c.rollback()
cur.execute("insert into py_items values (%s, %s)", (2, 'kept'))
c.commit()
cur.execute("select array_agg(id order by id) from py_items")
out['after'] = cur.fetchone()[0]
c.commit()
total = 0
with conns[1].cursor(name='srv') as sc:
    sc.itersize = 100
    sc.execute("select g from generate_series(1, 1000) g")
    for k, row in enumerate(sc):
        total += row[0]
        if k % 150 == 0:
            oc = conns[2].cursor()
            oc.execute("select %s::text", ('other',))
            conns[2].commit()
conns[1].commit()
out['cursor'] = total
try:
    cur.execute("select 1/0")
except psycopg2.errors.DivisionByZero as e:
    out['error'] = e.pgcode
c.rollback()
cur.execute("select 'alive'")
out['after_error'] = cur.fetchone()[0]
c.commit()
for x in conns:
    x.close()
print(json.dumps(out))
`;
    const r = await run('/usr/bin/python3', ['-c', script], { env: { DSN: urlOf(proxy()) }, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      settings_bad: [],
      in_tx: 1,
      after: [2],
      cursor: 500500,
      error: '22012',
      after_error: 'alive',
    });
  });
});
