// node-postgres (pg) through pgnear in transaction and session mode: simple and extended protocol, binary data,
// transactions, async messages (NOTICE, NOTIFY, ParameterStatus), big results and many concurrent clients.
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { nextEvent } from '../support/drivers.js';
import { startProxy, type TestProxy } from '../support/proxy.js';

const cluster = useCluster({ replicas: 1 });
type Mode = 'transaction' | 'session';
const proxies: Partial<Record<Mode, TestProxy>> = {};
/** The proxy of the describe block running now. */
let proxy: TestProxy;
const open = new Set<pg.Client>();

beforeAll(async () => {
  proxies.transaction = await startProxy(cluster(), { pool_mode: 'transaction' });
  proxies.session = await startProxy(cluster(), { pool_mode: 'session', pool: { pool_size: 60 } });
});
afterAll(async () => {
  await Promise.allSettled([...open].map((c) => c.end()));
  await proxies.transaction?.stop();
  await proxies.session?.stop();
});

/** A connected client through pgnear (or directly to the primary), ended in afterAll if the test does not. */
async function client(direct = false, extra: pg.ClientConfig = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: direct ? cluster().primary.url : proxy.url(), ...extra });
  c.on('error', () => {});
  open.add(c);
  await c.connect();
  return c;
}
async function end(...cs: pg.Client[]): Promise<void> {
  for (const c of cs) {
    open.delete(c);
    await c.end();
  }
}

interface Notice {
  severity?: string;
  code?: string;
  message?: string;
}
interface ParamStatusMsg {
  parameterName: string;
  parameterValue: string;
}
/** pg's Connection emits every ParameterStatus; the Client itself does not expose them. */
const connectionOf = (c: pg.Client) => (c as unknown as { connection: NodeJS.EventEmitter }).connection;

