// Extended query protocol through pgnear, byte for byte: every exchange runs against pgnear and directly against
// the primary, and the exact sequence of backend message types must match both the protocol docs and the primary.
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { useCluster } from '../support/cluster.js';
import {
  type BackendMsg,
  cstrings,
  errorFields,
  firstColumn,
  functionCall,
  paramTypes,
  RawPgClient,
  rowDescription,
  rowValues,
  typesOf,
} from '../support/drivers.js';
import { startProxy, type TestProxy } from '../support/proxy.js';

const cluster = useCluster({ replicas: 1 });
let proxy: TestProxy;
beforeAll(async () => {
  proxy = await startProxy(cluster());
});
afterAll(async () => {
  await proxy?.stop();
});

const S = serialize;
const status = (z: BackendMsg) => String.fromCharCode(z.body[0]);
const codes = (msgs: BackendMsg[]) => msgs.filter((m) => m.type === 'E').map((m) => errorFields(m).C);
const tags = (msgs: BackendMsg[]) => msgs.filter((m) => m.type === 'C').map((m) => cstrings(m)[0]);
const statuses = (msgs: BackendMsg[]) => msgs.filter((m) => m.type === 'Z').map(status);
/** What a scenario observed, in a form comparable between direct and proxied runs. */
const summary = (msgs: BackendMsg[]) => ({
  types: typesOf(msgs),
  rows: firstColumn(msgs),
  tags: tags(msgs),
  errors: codes(msgs),
  ready: statuses(msgs),
});

async function connect(target: 'direct' | 'proxy'): Promise<RawPgClient> {
  const su = cluster().superuser;
  const port = target === 'direct' ? cluster().primary.port : proxy.port;
  return RawPgClient.connect({ port, user: su.user, password: su.password });
}

/** Run the same exchange directly and through pgnear (fresh connections); both clients are always closed. */
async function both<T>(scenario: (c: RawPgClient) => Promise<T>): Promise<{ direct: T; proxied: T }> {
  const results: T[] = [];
  for (const target of ['direct', 'proxy'] as const) {
    const c = await connect(target);
    try {
      results.push(await scenario(c));
      // The session must still be in sync afterwards.
      c.send(S.query('select 42'));
      expect(typesOf(await c.untilReady())).toBe('TDCZ');
      await c.end();
    } finally {
      c.destroy();
    }
  }
  return { direct: results[0], proxied: results[1] };
}

