// Scenario routing (issue 4): read/write routing with read-your-writes, measured in one run.
//
//   1. classifier cost: SqlAnalyzer.analyze() in-process, warm cache and cold, plus hint parsing and the router.
//   2. pgbench 90 % read / 10 % write (custom scripts, -f read@9 -f write@1) through pgnear (routing on), pgnear
//      (routing.enabled: false) and direct to the primary: TPS, p50/p99, and where pgnear sent the transactions
//      (pgnear_route_decisions_total from its /metrics).
//   3. per replica apply delay (recovery_min_apply_delay 0 and 50 ms on both replicas, set with ALTER SYSTEM) and per
//      lsn_policy (fastest, wait, primary; plus consistency eventual as the control), each on its own pgnear:
//      a. read right after a write (one node-postgres client: UPDATE … RETURNING, then SELECT of that row): p50/p99 of
//         the read, where it ran, stale reads;
//      b. a mixed workload (8 clients, 90 % reads of a random row + the client's own row, 10 % writes of its own row):
//         share of reads on replicas, stale reads (own row older than the client's last write), ops/s.
// pgnear runs as a child process (`node dist/main.js start`), pool_mode transaction, region ams (the cluster is
// primary iad + replicas ams, syd). synchronous_commit is set to on for the whole scenario (ALTER SYSTEM on the
// primary; the bench cluster default is off): with off, a commit returns before its WAL is flushed, replicas see it
// up to wal_writer_delay later, and read-your-writes would measure the WAL writer rather than pgnear.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseHints } from '../../src/routing/hints.js';
import { route } from '../../src/routing/router.js';
import { initSqlAnalysis, SqlAnalyzer } from '../../src/routing/sql-analysis.js';
import { isInterrupted } from '../lib/cleanup.js';
import { CLASSIFIER_TEXTS, ROUTE_CFG, ROUTE_NODES } from '../lib/route-fixture.js';
import type { BenchContext } from '../lib/context.js';
import { runPgbench } from '../lib/pgbench.js';
import { sleep } from '../lib/proc.js';
import { markdownTable } from '../lib/report.js';
import {
  diffCounts,
  onNode,
  pgClient,
  replicaShare,
  type RoutingPgnear,
  routeDecisions,
  setSynchronousCommit,
  startRoutingPgnear,
  waitForReplicaReads,
} from '../lib/routing-pgnear.js';
import { fmt, fmtInt, percentile } from '../lib/stats.js';
import { direct } from '../targets/direct.js';
import type { Target } from '../targets/types.js';
import type { Scenario } from './types.js';

const REGION = 'ams';
const DELAYS_MS = [0, 50];
const RYW_ITERATIONS = 300;
const MIXED_CLIENTS = 8;
const MIXED_SECONDS = 5;

interface Variant {
  label: string;
  routing: Record<string, unknown>;
}
const VARIANTS: Variant[] = [
  { label: 'fastest', routing: { lsn_policy: 'fastest' } },
  { label: 'wait', routing: { lsn_policy: 'wait' } },
  { label: 'primary', routing: { lsn_policy: 'primary' } },
  { label: 'eventual (control)', routing: { consistency: 'eventual' } },
];

// ---------------------------------------------------------------- cluster settings

/** recovery_min_apply_delay on every replica (ALTER SYSTEM works on a standby; the setting is reloadable). */
async function setApplyDelay(ctx: BenchContext, ms: number): Promise<void> {
  const pw = ctx.cluster.superuser.password;
  for (const r of ctx.cluster.replicas) {
    await onNode(r.port, pw, [`ALTER SYSTEM SET recovery_min_apply_delay = '${ms}ms'`, 'SELECT pg_reload_conf()']);
  }
  await sleep(300);
  for (const r of ctx.cluster.replicas) {
    const [v] = await onNode(r.port, pw, ['SHOW recovery_min_apply_delay']);
    if (v !== `${ms}ms` && !(ms === 0 && v === '0'))
      throw new Error(`${r.name}: recovery_min_apply_delay is ${v}, wanted ${ms}ms`);
  }
  await ctx.cluster.waitForReplay(30_000);
}

// ---------------------------------------------------------------- measurements

