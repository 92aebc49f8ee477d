// Scenario connect-storm (issue 5): `pgbench -C -S` — a new connection (SCRAM login) for every transaction, so
// the rate is bounded by login cost: the proxy's SCRAM and session set-up vs a Postgres backend fork.
import { runPgbenchMatrix } from '../lib/matrix.js';
import { writeMatrixReport } from '../lib/report.js';
import type { Scenario } from './types.js';

export const connectStorm: Scenario = {
  name: 'connect-storm',
  summary:
    'pgbench -C -S c=16 (new SCRAM login per transaction): pgnear tx pool 20 vs PgBouncer tx pool 20 vs HAProxy vs direct',
  defaults: {
    clients: [16],
    modes: ['simple'],
    targets: ['direct', 'pgnear', 'pgbouncer', 'haproxy'],
    pgnearPoolMode: 'transaction',
  },
  needsPgbenchData: true,
  // direct / HAProxy fork a backend per transaction; exiting backends linger briefly: leave headroom.
  maxConnections: (o) => Math.max(400, 4 * Math.max(...o.clients) + 50),
  async run(ctx, meta) {
    const result = await runPgbenchMatrix(ctx, { name: 'connect-storm', script: ['-C', '-S'], latencyLog: true });
    const m = meta();
    m.notes.push(
      'Workload: pgbench -C -S: every transaction opens a new connection (TCP + startup + SCRAM-SHA-256 as the superuser), ' +
        'runs one primary-key SELECT and disconnects. TPS is pgbench\'s "including reconnection times" figure.',
      `Pooling: pgnear pool_mode ${ctx.opts.pgnearPoolMode}, pool.pool_size ${ctx.opts.poolSize}, and PgBouncer's transaction pool ` +
        `(${ctx.opts.poolSize}) keep their server connections, so a login costs the proxy's SCRAM only; direct and HAProxy (tcp) ` +
        'fork a Postgres backend and run the server-side SCRAM for every transaction.',
      "conn ms: pgbench's average connection time. p50/p99: per-transaction latency from pgbench -l, which excludes the connection set-up.",
    );
    writeMatrixReport(ctx, m, result);
  },
};
