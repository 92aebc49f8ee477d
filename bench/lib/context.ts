// Types shared by the runner, targets and scenarios: parsed options, the run context, the logger.
import type { LocalCluster } from '../../src/devcluster/cluster.js';

/** Progress lines go to stderr; `verbose` ones only with --verbose. */
export type Log = (msg: string, verbose?: boolean) => void;

export type PgbenchMode = 'simple' | 'extended' | 'prepared';

export interface BenchOptions {
  scenario: string;
  /** Seconds per measured run. */
  duration: number;
  clients: number[];
  modes: PgbenchMode[];
  reps: number;
  targets: string[];
  /** idle-clients: how many idle connections. */
  count: number;
  /** idle-clients / idle-10k: connections opened at once. */
  concurrency: number;
  /** pgbench -j (capped at the client count). */
  threads: number;
  /** pgbench -i scale. */
  scale: number;
  /** Seconds of unmeasured pgbench per target before the first cell (0 = none). */
  warmup: number;
  /** pgnear pool_mode (the harness sets it explicitly; the scenario picks the default). */
  pgnearPoolMode: 'session' | 'transaction';
  /** Transaction-pool size: pgnear `pool.pool_size` and PgBouncer's transaction pool (default 20). */
  poolSize: number;
  /** Flag runs where unrelated CPU used more than this % of one core. */
  maxNoise: number;
  /** Before each run, wait up to this many seconds for unrelated CPU to drop under maxNoise (0 = never). */
  quietWait: number;
  verbose: boolean;
}

export interface BenchContext {
  opts: BenchOptions;
  cluster: LocalCluster;
  /** bench/results/<stamp>-<scenario>/: results, report, chart and the generated configs. */
  resultsDir: string;
  /** Where generated configs are saved (redacted copies) for the record. */
  configDir: string;
  /** Temp dir owned by the postgres user, removed at the end: live configs, pid and log files. */
  runtimeDir: string;
  log: Log;
}
