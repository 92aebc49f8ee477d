// Extended-protocol requests routed to a replica, sent raw: reply order while a 25006 retry is possible, and a
// request whose read (on a replica) is followed by a write before its Sync.
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { type BackendMsg, errorFields, firstColumn, RawPgClient } from '../support/drivers.js';
import type { TestProxy } from '../support/proxy.js';
import { createReplicatedDatabase, nodeName, startRoutingProxy, waitForReplicaReads } from '../support/routing.js';

const DB = 'rext';
const cluster = useCluster({ replicas: 1 });
let proxy: TestProxy;
const clients: RawPgClient[] = [];

beforeAll(async () => {
  await createReplicatedDatabase(cluster(), DB, [
    'create table ext_t(id serial primary key, v int)',
    `create function ext_writes(x int) returns int language sql volatile as 'insert into ext_t(v) values (x) returning x'`,
  ]);
  proxy = await startRoutingProxy(cluster(), 'ams');
  await waitForReplicaReads(proxy.url(undefined, undefined, DB));
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await proxy?.stop();
});

async function connect(): Promise<RawPgClient> {
  const { user, password } = cluster().superuser;
  const c = await RawPgClient.connect({ port: proxy.port, user, password, database: DB });
  clients.push(c);
  return c;
}

const types = (msgs: BackendMsg[]) => msgs.map((m) => m.type).join('');
const errors = (msgs: BackendMsg[]) => msgs.filter((m) => m.type === 'E').map((m) => errorFields(m).C);
const ran = (msgs: BackendMsg[]) => firstColumn(msgs).map((p) => nodeName(cluster(), p ?? ''));
const PORT = 'inet_server_port()::text';

describe('replies to a request on a replica', () => {
  it('Describe of a statement prepared earlier: ParameterDescription before RowDescription', async () => {
    const c = await connect();
    c.send(serialize.parse({ name: 'q1', text: 'select $1::int as d, 2 as e', types: [23] }), serialize.sync());
    expect(types(await c.untilReady())).toBe('1Z');
    c.send(serialize.describe({ type: 'S', name: 'q1' }), serialize.sync());
    expect(types(await c.untilReady())).toBe('tTZ');
    // Describe then Flush: nothing more is owed, so the held replies must come without a Sync.
    c.send(serialize.describe({ type: 'S', name: 'q1' }), serialize.flush());
    expect(types([await c.next(), await c.next()])).toBe('tT');
    c.send(serialize.sync());
    expect(types(await c.untilReady())).toBe('Z');
  });

  it('a SELECT of a function that writes, in the extended protocol: retried on the primary, answered once', async () => {
    const c = await connect();
    c.send(
      serialize.parse({ text: `select ext_writes(7) as w, ${PORT} as port` }),
      serialize.bind({}),
      serialize.describe({ type: 'P' }),
      serialize.execute({}),
      serialize.sync(),
    );
    const msgs = await c.untilReady();
    expect(errors(msgs)).toEqual([]);
    expect(types(msgs)).toBe('12TDCZ');
  });
});

describe("pgnear's own statements in the extended protocol (pgjdbc and psycopg 3 send everything that way)", () => {
  const show = (sql: string) => [
    serialize.parse({ text: sql }),
    serialize.bind({}),
    serialize.describe({ type: 'P' }),
    serialize.execute({}),
    serialize.sync(),
  ];

  it('SHOW pgnear.* and EXPLAIN ROUTE are answered by pgnear: RowDescription, row, tag', async () => {
    const c = await connect();
    c.send(...show('SHOW pgnear.route'));
    let msgs = await c.untilReady();
    expect(types(msgs)).toBe('12TDCZ');
    expect(firstColumn(msgs)).toEqual(['auto']);
    c.send(serialize.parse({ text: "SET pgnear.route = 'primary'" }), serialize.bind({}), serialize.execute({}));
    c.send(...show('show pgnear.route'));
    msgs = await c.untilReady();
    expect(errors(msgs)).toEqual([]);
    expect(firstColumn(msgs)).toEqual(['primary']);
    c.send(...show('EXPLAIN ROUTE select 1'));
    msgs = await c.untilReady();
    expect(types(msgs)).toBe('12TDCZ');
    expect(firstColumn(msgs)).toEqual(['primary']);
    // Describe of the statement: no parameters, then the columns.
    c.send(serialize.parse({ text: 'SHOW pgnear.route' }), serialize.describe({ type: 'S' }), serialize.sync());
    expect(types(await c.untilReady())).toBe('1tTZ');
  });

  it('an unknown pgnear.* name is the server’s error, as on Postgres', async () => {
    const c = await connect();
    c.send(...show('SHOW pgnear.no_such_setting'));
    const msgs = await c.untilReady();
    expect(errors(msgs)).toEqual(['42704']);
  });
});

