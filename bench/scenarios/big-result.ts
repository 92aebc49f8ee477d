// Scenario big-result (issue 5): one ~200 MB result through each target — MB/s, ratio to direct and PgBouncer, and
// the proxy's peak RSS while it streams (does it apply backpressure, or buffer the result?).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isInterrupted } from '../lib/cleanup.js';
import type { BenchContext } from '../lib/context.js';
import { CLK_TCK, machineTicks, rssKiB, selfTicks, treeCpuTicks, waitForQuiet } from '../lib/proc.js';
import { cstr, errorText, message, type RawConn, rawConnect } from '../lib/rawclient.js';
import { markdownTable } from '../lib/report.js';
import { fmt, fmtInt, max, median, min } from '../lib/stats.js';
import { resolveTargets, type Target } from '../targets/index.js';
import type { Scenario } from './types.js';

/** Bytes of `repeat('x', ROW_BYTES)` per row; `--count` rows (default 200,000: ≈ 202 MB of DataRows). */
const ROW_BYTES = 1000;
/** Read rate of the throttled client ("select-slow"): a consumer slower than the server. */
const SLOW_MB_PER_S = 50;
/** RSS sampling period of the proxy process during a transfer. */
const RSS_SAMPLE_MS = 100;
const TRANSFER_TIMEOUT_MS = 300_000;

interface Shape {
  name: string;
  what: string;
  sql: (rows: number) => string;
  /** Client read rate limit (bytes/s), or none: read as fast as possible. */
  rate?: number;
}

const select = (rows: number) => `select repeat('x', ${ROW_BYTES}) from generate_series(1, ${rows})`;
const SHAPES: Shape[] = [
  { name: 'select', what: 'simple-query SELECT, DataRow per row, client reads at full speed', sql: select },
  {
    name: 'copy',
    what: 'COPY (SELECT …) TO STDOUT, CopyData per row, client reads at full speed',
    sql: (rows) => `copy (${select(rows)}) to stdout`,
  },
  {
    name: 'select-slow',
    what: `the same SELECT, client reads at ${SLOW_MB_PER_S} MB/s (pauses its socket): backpressure through the proxy`,
    sql: select,
    rate: SLOW_MB_PER_S * 1e6,
  },
];

interface Discarded {
  /** Bytes received from the query until ReadyForQuery (wire bytes, headers included). */
  bytes: number;
  /** DataRow / CopyData messages. */
  rows: number;
  seconds: number;
  ttfbMs: number | null;
}

/**
 * Send one simple Query on a logged-in raw connection and discard the response while counting bytes and rows; only
 * message headers are read (5 bytes each), so the client costs little next to the proxy. With `rate`, the socket
 * is paused whenever the client is ahead of it, so the sender sees TCP backpressure.
 */
function queryAndDiscard(conn: RawConn, sql: string, rate?: number): Promise<Discarded> {
  const s = conn.socket;
  s.removeAllListeners('data');
  return new Promise((resolve, reject) => {
    let bytes = 0;
    let rows = 0;
    let need = 0; // body bytes of the current message still to skip
    let hlen = 0;
    const hdr = Buffer.alloc(5);
    let err: Buffer | null = null;
    let errOff = 0;
    let ttfbMs: number | null = null;
    let settled = false;
    const t0 = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - t0) / 1e9;
    const finish = (e: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.removeListener('close', onClose);
      s.removeAllListeners('data');
      s.on('data', () => {});
      s.resume();
      if (e) reject(e);
      else resolve({ bytes, rows, seconds: elapsed(), ttfbMs });
    };
    const timer = setTimeout(() => {
      finish(new Error(`no ReadyForQuery after ${TRANSFER_TIMEOUT_MS} ms (${bytes} bytes received)`));
      s.destroy();
    }, TRANSFER_TIMEOUT_MS);
    const onClose = () => finish(new Error(`connection closed after ${bytes} bytes`));
    s.once('close', onClose);
    s.on('data', (chunk: Buffer) => {
      ttfbMs ??= elapsed() * 1000;
      bytes += chunk.length;
      const n = chunk.length;
      let i = 0;
      while (i < n) {
        if (need > 0) {
          const k = Math.min(need, n - i);
          if (err) {
            chunk.copy(err, errOff, i, i + k);
            errOff += k;
          }
          i += k;
          need -= k;
          if (need === 0 && err) return finish(new Error(errorText(err)));
          continue;
        }
        const k = Math.min(5 - hlen, n - i);
        chunk.copy(hdr, hlen, i, i + k);
        hlen += k;
        i += k;
        if (hlen < 5) break;
        hlen = 0;
        const type = hdr[0]!;
        need = hdr.readInt32BE(1) - 4;
        if (type === 0x44 /* D */ || type === 0x64 /* d */) rows++;
        else if (type === 0x45 /* E */) {
          err = Buffer.alloc(need);
          errOff = 0;
          if (need === 0) return finish(new Error('ErrorResponse'));
        } else if (type === 0x5a /* Z */) return finish(err ? new Error(errorText(err)) : null);
      }
      if (rate) {
        const aheadS = bytes / rate - elapsed();
        if (aheadS > 0.002) {
          s.pause();
          setTimeout(() => s.resume(), aheadS * 1000);
        }
      }
    });
    s.write(message('Q', cstr(sql)));
  });
}

