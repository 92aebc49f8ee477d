// NodePool: LIFO reuse, FIFO waiters, limits, timeouts, aborts, lifetime, probes, resets, prewarm and state transitions.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AcquireCancel, PoolError, PoolTimeoutError } from '../../../src/pool/node-pool.js';
import { ServerError } from '../../../src/pool/server-conn.js';
import { creds, flush, harness, track, type FakeConn } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const noReset = { reusable: true } as const;

describe('acquire and release', () => {
  it('reuses idle servers most recently used first (LIFO)', async () => {
    const { pool, connect } = harness();
    const a = await pool.acquire(creds);
    const b = await pool.acquire(creds);
    expect(a).not.toBe(b);
    await pool.release(a, noReset);
    await pool.release(b, noReset);
    expect(pool.stats()).toMatchObject({ idle: 2, active: 0, total: 2 });
    expect(await pool.acquire(creds)).toBe(b);
    expect(await pool.acquire(creds)).toBe(a);
    expect(connect).toHaveBeenCalledTimes(2);
    expect(pool.stateOf(a)).toBe('active');
  });

  it('serves queued acquirers oldest first, handing released servers over directly', async () => {
    const { pool } = harness({ poolSize: 1 });
    const held = await pool.acquire(creds);
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) =>
      pool.acquire(creds).then((c) => {
        order.push(n);
        return c;
      }),
    );
    await flush();
    expect(pool.stats()).toMatchObject({ waiting: 3, total: 1 });
    await pool.release(held, noReset);
    const first = await waits[0];
    expect(first).toBe(held);
    await pool.release(first, noReset);
    await pool.release(await waits[1], noReset);
    await waits[2];
    expect(order).toEqual([1, 2, 3]);
    expect(pool.stats()).toMatchObject({ waiting: 0, active: 1, idle: 0, total: 1 });
  });

  it('never opens more than poolSize servers; the rest wait', async () => {
    const { pool, connect } = harness({ poolSize: 2 }, { auto: false });
    const r = [pool.acquire(creds), pool.acquire(creds), pool.acquire(creds)].map(track);
    await flush();
    expect(connect).toHaveBeenCalledTimes(2);
    expect(pool.stats()).toMatchObject({ connecting: 2, total: 2, waiting: 3 });
    expect(r.every((x) => !x.done)).toBe(true);
  });

  it('release with txStatus T (or E) closes the server and the slot goes to a waiter via a new login', async () => {
    const { pool, events, connect } = harness({ poolSize: 1 });
    const conn = (await pool.acquire(creds)) as FakeConn;
    const next = track(pool.acquire(creds));
    conn.txStatus = 'T';
    await pool.release(conn, noReset);
    await flush();
    expect(conn.closed).toBe(true);
    expect(events).toContainEqual({ event: 'server_close', id: conn.id, reason: 'server in transaction state T' });
    expect(next.value).toBeDefined();
    expect(next.value).not.toBe(conn);
    expect(connect).toHaveBeenCalledTimes(2);
  });

  it('release({ reusable: false }) closes; releasing an already closed server is a no-op', async () => {
    const { pool, events, errors } = harness();
    const conn = await pool.acquire(creds);
    await pool.release(conn, { reusable: false });
    expect(conn.closed).toBe(true);
    await pool.release(conn, noReset);
    expect(errors).toEqual([]);
    expect(events.filter((e) => e.event === 'server_close')).toHaveLength(1);
    expect(pool.stats().total).toBe(0);
  });

  it('emits exactly one server_open and one server_close per server', async () => {
    const { pool, events } = harness();
    const a = (await pool.acquire(creds)) as FakeConn;
    await pool.release(a, noReset);
    a.socket.destroy(); // dies while idle
    a.close('again');
    expect(events.map((e) => e.event)).toEqual(['server_open', 'server_close']);
    expect(pool.stats()).toMatchObject({ idle: 0, total: 0 });
  });
});

