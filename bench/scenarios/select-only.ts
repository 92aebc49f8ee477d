// Scenario select-only: `pgbench -S` (one primary-key SELECT per transaction) — per-message proxy overhead.
import { runPgbenchMatrix } from '../lib/matrix.js';
import { writeMatrixReport } from '../lib/report.js';
import type { Scenario } from './types.js';

export const selectOnly: Scenario = {
  name: 'select-only',
  summary: 'pgbench -S per (mode, clients), targets alternating; TPS, latency, ratios to direct and PgBouncer',
  defaults: { clients: [16], modes: ['simple', 'extended'] },
  needsPgbenchData: true,
  // One target runs at a time; leave room for the previous target's connections still closing.
  maxConnections: (o) => Math.max(400, 2 * Math.max(...o.clients) + 50),
  async run(ctx, meta) {
    const result = await runPgbenchMatrix(ctx, { name: 'select-only', script: ['-S'] });
    writeMatrixReport(ctx, meta(), result);
  },
};
