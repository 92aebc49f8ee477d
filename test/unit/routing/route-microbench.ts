// Micro-measurement (not a test): ns/op of warm analyze()+route(), route() alone, parseHints and a warm fingerprint.
// Run: npx tsx test/unit/routing/route-microbench.ts  — numbers go into the header of src/routing/router.ts.
import { fingerprint } from '../../../src/routing/fingerprint.js';
import { parseHints } from '../../../src/routing/hints.js';
import { route, type RouteInput, type RouteNode, type RouterConfig } from '../../../src/routing/router.js';
import { initSqlAnalysis, SqlAnalyzer } from '../../../src/routing/sql-analysis.js';

const replica = (name: string, region: string, busy: number, rttMs: number): RouteNode => ({
  name,
  role: 'replica',
  region,
  healthy: true,
  verified: true,
  replayLsn: 1000n,
  lagBytes: 10,
  lagMs: 1,
  rttMs,
  replayRate: 1e6,
  busy,
});
const nodes = {
  primary: { ...replica('p', 'iad', 0, 80), role: 'primary' as const },
  replicas: [replica('a1', 'ams', 1, 1), replica('a2', 'ams', 0, 2), replica('f', 'fra', 0, 15)],
};
const cfg: RouterConfig = {
  region: 'ams',
  maxLagBytes: 1e6,
  maxLagMs: 1e4,
  policy: 'fastest',
  maxWaitMs: 1000,
  transactions: 'read_only_to_replica',
};
const base: RouteInput = {
  write: false,
  inTransaction: false,
  txnReadOnly: false,
  hint: null,
  sessionRoute: 'auto',
  rule: null,
  minLsn: null,
  knownWrite: false,
};

function bench(name: string, n: number, f: (i: number) => unknown): void {
  let sink = 0;
  for (let i = 0; i < n / 10; i++) sink += f(i) ? 1 : 0; // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += f(i) ? 1 : 0;
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`${name.padEnd(44)} ${ns.toFixed(1).padStart(8)} ns/op  (${sink > 0 ? 'ok' : '-'})`);
}

await initSqlAnalysis();
const analyzer = new SqlAnalyzer();
const texts = [
  'SELECT id, name, email FROM users WHERE id = $1',
  'SELECT o.id, o.total FROM orders o WHERE o.user_id = $1 ORDER BY o.created_at DESC LIMIT 20',
  'UPDATE users SET last_seen = now() WHERE id = $1',
  '/* app=web,route=/home */ SELECT count(*) FROM sessions WHERE user_id = $1',
];
const N = 2_000_000;
for (let round = 0; round < 2; round++) {
  bench('analyze+hints+route (plain read/write)', N, (i) => {
    const sql = texts[i & 3];
    const a = analyzer.analyze(sql);
    return route({ ...base, write: a.write, hint: parseHints(sql) }, nodes, cfg);
  });
  bench('analyze+hints+route (minLsn, caught up)', N, (i) => {
    const sql = texts[i & 1];
    const a = analyzer.analyze(sql);
    return route({ ...base, write: a.write, hint: parseHints(sql), minLsn: 900n }, nodes, cfg);
  });
  bench('route only (read)', N, () => route(base, nodes, cfg));
  bench('route only (minLsn behind, fastest)', N / 4, () => route({ ...base, minLsn: 2000n }, nodes, cfg));
  bench('parseHints, no comment', N, (i) => parseHints(texts[i & 1]) === null);
  bench('parseHints, comment without hint', N, () => parseHints(texts[3]) === null);
  bench('parseHints, /* pgnear:replica */', N, () => parseHints('/* pgnear:replica */ SELECT 1'));
  bench('fingerprint, warm', N, (i) => fingerprint(texts[i & 3]));
}