describe('reset query', () => {
  it('runs on release when asked (and for the old boolean form), not otherwise', async () => {
    const { pool } = harness({ resetQuery: 'DISCARD ALL' });
    const conn = (await pool.acquire(creds)) as FakeConn;
    await pool.release(conn, { reusable: true });
    expect(conn.queries).toEqual([]);
    await pool.acquire(creds);
    await pool.release(conn, { reusable: true, reset: true });
    expect(conn.queries).toEqual(['DISCARD ALL']);
    await pool.acquire(creds);
    await pool.release(conn, true);
    expect(conn.queries).toEqual(['DISCARD ALL', 'DISCARD ALL']);
    expect(pool.stateOf(conn)).toBe('idle');
  });

  it('a server closed while its reset runs is not put back (no error, no resurrection)', async () => {
    const { pool, errors } = harness({ resetQuery: 'DISCARD ALL' });
    const conn = (await pool.acquire(creds)) as FakeConn;
    let finish!: () => void;
    conn.onQuery = () => new Promise((r) => (finish = () => r([])));
    const done = pool.release(conn, { reusable: true, reset: true });
    expect(pool.stats().tested).toBe(1);
    pool.closeAll('shutdown');
    finish();
    await done;
    expect(errors).toEqual([]);
    expect(conn.closed).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 0, tested: 0, total: 0 });
  });

  it('a failing reset closes the server', async () => {
    const { pool, events } = harness({ resetQuery: 'DISCARD ALL' });
    const conn = (await pool.acquire(creds)) as FakeConn;
    conn.onQuery = () => Promise.reject(new ServerError('nope', 'XX000'));
    await pool.release(conn, { reusable: true, reset: true });
    expect(conn.closed).toBe(true);
    expect(events.at(-1)).toEqual({ event: 'server_close', id: conn.id, reason: 'reset query failed' });
    expect(pool.stats().total).toBe(0);
  });
});

