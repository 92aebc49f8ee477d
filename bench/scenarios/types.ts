// The scenario contract: defaults, what the cluster needs, and a run that writes its own results.
import type { BenchContext, BenchOptions } from '../lib/context.js';
import type { RunMeta } from '../lib/report.js';

export interface Scenario {
  name: string;
  /** One line for --help. */
  summary: string;
  /** Defaults over the global ones, for options not given on the command line. */
  defaults?: Partial<BenchOptions>;
  /** Whether `pgbench -i` data is needed (loaded once on the primary, replicated). */
  needsPgbenchData: boolean;
  /** max_connections the cluster needs for these options. */
  maxConnections(o: BenchOptions): number;
  /** Run the scenario; `meta()` gives the run metadata to store with the results. */
  run(ctx: BenchContext, meta: () => RunMeta): Promise<void>;
}
