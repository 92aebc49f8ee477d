// Read-your-writes through pgnear's read/write routing (issue 4), against replicas that really lag: both replicas
// apply WAL 300 ms late (recovery_min_apply_delay), so a read served by a replica right after a write is stale unless
// pgnear makes it observe the write (wait on the replica, or go to the primary). pgnear runs in region 'ams', so
// its preferred replica is replica1 (ams).
//
// Per consistency scope (SET pgnear.consistency = session | global | token): 1,000 write-then-read iterations with
// node-postgres (an UPDATE … RETURNING of a counter row, then a SELECT of that row; simple and extended protocol
// alternating) must show 0 stale reads, and reads not preceded by a write must still mostly land on replicas (routing
// did not just give up and send everything to the primary). Scope `eventual` runs the same loop and must show stale
// reads: the proof that this test can see staleness at all. Then the lsn_policy variants (primary, fastest, wait),
// each on its own pgnear.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useCluster } from '../support/cluster.js';
import { sleep } from '../support/pooling.js';
import type { TestProxy } from '../support/proxy.js';
import {
  createReplicatedDatabase,
  laggingReplicas,
  NodeTally,
  pct,
  pgClient,
  problems,
  showPgnear,
  startRoutingProxy,
  waitForReplicaReads,
} from '../support/routing.js';

const DB = 'ryw';
const DELAY_MS = 300;
const REGION = 'ams';
const cluster = useCluster(laggingReplicas(DELAY_MS));

/** Every client opened here, closed in afterAll whatever happened. */
const clients = new Set<pg.Client>();
async function client(proxy: TestProxy): Promise<pg.Client> {
  const c = await pgClient(proxy.url(undefined, undefined, DB));
  clients.add(c);
  return c;
}
async function close(c: pg.Client): Promise<void> {
  clients.delete(c);
  await c.end().catch(() => {});
}

let proxy: TestProxy;
const extraProxies: TestProxy[] = [];

beforeAll(async () => {
  await createReplicatedDatabase(cluster(), DB, [
    'create table counters(id int primary key, v bigint not null)',
    'insert into counters select g, 0 from generate_series(1, 100) g',
  ]);
  proxy = await startRoutingProxy(cluster(), REGION);
  await waitForReplicaReads(proxy.url(undefined, undefined, DB));
});

afterAll(async () => {
  await Promise.allSettled([...clients].map((c) => c.end()));
  await Promise.allSettled([proxy, ...extraProxies].map((p) => p?.stop()));
});

interface LoopResult {
  iterations: number;
  stale: number;
  /** First few stale reads: iteration, value written, value read, node read. */
  staleSamples: string[];
  writes: NodeTally;
  reads: NodeTally;
  readMs: number[];
  ms: number;
}

interface LoopOptions {
  /** Reader per iteration (default: the writer). */
  reader?: (i: number) => pg.Client;
  /** Token scope: carry SHOW pgnear.last_write_lsn of the writer to the reader with SET pgnear.min_lsn. */
  carryToken?: boolean;
}

/**
 * `n` iterations of: UPDATE counters SET v = v + 1 … RETURNING v (through pgnear, so on the primary), then SELECT v
 * of the same row. Only this loop writes row `id`, so a read returning less than the value just written is stale.
 * Even iterations use the extended protocol (parameters), odd ones the simple protocol.
 */
async function writeThenRead(writer: pg.Client, id: number, n: number, o: LoopOptions = {}): Promise<LoopResult> {
  const res: LoopResult = {
    iterations: n,
    stale: 0,
    staleSamples: [],
    writes: new NodeTally(cluster()),
    reads: new NodeTally(cluster()),
    readMs: [],
    ms: 0,
  };
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const extended = i % 2 === 0;
    const w = extended
      ? await writer.query('update counters set v = v + 1 where id = $1 returning v, inet_server_port() as port', [id])
      : await writer.query(`update counters set v = v + 1 where id = ${id} returning v, inet_server_port() as port`);
    const written = Number(w.rows[0].v);
    res.writes.add(w.rows[0].port);
    const reader = o.reader?.(i) ?? writer;
    if (o.carryToken) {
      const lsn = await showPgnear(writer, 'last_write_lsn');
      if (!/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/.test(lsn)) throw new Error(`SHOW pgnear.last_write_lsn gave "${lsn}"`);
      await reader.query(`SET pgnear.min_lsn = '${lsn}'`);
    }
    const r0 = performance.now();
    const r = extended
      ? await reader.query('select v, inet_server_port() as port from counters where id = $1', [id])
      : await reader.query(`select v, inet_server_port() as port from counters where id = ${id}`);
    res.readMs.push(performance.now() - r0);
    const node = res.reads.add(r.rows[0].port);
    const read = Number(r.rows[0].v);
    if (read < written) {
      res.stale++;
      if (res.staleSamples.length < 5) res.staleSamples.push(`#${i}: wrote ${written}, read ${read} on ${node}`);
    }
  }
  res.ms = Date.now() - t0;
  return res;
}

