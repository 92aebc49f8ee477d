// Micro-benchmarks of the routing classifier: lexical fast paths, SqlAnalyzer (cached and parsing), hints, route().
import { fingerprint } from '../../src/routing/fingerprint.js';
import { parseHints } from '../../src/routing/hints.js';
import { route, type RouteInput } from '../../src/routing/router.js';
import { CLASSIFIER_TEXTS, ROUTE_CFG, ROUTE_NODES } from '../lib/route-fixture.js';
import { initSqlAnalysis, NO_EFFECTS, SqlAnalyzer } from '../../src/routing/sql-analysis.js';
import { provablyNoSessionEffects, provablyPlainRead } from '../../src/routing/sql-fast-path.js';
import type { MicroCase } from './types.js';

const TEXTS = CLASSIFIER_TEXTS;
/** What `pgbench -S -M simple` sends: the literal changes every time, so the parse cache rarely hits. */
const SIMPLE_SELECT = 'SELECT abalance FROM pgbench_accounts WHERE aid = 73811;';
const HINTED = '/* pgnear:replica pgnear:region=ams */ SELECT abalance FROM pgbench_accounts WHERE aid = $1';
const SQLCOMMENTER = "SELECT 1 FROM t WHERE id = $1 /*controller='users',action='show',framework='rails'*/";

const NODES = ROUTE_NODES;
const CFG = ROUTE_CFG;
const input = (write: boolean, minLsn: bigint | null): RouteInput => ({
  write,
  inTransaction: false,
  txnReadOnly: false,
  hint: null,
  sessionRoute: 'auto',
  rule: null,
  minLsn,
  knownWrite: false,
  serializable: false,
});

export async function classifierCases(): Promise<MicroCase[]> {
  await initSqlAnalysis();
  const warm = new SqlAnalyzer();
  for (const t of TEXTS) warm.analyze(t);
  // Cold: every text is new; a small cache so the LRU's eviction is part of the cost, as with a full cache in prod.
  const cold = new SqlAnalyzer({ cacheSize: 100 });
  let i = 0;
  let unique = 0;
  const c = (name: string, fn: () => unknown, extra: Partial<MicroCase> = {}): MicroCase => ({
    group: 'classifier',
    name,
    fn,
    ...extra,
  });
  const readNoLsn = input(false, null);
  const readLsn = input(false, 900n);
  const write = input(true, null);
  const readBehind = input(false, 2000n);
  return [
    c('provablyPlainRead, pgbench -S simple text (true)', () => provablyPlainRead(SIMPLE_SELECT)),
    c('provablyPlainRead, UPDATE (false at the keyword)', () => provablyPlainRead(TEXTS[1])),
    c('provablyPlainRead, 8 texts round-robin', () => provablyPlainRead(TEXTS[i++ & 7])),
    c('provablyNoSessionEffects, pgbench -S simple text', () => provablyNoSessionEffects(SIMPLE_SELECT)),
    c('provablyNoSessionEffects, 8 texts round-robin', () => provablyNoSessionEffects(TEXTS[i++ & 7])),
    c('SqlAnalyzer.analyze, warm cache, pgbench SELECT', () => warm.analyze(TEXTS[0])),
    c('SqlAnalyzer.analyze, warm cache, 8 texts round-robin', () => warm.analyze(TEXTS[i++ & 7])),
    c('SqlAnalyzer.effects, warm cache, pgbench SELECT', () => warm.effects(TEXTS[0])),
    // routing-services.ts classify(): the lexical fast path first, then the cache; for a repeated (extended-protocol)
    // text the cache alone would answer, so compare with the warm analyze rows above.
    c('classify as routing-services.ts (fast path, then cache), $1 text', () =>
      provablyPlainRead(TEXTS[0]) ? NO_EFFECTS : warm.analyze(TEXTS[0]),
    ),
    // Unique texts: the parse (WASM libpg_query + JSON tree walk) and a cache insert with eviction, every time.
    c('SqlAnalyzer.analyze, cold (unique text: parse + walk)', () =>
      cold.analyze(`SELECT abalance FROM pgbench_accounts WHERE aid = ${unique++}`),
    ),
    c('SqlAnalyzer.analyze, cold, 8 texts made unique', () => cold.analyze(`${TEXTS[i++ & 7]} /* ${unique++} */`)),
    c('parseHints, no comment (2 indexOf)', () => parseHints(TEXTS[i++ & 7])),
    c('parseHints, sqlcommenter comment without marker', () => parseHints(SQLCOMMENTER)),
    c('parseHints, leading hint comment', () => parseHints(HINTED)),
    c('route, read, no minLsn', () => route(readNoLsn, NODES, CFG)),
    c('route, read with minLsn (fastest)', () => route(readLsn, NODES, CFG)),
    c('route, write', () => route(write, NODES, CFG)),
    // 'fastest' with the replica behind: the catch-up estimate and the fallback's detail string.
    c('route, read with minLsn behind (fastest fallback)', () => route(readBehind, NODES, CFG)),
    c('fingerprint, warm, 8 texts round-robin', () => fingerprint(TEXTS[i++ & 7])),
    // The per-statement pipeline as routing.ts part 1 measures it: cached analysis, hints, route.
    c('analyze warm + parseHints + route, read with minLsn', () => {
      const sql = TEXTS[i++ & 1 ? 3 : 0];
      const a = warm.analyze(sql);
      return route({ ...readLsn, write: a.write, hint: parseHints(sql) }, NODES, CFG);
    }),
  ];
}