describe('extended protocol through pgnear matches the primary', () => {
  it('reports the same startup ParameterStatus set, then BackendKeyData and ReadyForQuery(I)', async () => {
    const { direct, proxied } = await both(async (c) => ({
      order: typesOf(c.startup).replace(/S+/, 'S'),
      params: Object.fromEntries(c.startup.filter((m) => m.type === 'S').map((m) => cstrings(m))),
      ready: status(c.startup.at(-1)!),
    }));
    expect(proxied.order).toBe('SKZ');
    expect(proxied.ready).toBe('I');
    expect(proxied.params).toEqual(direct.params);
    expect(proxied.params.server_version).toMatch(/^15\./);
  });

  it('suspends a portal at the row limit (PortalSuspended) and resumes it with Flush, then Sync', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(
        S.parse({ text: 'select g from generate_series(1, 10) g' }),
        S.bind({}),
        S.execute({ rows: 3 }),
        S.flush(),
      );
      const a = await c.until('s');
      c.send(S.execute({ rows: 3 }), S.flush());
      const b = await c.until('s');
      c.send(S.execute({ rows: 0 }), S.sync());
      const d = await c.untilReady();
      return { a: summary(a), b: summary(b), d: summary(d) };
    });
    expect(proxied.a.types).toBe('12DDDs');
    expect(proxied.b.types).toBe('DDDs');
    expect(proxied.d.types).toBe('DDDDCZ');
    expect([...proxied.a.rows, ...proxied.b.rows, ...proxied.d.rows]).toEqual(
      Array.from({ length: 10 }, (_, i) => String(i + 1)),
    );
    expect(proxied).toEqual(direct);
  });

  it('keeps a named portal across Syncs inside a transaction and closes it', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(S.query('begin'));
      const begin = await c.untilReady();
      c.send(
        S.parse({ name: 'ps', text: 'select g from generate_series(1, 10) g' }),
        S.bind({ statement: 'ps', portal: 'cur' }),
        S.execute({ portal: 'cur', rows: 4 }),
        S.sync(),
      );
      const first = await c.untilReady();
      c.send(S.execute({ portal: 'cur', rows: 4 }), S.sync());
      const second = await c.untilReady();
      c.send(S.execute({ portal: 'cur', rows: 4 }), S.sync());
      const third = await c.untilReady();
      c.send(S.close({ type: 'P', name: 'cur' }), S.sync(), S.query('commit'));
      const close = await c.untilReady(2);
      return [begin, first, second, third, close].map(summary);
    });
    expect(proxied.map((s) => s.types)).toEqual(['CZ', '12DDDDsZ', 'DDDDsZ', 'DDCZ', '3ZCZ']);
    expect(proxied.map((s) => s.ready.join(''))).toEqual(['T', 'T', 'T', 'T', 'TI']);
    expect(proxied.flatMap((s) => s.rows)).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 1)));
    expect(proxied).toEqual(direct);
  });

  it('answers three Parse/Bind/Execute/Sync batches pipelined in one write, in order', async () => {
    const { direct, proxied } = await both(async (c) => {
      const batch = (v: string, describe: boolean) => [
        S.parse({ text: 'select $1::int * 2 as doubled' }),
        S.bind({ values: [v] }),
        ...(describe ? [S.describe({ type: 'P' })] : []),
        S.execute({}),
        S.sync(),
      ];
      c.send(...batch('1', false), ...batch('2', true), ...batch('3', false));
      return summary(await c.untilReady(3));
    });
    expect(proxied.types).toBe('12DCZ12TDCZ12DCZ');
    expect(proxied.rows).toEqual(['2', '4', '6']);
    expect(proxied.ready).toEqual(['I', 'I', 'I']);
    expect(proxied).toEqual(direct);
  });

  it('describes statements (ParameterDescription + RowDescription / NoData) and portals', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(
        S.parse({ name: 'st', text: 'select $1::int as a, $2::text as b' }),
        S.describe({ type: 'S', name: 'st' }),
        S.parse({ name: 'nodata', text: 'begin' }),
        S.describe({ type: 'S', name: 'nodata' }),
        S.sync(),
      );
      const stmt = await c.untilReady();
      c.send(S.bind({ statement: 'st', values: ['7', 'x'] }), S.describe({ type: 'P' }), S.execute({}), S.sync());
      const portal = await c.untilReady();
      const t = stmt.find((m) => m.type === 't')!;
      const desc = stmt.find((m) => m.type === 'T')!;
      return {
        stmt: typesOf(stmt),
        portal: typesOf(portal),
        params: paramTypes(t),
        columns: rowDescription(desc),
        row: rowValues(portal.find((m) => m.type === 'D')!).map((v) => v?.toString()),
      };
    });
    expect(proxied.stmt).toBe('1tT1tnZ');
    expect(proxied.portal).toBe('2TDCZ');
    expect(proxied.params).toEqual([23, 25]);
    expect(proxied.columns).toEqual([
      { name: 'a', typeOid: 23, format: 0 },
      { name: 'b', typeOid: 25, format: 0 },
    ]);
    expect(proxied.row).toEqual(['7', 'x']);
    expect(proxied).toEqual(direct);
  });

  it('closes a statement (CloseComplete); binding it afterwards fails with 26000', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(S.parse({ name: 'gone', text: 'select 1' }), S.sync());
      const parse = await c.untilReady();
      c.send(S.close({ type: 'S', name: 'gone' }), S.close({ type: 'S', name: 'never-existed' }), S.sync());
      const close = await c.untilReady();
      c.send(S.bind({ statement: 'gone' }), S.execute({}), S.sync());
      const bind = await c.untilReady();
      return [parse, close, bind].map(summary);
    });
    expect(proxied.map((s) => s.types)).toEqual(['1Z', '33Z', 'EZ']);
    expect(proxied[2].errors).toEqual(['26000']);
    expect(proxied).toEqual(direct);
  });

  it('skips to Sync after an error mid-pipeline; the next batch in the same write works', async () => {
    const { direct, proxied } = await both(async (c) => {
      const step = (text: string) => [S.parse({ text }), S.bind({}), S.execute({})];
      c.send(
        ...step('select 1'),
        ...step('select 1/g from generate_series(0, 0) g'),
        ...step('select 3'), // skipped
        S.sync(),
        ...step('select 4'),
        S.sync(),
      );
      return summary(await c.untilReady(2));
    });
    expect(proxied.types).toBe('12DC12EZ12DCZ');
    expect(proxied.errors).toEqual(['22012']);
    expect(proxied.rows).toEqual(['1', '4']);
    expect(proxied.ready).toEqual(['I', 'I']);
    expect(proxied).toEqual(direct);
  });

  it('reports an aborted explicit transaction (25P02) until ROLLBACK', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(
        S.query('begin'),
        S.parse({ text: 'select 1/g from generate_series(0, 0) g' }),
        S.bind({}),
        S.execute({}),
        S.sync(),
      );
      const err = await c.untilReady(2);
      c.send(S.parse({ text: 'select 1' }), S.bind({}), S.execute({}), S.sync());
      const aborted = await c.untilReady();
      c.send(S.query('rollback'));
      const rb = await c.untilReady();
      return [err, aborted, rb].map(summary);
    });
    expect(proxied.map((s) => s.types)).toEqual(['CZ12EZ', 'EZ', 'CZ']);
    expect(proxied.map((s) => s.ready.join(''))).toEqual(['TE', 'E', 'I']);
    expect(proxied[0].errors).toEqual(['22012']);
    expect(proxied[1].errors).toEqual(['25P02']);
    expect(proxied).toEqual(direct);
  });

  it('delivers results on Flush without Sync, and ReadyForQuery only after the Sync', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(S.parse({ text: 'select 5 as five' }), S.bind({}), S.describe({ type: 'P' }), S.execute({}), S.flush());
      const flushed = await c.until('C');
      c.send(S.sync());
      const sync = await c.next();
      return { flushed: summary(flushed), sync: sync.type, status: status(sync) };
    });
    expect(proxied.flushed.types).toBe('12TDC');
    expect(proxied.flushed.rows).toEqual(['5']);
    expect(proxied.sync).toBe('Z');
    expect(proxied).toEqual(direct);
  });

  it('passes binary parameters and binary result columns through byte-exact', async () => {
    const blob = Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 0x80, 0x7f, 10, 13, 0]);
    const int4 = Buffer.alloc(4);
    int4.writeInt32BE(-123456);
    const int8 = Buffer.alloc(8);
    int8.writeBigInt64BE(9007199254740993n);
    const { direct, proxied } = await both(async (c) => {
      c.send(
        S.parse({ text: 'select $1::int4 as i, $2::bytea as b, $3::int8 as big, null::int as n', types: [23, 17, 20] }),
        S.bind({ values: [int4, blob, int8], binary: true }),
        S.describe({ type: 'P' }),
        S.execute({}),
        S.sync(),
      );
      const msgs = await c.untilReady();
      return {
        types: typesOf(msgs),
        formats: rowDescription(msgs.find((m) => m.type === 'T')!).map((col) => col.format),
        row: rowValues(msgs.find((m) => m.type === 'D')!),
      };
    });
    expect(proxied.types).toBe('12TDCZ');
    expect(proxied.formats).toEqual([1, 1, 1, 1]);
    expect(proxied.row).toEqual([int4, blob, int8, null]);
    expect(proxied).toEqual(direct);
  });

  it('answers a FunctionCall with FunctionCallResponse', async () => {
    const setup = new pg.Client(cluster().primary.url);
    await setup.connect();
    const oid = Number((await setup.query("select 'int4pl'::regproc::oid as oid")).rows[0].oid);
    await setup.end();
    const { direct, proxied } = await both(async (c) => {
      c.send(functionCall(oid, ['40', '2']));
      const msgs = await c.untilReady();
      const v = msgs.find((m) => m.type === 'V');
      return { types: typesOf(msgs), result: v ? v.body.toString('utf8', 4, 4 + v.body.readInt32BE(0)) : null };
    });
    expect(proxied).toEqual({ types: 'VZ', result: '42' });
    expect(proxied).toEqual(direct);
  });

  it('relays simple-query COPY in (CopyData/CopyDone and CopyFail) and COPY out', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(S.query('create temp table ct(a int)'));
      const create = await c.untilReady();
      c.send(S.query('copy ct from stdin'));
      const copyIn = await c.until('G');
      c.send(S.copyData(Buffer.from('1\n')), S.copyData(Buffer.from('2\n3\n')), S.copyDone());
      const done = await c.untilReady();
      c.send(S.query('copy ct from stdin'));
      const copyIn2 = await c.until('G');
      c.send(S.copyData(Buffer.from('4\n')), S.copyFail('client gave up'));
      const failed = await c.untilReady();
      c.send(S.query('copy ct to stdout'));
      const out = await c.untilReady();
      const data = out.filter((m) => m.type === 'd').map((m) => m.body.toString());
      return { seq: [create, copyIn, done, copyIn2, failed, out].map(summary), data };
    });
    expect(proxied.seq.map((s) => s.types)).toEqual(['CZ', 'G', 'CZ', 'G', 'EZ', 'HdddcCZ']);
    expect(proxied.seq[2].tags).toEqual(['COPY 3']);
    expect(proxied.seq[4].errors).toEqual(['57014']);
    expect(proxied.data).toEqual(['1\n', '2\n', '3\n']);
    expect(proxied).toEqual(direct);
  });

  it('interleaves ParameterStatus and NoticeResponse where the primary does', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(
        S.parse({ text: "set application_name = 'ext-proto'" }),
        S.bind({}),
        S.execute({}),
        S.sync(),
        S.query("do $$ begin raise notice 'hi %', 7; end $$"),
      );
      const msgs = await c.untilReady(2);
      return {
        types: typesOf(msgs),
        status: cstrings(msgs.find((m) => m.type === 'S')!),
        notice: errorFields(msgs.find((m) => m.type === 'N')!).M,
      };
    });
    expect(proxied).toEqual({ types: '12CSZNCZ', status: ['application_name', 'ext-proto'], notice: 'hi 7' });
    expect(proxied).toEqual(direct);
  });

  it('reassembles a pipeline that arrives one byte per write', async () => {
    const { direct, proxied } = await both(async (c) => {
      const bytes = Buffer.concat([
        S.parse({ name: 'drip', text: 'select $1::text as t' }),
        S.bind({ statement: 'drip', values: ['a'.repeat(300)] }),
        S.execute({}),
        S.bind({ statement: 'drip', values: ['b'] }),
        S.execute({}),
        S.sync(),
      ]);
      for (let i = 0; i < bytes.length; i++) {
        await new Promise<void>((res, rej) => c.socket.write(bytes.subarray(i, i + 1), (e) => (e ? rej(e) : res())));
      }
      return summary(await c.untilReady());
    });
    expect(proxied.types).toBe('12DC2DCZ');
    expect(proxied.rows).toEqual(['a'.repeat(300), 'b']);
    expect(proxied).toEqual(direct);
  });

  it('handles an empty query, a bare Sync, a parse error and a multi-statement query with an error', async () => {
    const { direct, proxied } = await both(async (c) => {
      c.send(S.query(''), S.sync(), S.parse({ text: 'selec 1' }), S.sync(), S.query('select 1; select 1/0; select 3'));
      return summary(await c.untilReady(4));
    });
    expect(proxied.types).toBe('IZZEZTDCEZ');
    expect(proxied.errors).toEqual(['42601', '22012']);
    expect(proxied).toEqual(direct);
  });
});

