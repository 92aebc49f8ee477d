// Scenario idle-10k (issue 3): 10,000 idle logged-in clients through a transaction pool (so they hold no server):
// proxy RSS before / with them / after, KiB per idle client, and an active client's `select 1` latency meanwhile.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInterrupted } from '../lib/cleanup.js';
import type { BenchContext } from '../lib/context.js';
import { CLK_TCK, rssKiB, sleep, treeCpuTicks } from '../lib/proc.js';
import { type RawConn, rawConnect } from '../lib/rawclient.js';
import { markdownTable } from '../lib/report.js';
import { fmt, fmtInt } from '../lib/stats.js';
import { resolveTargets, type Target } from '../targets/index.js';
import { client, countBackends, inFlight, type Latency, measure } from './idle-clients.js';
import type { Scenario } from './types.js';

/** File descriptors we, pgnear and PgBouncer need: 10k client sockets each plus servers, logs, slack. */
const NOFILE = 65_536;

interface Idle10kResult {
  target: string;
  variant: string;
  requested: number;
  opened: number;
  openSeconds: number;
  /** Proxy CPU-seconds spent while the clients logged in (SCRAM, login round trip to a pooled server). */
  openProxyCpuS: number | null;
  openErrors: { count: number; first: string[] };
  /** Idle clients the proxy closed before the harness did (should be 0). */
  dropped: number;
  droppedReasons: string[];
  /** Client backends on the primary with the idle clients open (transaction pooling: ≤ pool size). */
  serverBackends: number | null;
  /** Open file descriptors of the proxy with the idle clients open. */
  proxyFds: number | null;
  rssKiB: { start: number | null; idle: number | null; afterActive: number | null; afterClose: number | null };
  /** (idle − start) / opened. */
  perClientKiB: number | null;
  latency0: Latency;
  latencyN: Latency;
}