describe.each(['transaction', 'session'] as const)('node-postgres through pgnear (%s mode)', (mode: Mode) => {
  beforeAll(() => {
    proxy = proxies[mode]!;
  });

  it('runs simple queries, including a multi-statement one', async () => {
    const c = await client();
    const r = await c.query("select 1 as a, 'x' as b, null::int as n");
    expect(r.rows).toEqual([{ a: 1, b: 'x', n: null }]);
    expect(r.command).toBe('SELECT');
    const multi = (await c.query('select 1 as one; select 2 as two; ')) as unknown as pg.QueryResult[];
    expect(multi.map((x) => x.rows[0])).toEqual([{ one: 1 }, { two: 2 }]);
    const ddl = await c.query('create temp table t(a int); insert into t select generate_series(1, 3)');
    expect((ddl as unknown as pg.QueryResult[]).map((x) => [x.command, x.rowCount])).toEqual([
      ['CREATE', null],
      ['INSERT', 3],
    ]);
    await end(c);
  });

  it('runs parameterized queries (extended protocol) with text, null and unicode values', async () => {
    const c = await client();
    const r = await c.query(
      'select $1::int + $2::int as s, $3::text as t, $4::text is null as isnull, length($3) as len',
      [40, 2, 'héllo wörld ✓ 🐘', null],
    );
    expect(r.rows).toEqual([{ s: 42, t: 'héllo wörld ✓ 🐘', isnull: true, len: 15 }]);
    // A named prepared statement reused with other values.
    for (const v of [1, 2, 3]) {
      const q = await c.query({ name: 'plus-one', text: 'select $1::int + 1 as v', values: [v] });
      expect(q.rows[0].v).toBe(v + 1);
    }
    if (mode === 'session') {
      // Session mode passes names through; transaction mode keeps its own names on the servers.
      const prepared = await c.query("select count(*)::int as n from pg_prepared_statements where name = 'plus-one'");
      expect(prepared.rows[0].n).toBe(1);
    }
    await end(c);
  });

  it('sends Buffer parameters in binary format byte-exact (bytea with NULs and high bytes, 5 MB too)', async () => {
    const c = await client();
    const small = Buffer.from([0, 0xff, 0x00, 0x80, 0x27, 0x5c, 0x0a, 0x00]);
    const big = randomBytes(5 * 1024 * 1024);
    for (const b of [small, big]) {
      const r = await c.query('select length($1::bytea) as n, md5($1::bytea) as h, $1::bytea as echo', [b]);
      expect(r.rows[0].n).toBe(b.length);
      expect(r.rows[0].h).toBe(createHash('md5').update(b).digest('hex'));
      expect(Buffer.compare(r.rows[0].echo, b)).toBe(0);
    }
    await end(c);
  });

  it('returns binary-format results identical to a direct connection', async () => {
    // pg decodes every DataRow field as a UTF-8 string before its binary parser runs, so values are chosen whose
    // binary encodings are ASCII bytes; the raw protocol test checks arbitrary binary bytes.
    const q = {
      text: "select $1::int4 as i, 9007199254740993::int8 as big, 2.5::float8 as f, true as b, 'tëxt'::text as t, $2::int4 as n",
      values: [0x01020304, null],
      binary: true,
    };
    const viaProxy = await client();
    const direct = await client(true);
    const p = await viaProxy.query(q);
    const d = await direct.query(q);
    expect(p.fields.map((f) => f.format)).toEqual(Array(6).fill('binary'));
    expect(p.rows).toEqual(d.rows);
    expect(p.rows[0]).toMatchObject({ i: 0x01020304, f: 2.5, b: true, t: 'tëxt', n: null });
    expect(String(p.rows[0].big)).toBe('9007199254740993');
    await end(viaProxy, direct);
  });

  it('reports 25P02 after an error inside a transaction, and ROLLBACK recovers', async () => {
    const c = await client();
    await c.query('create temp table tx(a int)');
    await c.query('begin');
    await c.query('insert into tx values (1)');
    await expect(c.query('select 1/0')).rejects.toMatchObject({ code: '22012' });
    await expect(c.query('insert into tx values (2)')).rejects.toMatchObject({ code: '25P02' });
    await expect(c.query('select $1::int', [1])).rejects.toMatchObject({ code: '25P02' });
    const rb = await c.query('rollback');
    expect(rb.command).toBe('ROLLBACK');
    expect((await c.query('select count(*)::int as n from tx')).rows[0].n).toBe(0);
    // A commit after an error is turned into a rollback by the server.
    await c.query('begin');
    await expect(c.query('select nope')).rejects.toMatchObject({ code: '42703' });
    expect((await c.query('commit')).command).toBe('ROLLBACK');
    expect((await c.query("select 'ok' as s")).rows[0].s).toBe('ok');
    await end(c);
  });

  it('delivers NOTICE and WARNING messages as notice events', async () => {
    const c = await client();
    const notices: Notice[] = [];
    c.on('notice', (n) => notices.push(n));
    const got = nextEvent<Notice>(c, 'notice', (n) => n.severity === 'WARNING');
    await c.query("do $$ begin raise notice 'hello %', 42; raise warning 'careful'; end $$");
    await got;
    expect(notices.map((n) => [n.severity, n.message])).toEqual([
      ['NOTICE', 'hello 42'],
      ['WARNING', 'careful'],
    ]);
    expect(notices[0].code).toBe('00000');
    expect(notices[1].code).toBe('01000');
    await end(c);
  });

  it('delivers LISTEN/NOTIFY between two clients, to an idle listener, only after commit', async () => {
    const listener = await client();
    const notifier = await client();
    await listener.query('listen pgnear_chan');
    const notifierPid = (await notifier.query('select pg_backend_pid() as pid')).rows[0].pid;

    const first = nextEvent<pg.Notification>(listener, 'notification');
    await notifier.query("select pg_notify('pgnear_chan', 'payload-1')");
    const n1 = await first; // the listener is idle: pgnear must forward unsolicited server messages
    expect(n1).toMatchObject({ channel: 'pgnear_chan', payload: 'payload-1', processId: notifierPid });

    const received: string[] = [];
    listener.on('notification', (n) => received.push(n.payload ?? ''));
    await notifier.query('begin');
    await notifier.query("notify pgnear_chan, 'in-tx'");
    // A round trip on the listener proves nothing was delivered before the commit.
    await listener.query('select 1');
    expect(received).toEqual([]);
    const second = nextEvent<pg.Notification>(listener, 'notification');
    await notifier.query('commit');
    expect((await second).payload).toBe('in-tx');
    await end(listener, notifier);
  });

  it.runIf(mode === 'session')(
    'passes ParameterStatus changes to the client, and resets them for the next client of a pooled server',
    async () => {
      const c = await client();
      const seen: ParamStatusMsg[] = [];
      connectionOf(c).on('parameterStatus', (m: ParamStatusMsg) => seen.push(m));
      const pid = (await c.query('select pg_backend_pid() as pid')).rows[0].pid;
      await c.query("set application_name = 'pgnear-drivers'");
      await c.query("set timezone = 'Asia/Kathmandu'");
      expect(seen.map((m) => [m.parameterName, m.parameterValue])).toEqual([
        ['application_name', 'pgnear-drivers'],
        ['TimeZone', 'Asia/Kathmandu'],
      ]);
      await end(c);

      // Session mode returns the server to the pool after DISCARD ALL; wait until the primary shows exactly that.
      const admin = await client(true);
      await vi.waitFor(
        async () => {
          const r = await admin.query('select state, query from pg_stat_activity where pid = $1', [pid]);
          expect(r.rows[0]).toEqual({ state: 'idle', query: 'DISCARD ALL' });
        },
        { timeout: 10_000, interval: 50 },
      );
      const startup: ParamStatusMsg[] = [];
      const c2 = new pg.Client(proxy.url());
      c2.on('error', () => {});
      open.add(c2);
      connectionOf(c2).on('parameterStatus', (m: ParamStatusMsg) => startup.push(m));
      await c2.connect();
      expect((await c2.query('select pg_backend_pid() as pid')).rows[0].pid).toBe(pid); // the same server, reused
      const reported = Object.fromEntries(startup.map((m) => [m.parameterName, m.parameterValue]));
      const actual = (
        await c2.query("select current_setting('application_name') as a, current_setting('TimeZone') as tz")
      ).rows[0];
      expect(actual.a).toBe('');
      expect(reported.application_name).toBe(actual.a);
      expect(reported.TimeZone).toBe(actual.tz);
      await end(c2, admin);
    },
  );

  it('forwards startup options (-c settings) and application_name to the server', async () => {
    const c = await client(false, {
      application_name: 'drivers-pg',
      options: '-c statement_timeout=1234 -c search_path=pg_catalog',
    });
    const r = await c.query(
      "select current_setting('application_name') as a, current_setting('statement_timeout') as st, current_setting('search_path') as sp",
    );
    expect(r.rows[0]).toEqual({ a: 'drivers-pg', st: '1234ms', sp: 'pg_catalog' });
    await expect(c.query('select pg_sleep(5)')).rejects.toMatchObject({ code: '57014' });
    expect((await c.query('select 1 as one')).rows[0].one).toBe(1);
    await end(c);
  });

  it('returns a 50k-row result and a 16 MB value intact', async () => {
    const c = await client();
    const r = await c.query('select g, md5(g::text) as h from generate_series(1, 50000) g');
    expect(r.rowCount).toBe(50000);
    expect(r.rows.reduce((s, row) => s + row.g, 0)).toBe((50000 * 50001) / 2);
    for (const i of [0, 12345, 49999]) {
      expect(r.rows[i].h).toBe(
        createHash('md5')
          .update(String(i + 1))
          .digest('hex'),
      );
    }
    const big = await c.query("select repeat('xyz', 16 * 1024 * 1024 / 3) as v, $1::int as after", [7]);
    expect(big.rows[0].v.length).toBe(16 * 1024 * 1024 - ((16 * 1024 * 1024) % 3));
    expect(big.rows[0].v.slice(0, 6)).toBe('xyzxyz');
    expect(big.rows[0].after).toBe(7);
    await end(c);
  });

  it('serves 50 concurrent clients (session: each on its own server; transaction: sharing the pool), each doing transactional work', async () => {
    const n = 50;
    const clients = await Promise.all(Array.from({ length: n }, () => client()));
    const results = await Promise.all(
      clients.map(async (c, i) => {
        await c.query('begin');
        await c.query('create temp table w(a int) on commit drop');
        await c.query('insert into w select generate_series(1, $1::int)', [i + 1]);
        const s = await c.query('select sum(a)::int as s, pg_backend_pid() as pid from w');
        await c.query('commit');
        return s.rows[0] as { s: number; pid: number };
      }),
    );
    expect(results.map((r) => r.s)).toEqual(Array.from({ length: n }, (_, i) => ((i + 1) * (i + 2)) / 2));
    const servers = new Set(results.map((r) => r.pid)).size;
    if (mode === 'session') expect(servers).toBe(n);
    else expect(servers).toBeLessThanOrEqual(20);
    await end(...clients);
  });
});
