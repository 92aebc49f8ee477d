// Scenario idle-clients: N idle logged-in connections through a proxy — its RSS, and an active client's latency.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { isInterrupted } from '../lib/cleanup.js';
import type { BenchContext } from '../lib/context.js';
import { CLK_TCK, rssKiB, sleep, treeCpuTicks } from '../lib/proc.js';
import { markdownTable } from '../lib/report.js';
import { fmt, fmtInt, percentile } from '../lib/stats.js';
import { resolveTargets, type Target } from '../targets/index.js';
import type { Scenario } from './types.js';

export interface Latency {
  queries: number;
  qps: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Proxy CPU-seconds per second meanwhile. */
  proxyCores: number | null;
}

interface IdleResult {
  target: string;
  variant: string;
  requested: number;
  opened: number;
  openSeconds: number;
  openErrors: string[];
  /** Client backends on the primary while the idle clients were open (session pooling holds one each). */
  serverBackends: number | null;
  rssKiB: { start: number | null; idle: number | null; afterActive: number | null; afterClose: number | null };
  /** (idle − start) / opened. */
  perClientKiB: number | null;
  latency0: Latency;
  latencyN: Latency;
}

export function client(ctx: BenchContext, t: Target, db: string): pg.Client {
  const c = new pg.Client({
    host: '127.0.0.1',
    port: t.port,
    user: 'postgres',
    password: ctx.cluster.superuser.password,
    database: db,
    ssl: false,
    application_name: 'pgnear-bench',
    connectionTimeoutMillis: 60_000,
  });
  c.on('error', () => {}); // a dropped idle client is counted, not fatal
  return c;
}

/** `select 1` in a loop on one connection for `seconds`. */
export async function measure(c: pg.Client, seconds: number, proxyPids: number[]): Promise<Latency> {
  const lat: number[] = [];
  const cpu0 = treeCpuTicks(proxyPids);
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(seconds * 1e9));
  for (let now = t0; now < end;) {
    await c.query('select 1');
    const t = process.hrtime.bigint();
    lat.push(Number(t - now) / 1e6);
    now = t;
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = (treeCpuTicks(proxyPids) - cpu0) / CLK_TCK;
  lat.sort((a, b) => a - b);
  return {
    queries: lat.length,
    qps: lat.length / wall,
    avgMs: lat.reduce((a, b) => a + b, 0) / lat.length,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    maxMs: lat[lat.length - 1]!,
    proxyCores: proxyPids.length ? cpu / wall : null,
  };
}

/** Run `fn` over items with at most `limit` in flight. */
export async function inFlight<T>(items: T[], limit: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length && !isInterrupted()) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export async function countBackends(ctx: BenchContext): Promise<number | null> {
  const c = new pg.Client({ connectionString: ctx.cluster.primary.url, ssl: false });
  c.on('error', () => {});
  try {
    await c.connect();
    const r = await c.query<{ n: string }>(
      "select count(*) as n from pg_stat_activity where backend_type = 'client backend'",
    );
    return Number(r.rows[0]!.n) - 1; // minus this one
  } catch {
    return null;
  } finally {
    await c.end().catch(() => {});
  }
}

async function runOne(ctx: BenchContext, t: Target): Promise<IdleResult> {
  const o = ctx.opts;
  const db = t.sessionDatabase ?? t.database('simple');
  const rss = () => (t.mainPid ? rssKiB(t.mainPid) : null);
  const active = client(ctx, t, db);
  await active.connect();
  await measure(active, 1, []); // warm-up
  const start = rss();
  ctx.log(
    `${t.name}: RSS ${fmtInt(start)} KiB with 1 client; measuring select 1 latency with 0 idle (${o.duration} s)`,
  );
  const latency0 = await measure(active, o.duration, t.pids());

  const idle: pg.Client[] = [];
  const openErrors: string[] = [];
  const t0 = Date.now();
  await inFlight(
    Array.from({ length: o.count }, (_, i) => i),
    o.concurrency,
    async () => {
      const c = client(ctx, t, db);
      try {
        await c.connect();
        // One query, so poolers that assign a server lazily (PgBouncer) hold one too, as pgnear does from login.
        await c.query('select 1');
        idle.push(c);
      } catch (e) {
        if (openErrors.length < 5) openErrors.push((e as Error).message);
        await c.end().catch(() => {});
      }
    },
  );
  const openSeconds = (Date.now() - t0) / 1000;
  ctx.log(
    `${t.name}: ${idle.length}/${o.count} idle clients open in ${openSeconds.toFixed(1)} s${openErrors.length ? ` (errors: ${openErrors[0]})` : ''}`,
  );
  await sleep(2_000);
  const idleRss = rss();
  const serverBackends = await countBackends(ctx);
  ctx.log(
    `${t.name}: RSS ${fmtInt(idleRss)} KiB with ${idle.length} idle; ${serverBackends} backends on the primary; measuring latency (${o.duration} s)`,
  );
  const latencyN = await measure(active, o.duration, t.pids());
  const afterActive = rss();
  await inFlight(idle, o.concurrency, (c) => c.end().catch(() => {}));
  await active.end().catch(() => {});
  await sleep(3_000);
  const afterClose = rss();
  return {
    target: t.name,
    variant: t.variant('simple') === 'primary' ? 'primary' : t.sessionDatabase ? 'session' : t.variant('simple'),
    requested: o.count,
    opened: idle.length,
    openSeconds,
    openErrors,
    serverBackends,
    rssKiB: { start, idle: idleRss, afterActive, afterClose },
    perClientKiB: start != null && idleRss != null && idle.length > 0 ? (idleRss - start) / idle.length : null,
    latency0,
    latencyN,
  };
}