describe('a client that leaves without Sync', () => {
  /** Wait until the backend is gone or back in pgnear's pool, idle outside a transaction. */
  async function settled(admin: pg.Client, pid: number): Promise<void> {
    await vi.waitFor(
      async () => {
        const r = await admin.query('select state, query from pg_stat_activity where pid = $1', [pid]);
        expect(r.rows.length === 0 || r.rows[0].state === 'idle').toBe(true);
      },
      { timeout: 10_000, interval: 50 },
    );
  }

  for (const kind of ['suspended portal', 'completed execute'] as const) {
    it(`does not get its implicit transaction committed (${kind} + Flush, then Terminate)`, async () => {
      const admin = new pg.Client(cluster().primary.url);
      await admin.connect();
      const table = kind === 'suspended portal' ? 'nosync_a' : 'nosync_b';
      try {
        await admin.query(`create table ${table}(target text, a int)`);
        for (const target of ['direct', 'proxy'] as const) {
          const c = await connect(target);
          try {
            c.send(S.query('select pg_backend_pid()'));
            const pid = Number(firstColumn(await c.untilReady())[0]);
            c.send(
              S.parse({ text: `insert into ${table} values ($1, 1), ($1, 2) returning a` }),
              S.bind({ values: [target] }),
              S.execute({ rows: kind === 'suspended portal' ? 1 : 0 }),
              S.flush(),
            );
            expect(typesOf(await c.until(kind === 'suspended portal' ? 's' : 'C'))).toMatch(/^12D+[sC]$/);
            await c.end(); // Terminate, no Sync: Postgres aborts the implicit transaction
            await settled(admin, pid);
          } finally {
            c.destroy();
          }
        }
        const rows = await admin.query(`select target, count(*)::int as n from ${table} group by 1 order by 1`);
        expect(rows.rows).toEqual([]);
      } finally {
        await admin.query(`drop table if exists ${table}`);
        await admin.end();
      }
    });
  }

  describe('with server_reset_query disabled', () => {
    let noReset: TestProxy | undefined;
    afterAll(async () => {
      await noReset?.stop();
    });

    it('does not hand the unfinished implicit transaction to the next client, who would commit it', async () => {
      noReset = await startProxy(cluster(), { pool: { server_reset_query: '' } });
      const admin = new pg.Client(cluster().primary.url);
      await admin.connect();
      try {
        await admin.query('create table nosync_c(a int)');
        const su = cluster().superuser;
        const first = await RawPgClient.connect({ port: noReset.port, user: su.user, password: su.password });
        try {
          first.send(
            S.parse({ text: 'insert into nosync_c values (1), (2) returning a' }),
            S.bind({}),
            S.execute({ rows: 1 }),
            S.flush(),
          );
          expect(typesOf(await first.until('s'))).toBe('12Ds');
          // Terminate without Sync. pgnear handles Terminate before closing the socket, so once the close is seen
          // here the server is either closed or already back in the pool.
          await first.end();
        } finally {
          first.destroy();
        }
        const second = await RawPgClient.connect({ port: noReset.port, user: su.user, password: su.password });
        try {
          second.send(S.query("select 'second client'"));
          const msgs = await second.untilReady();
          expect(typesOf(msgs)).toBe('TDCZ');
          expect(status(msgs.at(-1)!)).toBe('I');
          await second.end();
        } finally {
          second.destroy();
        }
        const n = await admin.query('select count(*)::int as n from nosync_c');
        expect(n.rows[0].n, 'rows of a transaction its client never committed became visible').toBe(0);
      } finally {
        await admin.query('drop table if exists nosync_c');
        await admin.end();
      }
    });
  });
});