function fdCount(pid: number | undefined): number | null {
  if (!pid) return null;
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

function nofile(pid: number | 'self'): string {
  try {
    const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    return (
      line
        ?.replace(/\s+/g, ' ')
        .replace('Max open files ', '')
        .replace(/ files ?$/, '') ?? '?'
    );
  } catch {
    return '?';
  }
}

/**
 * Raise our own RLIMIT_NOFILE with `prlimit --pid <us>` (children spawned afterwards inherit it): to NOFILE, or,
 * without CAP_SYS_RESOURCE (containers), the soft limit up to the hard one. Fails when that is too low for `count`.
 */
function raiseFdLimit(ctx: BenchContext): void {
  const set = (soft: number, hard: number) =>
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:${hard}`], { stdio: 'pipe' });
  try {
    set(NOFILE, NOFILE);
  } catch (e) {
    const hard = Number(nofile('self').split(' ')[1]);
    ctx.log(
      `could not raise the open-file limit to ${NOFILE} (${(e as Error).message.split('\n').slice(-2).join(' ').trim()}); ` +
        `using the hard limit ${hard}`,
    );
    try {
      if (Number.isFinite(hard)) set(hard, hard);
    } catch {
      // keep what we have
    }
  }
  const soft = Number(nofile('self').split(' ')[0]);
  ctx.log(`open files limit (soft hard) of the harness, inherited by the proxies: ${nofile('self')}`);
  const need = ctx.opts.count + 200;
  if (Number.isFinite(soft) && soft < need)
    throw new Error(
      `open-file limit ${soft} < ${need} needed for ${ctx.opts.count} idle clients: raise it (ulimit -n)`,
    );
}

async function runOne(ctx: BenchContext, t: Target): Promise<Idle10kResult> {
  const o = ctx.opts;
  const db = t.database('simple'); // the transaction-pooled database on both proxies
  const rss = () => (t.mainPid ? rssKiB(t.mainPid) : null);
  ctx.log(`${t.name}: open files limit ${t.mainPid ? nofile(t.mainPid) : '?'}`);
  const active = client(ctx, t, db);
  await active.connect();
  await measure(active, 1, []); // warm-up
  const start = rss();
  ctx.log(
    `${t.name}: RSS ${fmtInt(start)} KiB with 1 client; measuring select 1 latency with 0 idle (${o.duration} s)`,
  );
  const latency0 = await measure(active, o.duration, t.pids());

  const idle: RawConn[] = [];
  const errors: string[] = [];
  let errorCount = 0;
  const cpu0 = treeCpuTicks(t.pids());
  const t0 = Date.now();
  let lastLog = t0;
  await inFlight(
    Array.from({ length: o.count }, (_, i) => i),
    o.concurrency,
    async () => {
      try {
        idle.push(
          await rawConnect({
            host: '127.0.0.1',
            port: t.port,
            user: 'postgres',
            database: db,
            password: ctx.cluster.superuser.password,
            query: true,
          }),
        );
      } catch (e) {
        errorCount++;
        if (errors.length < 5) errors.push((e as Error).message);
      }
      if (Date.now() - lastLog > 5_000) {
        lastLog = Date.now();
        ctx.log(`${t.name}: ${idle.length} open, ${errorCount} errors, RSS ${fmtInt(rss())} KiB`);
      }
    },
  );
  const openSeconds = (Date.now() - t0) / 1000;
  const openProxyCpuS = t.pids().length ? (treeCpuTicks(t.pids()) - cpu0) / CLK_TCK : null;
  ctx.log(
    `${t.name}: ${idle.length}/${o.count} idle clients open in ${openSeconds.toFixed(1)} s` +
      `${errorCount ? ` (${errorCount} errors, first: ${errors[0]})` : ''}`,
  );
  if (isInterrupted()) throw new Error('interrupted');
  await sleep(3_000);
  const idleRss = rss();
  const proxyFds = fdCount(t.mainPid);
  const serverBackends = await countBackends(ctx);
  ctx.log(
    `${t.name}: RSS ${fmtInt(idleRss)} KiB with ${idle.length} idle, ${proxyFds} fds, ${serverBackends} backends on the primary; ` +
      `measuring latency (${o.duration} s)`,
  );
  const latencyN = await measure(active, o.duration, t.pids());
  const afterActive = rss();
  const droppedConns = idle.filter((c) => c.dropped);
  if (droppedConns.length) ctx.log(`${t.name}: ${droppedConns.length} idle clients were dropped by the proxy`);
  await inFlight(idle, 500, (c) => c.close());
  await active.end().catch(() => {});
  await sleep(3_000);
  const afterClose = rss();
  return {
    target: t.name,
    variant: t.variant('simple'),
    requested: o.count,
    opened: idle.length,
    openSeconds,
    openProxyCpuS,
    openErrors: { count: errorCount, first: errors },
    dropped: droppedConns.length,
    droppedReasons: [...new Set(droppedConns.map((c) => c.dropped!))].slice(0, 5),
    serverBackends,
    proxyFds,
    rssKiB: { start, idle: idleRss, afterActive, afterClose },
    perClientKiB: start != null && idleRss != null && idle.length > 0 ? (idleRss - start) / idle.length : null,
    latency0,
    latencyN,
  };
}

function table(rs: Idle10kResult[]): string {
  const mib = (k: number | null) => (k == null ? '–' : (k / 1024).toFixed(1));
  const head = [
    'target',
    'pooling',
    'idle open',
    'open s',
    'proxy CPU-s to open',
    'dropped',
    'backends',
    'RSS start MiB',
    'RSS idle MiB',
    'KiB/idle client',
    'RSS after close MiB',
    'select 1 p50/p99 ms, 0 idle',
    'p50/p99 ms, N idle',
    'qps 0 → N',
  ];
  const rows = rs.map((r) => [
    r.target,
    r.variant,
    `${fmtInt(r.opened)}/${fmtInt(r.requested)}`,
    fmt(r.openSeconds, 1),
    fmt(r.openProxyCpuS, 1),
    String(r.dropped),
    r.serverBackends == null ? '–' : String(r.serverBackends),
    mib(r.rssKiB.start),
    mib(r.rssKiB.idle),
    fmt(r.perClientKiB, 1),
    mib(r.rssKiB.afterClose),
    `${fmt(r.latency0.p50Ms, 3)} / ${fmt(r.latency0.p99Ms, 3)}`,
    `${fmt(r.latencyN.p50Ms, 3)} / ${fmt(r.latencyN.p99Ms, 3)}`,
    `${fmtInt(r.latency0.qps)} → ${fmtInt(r.latencyN.qps)}`,
  ]);
  return markdownTable(head, rows, ['l', 'l', ...head.slice(2).map(() => 'r' as const)]);
}

export const idle10k: Scenario = {
  name: 'idle-10k',
  summary: '--count (10,000) idle clients through transaction pools (pgnear, PgBouncer): RSS, KiB/client, latency',
  defaults: {
    targets: ['pgnear', 'pgbouncer'],
    duration: 10,
    count: 10_000,
    concurrency: 200,
    pgnearPoolMode: 'transaction',
  },
  needsPgbenchData: false,
  // Transaction pooling: idle clients hold no server; the pool (20), the active client, auth_query, slack.
  maxConnections: () => 400,
  async run(ctx, meta) {
    raiseFdLimit(ctx);
    const factories = resolveTargets(ctx.opts.targets, ctx.log);
    const results: Idle10kResult[] = [];
    for (const f of factories) {
      if (isInterrupted()) throw new Error('interrupted');
      ctx.log(`starting target ${f.name}…`);
      const t = await f.start(ctx, { maxClients: ctx.opts.count + 10 });
      try {
        results.push(await runOne(ctx, t));
      } finally {
        await t.stop();
      }
      await sleep(2_000);
    }
    const md = table(results);
    const m = meta();
    const notes = [
      ...m.notes,
      `Transaction pooling on both proxies: pgnear pool_mode ${ctx.opts.pgnearPoolMode} (pool_size ${ctx.opts.poolSize}), PgBouncer's transaction-pooled database (pool ${ctx.opts.poolSize}); idle clients hold no server.`,
      `Idle clients: a raw wire-protocol client in the harness (startup, SCRAM-SHA-256 with the salted password derived once and cached, one simple-protocol select 1, then idle), ${ctx.opts.concurrency} logins in flight at a time.`,
      `Open-file limit raised to ${NOFILE} with prlimit on the harness before the proxies start (they inherit it).`,
      'RSS from /proc/<pid>/status VmRSS of the proxy process; the active client is node-postgres (simple query) in the harness.',
    ];
    writeFileSync(
      join(ctx.resultsDir, 'results.json'),
      `${JSON.stringify({ meta: { ...m, notes }, results }, null, 2)}\n`,
    );
    writeFileSync(
      join(ctx.resultsDir, 'report.md'),
      [`# idle-10k (${ctx.opts.count}) — ${m.startedAt}`, '', ...notes.map((n) => `- ${n}`), '', md, ''].join('\n'),
    );
    process.stdout.write(`\n${md}\n\nresults: ${ctx.resultsDir}\n`);
  },
};
