// Scenario pooling (issue 3): pgbench -S at c=64 through pgnear's transaction pool vs PgBouncer vs direct,
// with per-run p99 latency (from pgbench's per-transaction log) and failed transactions.
import { runPgbenchMatrix } from '../lib/matrix.js';
import { writeMatrixReport } from '../lib/report.js';
import type { Scenario } from './types.js';

export const pooling: Scenario = {
  name: 'pooling',
  summary:
    'pgbench -S c=64 -M prepared,simple: pgnear tx pool 20 vs PgBouncer (tx pool 20; session for prepared) vs direct; p99',
  defaults: {
    clients: [64],
    modes: ['prepared', 'simple'],
    targets: ['direct', 'pgnear', 'pgbouncer'],
    pgnearPoolMode: 'transaction',
  },
  needsPgbenchData: true,
  // Transaction pools hold 20 servers; PgBouncer's session alias (prepared) and direct hold one per client.
  maxConnections: (o) => Math.max(400, 2 * Math.max(...o.clients) + 50),
  async run(ctx, meta) {
    const result = await runPgbenchMatrix(ctx, { name: 'pooling', script: ['-S'], latencyLog: true });
    const m = meta();
    m.notes.push(
      `pgnear: pool_mode ${ctx.opts.pgnearPoolMode}, pool.pool_size ${ctx.opts.poolSize}. PgBouncer 1.18: -M simple/extended ` +
        `through its transaction pool (default_pool_size ${ctx.opts.poolSize}); -M prepared through its session pool ` +
        `(1.18 has no max_prepared_statements), one server per client.`,
      'p50/p99: over every transaction of the run from pgbench -l (per-transaction log), median over reps.',
    );
    writeMatrixReport(ctx, m, result);
  },
};
