// Real SQL through the classifier (SqlAnalyzer), the hint parser and the router: where each statement ends up.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseHints } from '../../../src/routing/hints.js';
import { route, type RouteInput, type RouterConfig } from '../../../src/routing/router.js';
import { initSqlAnalysis, SqlAnalyzer } from '../../../src/routing/sql-analysis.js';
import { caughtUpNode } from '../../support/route-nodes.js';

let analyzer: SqlAnalyzer;
beforeAll(async () => {
  await initSqlAnalysis();
  analyzer = new SqlAnalyzer();
});

const node = (name: string, role: 'primary' | 'replica', region: string, rttMs: number) =>
  caughtUpNode(name, role, region, rttMs, 1e6);
const NODES = {
  primary: node('p', 'primary', 'iad', 80),
  replicas: [node('ams', 'replica', 'ams', 1), node('fra', 'replica', 'fra', 15)],
};
const CFG: RouterConfig = { region: 'ams', policy: 'wait', maxWaitMs: 1000, transactions: 'read_only_to_replica' };

function decide(sql: string, over: Partial<RouteInput> = {}) {
  const a = analyzer.analyze(sql);
  const input: RouteInput = {
    write: a.write,
    inTransaction: false,
    txnReadOnly: false,
    hint: parseHints(sql),
    sessionRoute: 'auto',
    rule: null,
    minLsn: null,
    knownWrite: false,
    serializable: false,
    ...over,
  };
  return route(input, NODES, CFG);
}

const P = ['p', 'write'] as const;
const R = ['ams', 'read'] as const;
type Want = readonly [string, string];

const CASES: [string, Want][] = [
  // plain reads and writes
  ['SELECT 1', R],
  ['select * from users where id = $1', R],
  ['SELECT now(), current_setting($1)', R],
  ['VALUES (1), (2)', R],
  ['TABLE users', R],
  ['SHOW search_path', R],
  ['SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id GROUP BY u.region', R],
  ['WITH x AS (SELECT 1 AS a) SELECT a FROM x', R],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', R],
  ['SELECT * FROM t WHERE a IN (SELECT b FROM u)', R],
  ['INSERT INTO t (a) VALUES (1)', P],
  ['INSERT INTO t SELECT * FROM u RETURNING id', P],
  ['UPDATE t SET a = a + 1 WHERE id = $1', P],
  ['DELETE FROM t WHERE id = 1', P],
  ['INSERT INTO t (id) VALUES (1) ON CONFLICT (id) DO NOTHING', P],
  ['TRUNCATE t', P],
  ['CREATE TABLE x (a int)', P],
  ['ALTER TABLE x ADD COLUMN b int', P],
  ['DROP TABLE x', P],
  ['CREATE INDEX CONCURRENTLY i ON x (a)', P],
  ['GRANT SELECT ON t TO bob', P],
  ['VACUUM t', P],
  ['ANALYZE t', P],
  ['COPY t FROM STDIN', P],
  ['COPY t TO STDOUT', P], // conservative: COPY is not classified as a read
  ['LOCK TABLE t IN SHARE MODE', P],
  ['CALL refresh_all()', P],
  ['DO $$ BEGIN PERFORM 1; END $$', P],
  ['REFRESH MATERIALIZED VIEW mv', P],
  ['SET search_path = app', P],
  ['NOTIFY ch', P],
  ['LISTEN ch', P],
  ['PREPARE q AS SELECT 1', P],
  ['SELECT * INTO newt FROM t', P],
  ['CREATE TABLE t2 AS SELECT * FROM t', P],
  ['CREATE TEMP TABLE tmp AS SELECT 1', P],
  // writable CTEs
  ['WITH d AS (DELETE FROM t WHERE a < 0 RETURNING *) SELECT count(*) FROM d', P],
  ['WITH u AS (UPDATE t SET a = 1 RETURNING id) SELECT * FROM u', P],
  ['WITH i AS (INSERT INTO t (a) VALUES (1) RETURNING id) SELECT id FROM i', P],
  ['WITH x AS (SELECT 1), y AS (INSERT INTO log VALUES (1) RETURNING 1) SELECT * FROM x', P],
  ['SELECT * FROM (WITH d AS (DELETE FROM t RETURNING a) SELECT a FROM d) s', P],
  // row locks
  ['SELECT * FROM t WHERE id = 1 FOR UPDATE', P],
  ['SELECT * FROM t FOR SHARE', P],
  ['SELECT * FROM t FOR NO KEY UPDATE', P],
  ['SELECT * FROM t FOR KEY SHARE', P],
  ['SELECT * FROM t FOR UPDATE SKIP LOCKED LIMIT 1', P],
  ['SELECT * FROM t FOR UPDATE OF t NOWAIT', P],
  ['SELECT * FROM (SELECT * FROM t FOR UPDATE) s', P],
  // write functions
  ["SELECT nextval('s')", P],
  ["SELECT currval('s')", P],
  ['SELECT lastval()', P],
  ["SELECT setval('s', 10)", P],
  ['SELECT pg_advisory_lock(1)', P],
  ['SELECT pg_try_advisory_xact_lock(1)', P],
  ['SELECT pg_advisory_unlock_all()', P],
  ["SELECT set_config('app.x', '1', false)", P],
  ['SELECT txid_current()', P],
  ["SELECT pg_notify('ch', 'x')", P],
  ["SELECT id, nextval('s') FROM t", P],
  ["SELECT * FROM t WHERE id = (SELECT nextval('s'))", P],
  // EXPLAIN
  ['EXPLAIN DELETE FROM t', R],
  ['EXPLAIN ANALYZE DELETE FROM t', P],
  ['EXPLAIN (ANALYZE) UPDATE t SET a = 1', P],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', R],
  ['EXPLAIN (ANALYZE on, BUFFERS) INSERT INTO t VALUES (1)', P],
  ['EXPLAIN ANALYZE SELECT * FROM t', R],
  ['EXPLAIN SELECT * FROM t FOR UPDATE', R],
  // MERGE
  ['MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a', P],
  ['MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)', P],
  ['WITH src AS (SELECT 1 AS id) MERGE INTO t USING src ON t.id = src.id WHEN MATCHED THEN DELETE', P],
  // comments before statements
  ['/* app=web */ SELECT 1', R],
  ['-- report\nSELECT 1', R],
  ['/* a */ -- b\n/* c */ DELETE FROM t', P],
  ['/* nested /* comment */ */ SELECT 1', R],
  // multi-statement strings
  ['SELECT 1; SELECT 2', R],
  ['SELECT 1; DELETE FROM t', P],
  ['DELETE FROM t; SELECT 1', P],
  ['BEGIN; SELECT 1; COMMIT', R], // transaction control counts as read (the caller tracks the transaction)
  ['BEGIN; INSERT INTO t VALUES (1); COMMIT', P],
  // transaction control alone
  ['BEGIN', R],
  ['COMMIT', R],
  ['ROLLBACK', R],
  // unknown / unparsable → primary
  ['SELEC 1', P],
  ['SELECT * FROM', P],
  ["SELECT 'unterminated", P],
  ['SELECT 1; garbage here', P],
  ['MERGE INTO t USING s ON true WHEN MATCHED THEN UPDATE SET a = 1 RETURNING *', P], // PG 17 syntax: parses
  // hints
  ['/* pgnear:primary */ SELECT 1', ['p', 'hint']],
  ['-- pgnear:primary\nSELECT * FROM t', ['p', 'hint']],
  ['/* pgnear:replica */ SELECT 1', ['ams', 'hint']],
  ['/* pgnear:replica */ DELETE FROM t', ['ams', 'hint']], // explicit: the replica will refuse it (25006)
  ['/* pgnear:region=fra */ SELECT 1', ['fra', 'read']],
  ['/* pgnear:region=fra */ DELETE FROM t', P],
  ['/* pgnear:replica pgnear:region=fra */ SELECT 1', ['fra', 'hint']],
  ['SELECT * FROM t /* pgnear:primary */', ['p', 'hint']],
  ["SELECT '/* pgnear:primary */'", R],
  ['SELECT 1 -- pgnear:replica', ['ams', 'hint']],
];