interface TransferRun {
  shape: string;
  rep: number;
  target: string;
  variant: string;
  bytes: number | null;
  rows: number | null;
  seconds: number | null;
  mbPerS: number | null;
  ttfbMs: number | null;
  /** Proxy VmRSS right before the query, the highest sample during it, and samples taken. */
  rssStartKiB: number | null;
  rssPeakKiB: number | null;
  rssSamples: number;
  proxyCpuS: number | null;
  postgresCpuS: number | null;
  harnessCpuS: number | null;
  /** Unrelated busy CPU during the transfer, % of one core. */
  otherPct: number | null;
  noisy: boolean;
  error?: string;
}

async function transfer(ctx: BenchContext, t: Target, shape: Shape, rows: number, rep: number): Promise<TransferRun> {
  const rec: TransferRun = {
    shape: shape.name,
    rep,
    target: t.name,
    variant: t.variant('simple'),
    bytes: null,
    rows: null,
    seconds: null,
    mbPerS: null,
    ttfbMs: null,
    rssStartKiB: null,
    rssPeakKiB: null,
    rssSamples: 0,
    proxyCpuS: null,
    postgresCpuS: null,
    harnessCpuS: null,
    otherPct: null,
    noisy: false,
  };
  const dead = t.deathNote?.();
  if (dead) {
    rec.error = dead;
    return rec;
  }
  let conn: RawConn | null = null;
  try {
    conn = await rawConnect({
      host: '127.0.0.1',
      port: t.port,
      user: 'postgres',
      database: t.database('simple'),
      password: ctx.cluster.superuser.password,
    });
    const pgRoots = ctx.cluster.nodes.map((n) => n.pid()).filter((p): p is number => p !== undefined);
    const rss = () => (t.mainPid ? rssKiB(t.mainPid) : null);
    rec.rssStartKiB = rss();
    let peak = rec.rssStartKiB;
    const sampler = setInterval(() => {
      const v = rss();
      rec.rssSamples++;
      if (v != null && (peak == null || v > peak)) peak = v;
    }, RSS_SAMPLE_MS);
    const b0 = {
      pg: treeCpuTicks(pgRoots),
      proxy: treeCpuTicks(t.pids()),
      me: selfTicks().self,
      m: machineTicks().busy,
      t: process.hrtime.bigint(),
    };
    let r: Discarded;
    try {
      r = await queryAndDiscard(conn, shape.sql(rows), shape.rate);
    } finally {
      clearInterval(sampler);
    }
    const v = rss();
    if (v != null && (peak == null || v > peak)) peak = v;
    const sec = (ticks: number) => ticks / CLK_TCK;
    const windowS = Number(process.hrtime.bigint() - b0.t) / 1e9;
    const pgS = sec(treeCpuTicks(pgRoots) - b0.pg);
    const proxyS = sec(treeCpuTicks(t.pids()) - b0.proxy);
    const meS = sec(selfTicks().self - b0.me);
    const busyS = sec(machineTicks().busy - b0.m);
    if (r.rows !== rows) throw new Error(`expected ${rows} rows, got ${r.rows}`);
    Object.assign(rec, {
      bytes: r.bytes,
      rows: r.rows,
      seconds: r.seconds,
      mbPerS: r.bytes / 1e6 / r.seconds,
      ttfbMs: r.ttfbMs,
      rssPeakKiB: peak,
      proxyCpuS: t.pids().length ? proxyS : null,
      postgresCpuS: pgS,
      harnessCpuS: meS,
      otherPct: (100 * Math.max(0, busyS - pgS - proxyS - meS)) / windowS,
    });
    rec.noisy = (rec.otherPct ?? 0) > ctx.opts.maxNoise;
  } catch (e) {
    if (isInterrupted()) throw new Error('interrupted');
    rec.error = (e as Error).message;
    const died = t.deathNote?.();
    if (died) rec.error += `\n${died}`;
  } finally {
    await conn?.close();
  }
  return rec;
}