describe('query_wait_timeout', () => {
  it('rejects a waiter with PoolTimeoutError (query_wait_timeout, 08P01) and forgets it', async () => {
    const { pool } = harness({ poolSize: 1, queryWaitTimeoutMs: 1_000 });
    const held = await pool.acquire(creds);
    const w = track(pool.acquire(creds));
    await vi.advanceTimersByTimeAsync(999);
    expect(w.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(w.error).toBeInstanceOf(PoolTimeoutError);
    expect(w.error).toBeInstanceOf(PoolError);
    expect(w.error!.message).toBe('query_wait_timeout');
    expect(w.error!.sqlstate).toBe('08P01');
    expect(w.error!.code).toBe('PGNEAR_E_POOL_TIMEOUT');
    expect(pool.stats().waiting).toBe(0);
    await pool.release(held, noReset);
    expect(pool.stats()).toMatchObject({ idle: 1, active: 0 });
  });

  it('a served waiter leaves no timer behind', async () => {
    const { pool } = harness({ queryWaitTimeoutMs: 1_000 });
    await pool.acquire(creds);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports the age of the oldest waiter', async () => {
    const { pool } = harness({ poolSize: 1 });
    await pool.acquire(creds);
    void pool.acquire(creds);
    await vi.advanceTimersByTimeAsync(300);
    void pool.acquire(creds);
    await vi.advanceTimersByTimeAsync(200);
    expect(pool.stats()).toMatchObject({ waiting: 2, maxWaitMs: 500 });
  });

  it('maxWaiters bounds the queue: beyond, 53300 at once', async () => {
    const { pool } = harness({ poolSize: 1, maxWaiters: 1 });
    await pool.acquire(creds);
    void pool.acquire(creds);
    const over = track(pool.acquire(creds));
    await flush();
    expect(over.error?.code).toBe('PGNEAR_E_POOL_FULL');
    expect(over.error?.sqlstate).toBe('53300');
  });
});

describe('abort', () => {
  it('an aborted waiter leaves the queue; the next waiter gets the server', async () => {
    const { pool } = harness({ poolSize: 1 });
    const held = await pool.acquire(creds);
    const ac = new AcquireCancel();
    const gone = track(pool.acquire(creds, ac));
    const next = track(pool.acquire(creds));
    await flush();
    ac.cancel();
    await flush();
    expect(gone.error?.code).toBe('PGNEAR_E_POOL_ABORTED');
    expect(pool.stats().waiting).toBe(1);
    await pool.release(held, noReset);
    await flush();
    expect(next.value).toBe(held);
  });

  it('a login that completes after the abort leaves its server idle', async () => {
    const { pool, succeed } = harness({}, { auto: false });
    const ac = new AcquireCancel();
    const w = track(pool.acquire(creds, ac));
    await flush();
    ac.cancel();
    await flush();
    expect(w.error?.code).toBe('PGNEAR_E_POOL_ABORTED');
    const conn = succeed();
    await flush();
    expect(pool.stateOf(conn)).toBe('idle');
    expect(pool.stats()).toMatchObject({ idle: 1, waiting: 0, connecting: 0 });
  });

  it('an already cancelled acquire fails at once', async () => {
    const { pool, connect } = harness();
    const ac = new AcquireCancel();
    ac.cancel();
    const r = track(pool.acquire(creds, ac));
    await flush();
    expect(r.error?.code).toBe('PGNEAR_E_POOL_ABORTED');
    expect(connect).not.toHaveBeenCalled();
  });
});

describe('login failures', () => {
  it('go to exactly the acquirer that triggered the login; the next waiter tries its own and the queue drains', async () => {
    const { pool, failLogin, succeed, connect } = harness({ poolSize: 1 }, { auto: false });
    const [w1, w2, w3] = [1, 2, 3].map(() => track(pool.acquire(creds)));
    await flush();
    expect(connect).toHaveBeenCalledTimes(1);
    const err = new ServerError('password authentication failed', '28P01');
    failLogin(err);
    await flush();
    expect(w1.error).toBe(err);
    expect(w2.done || w3.done).toBe(false);
    expect(connect).toHaveBeenCalledTimes(2); // w2's own attempt, not one per waiter
    const conn = succeed();
    await flush();
    expect(w2.value).toBe(conn);
    await pool.release(conn, noReset);
    await flush();
    expect(w3.value).toBe(conn);
    expect(connect).toHaveBeenCalledTimes(2);
    expect(pool.stats()).toMatchObject({ waiting: 0, total: 1 });
  });
});

describe('server_lifetime', () => {
  it('rotates an old server at release, never while handed out', async () => {
    const { pool, events, connect } = harness({ lifetimeMs: 10_000 });
    const conn = (await pool.acquire(creds)) as FakeConn;
    await pool.release(conn, noReset);
    expect(await pool.acquire(creds)).toBe(conn);
    await vi.advanceTimersByTimeAsync(10_001);
    expect(conn.closed).toBe(false); // in use: not touched
    await pool.release(conn, noReset);
    expect(conn.closed).toBe(true);
    expect(events.at(-1)).toEqual({ event: 'server_close', id: conn.id, reason: 'server_lifetime' });
    const fresh = await pool.acquire(creds);
    expect(fresh).not.toBe(conn);
    expect(connect).toHaveBeenCalledTimes(2);
  });

  it('closes old idle servers in maintain() and idle-timed-out ones too', async () => {
    const { pool, events } = harness({ lifetimeMs: 60_000, idleTimeoutMs: 5_000 });
    const a = await pool.acquire(creds);
    const b = await pool.acquire(creds);
    await pool.release(a, noReset);
    await vi.advanceTimersByTimeAsync(4_000);
    await pool.release(b, noReset);
    await vi.advanceTimersByTimeAsync(2_000);
    pool.maintain();
    expect(a.closed).toBe(true);
    expect(b.closed).toBe(false);
    expect(events.at(-1)?.reason).toBe('server_idle_timeout');
    await vi.advanceTimersByTimeAsync(55_000);
    pool.maintain();
    expect(events.at(-1)).toEqual({ event: 'server_close', id: b.id, reason: 'server_lifetime' });
  });
});

describe('server_check_delay', () => {
  it('probes servers idle longer than the delay; a failed probe closes it and the next server is used', async () => {
    const { pool, events } = harness({ checkDelayMs: 1_000, checkQuery: ';' });
    const a = (await pool.acquire(creds)) as FakeConn;
    const b = (await pool.acquire(creds)) as FakeConn;
    await pool.release(a, noReset);
    await pool.release(b, noReset);
    b.onQuery = () => Promise.reject(new ServerError('terminating connection', '57P01'));
    await vi.advanceTimersByTimeAsync(1_500);
    const got = await pool.acquire(creds);
    expect(got).toBe(a);
    expect(b.queries).toEqual([';']);
    expect(a.queries).toEqual([';']);
    expect(b.closed).toBe(true);
    expect(events).toContainEqual({ event: 'server_close', id: b.id, reason: 'check_failed' });
    expect(pool.stats()).toMatchObject({ active: 1, idle: 0, total: 1 });
  });

  it('the acquirer whose probe failed stays first in line', async () => {
    const { pool, succeed } = harness({ poolSize: 1, checkDelayMs: 1_000, checkQuery: ';' }, { auto: false });
    const first = track(pool.acquire(creds));
    await flush();
    const b = succeed();
    await flush();
    await pool.release(first.value!, noReset);
    b.onQuery = () => Promise.reject(new ServerError('gone', '08006'));
    await vi.advanceTimersByTimeAsync(2_000);
    const w1 = track(pool.acquire(creds));
    const w2 = track(pool.acquire(creds));
    await flush();
    expect(b.closed).toBe(true);
    const fresh = succeed();
    await flush();
    expect(w1.value).toBe(fresh);
    expect(w2.done).toBe(false);
  });

  it('does not probe a recently used server', async () => {
    const { pool } = harness({ checkDelayMs: 1_000, checkQuery: ';' });
    const a = (await pool.acquire(creds)) as FakeConn;
    await pool.release(a, noReset);
    await vi.advanceTimersByTimeAsync(500);
    expect(await pool.acquire(creds)).toBe(a);
    expect(a.queries).toEqual([]);
  });

  it('when every idle server fails its probe, the waiter gets a new login', async () => {
    const { pool, connect } = harness({ checkDelayMs: 0, checkQuery: ';' });
    const a = (await pool.acquire(creds)) as FakeConn;
    await pool.release(a, noReset);
    a.onQuery = () => Promise.reject(new ServerError('gone', '08006'));
    const got = await pool.acquire(creds);
    expect(got).not.toBe(a);
    expect(connect).toHaveBeenCalledTimes(2);
  });
});

describe('idle servers', () => {
  it('a server that sends data while idle is closed; the pool stops reading it once handed out', async () => {
    const { pool, events } = harness();
    const a = (await pool.acquire(creds)) as FakeConn;
    const b = (await pool.acquire(creds)) as FakeConn;
    await pool.release(a, noReset);
    await pool.release(b, noReset);
    expect(a.reader).not.toBeNull();
    a.socket.emit('data', Buffer.from('N'));
    expect(a.closed).toBe(true);
    expect(events.at(-1)).toEqual({ event: 'server_close', id: a.id, reason: 'unexpected data from idle server' });
    expect(await pool.acquire(creds)).toBe(b);
    expect(b.reader).toBeNull();
    b.socket.emit('data', Buffer.from('x')); // the session's business now
    expect(b.closed).toBe(false);
  });
});

describe('minPoolSize', () => {
  it('prewarms only after a successful login, one background login at a time, and re-tops after closes', async () => {
    const { pool, pending, succeed, connect } = harness({ minPoolSize: 3 }, { auto: false });
    pool.maintain();
    expect(connect).not.toHaveBeenCalled(); // no proven credentials yet
    const w = track(pool.acquire(creds));
    await flush();
    succeed();
    await flush();
    expect(w.value).toBeDefined();
    expect(pending).toHaveLength(1); // one background login
    pool.maintain();
    expect(pending).toHaveLength(1);
    succeed();
    await flush();
    expect(pending).toHaveLength(1);
    const third = succeed();
    await flush();
    expect(pending).toHaveLength(0);
    expect(pool.stats()).toMatchObject({ idle: 2, active: 1, total: 3 });
    (third as FakeConn).socket.destroy(); // an idle server dies
    expect(pending).toHaveLength(1);
    expect(pending[0].creds).toBe(creds);
  });

  it('a failed background login is reported and retried no sooner than a second later', async () => {
    const { pool, pending, succeed, failLogin, errors } = harness({ minPoolSize: 2 }, { auto: false });
    void pool.acquire(creds);
    await flush();
    succeed();
    await flush();
    failLogin(new ServerError('down', '08006'));
    await flush();
    expect(errors.some((e) => e.includes('min_pool_size login failed'))).toBe(true);
    pool.maintain();
    expect(pending).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1_001);
    pool.maintain();
    expect(pending).toHaveLength(1);
  });
});

