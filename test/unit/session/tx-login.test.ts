// txLogin's welcome cache: logins with settings a server of the pool already accepted borrow no server.
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ServerCredentials } from '../../../src/pool/credentials.js';
import type { NodePool } from '../../../src/pool/node-pool.js';
import type { ServerConn } from '../../../src/pool/server-conn.js';
import { txLogin } from '../../../src/session/tx-login.js';

/** A pool whose servers report `params`; counts acquires. */
function fakePool(total = 1) {
  const server = {
    params: new Map([
      ['server_version', '15.0'],
      ['application_name', ''],
    ]),
    txStatus: 'I',
    closed: false,
    query: async () => [],
  } as unknown as ServerConn;
  const pool = {
    acquired: 0,
    total,
    acquire: async () => {
      pool.acquired++;
      return server;
    },
    stats: () => ({ total: pool.total }),
    release: async () => {},
  };
  return pool;
}
const creds = {} as ServerCredentials;
const login = (pool: ReturnType<typeof fakePool>, startup: Record<string, string> = {}) =>
  txLogin(pool as unknown as NodePool, creds, new Map(Object.entries({ user: 'u', database: 'd', ...startup })));

afterEach(() => {
  vi.useRealTimers();
});

describe('txLogin welcome cache', () => {
  it('the second login with the same settings is answered without a server, with the same ParameterStatus', async () => {
    const pool = fakePool();
    const a = await login(pool, { application_name: 'app' });
    expect(a.server).not.toBeNull();
    const b = await login(pool, { application_name: 'app' });
    expect(b.server).toBeNull();
    expect(pool.acquired).toBe(1);
    expect(b.status.equals(a.status)).toBe(true);
    expect(a.status.toString('latin1')).toContain('server_version\u000015.0');
  });

  it('other settings, an empty pool, or a welcome older than 30 s go to a server', async () => {
    vi.useFakeTimers();
    const pool = fakePool();
    await login(pool, { application_name: 'x' });
    await login(pool, { application_name: 'y' });
    expect(pool.acquired).toBe(2);
    pool.total = 0;
    await login(pool, { application_name: 'x' });
    expect(pool.acquired).toBe(3);
    pool.total = 1;
    vi.advanceTimersByTime(31_000);
    await login(pool, { application_name: 'x' });
    expect(pool.acquired).toBe(4);
    await login(pool, { application_name: 'x' });
    expect(pool.acquired).toBe(4);
  });
});
