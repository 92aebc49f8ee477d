// Benchmark CLI: `npm run bench -- <scenario> [options]` — cluster, targets, scenario, results, cleanup.
import { spawnSync } from 'node:child_process';
import { chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { installSignalCleanup, isInterrupted, onCleanup, runCleanups } from './lib/cleanup.js';
import { benchConf, loadPgbench, startBenchCluster } from './lib/cluster.js';
import type { BenchContext, BenchOptions, Log, PgbenchMode } from './lib/context.js';
import type { RunMeta } from './lib/report.js';
import { SCENARIOS } from './scenarios/index.js';
import { TARGETS } from './targets/index.js';
import { pgOwner } from './targets/types.js';

const DEFAULTS: Omit<BenchOptions, 'scenario'> = {
  duration: 15,
  clients: [16],
  modes: ['simple', 'extended'],
  reps: 2,
  targets: ['direct', 'pgnear', 'pgbouncer', 'haproxy'],
  count: 1000,
  concurrency: 32,
  threads: 2,
  scale: 10,
  warmup: 3,
  pgnearPoolMode: 'session',
  poolSize: 20,
  maxNoise: 15,
  quietWait: 10,
  verbose: false,
};

const USAGE = `pgnear bench

Usage: npm run bench -- <scenario> [options]

Scenarios:
${Object.values(SCENARIOS)
  .map((s) => `  ${s.name.padEnd(14)} ${s.summary}`)
  .join('\n')}

Options:
  --duration S          seconds per measured run (default 15; idle-clients: per latency phase, 10)
  --clients 16,64       pgbench client counts (default 16)
  --modes simple,extended,prepared   pgbench -M modes (default simple,extended)
  --reps N              repetitions per cell, targets alternating A B C A B C (default 2)
  --targets LIST        ${Object.keys(TARGETS).join(',')} (default direct,pgnear,pgbouncer,haproxy;
                        idle-clients: pgnear,pgbouncer; read-heavy: direct,pgnear,pgpool,pgbouncer)
  --count N             idle-clients / idle-10k: idle connections to open (default 1000 / 10000);
                        big-result: rows of 1 kB in the result (default 200000, ≈ 202 MB)
  --concurrency N       idle-clients / idle-10k: connections opened at once (default 32 / 200)
  --threads N           pgbench -j (default 2, capped at the client count)
  --scale N             pgbench -i scale (default 10)
  --warmup S            unmeasured seconds per target before the first run (default 3, 0 = none)
  --pgnear-pool-mode M  session | transaction (default: session; pooling, idle-10k, tpcb, connect-storm,
                        big-result: transaction)
  --pool-size N         transaction pool size, pgnear pool.pool_size and PgBouncer's tx pool (default 20)
  --max-noise PCT       flag runs where unrelated CPU exceeded PCT % of a core (default 15)
  --quiet-wait S        before each run, wait up to S s for unrelated CPU under --max-noise (default 10, 0 = off)
  --out DIR             results directory (default bench/results/<time>-<scenario>)
  --verbose             cluster start-up details
`;

/** The commit the bench runs from, "+dirty" when src/ has local changes; "unknown" outside a git checkout. */
function checkoutId(): string {
  const git = (...a: string[]) => spawnSync('git', a, { cwd: import.meta.dirname, encoding: 'utf8' });
  const head = git('rev-parse', '--short', 'HEAD');
  if (head.status !== 0) return 'unknown';
  const dirty = git('status', '--porcelain', '--', '../src').stdout.trim() !== '';
  return `${head.stdout.trim()}${dirty ? '+dirty' : ''}`;
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
function posInt(name: string, s: string, min = 1): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer ≥ ${min}, got "${s}"`);
  return n;
}

function parseOptions(argv: string[]): { opts: BenchOptions; out?: string } | null {
  const { values: v, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      duration: { type: 'string' },
      clients: { type: 'string' },
      modes: { type: 'string' },
      reps: { type: 'string' },
      targets: { type: 'string' },
      count: { type: 'string' },
      concurrency: { type: 'string' },
      threads: { type: 'string' },
      scale: { type: 'string' },
      warmup: { type: 'string' },
      'pgnear-pool-mode': { type: 'string' },
      'pool-size': { type: 'string' },
      'max-noise': { type: 'string' },
      'quiet-wait': { type: 'string' },
      out: { type: 'string' },
      verbose: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const name = positionals[0];
  if (v.help || !name) return null;
  const sc = SCENARIOS[name];
  if (!sc) throw new Error(`unknown scenario "${name}" (known: ${Object.keys(SCENARIOS).join(', ')})`);
  const base: BenchOptions = { ...DEFAULTS, ...sc.defaults, scenario: name };
  const modes = v.modes ? list(v.modes) : base.modes;
  for (const m of modes)
    if (!['simple', 'extended', 'prepared'].includes(m)) throw new Error(`--modes: unknown mode "${m}"`);
  const pm = v['pgnear-pool-mode'] ?? base.pgnearPoolMode;
  if (pm !== 'session' && pm !== 'transaction')
    throw new Error(`--pgnear-pool-mode: session or transaction, got "${pm}"`);
  const opts: BenchOptions = {
    ...base,
    duration: v.duration ? posInt('duration', v.duration) : base.duration,
    clients: v.clients ? list(v.clients).map((c) => posInt('clients', c)) : base.clients,
    modes: modes as PgbenchMode[],
    reps: v.reps ? posInt('reps', v.reps) : base.reps,
    targets: v.targets ? list(v.targets) : base.targets,
    count: v.count ? posInt('count', v.count) : base.count,
    concurrency: v.concurrency ? posInt('concurrency', v.concurrency) : base.concurrency,
    threads: v.threads ? posInt('threads', v.threads) : base.threads,
    scale: v.scale ? posInt('scale', v.scale) : base.scale,
    warmup: v.warmup ? posInt('warmup', v.warmup, 0) : base.warmup,
    pgnearPoolMode: pm,
    poolSize: v['pool-size'] ? posInt('pool-size', v['pool-size']) : base.poolSize,
    maxNoise: v['max-noise'] ? posInt('max-noise', v['max-noise'], 0) : base.maxNoise,
    quietWait: v['quiet-wait'] ? posInt('quiet-wait', v['quiet-wait'], 0) : base.quietWait,
    verbose: Boolean(v.verbose),
  };
  for (const t of opts.targets)
    if (!TARGETS[t]) throw new Error(`--targets: unknown target "${t}" (known: ${Object.keys(TARGETS).join(', ')})`);
  return { opts, out: v.out };
}

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(argv);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!parsed) {
    process.stdout.write(USAGE);
    return argv.includes('--help') || argv.includes('-h') ? 0 : 2;
  }
  const { opts } = parsed;
  const scenario = SCENARIOS[opts.scenario]!;
  const t0 = Date.now();
  const log: Log = (msg, verbose) => {
    if (verbose && !opts.verbose) return;
    process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
  };
  installSignalCleanup();

  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/\.\d+Z$/, '').replace(/:/g, '-');
  const resultsDir = resolve(parsed.out ?? join(import.meta.dirname, 'results', `${stamp}-${opts.scenario}`));
  const configDir = join(resultsDir, 'configs');
  mkdirSync(configDir, { recursive: true });
  const runtimeDir = mkdtempSync(join(tmpdir(), 'pgnear-bench-'));
  const owner = pgOwner();
  if (owner) chownSync(runtimeDir, owner.uid, owner.gid);
  onCleanup('remove runtime dir', () => {
    // Keep the proxies' logs with the results.
    const logs = join(resultsDir, 'logs');
    for (const f of readdirSync(runtimeDir).filter((x) => x.endsWith('.log'))) {
      mkdirSync(logs, { recursive: true });
      cpSync(join(runtimeDir, f), join(logs, f));
    }
    rmSync(runtimeDir, { recursive: true, force: true });
  });
  const loadAtStart = loadavg();

  try {
    // Ask every requested target now, before the cluster starts: a missing peer (PgBouncer, Pgpool-II, HAProxy) is
    // apt-get installed here, not in the middle of a measurement. The answer is memoized; scenarios skip (and say
    // why) whatever is still unavailable when they resolve their targets.
    for (const t of opts.targets) TARGETS[t]!.unavailable();
    const maxConnections = scenario.maxConnections(opts);
    const cluster = await startBenchCluster({ maxConnections, scale: opts.scale, log });
    const conf = { ...benchConf(maxConnections), synchronous_commit: 'off' };
    writeFileSync(
      join(configDir, 'postgresql.bench.conf'),
      `${Object.entries(conf)
        .map(([k, val]) => `${k} = ${val}`)
        .join('\n')}\n`,
    );
    if (scenario.needsPgbenchData) await loadPgbench(cluster, opts.scale, log);
    const ctx: BenchContext = { opts, cluster, resultsDir, configDir, runtimeDir, log };
    const build = checkoutId();
    const meta = (): RunMeta => ({
      scenario: opts.scenario,
      startedAt,
      finishedAt: new Date().toISOString(),
      host: { cpus: cpus().length, node: process.version, loadavgAtStart: loadAtStart },
      build,
      options: opts,
      cluster: { conf, primaryPort: cluster.primary.port, replicas: cluster.replicas.length },
      notes: [
        `This machine (${cpus().length} CPUs) is shared and noisy: pgbench, 3 postmasters and the proxy share it; use same-run ratios.`,
        'All targets in clear text (PGSSLMODE=disable); clients authenticate with SCRAM-SHA-256 as the superuser.',
        `Built from ${build}${process.env.BENCH_PGNEAR_MAIN ? ` (pgnear from BENCH_PGNEAR_MAIN=${process.env.BENCH_PGNEAR_MAIN})` : ''}.`,
      ],
    });
    await scenario.run(ctx, meta);
    return 0;
  } catch (e) {
    if (isInterrupted()) return 130;
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    return 1;
  } finally {
    log('cleaning up (proxies, cluster)…');
    await runCleanups();
    if (existsSync(resultsDir)) log(`done; results in ${resultsDir}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench: fatal: ${(e as Error)?.stack ?? e}\n`);
    void runCleanups().finally(() => process.exit(1));
  },
);