interface RywResult {
  iterations: number;
  stale: number;
  readsOnReplicas: number;
  readP50Ms: number;
  readP99Ms: number;
  writeP50Ms: number;
  decisions: Record<string, number>;
}

/** One client: UPDATE own row RETURNING abalance, then SELECT it back; times the read. */
async function readAfterWrite(p: RoutingPgnear, ctx: BenchContext, aid: number, n: number): Promise<RywResult> {
  const replicaPorts = new Set(ctx.cluster.replicas.map((r) => r.port));
  const c = pgClient(p.url);
  await c.connect();
  const d0 = await routeDecisions(p.adminPort);
  const reads: number[] = [];
  const writes: number[] = [];
  let stale = 0;
  let onReplica = 0;
  try {
    for (let i = 0; i < n; i++) {
      const w0 = performance.now();
      const w = await c.query('update pgbench_accounts set abalance = abalance + 1 where aid = $1 returning abalance', [
        aid,
      ]);
      const r0 = performance.now();
      const r = await c.query('select abalance, inet_server_port() as port from pgbench_accounts where aid = $1', [
        aid,
      ]);
      reads.push(performance.now() - r0);
      writes.push(r0 - w0);
      if (Number(r.rows[0].abalance) < Number(w.rows[0].abalance)) stale++;
      if (replicaPorts.has(Number(r.rows[0].port))) onReplica++;
    }
  } finally {
    await c.end().catch(() => {});
  }
  reads.sort((a, b) => a - b);
  writes.sort((a, b) => a - b);
  return {
    iterations: n,
    stale,
    readsOnReplicas: onReplica,
    readP50Ms: percentile(reads, 50),
    readP99Ms: percentile(reads, 99),
    writeP50Ms: percentile(writes, 50),
    decisions: diffCounts(d0, await routeDecisions(p.adminPort)),
  };
}

interface MixedResult {
  reads: number;
  writes: number;
  readsOnReplicas: number;
  stale: number;
  opsPerS: number;
  readP50Ms: number;
  readP99Ms: number;
}

/** `clients` clients, 90 % reads (a random row + the client's own row), 10 % writes (own row), for `seconds`. */
async function mixed(
  p: RoutingPgnear,
  ctx: BenchContext,
  clients: number,
  seconds: number,
  scale: number,
): Promise<MixedResult> {
  const replicaPorts = new Set(ctx.cluster.replicas.map((r) => r.port));
  const rows = 100_000 * scale;
  const res: MixedResult = {
    reads: 0,
    writes: 0,
    readsOnReplicas: 0,
    stale: 0,
    opsPerS: 0,
    readP50Ms: 0,
    readP99Ms: 0,
  };
  const lat: number[] = [];
  const end = Date.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, k) => {
      const own = 2000 + k;
      const c = pgClient(p.url);
      await c.connect();
      let last = Number.NEGATIVE_INFINITY;
      try {
        while (Date.now() < end) {
          if (Math.random() < 0.1) {
            const w = await c.query(
              'update pgbench_accounts set abalance = abalance + 1 where aid = $1 returning abalance',
              [own],
            );
            last = Number(w.rows[0].abalance);
            res.writes++;
          } else {
            const aid = 1 + Math.floor(Math.random() * rows);
            const r0 = performance.now();
            const r = await c.query(
              'select (select abalance from pgbench_accounts where aid = $1) as a, ' +
                '(select abalance from pgbench_accounts where aid = $2) as mine, inet_server_port() as port',
              [aid, own],
            );
            lat.push(performance.now() - r0);
            res.reads++;
            if (replicaPorts.has(Number(r.rows[0].port))) res.readsOnReplicas++;
            if (Number(r.rows[0].mine) < last) res.stale++;
          }
        }
      } finally {
        await c.end().catch(() => {});
      }
    }),
  );
  res.opsPerS = (res.reads + res.writes) / ((performance.now() - t0) / 1000);
  lat.sort((a, b) => a - b);
  res.readP50Ms = percentile(lat, 50);
  res.readP99Ms = percentile(lat, 99);
  return res;
}

interface ClassifierRow {
  what: string;
  nsPerOp: number;
}

