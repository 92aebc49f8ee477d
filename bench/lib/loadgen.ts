// Closed-loop Node load generator: N node-postgres clients each run a step in a loop for D s; HDR latency histograms.
//
// For workloads pgbench cannot express (a client's read checked against its own earlier write, per-operation kinds
// timed apart). Clients connect first (not timed), then all start together; each step's latency is recorded in the
// histogram of the kind the step returns ("read", "raw", …) and in the overall one. CPU of postgres, the proxy, this
// process and the rest of the machine is accounted over the run, as lib/pgbench.ts does for pgbench.
import hdr from 'hdr-histogram-js';
import pg from 'pg';
import { CLK_TCK, machineTicks, selfTicks, sleep, treeCpuTicks } from './proc.js';

export interface StepContext<S> {
  /** Client number, 0 … clients − 1. */
  id: number;
  client: pg.Client;
  /** What `init` returned for this client. */
  state: S;
  /** Add to a named counter (summed over clients in the result), e.g. "stale". */
  count(name: string, n?: number): void;
  /** Record an extra latency (ms) under `kind`, for a sub-operation the step timed itself. */
  record(kind: string, ms: number): void;
}

export interface LoadOptions<S> {
  clients: number;
  durationS: number;
  /** node-postgres settings of client `id` (host, port, user, password, database…). */
  config(id: number): pg.ClientConfig;
  /** Per-client state, after the client connected (e.g. its row id); not timed. */
  init?(client: pg.Client, id: number): Promise<S> | S;
  /** One operation; returns its kind (histogram name), default "op". A throw counts as an error, not timed. */
  step(s: StepContext<S>): Promise<string | void>;
  /** Process trees to account CPU for (postmasters, the proxy); omitted: no CPU accounting. */
  cpuRoots?: { postgres: number[]; proxy: number[] };
  /** Stop early when this turns true (e.g. Ctrl-C). */
  stopped?: () => boolean;
}

