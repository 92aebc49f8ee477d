// pgnear as a real process (dist/main.js): bounded memory under a slow reader, and graceful SIGTERM shutdown.
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { type ProxyProcess, startProxyProcess } from '../support/proxy.js';
import { type Heartbeat, parseErrorFields, RawClient, startHeartbeat, waitFor } from '../support/rawclient.js';

const cluster = useCluster({ replicas: 0 });
let direct: pg.Client;
let hb: Heartbeat | undefined;
const procs: ProxyProcess[] = [];
const clients: pg.Client[] = [];
const raws: RawClient[] = [];

beforeAll(async () => {
  direct = new pg.Client(cluster().primary.url);
  direct.on('error', () => {});
  await direct.connect();
  await direct.query('create table shutdown_t (id int)');
});

afterAll(async () => {
  await hb?.stop();
  for (const r of raws) r.destroy();
  for (const c of clients) await c.end().catch(() => {});
  for (const p of procs) await p.stop('SIGKILL');
  await direct?.end().catch(() => {});
});

async function startProc(extra: Parameters<typeof startProxyProcess>[1] = {}): Promise<ProxyProcess> {
  const p = await startProxyProcess(cluster(), { log: { level: 'info' }, ...extra });
  procs.push(p);
  return p;
}

const MB = 1024 * 1024;
const ROWS = 200_000;
const WIDTH = 1000;

/** Streaming message counter over a raw socket: never holds more than one small message. */
class StreamCounter {
  bytes = 0;
  rows = 0;
  badRows = 0;
  tags: string[] = [];
  errors: string[] = [];
  done = false;
  private hdr = Buffer.alloc(5);
  private hdrHave = 0;
  private skip = 0;
  private small: Buffer[] | null = null;
  private type = 0;

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        if (this.small) this.small.push(chunk.subarray(i, i + n));
        this.skip -= n;
        i += n;
        if (this.skip === 0) this.finish();
        continue;
      }
      const n = Math.min(5 - this.hdrHave, chunk.length - i);
      chunk.copy(this.hdr, this.hdrHave, i, i + n);
      this.hdrHave += n;
      i += n;
      if (this.hdrHave < 5) continue;
      this.hdrHave = 0;
      this.type = this.hdr[0];
      const bodyLen = this.hdr.readUInt32BE(1) - 4;
      if (this.type === 0x44) {
        // DataRow: int16 ncols, int32 len, value
        if (bodyLen !== 2 + 4 + WIDTH) this.badRows++;
        this.rows++;
        this.small = null;
      } else this.small = [];
      this.skip = bodyLen;
      if (bodyLen === 0) this.finish();
    }
  }

  private finish(): void {
    const body = this.small ? Buffer.concat(this.small) : null;
    this.small = null;
    if (this.type === 0x43 && body) this.tags.push(body.toString('utf8', 0, body.length - 1));
    else if (this.type === 0x45 && body) this.errors.push(JSON.stringify(parseErrorFields(body)));
    else if (this.type === 0x5a) this.done = true;
  }
}