/** In-process cost of the classifier (warm cache: the common case in steady state), hints and the router. */
async function classifierCost(): Promise<ClassifierRow[]> {
  await initSqlAnalysis();
  const texts = CLASSIFIER_TEXTS;
  const rows: ClassifierRow[] = [];
  const time = (what: string, n: number, fn: (i: number) => unknown) => {
    for (let i = 0; i < Math.min(n, 20_000); i++) fn(i); // JIT warm-up
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(i);
    rows.push({ what, nsPerOp: Number(process.hrtime.bigint() - t0) / n });
  };
  const warm = new SqlAnalyzer();
  for (const t of texts) warm.analyze(t);
  let sink = 0;
  time(`analyze(), warm cache (${texts.length} texts round-robin)`, 1_000_000, (i) => {
    sink += warm.analyze(texts[i % texts.length]!).write ? 1 : 0;
  });
  time('analyze(), warm cache, pgbench SELECT only', 1_000_000, () => {
    sink += warm.analyze(texts[0]!).write ? 1 : 0;
  });
  const cold = new SqlAnalyzer({ cacheSize: 100 });
  time('analyze(), cold (distinct texts: parse + walk)', 3_000, (i) => {
    sink += cold.analyze(`SELECT abalance FROM pgbench_accounts WHERE aid = ${i + 1_000_000 * Math.random()}`).write
      ? 1
      : 0;
  });
  time('parseHints(), text without comments', 1_000_000, (i) => {
    sink += parseHints(texts[i % texts.length]!) ? 1 : 0;
  });
  const nodes = ROUTE_NODES;
  const cfg = ROUTE_CFG;
  time('analyze() warm + parseHints() + route(), a read with minLsn', 1_000_000, (i) => {
    const sql = texts[i % 2 === 0 ? 0 : 3]!;
    const a = warm.analyze(sql);
    const d = route(
      {
        write: a.write,
        inTransaction: false,
        txnReadOnly: false,
        hint: parseHints(sql),
        sessionRoute: 'auto',
        rule: null,
        minLsn: 900n,
        knownWrite: false,
        serializable: false,
      },
      nodes,
      cfg,
    );
    sink += d ? 1 : 0;
  });
  if (sink < 0) console.log(sink);
  return rows;
}

// ---------------------------------------------------------------- pgbench 90/10

interface PgbenchRow {
  target: string;
  rep: number;
  tps: number | null;
  latencyMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  failed: number | null;
  proxyCores: number | null;
  decisions: Record<string, number> | null;
  error?: string;
}

async function pgbench9010(ctx: BenchContext): Promise<PgbenchRow[]> {
  const o = ctx.opts;
  const rows = 100_000 * o.scale;
  const read = join(ctx.runtimeDir, 'routing-read.sql');
  const write = join(ctx.runtimeDir, 'routing-write.sql');
  writeFileSync(read, `\\set aid random(1, ${rows})\nSELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n`);
  writeFileSync(
    write,
    `\\set aid random(1, ${rows})\n\\set delta random(-5000, 5000)\nUPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;\n`,
  );
  const script = ['-f', `${read}@9`, '-f', `${write}@1`];
  const on = await startRoutingPgnear(ctx, 'routing on, fastest', {}, { region: REGION });
  const off = await startRoutingPgnear(ctx, 'routing.enabled false', { enabled: false }, { region: REGION });
  const dir = await direct.start(ctx, { maxClients: Math.max(...o.clients) });
  await waitForReplicaReads(on.url);
  const targets: { t: Target; admin?: number }[] = [
    { t: dir },
    { t: on.target, admin: on.adminPort },
    { t: off.target, admin: off.adminPort },
  ];
  const out: PgbenchRow[] = [];
  try {
    const clients = o.clients[0]!;
    for (const { t } of targets) {
      if (o.warmup > 0) {
        ctx.log(`pgbench 90/10 warm-up: ${t.label} (${o.warmup} s)`);
        await runPgbench({
          cluster: ctx.cluster,
          target: t,
          mode: 'simple',
          clients,
          threads: o.threads,
          durationS: o.warmup,
          script,
        }).catch(() => {});
      }
    }
    for (let rep = 1; rep <= o.reps && !isInterrupted(); rep++) {
      for (const { t, admin } of targets) {
        for (const mode of o.modes) {
          ctx.log(`pgbench 90/10 -M ${mode} -c ${clients} -T ${o.duration}: ${t.label} (rep ${rep})`);
          const d0 = admin ? await routeDecisions(admin) : null;
          try {
            const r = await runPgbench({
              cluster: ctx.cluster,
              target: t,
              mode,
              clients,
              threads: o.threads,
              durationS: o.duration,
              script,
              latencyLogDir: ctx.runtimeDir,
            });
            out.push({
              target: `${t.label} -M ${mode}`,
              rep,
              tps: r.tps,
              latencyMs: r.latencyMs,
              p50Ms: r.latency?.p50Ms ?? null,
              p99Ms: r.latency?.p99Ms ?? null,
              failed: r.failed,
              proxyCores: t.pids().length ? r.cpu.proxy / r.cpu.wallS : null,
              decisions: admin && d0 ? diffCounts(d0, await routeDecisions(admin)) : null,
            });
          } catch (e) {
            out.push({
              target: `${t.label} -M ${mode}`,
              rep,
              tps: null,
              latencyMs: null,
              p50Ms: null,
              p99Ms: null,
              failed: null,
              proxyCores: null,
              decisions: null,
              error: (e as Error).message.slice(0, 500),
            });
          }
        }
      }
    }
  } finally {
    await on.target.stop();
    await off.target.stop();
  }
  return out;
}

