// Server reads go into a reused buffer: bytes still queued for a slow client must never be overwritten by the
// next read, even when the server is handed to another client meanwhile (transaction pool of one server).
import { createHash } from 'node:crypto';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { startProxy, type TestProxy } from '../support/proxy.js';
import { RawClient } from '../support/rawclient.js';

const cluster = useCluster({ replicas: 0 });
const ROWS = 200_000;
let proxy: TestProxy | undefined;
const raws: RawClient[] = [];

afterAll(async () => {
  for (const r of raws) r.destroy();
  await proxy?.stop();
});

/** DataRows of `select i, md5(i::text)`: how many, and how many do not match md5 of their own i. */
function checkRows(stream: Buffer): { rows: number; bad: number; tag: string; ready: boolean } {
  let at = 0;
  let rows = 0;
  let bad = 0;
  let tag = '';
  let ready = false;
  while (at + 5 <= stream.length) {
    const type = String.fromCharCode(stream[at]!);
    const len = stream.readUInt32BE(at + 1);
    if (len < 4 || !'TDCZ'.includes(type)) return { rows, bad: bad + 1, tag: `corrupt stream at byte ${at}`, ready };
    const end = at + 1 + len;
    if (end > stream.length) break;
    if (type === 'D') {
      const l1 = stream.readInt32BE(at + 7);
      const i = stream.toString('utf8', at + 11, at + 11 + l1);
      const l2 = stream.readInt32BE(at + 11 + l1);
      const md5 = stream.toString('utf8', at + 15 + l1, at + 15 + l1 + l2);
      rows++;
      if (md5 !== createHash('md5').update(i).digest('hex') || Number(i) !== rows) bad++;
    } else if (type === 'C') tag = stream.toString('utf8', at + 5, end - 1);
    else if (type === 'Z') ready = true;
    at = end;
  }
  return { rows, bad, tag, ready };
}

describe.each([
  // Transaction mode: the server goes to B right after A's ReadyForQuery, with A's tail possibly still queued.
  { mode: 'transaction' as const, other: true, tls: false },
  // Session mode: A's server serves A alone (B has its own); its next read must not overwrite A's previous chunk.
  { mode: 'session' as const, other: false, tls: false },
  // A over TLS, with a result larger than the kernel's socket buffers: pgnear must hold the server back for A, and
  // only the TLS socket's drain (not the raw socket's) says when to resume it.
  { mode: 'transaction' as const, other: true, tls: true, rows: 1_000_000 },
])('reused server read buffer, $mode mode, TLS $tls', ({ mode, other, tls, rows = ROWS }) => {
  it('a slow reader gets every row intact', async () => {
    await proxy?.stop();
    proxy = await startProxy(cluster(), {
      pool_mode: mode,
      pool: { pool_size: other ? 1 : 5 },
      log: { level: 'info' },
      ...(tls ? { tls: { self_signed: true } } : {}),
    });
    const su = cluster().superuser;
    const a = tls ? await RawClient.connectTls(proxy.port) : await RawClient.connect(proxy.port);
    raws.push(a);
    await a.login({ user: su.user, password: su.password });
    // B logs in first: a transaction-mode login borrows the only server for a moment.
    const b = new pg.Client({ connectionString: proxy.url() });
    await b.connect();
    const chunks: Buffer[] = [a.detach()];
    a.socket.on('data', (b: Buffer) => chunks.push(b));
    a.socket.pause();
    a.write(serialize.query(`select i, md5(i::text) from generate_series(1, ${rows}) i`));

    // B queues for the only server; it gets it as soon as pgnear has read A's ReadyForQuery, while A's last
    // bytes may still wait in A's socket buffer. B's rows are different bytes of a similar shape.
    await new Promise((r) => setTimeout(r, 200)); // A's query holds the server first
    let stop = false;
    let bQueries = 0;
    const bLoop = (async () => {
      while (!stop) {
        const r = await b.query(
          "select string_agg(md5((random() * 1e9)::int::text), '') as v from generate_series(1, 200)",
        );
        expect(r.rows[0].v).toHaveLength(6400);
        bQueries++;
      }
    })();

    // A reads 64 KB, then pauses 5 ms (≈ 13 MB/s, far slower than pgnear can send), until its ReadyForQuery.
    const deadline = Date.now() + 80_000;
    const READY_IDLE = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
    const ended = () => Buffer.concat(chunks.slice(-2)).subarray(-6).equals(READY_IDLE);
    while (!ended() && Date.now() < deadline) {
      const more = await new Promise<boolean>((resolve) => {
        let got = 0;
        const idle = setTimeout(() => finish(false), 5_000); // a corrupted stream may never show its end
        const onData = (c: Buffer) => {
          got += c.length;
          if (got >= 65_536 || ended()) finish(true);
        };
        const finish = (ok: boolean) => {
          clearTimeout(idle);
          a.socket.off('data', onData);
          a.socket.pause();
          setTimeout(() => resolve(ok), 5);
        };
        a.socket.on('data', onData);
        a.socket.resume();
      });
      if (!more) break;
    }
    stop = true;
    await bLoop;
    await b.end();
    const got = checkRows(Buffer.concat(chunks));
    expect(got).toEqual({ rows, bad: 0, tag: `SELECT ${rows}`, ready: true });
    expect(bQueries).toBeGreaterThan(0);
  }, 90_000);
});
