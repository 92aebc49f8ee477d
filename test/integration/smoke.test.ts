// Smoke: a query through pgnear reaches the primary, and a wrong password is refused with 28P01.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { startProxy, type TestProxy } from '../support/proxy.js';

const cluster = useCluster({ replicas: 1 });
let proxy: TestProxy;
beforeAll(async () => {
  proxy = await startProxy(cluster());
});
afterAll(async () => {
  await proxy?.stop();
});

describe('smoke', () => {
  it('runs a query on the primary through pgnear', async () => {
    const c = new pg.Client(proxy.url());
    await c.connect();
    const r = await c.query('select pg_is_in_recovery() as rec, inet_server_port() as port');
    expect(r.rows[0]).toEqual({ rec: false, port: cluster().primary.port });
    await c.end();
  });

  it('refuses a wrong password with 28P01', async () => {
    const c = new pg.Client(proxy.url('postgres', 'wrong'));
    await expect(c.connect()).rejects.toMatchObject({ code: '28P01' });
  });
});