describe('errors about a prepared statement', () => {
  it("name the client's statement, not pgnear's shared one, as Postgres would", async () => {
    const c = await connect();
    c.send(serialize.parse({ name: 'bw', text: 'select $1::int', types: [23] }), serialize.sync());
    await c.untilReady();
    c.send(serialize.bind({ statement: 'bw', values: ['1', '2'] }), serialize.execute({}), serialize.sync());
    const msgs = await c.untilReady();
    const e = msgs.find((m) => m.type === 'E')!;
    expect(errorFields(e).C).toBe('08P01');
    expect(errorFields(e).M).toBe('bind message supplies 2 parameters, but prepared statement "bw" requires 1');
  });
});

describe('a read on a replica, then a write before Sync', () => {
  const read = (id: number) => [
    serialize.parse({ text: `select ${PORT}, ${id}` }),
    serialize.bind({}),
    serialize.describe({ type: 'P' }),
    serialize.execute({}),
  ];
  const write = (v: number) => [
    serialize.parse({ text: `insert into ext_t(v) values (${v}) returning ${PORT}` }),
    serialize.bind({}),
    serialize.describe({ type: 'P' }),
    serialize.execute({}),
  ];

  it('in one socket write [read, Flush, write, Sync]: the read on the replica, the write on the primary', async () => {
    const c = await connect();
    c.send(...read(1), serialize.flush(), ...write(101), serialize.sync());
    const msgs = await c.untilReady();
    expect(errors(msgs)).toEqual([]);
    expect(ran(msgs)).toEqual([cluster().replicas[0]!.name, 'primary']);
  });

  it('the write sent after the read’s results arrived (as psycopg 3 pipelines do)', async () => {
    const c = await connect();
    c.send(...read(2), serialize.flush());
    const first = await c.until('C');
    c.send(...write(102), serialize.flush());
    const second = await c.until('C');
    c.send(serialize.sync());
    const z = await c.untilReady();
    expect(errors([...first, ...second, ...z])).toEqual([]);
    expect(ran([...first, ...second])).toEqual([cluster().replicas[0]!.name, 'primary']);
    expect(types(z)).toBe('Z');
  });

  it('a long request (routed before its end) whose later statement writes: one 25006, replies in step', async () => {
    const c = await connect();
    const n = 1500; // past the 1,000 messages at which pgnear routes a request before its end
    const reads = [serialize.parse({ text: 'select 1' })];
    for (let i = 0; i < n; i++) reads.push(serialize.bind({}), serialize.execute({}));
    const writes = [serialize.parse({ text: 'select ext_writes(9)' }), serialize.bind({}), serialize.execute({})];
    c.send(...reads);
    const first = await c.until('C'); // routed (to a replica) before its end: the rest streams there
    c.send(...writes, serialize.sync());
    const msgs = [...first, ...(await c.untilReady())];
    // Rows reached the client, so the write's 25006 cannot be redone on the primary: it is the client's error.
    expect(msgs.filter((m) => m.type === 'C')).toHaveLength(n);
    expect(errors(msgs)).toEqual(['25006']);
    c.send(serialize.query('select 2'));
    expect(firstColumn(await c.untilReady())).toEqual(['2']);
  });

  it('the read fails: the write is skipped up to the Sync, as Postgres does', async () => {
    const c = await connect();
    c.send(serialize.parse({ text: 'select 1/0' }), serialize.bind({}), serialize.execute({}), serialize.flush());
    expect(errors(await c.until('E'))).toEqual(['22012']);
    c.send(...write(103), serialize.sync());
    const msgs = await c.untilReady();
    expect(types(msgs)).toBe('Z');
    c.send(serialize.query('/* pgnear:primary */ select count(*)::text from ext_t where v = 103'));
    expect(firstColumn(await c.untilReady())).toEqual(['0']);
  });
});