describe('classifier + router on real SQL', () => {
  it.each(CASES)('%j → %j', (sql, [nodeName, reason]) => {
    const d = decide(sql);
    expect(d && [d.node, d.reason]).toEqual([nodeName, reason]);
  });
});

describe('classifier + router with session state', () => {
  const STATE: [string, string, Partial<RouteInput>, Want | null][] = [
    ['read in a read-write transaction', 'SELECT 1', { inTransaction: true }, ['p', 'in_transaction']],
    ['read in BEGIN READ ONLY', 'SELECT 1', { inTransaction: true, txnReadOnly: true }, R],
    ['write in BEGIN READ ONLY', 'DELETE FROM t', { inTransaction: true, txnReadOnly: true }, P],
    ['hint replica in a transaction', '/* pgnear:replica */ SELECT 1', { inTransaction: true }, ['ams', 'hint']],
    ['SET pgnear.route = primary', 'SELECT 1', { sessionRoute: 'primary' }, ['p', 'session_route']],
    ['hint beats session route', '/* pgnear:replica */ SELECT 1', { sessionRoute: 'primary' }, ['ams', 'hint']],
    ['known write (a function that writes)', 'SELECT my_audit_fn(1)', { knownWrite: true }, ['p', 'known_write']],
    ['rule replica', 'SELECT 1', { rule: { route: 'replica' } }, ['ams', 'rule']],
    ['read your writes, caught up', 'SELECT 1', { minLsn: 1000n }, R],
    ['read your writes, behind', 'SELECT 1', { minLsn: 1001n }, ['ams', 'lsn_wait']],
  ];
  it.each(STATE)('%s', (_name, sql, over, want) => {
    const d = decide(sql, over);
    expect(d && [d.node, d.reason]).toEqual(want);
  });
});