interface ShapeSummary {
  shape: string;
  target: string;
  variant: string;
  n: number;
  mbPerS: { median: number; min: number; max: number } | null;
  seconds: number | null;
  ttfbMs: number | null;
  xDirect: number | null;
  xPgbouncer: number | null;
  rssStartKiB: number | null;
  /** Highest peak over the reps. */
  rssPeakKiB: number | null;
  proxyCores: number | null;
  proxyCpuSPerGB: number | null;
  otherPct: number | null;
  noisyRuns: number;
  errors: number;
}

function summarize(runs: TransferRun[], targets: string[]): ShapeSummary[] {
  const out: ShapeSummary[] = [];
  const nums = (xs: (number | null)[]) => xs.filter((x): x is number => x != null);
  for (const shape of [...new Set(runs.map((r) => r.shape))]) {
    for (const t of targets) {
      const rs = runs.filter((r) => r.shape === shape && r.target === t);
      if (rs.length === 0) continue;
      const good = rs.filter((r) => r.mbPerS != null);
      const mb = good.map((r) => r.mbPerS!);
      const ratio = (ref: string) =>
        nums(
          good.map((r) => {
            const b = runs.find((x) => x.shape === shape && x.rep === r.rep && x.target === ref)?.mbPerS;
            return b ? r.mbPerS! / b : null;
          }),
        );
      const cores = nums(good.map((r) => (r.proxyCpuS != null ? r.proxyCpuS / r.seconds! : null)));
      const perGB = nums(good.map((r) => (r.proxyCpuS != null ? r.proxyCpuS / (r.bytes! / 1e9) : null)));
      const peaks = nums(good.map((r) => r.rssPeakKiB));
      out.push({
        shape,
        target: t,
        variant: rs[0]!.variant,
        n: good.length,
        mbPerS: mb.length ? { median: median(mb)!, min: min(mb), max: max(mb) } : null,
        seconds: median(nums(good.map((r) => r.seconds))),
        ttfbMs: median(nums(good.map((r) => r.ttfbMs))),
        xDirect: t === 'direct' ? (good.length ? 1 : null) : median(ratio('direct')),
        xPgbouncer: median(ratio('pgbouncer')),
        rssStartKiB: median(nums(good.map((r) => r.rssStartKiB))),
        rssPeakKiB: peaks.length ? max(peaks) : null,
        proxyCores: median(cores),
        proxyCpuSPerGB: median(perGB),
        otherPct: median(nums(good.map((r) => r.otherPct))),
        noisyRuns: rs.filter((r) => r.noisy).length,
        errors: rs.filter((r) => r.error).length,
      });
    }
  }
  return out;
}

function table(summary: ShapeSummary[]): string {
  const mib = (k: number | null) => (k == null ? '–' : (k / 1024).toFixed(1));
  const head = [
    'shape',
    'target',
    'pooling',
    'MB/s',
    'min–max',
    's',
    'first byte ms',
    '×direct',
    '×PgBouncer',
    'proxy RSS before MiB',
    'peak RSS MiB',
    'peak − before MiB',
    'proxy cores',
    'proxy CPU-s/GB',
    'other %',
    'n',
  ];
  const rows = summary.map((s) => [
    s.shape,
    s.target,
    s.variant,
    fmt(s.mbPerS?.median, 1),
    s.mbPerS ? `${fmt(s.mbPerS.min, 1)}–${fmt(s.mbPerS.max, 1)}` : '–',
    fmt(s.seconds, 2),
    fmt(s.ttfbMs, 1),
    fmt(s.xDirect, 2),
    s.target === 'pgbouncer' ? (s.xPgbouncer == null ? '–' : '1') : fmt(s.xPgbouncer, 2),
    mib(s.rssStartKiB),
    mib(s.rssPeakKiB),
    s.rssPeakKiB != null && s.rssStartKiB != null ? mib(s.rssPeakKiB - s.rssStartKiB) : '–',
    fmt(s.proxyCores, 2),
    fmt(s.proxyCpuSPerGB, 2),
    `${fmt(s.otherPct, 0)}${s.noisyRuns ? ` (${s.noisyRuns} noisy)` : ''}`,
    `${s.n}${s.errors ? ` (${s.errors} errors)` : ''}`,
  ]);
  return markdownTable(head, rows, ['l', 'l', 'l', ...head.slice(3).map(() => 'r' as const)]);
}