export interface LatencySummary {
  ops: number;
  opsPerS: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface LoadCpu {
  wallS: number;
  postgres: number;
  proxy: number;
  /** This process: the load generator's clients (and whatever else the harness did meanwhile). */
  harness: number;
  softirq: number;
  /** Busy CPU of the machine not accounted above (other tenants). */
  other: number;
}

export interface LoadResult {
  clients: number;
  wallS: number;
  ops: number;
  opsPerS: number;
  /** Steps that threw (plus failed reconnects); not in the latencies. */
  errors: number;
  /** The first few distinct error messages. */
  errorSamples: string[];
  counters: Record<string, number>;
  /** Over all successful steps. */
  latency: LatencySummary;
  /** Per kind returned by the step (and recorded with `record`). */
  byKind: Record<string, LatencySummary>;
  cpu: LoadCpu | null;
}

type Histogram = ReturnType<typeof hdr.build>;

/** Microsecond resolution, 3 significant digits, auto-resizing: the pure-JS build (no WebAssembly needed). */
const newHistogram = (): Histogram =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

function summarize(h: Histogram, wallS: number): LatencySummary {
  const ms = (us: number) => us / 1000;
  const n = h.totalCount;
  return {
    ops: n,
    opsPerS: wallS > 0 ? n / wallS : 0,
    meanMs: n ? ms(h.mean) : Number.NaN,
    p50Ms: n ? ms(h.getValueAtPercentile(50)) : Number.NaN,
    p90Ms: n ? ms(h.getValueAtPercentile(90)) : Number.NaN,
    p99Ms: n ? ms(h.getValueAtPercentile(99)) : Number.NaN,
    maxMs: n ? ms(h.maxValue) : Number.NaN,
  };
}

interface LiveClient {
  client: pg.Client;
  /** Set by the client's 'error' / 'end' events: the connection is gone and must be replaced. */
  broken: boolean;
}

async function connect(config: pg.ClientConfig): Promise<LiveClient> {
  const live: LiveClient = { client: new pg.Client(config), broken: false };
  // A server or proxy closing the socket must not crash the harness: mark it and reconnect between steps.
  live.client.on('error', () => (live.broken = true));
  live.client.on('end', () => (live.broken = true));
  await live.client.connect();
  return live;
}

/** Run the closed loop and return throughput, latencies, errors, counters and CPU. */
export async function runLoad<S>(o: LoadOptions<S>): Promise<LoadResult> {
  const all = newHistogram();
  const kinds = new Map<string, Histogram>();
  const hist = (k: string) => {
    let h = kinds.get(k);
    if (!h) kinds.set(k, (h = newHistogram()));
    return h;
  };
  const counters: Record<string, number> = {};
  const samples = new Set<string>();
  let errors = 0;
  const fail = (e: unknown) => {
    errors++;
    if (samples.size < 5)
      samples.add(
        String((e as Error)?.message ?? e)
          .split('\n')[0]!
          .slice(0, 300),
      );
  };

  // Connect everyone first (logins are not part of the measurement), then start together.
  const lives = await Promise.all(Array.from({ length: o.clients }, (_, id) => connect(o.config(id))));
  const states = await Promise.all(lives.map((l, id) => (o.init ? o.init(l.client, id) : (undefined as S))));

  const roots = o.cpuRoots;
  const before = roots && {
    pg: treeCpuTicks(roots.postgres),
    proxy: treeCpuTicks(roots.proxy),
    me: selfTicks().self,
    machine: machineTicks(),
  };
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(o.durationS * 1e9));
  await Promise.all(
    lives.map(async (live, id) => {
      const ctx: StepContext<S> = {
        id,
        client: live.client,
        state: states[id]!,
        count: (name, n = 1) => {
          counters[name] = (counters[name] ?? 0) + n;
        },
        record: (kind, ms) => hist(kind).recordValue(Math.max(1, Math.round(ms * 1000))),
      };
      for (;;) {
        const start = process.hrtime.bigint();
        if (start >= end || o.stopped?.()) break;
        if (live.broken) {
          // Replace a dropped connection (the reconnect is not timed as an operation).
          await live.client.end().catch(() => {});
          try {
            Object.assign(live, await connect(o.config(id)));
            ctx.client = live.client;
          } catch (e) {
            fail(e);
            await sleep(100);
            continue;
          }
        }
        try {
          const kind = (await o.step(ctx)) || 'op';
          const us = Math.max(1, Number(process.hrtime.bigint() - start) / 1000);
          all.recordValue(Math.round(us));
          hist(kind).recordValue(Math.round(us));
        } catch (e) {
          fail(e);
          // Keep a failing target from turning the loop into a busy spin.
          await sleep(10);
        }
      }
    }),
  );
  const tEnd = process.hrtime.bigint();
  const wallS = Number(tEnd - t0) / 1e9;
  let cpu: LoadCpu | null = null;
  if (roots && before) {
    const s = (ticks: number) => ticks / CLK_TCK;
    const m = machineTicks();
    cpu = {
      wallS,
      postgres: s(treeCpuTicks(roots.postgres) - before.pg),
      proxy: s(treeCpuTicks(roots.proxy) - before.proxy),
      harness: s(selfTicks().self - before.me),
      softirq: s(m.softirq - before.machine.softirq),
      other: 0,
    };
    const busy = s(m.busy - before.machine.busy);
    cpu.other = Math.max(0, busy - cpu.postgres - cpu.proxy - cpu.harness - cpu.softirq);
  }
  await Promise.all(lives.map((l) => l.client.end().catch(() => {})));
  const byKind: Record<string, LatencySummary> = {};
  for (const [k, h] of kinds) byKind[k] = summarize(h, wallS);
  return {
    clients: o.clients,
    wallS,
    ops: all.totalCount,
    opsPerS: all.totalCount / wallS,
    errors,
    errorSamples: [...samples],
    counters,
    latency: summarize(all, wallS),
    byKind,
    cpu,
  };
}