// ---------------------------------------------------------------- the scenario

const fmtDecisions = (d: Record<string, number> | null) =>
  d
    ? Object.entries(d)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k} ${fmtInt(v)}`)
        .join(', ')
    : '–';

export const routing: Scenario = {
  name: 'routing',
  summary:
    'read/write routing (issue 4): read-after-write p50/p99 and stale reads per lsn_policy × apply delay, replica share, 90/10 pgbench vs direct, classifier ns/op',
  defaults: { clients: [16], modes: ['simple'], reps: 2, pgnearPoolMode: 'transaction', targets: ['direct', 'pgnear'] },
  needsPgbenchData: true,
  maxConnections: (o) => Math.max(400, 3 * Math.max(...o.clients) + 100),
  async run(ctx, meta) {
    const o = ctx.opts;
    const report: string[] = [];
    const results: Record<string, unknown> = {};

    ctx.log('classifier cost (in-process)…');
    const cls = await classifierCost();
    results.classifier = cls;
    report.push(
      '### Classifier and router cost (in-process, this machine)\n',
      markdownTable(
        ['what', 'ns/op'],
        cls.map((r) => [r.what, fmt(r.nsPerOp, r.nsPerOp > 1000 ? 0 : 1)]),
        ['l', 'r'],
      ),
    );

    await setSynchronousCommit(ctx, 'on');
    try {
      await setApplyDelay(ctx, 0);
      const pb = await pgbench9010(ctx);
      results.pgbench = pb;
      report.push(
        `\n### pgbench 90 % read / 10 % write, -c ${o.clients[0]} -j ${o.threads} -T ${o.duration}, ${o.reps} rep(s), apply delay 0\n`,
        markdownTable(
          [
            'target',
            'rep',
            'TPS',
            'lat ms',
            'p50 ms',
            'p99 ms',
            'failed',
            'proxy cores',
            'replica share',
            'pgnear decisions',
          ],
          pb.map((r) => [
            r.target,
            String(r.rep),
            r.error ? `error: ${r.error.split('\n')[0]}` : fmtInt(r.tps),
            fmt(r.latencyMs, 3),
            fmt(r.p50Ms, 3),
            fmt(r.p99Ms, 3),
            r.failed == null ? '–' : String(r.failed),
            fmt(r.proxyCores, 2),
            r.decisions ? replicaShare(r.decisions) : '–',
            fmtDecisions(r.decisions),
          ]),
          ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
        ),
      );

      const cells: Record<string, unknown>[] = [];
      for (const delay of DELAYS_MS) {
        if (isInterrupted()) break;
        ctx.log(`replica apply delay ${delay} ms`);
        await setApplyDelay(ctx, delay);
        for (const v of VARIANTS) {
          if (isInterrupted()) break;
          const p = await startRoutingPgnear(ctx, v.label, v.routing, { region: REGION });
          try {
            await waitForReplicaReads(p.url);
            ctx.log(`  ${v.label}: ${RYW_ITERATIONS} read-after-write…`);
            const ryw = await readAfterWrite(p, ctx, 1000 + cells.length, RYW_ITERATIONS);
            ctx.log(`  ${v.label}: mixed 90/10, ${MIXED_CLIENTS} clients, ${MIXED_SECONDS} s…`);
            await sleep(delay + 500);
            const mix = await mixed(p, ctx, MIXED_CLIENTS, MIXED_SECONDS, o.scale);
            cells.push({ delayMs: delay, variant: v.label, ryw, mixed: mix });
            ctx.log(
              `  ${v.label}: read-after-write p50 ${fmt(ryw.readP50Ms, 2)} / p99 ${fmt(ryw.readP99Ms, 2)} ms, stale ${ryw.stale}, on replicas ${ryw.readsOnReplicas}; mixed: ${fmt((100 * mix.readsOnReplicas) / Math.max(1, mix.reads), 1)} % reads on replicas, stale ${mix.stale}`,
            );
          } finally {
            await p.target.stop();
          }
        }
      }
      results.cells = cells;
      report.push(
        `\n### Read right after a write (1 client, ${RYW_ITERATIONS} × UPDATE … RETURNING then SELECT of the row) and a mixed workload (${MIXED_CLIENTS} clients, ${MIXED_SECONDS} s, 90 % reads / 10 % writes, session scope unless noted)\n`,
        markdownTable(
          [
            'apply delay',
            'policy',
            'read-after-write p50 ms',
            'p99 ms',
            'on replica',
            'stale',
            'write p50 ms',
            'decisions (read-after-write)',
            'mixed: reads on replicas',
            'mixed: stale',
            'mixed: ops/s',
            'mixed: read p50 / p99 ms',
          ],
          cells.map((c) => {
            const r = c.ryw as RywResult;
            const m = c.mixed as MixedResult;
            return [
              `${c.delayMs} ms`,
              String(c.variant),
              fmt(r.readP50Ms, 2),
              fmt(r.readP99Ms, 2),
              `${r.readsOnReplicas}/${r.iterations}`,
              String(r.stale),
              fmt(r.writeP50Ms, 2),
              fmtDecisions(r.decisions),
              `${fmt((100 * m.readsOnReplicas) / Math.max(1, m.reads), 1)} % of ${fmtInt(m.reads)}`,
              String(m.stale),
              fmtInt(m.opsPerS),
              `${fmt(m.readP50Ms, 2)} / ${fmt(m.readP99Ms, 2)}`,
            ];
          }),
          ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l', 'r', 'r', 'r', 'r'],
        ),
      );
    } finally {
      await setApplyDelay(ctx, 0).catch(() => {});
      await setSynchronousCommit(ctx, 'off').catch(() => {});
    }

    const m = meta();
    m.notes.push(
      `pgnear: pool_mode transaction, pool_size ${o.poolSize}, region ${REGION} (replicas ams, syd; primary iad), routing defaults unless noted (consistency session, lsn_policy fastest, max_wait 1s, monitor_interval 250ms).`,
      'synchronous_commit = on on the primary for this scenario (ALTER SYSTEM), so a committed write is flushed and streamable at once; restored to off at the end.',
      'Apply delay: recovery_min_apply_delay on both replicas via ALTER SYSTEM + pg_reload_conf().',
      'Stale read: a read that returned a value older than the value the same client wrote before it (own row).',
    );
    const md = `# routing\n\n${m.notes.map((n) => `- ${n}`).join('\n')}\n\n${report.join('\n')}\n`;
    writeFileSync(join(ctx.resultsDir, 'results.json'), JSON.stringify({ meta: m, results }, null, 2));
    writeFileSync(join(ctx.resultsDir, 'report.md'), md);
    process.stdout.write(`\n${report.join('\n')}\n`);
  },
};