function table(rs: IdleResult[]): string {
  const mib = (k: number | null) => (k == null ? '–' : (k / 1024).toFixed(1));
  const head = [
    'target',
    'pooling',
    'idle open',
    'open s',
    'backends',
    'RSS start MiB',
    'RSS idle MiB',
    'KiB/idle client',
    'RSS after close MiB',
    'select 1 p50/p99 ms, 0 idle',
    'p50/p99 ms, N idle',
    'qps 0 → N',
    'proxy cores (N idle)',
  ];
  const rows = rs.map((r) => [
    r.target,
    r.variant,
    `${r.opened}/${r.requested}`,
    fmt(r.openSeconds, 1),
    r.serverBackends == null ? '–' : String(r.serverBackends),
    mib(r.rssKiB.start),
    mib(r.rssKiB.idle),
    fmt(r.perClientKiB, 1),
    mib(r.rssKiB.afterClose),
    `${fmt(r.latency0.p50Ms, 3)} / ${fmt(r.latency0.p99Ms, 3)}`,
    `${fmt(r.latencyN.p50Ms, 3)} / ${fmt(r.latencyN.p99Ms, 3)}`,
    `${fmtInt(r.latency0.qps)} → ${fmtInt(r.latencyN.qps)}`,
    fmt(r.latencyN.proxyCores, 2),
  ]);
  return markdownTable(head, rows, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']);
}

export const idleClients: Scenario = {
  name: 'idle-clients',
  summary: 'open --count idle connections through each target: proxy RSS before/after, active select 1 latency',
  defaults: { targets: ['pgnear', 'pgbouncer'], duration: 10 },
  needsPgbenchData: false,
  // Session pooling: every idle client holds a server connection; + the active client, auth_query, slack.
  maxConnections: (o) => Math.max(400, o.count + 100),
  async run(ctx, meta) {
    const factories = resolveTargets(ctx.opts.targets, ctx.log);
    const results: IdleResult[] = [];
    for (const f of factories) {
      if (isInterrupted()) throw new Error('interrupted');
      ctx.log(`starting target ${f.name}…`);
      const t = await f.start(ctx, { maxClients: ctx.opts.count + 10 });
      try {
        results.push(await runOne(ctx, t));
      } finally {
        await t.stop();
      }
    }
    const md = table(results);
    const m = meta();
    const notes = [
      ...m.notes,
      'Session pooling everywhere (pgnear session mode, PgBouncer session pool), so each idle client holds one Postgres backend.',
      'RSS from /proc/<pid>/status VmRSS of the proxy process; latency measured in the harness (node-postgres, simple query).',
    ];
    writeFileSync(
      join(ctx.resultsDir, 'results.json'),
      `${JSON.stringify({ meta: { ...m, notes }, results }, null, 2)}\n`,
    );
    writeFileSync(
      join(ctx.resultsDir, 'report.md'),
      [`# idle-clients (${ctx.opts.count}) — ${m.startedAt}`, '', ...notes.map((n) => `- ${n}`), '', md, ''].join('\n'),
    );
    process.stdout.write(`\n${md}\n\nresults: ${ctx.resultsDir}\n`);
  },
};