describe('slow reader', () => {
  it('a ~200 MB result read slowly keeps pgnear RSS bounded, then arrives complete', async () => {
    const proc = await startProc();
    const su = cluster().superuser;
    const r = await RawClient.connect(proc.port);
    raws.push(r);
    await r.login({ user: su.user, password: su.password });
    await r.query(`select repeat('x', ${WIDTH}) from generate_series(1, 1000)`); // warm up the path
    hb = await startHeartbeat(proc.url());
    await hb.beats();
    const rss0 = proc.rss();
    const sql = `select repeat('x', ${WIDTH}) as v from generate_series(1, ${ROWS})`;
    const expectedBytes = ROWS * (5 + 2 + 4 + WIDTH);

    const counter = new StreamCounter();
    const rest = r.detach();
    if (rest.length) counter.push(rest);
    const sock = r.socket;
    sock.on('data', (b: Buffer) => counter.push(b));
    sock.pause();
    r.write(serialize.query(sql));

    let rssMax = rss0;
    const sample = setInterval(() => {
      rssMax = Math.max(rssMax, proc.rss());
    }, 25);
    try {
      // Back-pressure must reach Postgres: its backend blocks writing to pgnear (wait_event ClientWrite).
      await waitFor(
        async () =>
          (
            await direct.query(
              "select 1 from pg_stat_activity where query = $1 and state = 'active' and wait_event = 'ClientWrite'",
              [sql],
            )
          ).rowCount! > 0,
        15_000,
        'the Postgres backend to block in ClientWrite',
        50,
      );
      // Trickle: a chunk, then a 50 ms pause, for ~2 s.
      const trickleUntil = Date.now() + 2000;
      await new Promise<void>((resolve) => {
        const step = () => {
          if (Date.now() >= trickleUntil) return resolve();
          sock.once('data', () => {
            sock.pause();
            setTimeout(step, 50);
          });
          sock.resume();
        };
        step();
      });
      rssMax = Math.max(rssMax, proc.rss());
      expect(counter.bytes).toBeLessThan(expectedBytes / 2);
      expect(rssMax - rss0, `RSS grew ${((rssMax - rss0) / MB).toFixed(1)} MB`).toBeLessThan(100 * MB);
      // Postgres is still producing: nothing was buffered wholesale.
      expect(
        (await direct.query("select 1 from pg_stat_activity where query = $1 and state = 'active'", [sql])).rowCount,
      ).toBe(1);

      // Now read at full speed.
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`stalled after ${counter.bytes} bytes`)), 40_000);
        const check = () => {
          if (counter.done) {
            clearTimeout(t);
            sock.off('data', check);
            resolve();
          }
        };
        sock.on('data', check);
        sock.once('close', () => reject(new Error(`closed after ${counter.bytes} bytes`)));
        sock.resume();
      });
    } finally {
      clearInterval(sample);
    }
    // Another client of the same pgnear was served throughout.
    await hb.beats();
    expect(hb.errors).toEqual([]);
    await hb.stop();
    hb = undefined;
    expect(counter.errors).toEqual([]);
    expect(counter.rows).toBe(ROWS);
    expect(counter.badRows).toBe(0);
    expect(counter.tags).toEqual([`SELECT ${ROWS}`]);
    expect(rssMax - rss0, `RSS grew ${((rssMax - rss0) / MB).toFixed(1)} MB`).toBeLessThan(100 * MB);
    r.destroy();
  });
});

