// Token consistency across pgnear instances (issue 4): a client writes through pgnear A, reads SHOW
// pgnear.last_write_lsn, and hands that LSN to a client of pgnear B, which sets it (SET pgnear.min_lsn, or
// options=-c pgnear.min_lsn=… in its connection string); B's reads then observe the write although B never saw it.
// Both replicas apply WAL 300 ms late, so without the token B's reads are stale (the control proves it).
// A runs in region ams (session scope, the default), B in region syd with routing.consistency: token.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import type { TestProxy } from '../support/proxy.js';
import {
  createReplicatedDatabase,
  laggingReplicas,
  NodeTally,
  pgClient,
  problems,
  showPgnear,
  startRoutingProxy,
  waitForReplicaReads,
} from '../support/routing.js';

const DB = 'rtoken';
const DELAY_MS = 300;
const cluster = useCluster(laggingReplicas(DELAY_MS));

let A: TestProxy;
let B: TestProxy;
const clients = new Set<pg.Client>();
async function connect(url: string): Promise<pg.Client> {
  const c = await pgClient(url);
  clients.add(c);
  return c;
}
async function close(c: pg.Client): Promise<void> {
  clients.delete(c);
  await c.end().catch(() => {});
}

beforeAll(async () => {
  await createReplicatedDatabase(cluster(), DB, [
    'create table counters(id int primary key, v bigint not null)',
    'insert into counters select g, 0 from generate_series(1, 10) g',
  ]);
  A = await startRoutingProxy(cluster(), 'ams');
  B = await startRoutingProxy(cluster(), 'syd', { consistency: 'token' });
  await waitForReplicaReads(A.url(undefined, undefined, DB));
  await waitForReplicaReads(B.url(undefined, undefined, DB));
});

afterAll(async () => {
  await Promise.allSettled([...clients].map((c) => c.end()));
  await Promise.allSettled([A?.stop(), B?.stop()]);
});

const LSN_TEXT = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/;
const why = (line: string) =>
  `${line}\npgnear A warnings/errors:\n${problems(A)}\npgnear B warnings/errors:\n${problems(B)}`;

/** UPDATE through `w` (so on the primary); returns the value written and SHOW pgnear.last_write_lsn after it. */
async function write(w: pg.Client, id: number): Promise<{ v: number; lsn: string }> {
  const r = await w.query('update counters set v = v + 1 where id = $1 returning v', [id]);
  const lsn = await showPgnear(w, 'last_write_lsn');
  if (!LSN_TEXT.test(lsn)) throw new Error(`SHOW pgnear.last_write_lsn after a write gave "${lsn}"`);
  return { v: Number(r.rows[0].v), lsn };
}

async function read(c: pg.Client, id: number, i: number): Promise<{ v: number; port: number }> {
  const r =
    i % 2 === 0
      ? await c.query('select v, inet_server_port() as port from counters where id = $1', [id])
      : await c.query(`select v, inet_server_port() as port from counters where id = ${id}`);
  return { v: Number(r.rows[0].v), port: r.rows[0].port };
}