describe('login pipelining (cleartext auth to pgnear)', () => {
  let plain: TestProxy | undefined;
  afterAll(async () => {
    await plain?.stop();
  });

  it('runs a Query sent in the same write as the password, after AuthenticationOk', async () => {
    plain = await startProxy(cluster(), { auth: { type: 'plain' } });
    const net = await import('node:net');
    const sock = net.connect({ host: '127.0.0.1', port: plain.port });
    try {
      await new Promise<void>((res, rej) => sock.once('connect', res).once('error', rej));
      const msgs: BackendMsg[] = [];
      let buf = Buffer.alloc(0);
      let zSeen = 0;
      const done = new Promise<void>((res, rej) => {
        sock.on('data', (chunk: Buffer) => {
          buf = Buffer.concat([buf, chunk]);
          while (buf.length >= 5 && buf.length >= buf.readUInt32BE(1) + 1) {
            const len = buf.readUInt32BE(1);
            const m = { type: String.fromCharCode(buf[0]), body: Buffer.from(buf.subarray(5, len + 1)) };
            msgs.push(m);
            buf = buf.subarray(len + 1);
            if (m.type === 'R' && m.body.readInt32BE(0) === 3) {
              sock.write(Buffer.concat([S.password(cluster().superuser.password), S.query('select 7 as seven')]));
            }
            if (m.type === 'Z' && ++zSeen === 2) res();
          }
        });
        sock.once('close', () => rej(new Error(`closed early after ${typesOf(msgs)}`)));
      });
      sock.write(S.startup({ user: 'postgres', database: 'postgres' }));
      await done;
      expect(typesOf(msgs).replace(/S+/, 'S')).toBe('RRSKZTDCZ');
      expect(msgs[1].body.readInt32BE(0)).toBe(0);
      expect(firstColumn(msgs)).toEqual(['7']);
    } finally {
      sock.destroy();
    }
  });
});