/** `n` reads that no write precedes (on `c`): where they ran. */
async function readsOnly(c: pg.Client, n: number): Promise<NodeTally> {
  const t = new NodeTally(cluster());
  for (let i = 0; i < n; i++) {
    const r =
      i % 2 === 0
        ? await c.query('select inet_server_port() as port, $1::int as i', [i])
        : await c.query('select inet_server_port() as port');
    t.add(r.rows[0].port);
  }
  return t;
}

function report(label: string, r: LoopResult): string {
  const line =
    `[routing-ryw] ${label}: ${r.iterations} write→read, stale ${r.stale}, writes ${r.writes}, reads ${r.reads}, ` +
    `read p50 ${pct(r.readMs, 50).toFixed(2)} ms p99 ${pct(r.readMs, 99).toFixed(2)} ms, ${r.ms} ms total` +
    (r.staleSamples.length ? `; stale e.g. ${r.staleSamples.join('; ')}` : '');
  console.log(line);
  return line;
}

/** Details for a failed assertion: the loop's numbers and pgnear's warnings. */
const why = (line: string, p: TestProxy = proxy) => `${line}\npgnear warnings/errors:\n${problems(p)}`;

// Readers settle only once both delayed replicas replayed every write and pgnear's monitor (250 ms) saw it.
const SETTLE_MS = DELAY_MS + 700;

describe.each([
  { scope: 'session', id: 1 },
  { scope: 'global', id: 2 },
  { scope: 'token', id: 3 },
] as const)('consistency $scope', ({ scope, id }) => {
  it('1,000 writes each followed by a read: 0 stale reads; later reads mostly on replicas', async () => {
    const a = await client(proxy);
    const b = await client(proxy);
    for (const c of [a, b]) await c.query(`SET pgnear.consistency = ${scope}`);
    expect(await showPgnear(a, 'consistency')).toBe(scope);

    // session: the writer reads; global: the writer and another client take turns; token: another client reads,
    // told the writer's LSN each time.
    const opts: LoopOptions =
      scope === 'session'
        ? {}
        : scope === 'global'
          ? { reader: (i) => (i % 2 === 0 ? a : b) }
          : { reader: () => b, carryToken: true };
    const r = await writeThenRead(a, id, 1000, opts);
    const line = report(scope, r);
    expect(r.writes.counts, why(line)).toEqual({ primary: 1000 });
    expect(r.stale, why(line)).toBe(0);

    // Once the replicas caught up, neither the client that wrote nor a fresh one is stuck on the primary.
    await sleep(SETTLE_MS);
    const fresh = await client(proxy);
    await fresh.query(`SET pgnear.consistency = ${scope}`);
    const afterWriter = await readsOnly(a, 100);
    const afterFresh = await readsOnly(fresh, 100);
    const l2 =
      `[routing-ryw] ${scope}: reads without a preceding write: writer's connection ${afterWriter}, ` +
      `fresh connection ${afterFresh}`;
    console.log(l2);
    for (const t of [afterWriter, afterFresh]) {
      expect(t.onReplicas, why(l2)).toBeGreaterThan(t.total / 2);
      // pgnear's region is ams: its replica is preferred.
      expect(t.on(cluster().replicas[0]!), why(l2)).toBeGreaterThan(t.total / 2);
    }
    for (const c of [a, b, fresh]) await close(c);
  });
});