describe('closeAll', () => {
  it('rejects every waiter with 57P01, closes servers, and refuses later acquires', async () => {
    const { pool, succeed } = harness({ poolSize: 1 }, { auto: false });
    const w1 = track(pool.acquire(creds));
    const w2 = track(pool.acquire(creds));
    await flush();
    pool.closeAll('shutdown');
    await flush();
    for (const w of [w1, w2]) {
      expect(w.error?.code).toBe('PGNEAR_E_POOL_CLOSED');
      expect(w.error?.sqlstate).toBe('57P01');
      expect(w.error?.message).toBe('terminating connection due to administrator command');
    }
    const late = succeed(); // the login in flight completes after shutdown
    await flush();
    expect(late.closed).toBe(true);
    const after = track(pool.acquire(creds));
    await flush();
    expect(after.error?.sqlstate).toBe('57P01');
  });
});

describe('state transitions', () => {
  it('a double release is reported and closes the server instead of crashing', async () => {
    const { pool, errors } = harness();
    const conn = await pool.acquire(creds);
    await pool.release(conn, noReset);
    await expect(pool.release(conn, noReset)).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/illegal server state transition idle -> idle/);
    expect(conn.closed).toBe(true);
    expect(pool.stats()).toMatchObject({ idle: 0, total: 0 });
  });

  it('an illegal transition closes the server and logs through onError', async () => {
    const { pool, errors, events } = harness();
    const conn = await pool.acquire(creds);
    await pool.release(conn, noReset);
    const ok = (pool as unknown as { transition(c: unknown, to: string, r: string): boolean }).transition(
      conn,
      'resetting',
      'test',
    );
    expect(ok).toBe(false);
    expect(errors[0]).toMatch(/idle -> resetting/);
    expect(conn.closed).toBe(true);
    expect(pool.stateOf(conn)).toBeUndefined();
    expect(events.filter((e) => e.event === 'server_close')).toHaveLength(1);
  });

  it('releasing a server the pool never handed out closes it', async () => {
    const { pool, errors } = harness();
    const { fakeConn } = await import('./helpers.js');
    const stranger = fakeConn();
    await pool.release(stranger, noReset);
    expect(errors[0]).toMatch(/new -> idle/);
    expect(stranger.closed).toBe(true);
  });
});
