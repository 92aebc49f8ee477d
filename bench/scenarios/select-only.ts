// Scenario select-only: `pgbench -S` (one primary-key SELECT per transaction) — per-message proxy overhead.
import { runPgbenchMatrix } from '../lib/matrix.js';
import { writeMatrixReport } from '../lib/report.js';
import type { Scenario } from './types.js';

export const selectOnly: Scenario = {
  name: 'select-only',
  summary: 'pgbench -S per (mode, clients), targets alternating; TPS, latency, ratios to direct and PgBouncer',
  // Transaction pooling in both pools, as issue 5's targets are stated (PgBouncer's session pool for -M prepared).
  defaults: { clients: [16], modes: ['simple', 'extended'], pgnearPoolMode: 'transaction' },
  needsPgbenchData: true,
  // One target runs at a time; leave room for the previous target's connections still closing.
  maxConnections: (o) => Math.max(400, 2 * Math.max(...o.clients) + 50),
  async run(ctx, meta) {
    // p50 / p99 from pgbench's per-transaction log: the "latency added over direct" target is a p50.
    const result = await runPgbenchMatrix(ctx, { name: 'select-only', script: ['-S'], latencyLog: true });
    writeMatrixReport(ctx, meta(), result);
  },
};
