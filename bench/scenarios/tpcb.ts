// Scenario tpcb (issue 5): pgbench's default TPC-B-like script (BEGIN; 3 UPDATEs, a SELECT, an INSERT; END) —
// multi-statement write transactions through pgnear's transaction pool vs PgBouncer vs HAProxy vs direct.
import { runPgbenchMatrix } from '../lib/matrix.js';
import { writeMatrixReport } from '../lib/report.js';
import type { Scenario } from './types.js';

export const tpcb: Scenario = {
  name: 'tpcb',
  summary:
    'pgbench default TPC-B script c=16 -M simple,prepared: pgnear tx pool 20 vs PgBouncer (tx 20; session for prepared) vs HAProxy vs direct; p50/p99',
  defaults: {
    clients: [16],
    modes: ['simple', 'prepared'],
    targets: ['direct', 'pgnear', 'pgbouncer', 'haproxy'],
    pgnearPoolMode: 'transaction',
  },
  needsPgbenchData: true,
  // Transaction pools hold 20 servers; PgBouncer's session alias (prepared), HAProxy and direct hold one per client.
  maxConnections: (o) => Math.max(400, 2 * Math.max(...o.clients) + 50),
  async run(ctx, meta) {
    // No workload flag: pgbench's built-in "tpcb-like" script.
    const result = await runPgbenchMatrix(ctx, { name: 'tpcb', script: [], latencyLog: true });
    const m = meta();
    m.notes.push(
      "Workload: pgbench's built-in tpcb-like script (BEGIN; UPDATE pgbench_accounts; SELECT abalance; UPDATE pgbench_tellers; " +
        `UPDATE pgbench_branches; INSERT INTO pgbench_history; END), scale ${ctx.opts.scale} (so ${ctx.opts.scale} branch rows: ` +
        'the branch UPDATE is a lock hot spot at c=16 on every target alike).',
      `pgnear: pool_mode ${ctx.opts.pgnearPoolMode}, pool.pool_size ${ctx.opts.poolSize}. PgBouncer 1.18: -M simple/extended ` +
        `through its transaction pool (default_pool_size ${ctx.opts.poolSize}); -M prepared through its session pool ` +
        '(1.18 has no max_prepared_statements), one server per client. HAProxy: tcp, one server per client.',
      'p50/p99: over every transaction of the run from pgbench -l (per-transaction log), median over reps.',
    );
    writeMatrixReport(ctx, m, result);
  },
};