describe('consistency global, replicas caught up before each write', () => {
  // A read by another client right after the write: with the replicas idle and caught up, pgnear must already know
  // the write's LSN when it routes that read (an LSN one write behind would be replayed already and send the read to
  // a replica that lacks the write).
  it('25 × write on A, read on B at once: 0 stale', async () => {
    const a = await client(proxy);
    const b = await client(proxy);
    for (const c of [a, b]) await c.query('SET pgnear.consistency = global');
    const res: LoopResult[] = [];
    for (let i = 0; i < 25; i++) {
      await sleep(DELAY_MS + 150);
      res.push(await writeThenRead(a, 6, 1, { reader: () => b }));
    }
    const stale = res.reduce((n, r) => n + r.stale, 0);
    const reads = new NodeTally(cluster());
    for (const r of res)
      for (const [k, v] of Object.entries(r.reads.counts)) reads.counts[k] = (reads.counts[k] ?? 0) + v;
    const samples = res.flatMap((r) => r.staleSamples).slice(0, 5);
    const line = `[routing-ryw] global after idle pauses: 25 write(A)→read(B), stale ${stale}, reads ${reads}${samples.length ? `; e.g. ${samples.join('; ')}` : ''}`;
    console.log(line);
    expect(stale, why(line)).toBe(0);
    await close(a);
    await close(b);
  });
});

describe('consistency eventual (the control)', () => {
  it('the same loop sees stale reads: reads go to the lagging replica right after the write', async () => {
    const a = await client(proxy);
    await a.query('SET pgnear.consistency = eventual');
    expect(await showPgnear(a, 'consistency')).toBe('eventual');
    const r = await writeThenRead(a, 4, 200);
    const line = report('eventual', r);
    expect(r.writes.counts, why(line)).toEqual({ primary: 200 });
    expect(r.reads.onReplicas, why(line)).toBeGreaterThan(100);
    expect(r.stale, why(line)).toBeGreaterThan(0);
    await close(a);
  });

  it('routing.consistency: eventual in the config is the default of new connections', async () => {
    const p = await startRoutingProxy(cluster(), REGION, { consistency: 'eventual' });
    extraProxies.push(p);
    await waitForReplicaReads(p.url(undefined, undefined, DB));
    const a = await client(p);
    expect(await showPgnear(a, 'consistency')).toBe('eventual');
    const r = await writeThenRead(a, 5, 50);
    const line = report('eventual (config)', r);
    expect(r.stale, why(line, p)).toBeGreaterThan(0);
    // … and SET pgnear.consistency = session switches that client back to read-your-writes.
    await a.query('SET pgnear.consistency = session');
    await sleep(SETTLE_MS);
    const s = await writeThenRead(a, 5, 100);
    const l2 = report('session after eventual (config)', s);
    expect(s.stale, why(l2, p)).toBe(0);
    await close(a);
  });
});

describe('lsn_policy', () => {
  // Each policy on its own pgnear (session scope, the default). A fresh row per policy.
  it.each([
    { policy: 'primary', id: 10, n: 200 },
    { policy: 'fastest', id: 11, n: 200 },
    { policy: 'wait', id: 12, n: 25 },
  ] as const)('$policy: 0 stale reads over $n write→read', async ({ policy, id, n }) => {
    const p = await startRoutingProxy(cluster(), REGION, { lsn_policy: policy, max_wait: '2s' });
    extraProxies.push(p);
    await waitForReplicaReads(p.url(undefined, undefined, DB));
    const a = await client(p);
    const r = await writeThenRead(a, id, n);
    const line = report(`lsn_policy ${policy}`, r);
    expect(r.writes.counts, why(line, p)).toEqual({ primary: n });
    expect(r.stale, why(line, p)).toBe(0);
    if (policy === 'primary') {
      // No replica has replayed a write 300 ms after it, so every read after a write goes to the primary.
      expect(r.reads.counts, why(line, p)).toEqual({ primary: n });
    }
    if (policy === 'wait') {
      // The read waits on the preferred replica until it replayed the write (~300 ms), instead of leaving it.
      expect(r.reads.onReplicas, why(line, p)).toBeGreaterThan(n / 2);
      expect(pct(r.readMs, 50), why(line, p)).toBeGreaterThan(DELAY_MS / 2);
    }
    await close(a);
    await p.stop();
  });
});
