// PoolSet: pool keys, max_db_connections shared across pools (with eviction), janitor, stats and closeAll.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PoolSet, type PoolSettings } from '../../../src/pool/pool-set.js';
import type { ServerConn } from '../../../src/pool/server-conn.js';
import { creds, fakeConn, flush, target, track, type FakeConn } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function poolSet(settings: Partial<PoolSettings> = {}) {
  const events: { event: string; id: number; reason: string }[] = [];
  const logins: { user: string; database: string }[] = [];
  const set = new PoolSet({
    checkQuery: '',
    resetQuery: '',
    queryWaitTimeoutMs: 0,
    connect: async (_t, startup) => {
      const p = new Map(startup);
      logins.push({ user: p.get('user')!, database: p.get('database')! });
      return fakeConn();
    },
    onEvent: (event, conn, reason) => events.push({ event, id: conn.id, reason }),
    ...settings,
  });
  const key = (user: string, database = 'db', extra: [string, string][] = []) => ({
    user,
    database,
    startup: [['user', user], ['database', database], ...extra] as [string, string][],
  });
  return { set, events, logins, key };
}

describe('PoolSet', () => {
  it('keys pools by node, user, database and startup parameters (in any order)', () => {
    const { set, key } = poolSet();
    const a = set.get(
      target,
      key('alice', 'db', [
        ['application_name', 'x'],
        ['TimeZone', 'UTC'],
      ]),
    );
    const b = set.get(target, {
      user: 'alice',
      database: 'db',
      startup: [
        ['TimeZone', 'UTC'],
        ['application_name', 'x'],
        ['database', 'db'],
        ['user', 'alice'],
      ],
    });
    expect(b).toBe(a);
    expect(set.get(target, key('bob'))).not.toBe(a);
    expect(
      set.get(
        target,
        key('alice', 'other', [
          ['application_name', 'x'],
          ['TimeZone', 'UTC'],
        ]),
      ),
    ).not.toBe(a);
    expect(
      set.get(
        { ...target, port: 5433 },
        key('alice', 'db', [
          ['application_name', 'x'],
          ['TimeZone', 'UTC'],
        ]),
      ),
    ).not.toBe(a);
    set.closeAll('test');
  });

  it('maxDbConnections caps servers across pools of one database and evicts idle servers for waiters', async () => {
    const { set, key, events, logins } = poolSet({ maxDbConnections: 2 });
    const alice = set.get(target, key('alice'));
    const bob = set.get(target, key('bob'));
    const carol = set.get(target, key('carol', 'otherdb'));
    const a1 = await alice.acquire(creds);
    const a2 = await alice.acquire(creds);
    const b = track(bob.acquire(creds));
    await flush();
    expect(b.done).toBe(false);
    expect(logins.filter((l) => l.user === 'bob')).toHaveLength(0);
    // Another database is not affected.
    await expect(carol.acquire(creds)).resolves.toBeDefined();
    await alice.release(a1, { reusable: true }); // idle in alice's pool: evicted for bob
    await flush();
    expect(a1.closed).toBe(true);
    expect(events).toContainEqual({ event: 'server_close', id: a1.id, reason: 'evicted (max_db_connections)' });
    expect(b.value).toBeDefined();
    expect(logins.filter((l) => l.user === 'bob')).toHaveLength(1);
    const open = (p: typeof alice) => p.stats().total;
    expect(open(alice) + open(bob)).toBe(2);
    // A server closing frees a slot for a waiter of another pool.
    const a3 = track(alice.acquire(creds));
    await flush();
    expect(a3.done).toBe(false);
    await bob.release(b.value as ServerConn, { reusable: false });
    await flush();
    expect(a3.value).toBeDefined();
    expect(open(alice) + open(bob)).toBe(2);
    void a2;
    set.closeAll('test');
  });

  it('the janitor runs every second: idle timeout, then stats per pool', async () => {
    const { set, key, events } = poolSet({ idleTimeoutMs: 2_000 });
    const pool = set.get(target, key('alice'));
    const conn = (await pool.acquire(creds)) as FakeConn;
    await pool.release(conn, { reusable: true });
    expect(set.stats()).toEqual([
      expect.objectContaining({ node: 'n1', user: 'alice', database: 'db', idle: 1, active: 0, total: 1, waiting: 0 }),
    ]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(conn.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(conn.closed).toBe(true);
    expect(events.at(-1)?.reason).toBe('server_idle_timeout');
    expect(set.stats()[0]).toMatchObject({ idle: 0, total: 0 });
    set.closeAll('test');
  });

  it('closeAll rejects waiters of every pool with 57P01 and closes servers', async () => {
    const { set, key } = poolSet({ poolSize: 1 });
    const pool = set.get(target, key('alice'));
    const held = await pool.acquire(creds);
    const w = track(pool.acquire(creds));
    await flush();
    set.closeAll('shutdown');
    await flush();
    expect(w.error?.sqlstate).toBe('57P01');
    expect(held.closed).toBe(true);
    expect(held.closeReason).toBe('shutdown');
  });
});