describe('token carried from pgnear A to pgnear B', () => {
  it('SHOW pgnear.last_write_lsn: empty before any write, then right after each write an LSN at or past it', async () => {
    const a = await connect(A.url(undefined, undefined, DB));
    expect(await showPgnear(a, 'last_write_lsn')).toBe('');
    const num = (s: string) => {
      const [hi, lo] = s.split('/');
      return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
    };
    // Every UPDATE writes WAL, so the token must move forward with every write, asked for right after it.
    const seen: string[] = [];
    let notAdvanced = 0;
    for (let i = 0; i < 40; i++) {
      const w = await write(a, 1);
      if (seen.length && num(w.lsn) <= num(seen.at(-1)!)) notAdvanced++;
      seen.push(w.lsn);
    }
    const line = `[routing-token] last_write_lsn after 40 consecutive writes: ${notAdvanced} did not advance (${seen.slice(0, 8).join(' ')} …)`;
    console.log(line);
    expect(notAdvanced, why(line)).toBe(0);
    // The LSN is the primary's: at most its current position.
    const cur = await a.query('/* pgnear:primary */ select pg_current_wal_lsn()::text as l');
    expect(num(seen.at(-1)!)).toBeLessThanOrEqual(num(cur.rows[0].l));
    await close(a);
  });

  it('the token handed over at once is never older than the write (replicas caught up before each write)', async () => {
    // With the replicas idle and caught up, a token that lags by one write points at WAL the replicas already
    // replayed, so B would read the old value from its replica: this catches a token taken before the write's LSN
    // was learnt.
    const a = await connect(A.url(undefined, undefined, DB));
    const b = await connect(B.url(undefined, undefined, DB));
    const reads = new NodeTally(cluster());
    const stale: string[] = [];
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, DELAY_MS + 150));
      const w = await write(a, 6);
      await b.query(`SET pgnear.min_lsn = '${w.lsn}'`);
      const r = await read(b, 6, i);
      const node = reads.add(r.port);
      if (r.v < w.v) stale.push(`#${i}: wrote ${w.v} (token ${w.lsn}), read ${r.v} on ${node}`);
    }
    const line = `[routing-token] A→B after idle pauses: 20 write→read, stale ${stale.length}, B's reads ${reads}${stale.length ? `; e.g. ${stale.slice(0, 5).join('; ')}` : ''}`;
    console.log(line);
    expect(stale, why(line)).toEqual([]);
    await close(a);
    await close(b);
  });

  it('100 × write through A, SET pgnear.min_lsn on B, read through B: 0 stale', async () => {
    const a = await connect(A.url(undefined, undefined, DB));
    const b = await connect(B.url(undefined, undefined, DB));
    expect(await showPgnear(b, 'consistency')).toBe('token');
    const reads = new NodeTally(cluster());
    const stale: string[] = [];
    for (let i = 0; i < 100; i++) {
      const w = await write(a, 2);
      await b.query(`SET pgnear.min_lsn = '${w.lsn}'`);
      if (i === 0) expect(await showPgnear(b, 'min_lsn')).toBe(w.lsn);
      const r = await read(b, 2, i);
      const node = reads.add(r.port);
      if (r.v < w.v) stale.push(`#${i}: wrote ${w.v} (lsn ${w.lsn}), read ${r.v} on ${node}`);
    }
    const line = `[routing-token] A→B with SET pgnear.min_lsn: 100 write→read, stale ${stale.length}, B's reads ${reads}${stale.length ? `; e.g. ${stale.slice(0, 5).join('; ')}` : ''}`;
    console.log(line);
    expect(stale, why(line)).toEqual([]);
    await close(a);
    await close(b);
  });

  it('control: without the token, B reads stale data (B never saw A write)', async () => {
    const a = await connect(A.url(undefined, undefined, DB));
    const b = await connect(B.url(undefined, undefined, DB));
    const reads = new NodeTally(cluster());
    let stale = 0;
    for (let i = 0; i < 30; i++) {
      const w = await write(a, 3);
      const r = await read(b, 3, i);
      reads.add(r.port);
      if (r.v < w.v) stale++;
    }
    const line = `[routing-token] control A→B without a token: 30 write→read, stale ${stale}, B's reads ${reads}`;
    console.log(line);
    expect(stale, why(line)).toBeGreaterThan(0);
    // B is in syd: its replica is preferred.
    expect(reads.on(cluster().replicas[1]!), why(line)).toBeGreaterThan(15);
    await close(a);
    await close(b);
  });

  it('options=-c pgnear.min_lsn=… in the connection string: 30 new connections to B see A’s write', async () => {
    const a = await connect(A.url(undefined, undefined, DB));
    const reads = new NodeTally(cluster());
    const stale: string[] = [];
    for (let i = 0; i < 30; i++) {
      const w = await write(a, 4);
      const b = await connect(
        B.url(undefined, undefined, DB, `options=${encodeURIComponent(`-c pgnear.min_lsn=${w.lsn}`)}`),
      );
      try {
        expect(await showPgnear(b, 'min_lsn')).toBe(w.lsn);
        const r = await read(b, 4, i);
        const node = reads.add(r.port);
        if (r.v < w.v) stale.push(`#${i}: wrote ${w.v} (lsn ${w.lsn}), read ${r.v} on ${node}`);
      } finally {
        await close(b);
      }
    }
    const line = `[routing-token] A→B with options=-c pgnear.min_lsn: 30 write→read, stale ${stale.length}, B's reads ${reads}${stale.length ? `; e.g. ${stale.slice(0, 5).join('; ')}` : ''}`;
    console.log(line);
    expect(stale, why(line)).toEqual([]);
    await close(a);
  });

  it('other server settings in options still reach the server next to pgnear.min_lsn', async () => {
    const a = await connect(A.url(undefined, undefined, DB));
    const w = await write(a, 5);
    const opts = `-c pgnear.min_lsn=${w.lsn} -c statement_timeout=4321`;
    const b = await connect(B.url(undefined, undefined, DB, `options=${encodeURIComponent(opts)}`));
    expect(await showPgnear(b, 'min_lsn')).toBe(w.lsn);
    const r = await b.query("select current_setting('statement_timeout') as st, v from counters where id = 5");
    expect(r.rows[0].st).toBe('4321ms');
    expect(Number(r.rows[0].v)).toBeGreaterThanOrEqual(w.v);
    await close(a);
    await close(b);
  });

  it('SET pgnear.min_lsn rejects a malformed LSN (22023) and RESET clears it', async () => {
    const b = await connect(B.url(undefined, undefined, DB));
    await expect(b.query("SET pgnear.min_lsn = 'not-an-lsn'")).rejects.toMatchObject({ code: '22023' });
    await b.query("SET pgnear.min_lsn = '1/3000148'");
    expect(await showPgnear(b, 'min_lsn')).toBe('1/3000148');
    await b.query('RESET pgnear.min_lsn');
    expect(await showPgnear(b, 'min_lsn')).toBe('');
    // the session still works
    expect((await b.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await close(b);
  });
});
