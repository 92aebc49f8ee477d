// CancelRequest through pgnear: the BackendKeyData pgnear hands out cancels exactly that client's running query.
import pg from 'pg';
import { serialize } from 'pg-protocol';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { startProxy, type TestProxy } from '../support/proxy.js';
import { RawClient, waitFor } from '../support/rawclient.js';

const cluster = useCluster({ replicas: 0 });
let proxy: TestProxy;
let direct: pg.Client;
const open: pg.Client[] = [];

beforeAll(async () => {
  proxy = await startProxy(cluster());
  direct = new pg.Client(cluster().primary.url);
  await direct.connect();
});

afterAll(async () => {
  for (const c of open) await c.end().catch(() => {});
  await direct?.end().catch(() => {});
  await proxy?.stop();
});

/** node-postgres keeps the BackendKeyData it received on the client (not in its typings). */
type KeyedClient = pg.Client & { processID: number | null; secretKey: number | null };

async function connect(): Promise<KeyedClient> {
  const c = new pg.Client(proxy.url()) as KeyedClient;
  c.on('error', () => {});
  await c.connect();
  open.push(c);
  return c;
}

/** Wait until a backend runs exactly this statement (seen from a direct connection to the primary). */
async function waitRunning(sql: string): Promise<void> {
  await waitFor(
    async () =>
      (await direct.query("select 1 from pg_stat_activity where query = $1 and state = 'active'", [sql])).rowCount! > 0,
    10_000,
    `"${sql}" to be running`,
    20,
  );
}

/** Send a CancelRequest to pgnear on a fresh connection, as libpq does; resolves when pgnear closes it. */
async function sendCancel(pid: number, secret: number): Promise<void> {
  const raw = await RawClient.connect(proxy.port);
  raw.write(serialize.cancel(pid, secret));
  // Postgres answers a CancelRequest by closing the connection without a reply.
  const msgs = await raw.drainUntilClose(5000);
  expect(msgs).toEqual([]);
}

type PgErr = Error & { code?: string };
const outcome = <T>(p: Promise<T>) =>
  p.then(
    (v) => ({ ok: true as const, v, at: Date.now() }),
    (e: PgErr) => ({ ok: false as const, e, at: Date.now() }),
  );

describe('cancel', () => {
  it('cancels pg_sleep(30) with 57014 within 1 s; another client running a query is untouched', async () => {
    const a = await connect();
    const b = await connect();
    expect(a.processID).toEqual(expect.any(Number));
    expect(a.secretKey).toEqual(expect.any(Number));
    expect(a.processID).not.toBe(b.processID);
    const qa = outcome(a.query('select pg_sleep(30)'));
    const qb = outcome(b.query("select pg_sleep(1.5), 'b-done' as tag"));
    await waitRunning('select pg_sleep(30)');
    await waitRunning("select pg_sleep(1.5), 'b-done' as tag");
    const t0 = Date.now();
    await sendCancel(a.processID!, a.secretKey!);
    const ra = await qa;
    expect(ra.ok).toBe(false);
    expect(ra.ok ? null : { code: ra.e.code, message: ra.e.message }).toEqual({
      code: '57014',
      message: 'canceling statement due to user request',
    });
    expect(ra.at - t0).toBeLessThan(1000);
    const rb = await qb;
    expect(rb.ok, rb.ok ? '' : rb.e.message).toBe(true);
    expect(rb.ok && rb.v.rows[0].tag).toBe('b-done');
    // The cancelled session stays usable, as with Postgres.
    expect((await a.query('select 42 as x')).rows[0].x).toBe(42);
  });

  it('a cancel with the right pid but a wrong secret (or an unknown pid) cancels nothing', async () => {
    const a = await connect();
    const sql = "select pg_sleep(1.5), 'survived' as tag";
    const t0 = Date.now();
    const qa = outcome(a.query(sql));
    await waitRunning(sql);
    await sendCancel(a.processID!, (a.secretKey! ^ 0x5a5a) | 0);
    await sendCancel(a.processID! ^ 0x10000, a.secretKey!);
    const ra = await qa;
    expect(ra.ok, ra.ok ? '' : `${ra.e.code} ${ra.e.message}`).toBe(true);
    expect(ra.ok && ra.v.rows[0].tag).toBe('survived');
    expect(ra.at - t0).toBeGreaterThanOrEqual(1400);
  });

  it('a cancel for an idle client is harmless; its next query runs', async () => {
    const a = await connect();
    await sendCancel(a.processID!, a.secretKey!);
    expect((await a.query('select 7 as x')).rows[0].x).toBe(7);
  });

  it('a key is dead after its client disconnects: cancelling with it does not hit the server connection reused by another client', async () => {
    const a = await connect();
    const key = { pid: a.processID!, secret: a.secretKey! };
    await a.end();
    open.splice(open.indexOf(a), 1);
    const b = await connect();
    const sql = "select pg_sleep(1), 'b-alive' as tag";
    const qb = outcome(b.query(sql));
    await waitRunning(sql);
    await sendCancel(key.pid, key.secret);
    const rb = await qb;
    expect(rb.ok, rb.ok ? '' : `${rb.e.code} ${rb.e.message}`).toBe(true);
  });

  it('postgres.js query.cancel() cancels with 57014 within 1 s', async () => {
    const sql = postgres(proxy.url(), { max: 1, onnotice: () => {} });
    try {
      await sql`select 1`; // connect first, so the cancel key is known
      const q = sql`select pg_sleep(30)`;
      const r = outcome(q.execute() as unknown as Promise<unknown>);
      await waitRunning('select pg_sleep(30)');
      const t0 = Date.now();
      q.cancel();
      const res = await r;
      expect(res.ok).toBe(false);
      expect(res.ok ? null : (res.e as PgErr).code).toBe('57014');
      expect(res.at - t0).toBeLessThan(1000);
      expect((await sql`select 3 as x`)[0].x).toBe(3);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});