/** Resolves when the child logs a line matching `re` (already logged lines count). */
function logged(p: ProxyProcess, re: RegExp, timeoutMs = 10_000): Promise<void> {
  if (p.stdout.some((l) => re.test(l))) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no log line ${re}`)), timeoutMs);
    const on = () => {
      if (p.stdout.some((l) => re.test(l))) {
        clearTimeout(t);
        p.child.stdout!.off('data', on);
        resolve();
      }
    };
    // proxy.ts pushes lines from its own 'data' listener, registered first.
    p.child.stdout!.on('data', on);
  });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('pgnear did not exit')), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

/** The next error a pg client reports while idle (FATAL from the server side), or its end. */
function nextError(c: pg.Client, timeoutMs: number): Promise<{ code?: string; message: string } | 'end'> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no error/end from client')), timeoutMs);
    c.once('error', (e: Error & { code?: string }) => {
      clearTimeout(t);
      resolve({ code: e.code, message: e.message });
    });
    c.once('end', () => {
      clearTimeout(t);
      resolve('end');
    });
  });
}

async function tryConnect(port: number): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: cluster().superuser.password });
  return c.connect().then(
    async () => {
      await c.end();
      return 'connected';
    },
    (e: Error & { code?: string }) => e.code ?? e.message,
  );
}

describe('graceful shutdown (SIGTERM)', () => {
  it('refuses new clients, lets an open transaction COMMIT, then sends 57P01 and exits 0', async () => {
    const proc = await startProc({ limits: { shutdown_grace: '10s' } });
    const mk = async () => {
      const c = new pg.Client(proc.url());
      c.on('error', () => {});
      await c.connect();
      clients.push(c);
      return c;
    };
    const inTx = await mk();
    const idle = await mk();
    const busy = await mk();
    await inTx.query('begin');
    await inTx.query('insert into shutdown_t values (1)');
    const idleGone = nextError(idle, 5000);
    const busyQuery = busy.query('select pg_sleep(1) as slept');
    await waitFor(
      async () =>
        (await direct.query("select 1 from pg_stat_activity where query = 'select pg_sleep(1) as slept'")).rowCount,
      5000,
      'the busy query to run',
      20,
    );

    const exit = exited(proc.child, 15_000);
    proc.child.kill('SIGTERM');
    await logged(proc, /shutting down/);

    // New connections are refused: listener closed (refused, or reset if it raced into the accept queue), or 57P03.
    expect(['ECONNREFUSED', 'ECONNRESET', '57P03']).toContain(await tryConnect(proc.port));
    // The idle client is told right away.
    const ie = await idleGone;
    expect(ie === 'end' ? 'end' : ie.code).toBe('57P01');
    // The running query finishes.
    expect((await busyQuery).rows[0].slept).toBe('');
    // The transaction can still finish and commit.
    await inTx.query('insert into shutdown_t values (2)');
    const txGone = nextError(inTx, 5000);
    await inTx.query('commit');
    const te = await txGone;
    expect(te === 'end' ? 'end' : te.code).toBe('57P01');
    expect(await exit).toBe(0);
    expect((await direct.query('select count(*)::int as n from shutdown_t')).rows[0].n).toBe(2);
  });

  it('a transaction still open when shutdown_grace (1 s) ends is cut off with 57P01 and rolled back; exit 0', async () => {
    const proc = await startProc({ limits: { shutdown_grace: '1s' } });
    const c = new pg.Client(proc.url());
    c.on('error', () => {});
    await c.connect();
    clients.push(c);
    const pid = (await c.query('select pg_backend_pid() as pid')).rows[0].pid as number;
    await c.query('begin');
    await c.query('insert into shutdown_t values (100)');
    const gone = nextError(c, 5000);
    const t0 = Date.now();
    const exit = exited(proc.child, 10_000);
    proc.child.kill('SIGTERM');
    const e = await gone;
    expect(e === 'end' ? 'end' : e.code).toBe('57P01');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(await exit).toBe(0);
    await waitFor(
      async () => (await direct.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 0,
      5000,
      'the server backend of the cut-off transaction to exit',
    );
    expect((await direct.query('select count(*)::int as n from shutdown_t where id = 100')).rows[0].n).toBe(0);
  });

  it('a raw client sees exactly one FATAL 57P01 ErrorResponse and a close', async () => {
    const proc = await startProc({ limits: { shutdown_grace: '5s' } });
    const su = cluster().superuser;
    const r = await RawClient.connect(proc.port);
    raws.push(r);
    await r.login({ user: su.user, password: su.password });
    const exit = exited(proc.child, 10_000);
    proc.child.kill('SIGTERM');
    const msgs = await r.drainUntilClose(5000);
    expect(msgs.map((m) => m.type)).toEqual(['E']);
    expect(parseErrorFields(msgs[0].body)).toMatchObject({
      severity: 'FATAL',
      code: '57P01',
      message: 'terminating connection due to administrator command',
    });
    expect(await exit).toBe(0);
    // And nothing listens any more.
    await expect(
      new Promise((resolve, reject) => {
        const s = net.connect({ port: proc.port, host: '127.0.0.1' });
        s.once('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.once('error', reject);
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