export const bigResult: Scenario = {
  name: 'big-result',
  summary:
    'one ~200 MB result (--count rows × 1 kB) per target: MB/s, ratios to direct / PgBouncer, proxy peak RSS (select, copy, slow reader)',
  defaults: {
    targets: ['direct', 'pgnear', 'pgbouncer', 'haproxy'],
    pgnearPoolMode: 'transaction',
    count: 200_000,
    reps: 3,
  },
  needsPgbenchData: false,
  maxConnections: () => 400,
  async run(ctx, meta) {
    const o = ctx.opts;
    const factories = resolveTargets(o.targets, ctx.log);
    if (factories.length === 0) throw new Error('no target can run here');
    const started: Target[] = [];
    for (const f of factories) {
      ctx.log(`starting target ${f.name}…`);
      started.push(await f.start(ctx, { maxClients: 16 }));
    }
    const runs: TransferRun[] = [];
    try {
      if (o.warmup > 0) {
        // One unmeasured tenth-size transfer per target (JIT, pooled server connection, page cache).
        for (const t of started) {
          const w = await transfer(ctx, t, SHAPES[0]!, Math.max(1, Math.round(o.count / 10)), 0);
          if (w.error) ctx.log(`warm-up of ${t.name} failed: ${w.error.split('\n')[0]}`);
        }
      }
      const total = SHAPES.length * o.reps * started.length;
      ctx.log(
        `${total} transfers of ${fmtInt(o.count)} rows × ${ROW_BYTES} B (shapes ${SHAPES.map((s) => s.name).join(',')}, ${o.reps} rep(s), targets ${started.map((t) => t.name).join(',')})`,
      );
      let i = 0;
      for (const shape of SHAPES) {
        for (let rep = 1; rep <= o.reps; rep++) {
          for (const t of started) {
            if (isInterrupted()) throw new Error('interrupted');
            i++;
            if (o.quietWait > 0) {
              const q = await waitForQuiet(o.maxNoise, o.quietWait);
              if (q.waitedS > 1.5)
                ctx.log(
                  `waited ${q.waitedS.toFixed(0)} s for unrelated CPU to settle (last: ${q.pct.toFixed(0)} % of a core)`,
                );
            }
            const r = await transfer(ctx, t, shape, o.count, rep);
            runs.push(r);
            ctx.log(
              r.error
                ? `[${i}/${total}] ${shape.name} rep ${rep} ${t.name}: FAILED: ${r.error.split('\n').slice(0, 3).join(' | ')}`
                : `[${i}/${total}] ${shape.name} rep ${rep} ${t.name.padEnd(9)} ${fmt(r.mbPerS, 1).padStart(7)} MB/s ` +
                    `${fmt(r.seconds, 2)} s  RSS ${fmtInt(r.rssStartKiB)} → peak ${fmtInt(r.rssPeakKiB)} KiB (${r.rssSamples} samples)` +
                    `  cpu-s: proxy ${fmt(r.proxyCpuS, 2)} pg ${fmt(r.postgresCpuS, 2)} client ${fmt(r.harnessCpuS, 2)} other ${fmt(r.otherPct, 0)} %${r.noisy ? '  NOISY' : ''}`,
            );
          }
        }
      }
    } finally {
      for (const t of [...started].reverse()) await t.stop();
    }
    const summary = summarize(
      runs,
      started.map((t) => t.name),
    );
    const md = table(summary);
    const m = meta();
    m.notes.push(
      `Query: \`${select(o.count)}\` (≈ ${fmtInt(((ROW_BYTES + 11) * o.count) / 1e6)} MB of DataRows), sent by a raw wire-protocol client ` +
        '(SCRAM login, one simple Query, response discarded: only the 5-byte message headers are parsed). One fresh connection per transfer.',
      ...SHAPES.map((s) => `Shape ${s.name}: ${s.what}.`),
      `pgnear pool_mode ${o.pgnearPoolMode} (pool ${o.poolSize}); PgBouncer through its transaction pool; HAProxy tcp. Targets alternate per rep.`,
      'MB/s: wire bytes received (10^6 B) from sending the Query to ReadyForQuery / elapsed. ×direct, ×PgBouncer: median of per-rep ratios.',
      `Peak RSS: VmRSS of the proxy process from /proc/<pid>/status, sampled every ${RSS_SAMPLE_MS} ms during the transfer (highest over reps); ` +
        'a proxy without backpressure shows the result buffered in its RSS, above all in select-slow.',
      'proxy CPU-s/GB: proxy CPU seconds per 10^9 bytes relayed. other %: unrelated busy CPU during the transfer (100 = one core).',
    );
    const report = [`# big-result — ${m.startedAt}`, '', ...m.notes.map((n) => `- ${n}`), '', md, ''].join('\n');
    writeFileSync(join(ctx.resultsDir, 'results.json'), `${JSON.stringify({ meta: m, runs, summary }, null, 2)}\n`);
    writeFileSync(join(ctx.resultsDir, 'report.md'), report);
    process.stdout.write(`\n${md}\n\nresults: ${ctx.resultsDir}\n`);
  },
};
