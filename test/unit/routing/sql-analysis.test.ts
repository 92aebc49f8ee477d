// Statement analysis: session effects, read/write class, fast path agreement and the result cache.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import {
  analyzeSql,
  initSqlAnalysis,
  NO_EFFECTS,
  NO_SESSION_EFFECTS,
  sessionEffectsFast,
  SqlAnalyzer,
  type PinReason,
  type SessionEffects,
  type SqlAnalysis,
} from '../../../src/routing/sql-analysis.js';

beforeAll(async () => {
  await initSqlAnalysis();
});

interface Fx {
  sets?: string[];
  resets?: string[];
  resetAll?: boolean;
  pins?: PinReason[];
  count?: number;
  unparsable?: boolean;
}

/** [sql, write, expected effects and count (defaults: none, count 1)] */
type Case = [string, boolean, Fx?];

const R = false; // pure read
const W = true; // write
const pin = (...pins: PinReason[]): Fx => ({ pins });
const TEMP = pin('temp_object');
const UNTRACKABLE = pin('untrackable_set');

const SET_CASES: Case[] = [
  ['SET search_path = app, public', W, { sets: ['search_path'] }],
  ['SET search_path TO DEFAULT', W, { sets: ['search_path'] }],
  ["SET SESSION search_path = 'a'", W, { sets: ['search_path'] }],
  ["set Search_Path to 'a'", W, { sets: ['search_path'] }],
  ["SET TIME ZONE 'UTC'", W, { sets: ['timezone'] }],
  ['SET TIME ZONE LOCAL', W, { sets: ['timezone'] }],
  ["SET TimeZone = 'Europe/Paris'", W, { sets: ['timezone'] }],
  ["SET NAMES 'UTF8'", W, { sets: ['client_encoding'] }],
  ["SET SCHEMA 'app'", W, { sets: ['search_path'] }],
  ["SET myapp.tenant = '42'", W, { sets: ['myapp.tenant'] }],
  ['SET MyApp.Tenant = 1', W, { sets: ['myapp.tenant'] }],
  ['SET "MyApp"."Tenant" = 1', W, { sets: ['myapp.tenant'] }],
  ['SET statement_timeout FROM CURRENT', W, { sets: ['statement_timeout'] }],
  ['SET XML OPTION DOCUMENT', W, { sets: ['xmloption'] }],
  ["SET LOCAL search_path = 'a'", W],
  ["SET LOCAL TIME ZONE 'UTC'", W],
  ['SET LOCAL myapp.tenant = 1', W],
  ['SET LOCAL statement_timeout TO DEFAULT', W],
  [
    'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    W,
    { sets: ['default_transaction_isolation'] },
  ],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY', W, { sets: ['default_transaction_read_only'] }],
  [
    'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ WRITE, NOT DEFERRABLE',
    W,
    { sets: ['default_transaction_isolation', 'default_transaction_read_only', 'default_transaction_deferrable'] },
  ],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', W],
  ['SET TRANSACTION READ ONLY, DEFERRABLE', W],
  ["SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", W],
  ['SET ROLE admin', W, UNTRACKABLE],
  ['SET ROLE NONE', W, UNTRACKABLE],
  ["SET SESSION AUTHORIZATION 'bob'", W, UNTRACKABLE],
  ['SET SESSION AUTHORIZATION DEFAULT', W, UNTRACKABLE],
  ['SET LOCAL ROLE admin', W],
  ['RESET ROLE', W, UNTRACKABLE],
  ['RESET SESSION AUTHORIZATION', W, UNTRACKABLE],
  ['RESET search_path', W, { resets: ['search_path'] }],
  ['RESET TIME ZONE', W, { resets: ['timezone'] }],
  ['RESET MyApp.Tenant', W, { resets: ['myapp.tenant'] }],
  ['RESET ALL', W, { resetAll: true }],
  ['DISCARD ALL', W, { resetAll: true }],
  ['DISCARD TEMP', W],
  ['DISCARD TEMPORARY', W],
  ['DISCARD PLANS', W],
  ['DISCARD SEQUENCES', W],
  // SET inside other statements configures something else, not this session.
  ["ALTER ROLE app SET search_path = 'a'", W],
  ["ALTER DATABASE d SET timezone = 'UTC'", W],
  ["ALTER SYSTEM SET work_mem = '64MB'", W],
  ["CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = a AS 'SELECT 1'", W],
];

const SET_CONFIG_CASES: Case[] = [
  ["SELECT set_config('search_path', 'a', false)", W, { sets: ['search_path'] }],
  ["SELECT set_config('MyApp.Tenant', '1', false)", W, { sets: ['myapp.tenant'] }],
  ["SELECT pg_catalog.set_config('a.b', 'x', false)", W, { sets: ['a.b'] }],
  ["SELECT set_config('a.b', 'x', true)", R],
  ["SELECT set_config('a.b', $1, true)", R],
  ['SELECT set_config($1, $2, true)', R],
  ["SELECT set_config(name, 'x', true) FROM settings", R],
  ["SELECT set_config($1, 'x', false)", W, UNTRACKABLE],
  ["SELECT set_config('a.b', 'x', $1)", W, UNTRACKABLE],
  ["SELECT set_config('a.b', 'x', t.local) FROM t", W, UNTRACKABLE],
  ["SELECT set_config(upper('a.b'), 'x', false)", W, UNTRACKABLE],
  ["SELECT set_config('a.b', 'x')", W, UNTRACKABLE],
  ["SELECT set_config('a.b', 'x', 'false')", W, { sets: ['a.b'] }],
  ["SELECT set_config('a.b', 'x', 'off')", W, { sets: ['a.b'] }],
  ["SELECT set_config('a.b', 'x', 'on')", R],
  ["SELECT set_config('a.b', 'x', false::boolean)", W, { sets: ['a.b'] }],
  ["SELECT set_config('a.b', 'x', 't'::bool)", R],
  ["SELECT set_config('a.b', 'x', NULL)", W, { sets: ['a.b'] }], // NULL is_local means false
  ["SELECT set_config(setting_name => 'a.b', new_value => 'x', is_local => false)", W, { sets: ['a.b'] }],
  ["SELECT set_config(setting_name => 'a.b', new_value => 'x', is_local => true)", R],
  ["SELECT set_config('role', 'bob', false)", W, UNTRACKABLE],
  ["SELECT * FROM t WHERE set_config('a.b', t.v, false) IS NOT NULL", W, { sets: ['a.b'] }],
  ["WITH s AS (SELECT set_config('a.b', '1', false)) SELECT * FROM s", W, { sets: ['a.b'] }],
  ["SELECT set_config('a.b', '1', false), set_config('c.d', '2', false)", W, { sets: ['a.b', 'c.d'] }],
  ["EXPLAIN SELECT set_config('a.b', 'x', false)", R],
  ["EXPLAIN ANALYZE SELECT set_config('a.b', 'x', false)", W, { sets: ['a.b'] }],
];

const PIN_CASES: Case[] = [
  ['LISTEN jobs', W, pin('listen')],
  ['UNLISTEN jobs', W],
  ['UNLISTEN *', W],
  ["NOTIFY jobs, 'x'", W],
  ["SELECT pg_notify('jobs', 'x')", W],
  ['CREATE TEMP TABLE t (a int)', W, TEMP],
  ['CREATE TEMPORARY TABLE IF NOT EXISTS t (a int)', W, TEMP],
  ['CREATE LOCAL TEMP TABLE t (a int) ON COMMIT DELETE ROWS', W, TEMP],
  ['CREATE TEMP TABLE t (a int) ON COMMIT PRESERVE ROWS', W, TEMP],
  ['CREATE TEMP TABLE t (a int) ON COMMIT DROP', W],
  ['CREATE TEMP TABLE t AS SELECT 1 AS a', W, TEMP],
  ['CREATE TEMP TABLE t ON COMMIT DROP AS SELECT 1 AS a', W],
  ['CREATE TABLE pg_temp.t (a int)', W, TEMP],
  ['CREATE TABLE t (a int)', W],
  ['CREATE UNLOGGED TABLE t (a int)', W],
  ['CREATE TEMP VIEW v AS SELECT 1', W, TEMP],
  ['CREATE VIEW pg_temp.v AS SELECT 1', W, TEMP],
  ['CREATE VIEW v AS SELECT 1', W],
  ['CREATE TEMP SEQUENCE s', W, TEMP],
  ['CREATE SEQUENCE pg_temp.s', W, TEMP],
  ['SELECT 1 AS a INTO TEMP t', W, TEMP],
  ['SELECT 1 AS a INTO TEMPORARY TABLE t', W, TEMP],
  ['SELECT * INTO UNLOGGED t FROM s', W],
  ['SELECT 1 AS a INTO t', W],
  ['SELECT 1 AS a INTO pg_temp.t', W, TEMP],
  ["CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'", W, TEMP],
  ['CREATE TYPE pg_temp.c AS (a int)', W, TEMP],
  ["CREATE TYPE pg_temp.e AS ENUM ('a')", W, TEMP],
  ['CREATE DOMAIN pg_temp.d AS int', W, TEMP],
  ['EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1', W, TEMP],
  ['EXPLAIN CREATE TEMP TABLE t AS SELECT 1', R], // not executed
  ['CREATE MATERIALIZED VIEW mv AS SELECT 1', W],
  ['SELECT pg_advisory_lock(1)', W, pin('advisory_lock')],
  ['SELECT pg_advisory_lock_shared(1, 2)', W, pin('advisory_lock')],
  ['SELECT pg_try_advisory_lock(42)', W, pin('advisory_lock')],
  ['SELECT pg_try_advisory_lock_shared(42)', W, pin('advisory_lock')],
  ['SELECT pg_catalog.pg_advisory_lock(1)', W, pin('advisory_lock')],
  ['SELECT PG_ADVISORY_LOCK(1)', W, pin('advisory_lock')],
  ['SELECT U&"pg\\005fadvisory\\005flock"(1)', W, pin('advisory_lock')],
  ['SELECT * FROM t WHERE pg_advisory_lock(1) IS NOT NULL', W, pin('advisory_lock')],
  ['SELECT * FROM (SELECT pg_try_advisory_lock(id) AS ok FROM jobs) s WHERE ok', W, pin('advisory_lock')],
  ['SELECT id FROM jobs WHERE EXISTS (SELECT 1 WHERE pg_try_advisory_lock(jobs.id))', W, pin('advisory_lock')],
  ['WITH l AS (SELECT pg_advisory_lock(7)) SELECT * FROM l', W, pin('advisory_lock')],
  ['SELECT * FROM pg_advisory_lock(1)', W, pin('advisory_lock')],
  ['SELECT CASE WHEN x THEN pg_advisory_lock_shared(x::int) END FROM t', W, pin('advisory_lock')],
  ['EXPLAIN SELECT pg_advisory_lock(1)', R],
  ['EXPLAIN ANALYZE SELECT pg_advisory_lock(1)', W, pin('advisory_lock')],
  ['SELECT pg_advisory_xact_lock(1)', W],
  ['SELECT pg_advisory_xact_lock_shared(1)', W],
  ['SELECT pg_try_advisory_xact_lock(1)', W],
  ['SELECT pg_try_advisory_xact_lock_shared(1)', W],
  ['SELECT * FROM t WHERE pg_try_advisory_xact_lock(t.id)', W],
  ['SELECT pg_advisory_unlock(1)', W],
  ['SELECT pg_advisory_unlock_all()', W],
  ['PREPARE q(int) AS SELECT $1', W, pin('sql_prepare')],
  ['PREPARE ins AS INSERT INTO t VALUES (1)', W, pin('sql_prepare')],
  ['EXECUTE q(1)', W],
  ['DEALLOCATE q', W],
  ['DEALLOCATE PREPARE q', W],
  ['DEALLOCATE ALL', W],
  ['DECLARE c CURSOR WITH HOLD FOR SELECT * FROM t', W, pin('with_hold_cursor')],
  ['DECLARE c NO SCROLL CURSOR WITH HOLD FOR SELECT 1', W, pin('with_hold_cursor')],
  ['DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1', W],
  ['DECLARE c BINARY CURSOR FOR SELECT 1', W],
  ['DECLARE c SCROLL CURSOR FOR SELECT 1', W],
  ['FETCH 10 FROM c', W],
  ['MOVE NEXT IN c', W],
  ['CLOSE c', W],
  ['CLOSE ALL', W],
];

const WRITE_CASES: Case[] = [
  ['SELECT 1', R],
  ['select * from users where id = $1', R],
  ['VALUES (1), (2)', R],
  ['TABLE users', R],
  ['SELECT 1 UNION ALL SELECT 2', R],
  ['SELECT a FROM t INTERSECT SELECT a FROM u EXCEPT SELECT a FROM v', R],
  ['(SELECT 1)', R],
  ['SELECT now(), count(*) FROM t', R],
  ['SELECT now(), count(*), currval($1) FROM t', W], // reads what nextval drew on the primary's session
  ['WITH x AS (SELECT 1) SELECT * FROM x', R],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r', R],
  ['SELECT * FROM t FOR UPDATE', W],
  ['SELECT * FROM t FOR NO KEY UPDATE SKIP LOCKED', W],
  ['SELECT * FROM t FOR SHARE', W],
  ['SELECT * FROM t FOR KEY SHARE OF t NOWAIT', W],
  ['SELECT 1 UNION SELECT 2 FOR UPDATE', W],
  ['SELECT * FROM (SELECT * FROM t FOR UPDATE) s', W],
  ['SELECT * FROM t WHERE id IN (SELECT id FROM u FOR SHARE)', W],
  ['WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', W],
  ['WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM i', W],
  ['WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT count(*) FROM u', W],
  ['WITH m AS (MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE RETURNING t.*) SELECT * FROM m', W],
  ['WITH a AS (WITH b AS (DELETE FROM t RETURNING 1) SELECT * FROM b) SELECT * FROM a', W],
  ["SELECT nextval('seq')", W],
  ["SELECT id, nextval('s') FROM t", W],
  ["SELECT * FROM t WHERE id = (SELECT nextval('s'))", W],
  ["SELECT setval('s', 10)", W],
  ['SELECT myschema.nextval()', W],
  ['SELECT txid_current()', W],
  ['SELECT pg_current_xact_id()', W],
  ['SELECT lo_create(0)', W],
  ["SELECT lo_from_bytea(0, '\\x00')", W],
  ['SELECT pg_terminate_backend(123)', W],
  ['SELECT pg_reload_conf()', W],
  ['SHOW search_path', R],
  ['SHOW ALL', R],
  ['EXPLAIN SELECT * FROM t', R],
  ['EXPLAIN DELETE FROM t', R],
  ['EXPLAIN ANALYZE DELETE FROM t', W],
  ['EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1', W],
  ['EXPLAIN (ANALYZE true) INSERT INTO t VALUES (1)', W],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', R],
  ['EXPLAIN (ANALYZE off) DELETE FROM t', R],
  ['EXPLAIN (ANALYZE 0) INSERT INTO t VALUES (1)', R],
  ['EXPLAIN ANALYZE SELECT * FROM t', R],
  ["EXPLAIN ANALYZE SELECT nextval('s')", W],
  ["EXPLAIN SELECT nextval('s')", R],
  ['INSERT INTO t VALUES (1)', W],
  ['INSERT INTO t SELECT * FROM s', W],
  ['UPDATE t SET a = 1', W],
  ['DELETE FROM t', W],
  [
    'MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = s.b WHEN NOT MATCHED THEN INSERT VALUES (s.a)',
    W,
  ],
  ['COPY t FROM STDIN', W],
  ['COPY t TO STDOUT', W],
  ['TRUNCATE t', W],
  ['CREATE INDEX ON t (a)', W],
  ['VACUUM t', W],
  ['ANALYZE t', W],
  ['CALL proc(1)', W],
  ['DO $$ BEGIN PERFORM 1; END $$', W],
  ['LOCK TABLE t IN SHARE MODE', W],
  // Transaction control is classified as a read; the router handles it separately.
  ['BEGIN', R],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE', R],
  ['START TRANSACTION READ ONLY', R],
  ['COMMIT', R],
  ['END', R],
  ['ROLLBACK', R],
  ['ABORT', R],
  ['SAVEPOINT a', R],
  ['RELEASE SAVEPOINT a', R],
  ['ROLLBACK TO SAVEPOINT a', R],
];

const TEXT_CASES: Case[] = [
  ['  \n\t SELECT 1', R],
  ['-- hello\nSELECT 1', R],
  ["/* a /* nested */ comment */ SET search_path = 'a'", W, { sets: ['search_path'] }],
  ["-- SET search_path = 'a'\nSELECT 1", R],
  ['/* SET x.y = 1; LISTEN z */ SELECT 1', R],
  ["SELECT 'set_config(''a.b'', ''x'', false)'", R],
  ['SELECT 1 -- pg_advisory_lock(1)', R],
  ["SELECT ';'", R],
  ['SELECT 1; SELECT 2', R, { count: 2 }],
  ['BEGIN; SELECT 1; COMMIT;', R, { count: 3 }],
  ["BEGIN; SET LOCAL search_path = 'a'; SELECT 1; COMMIT", W, { count: 4 }],
  ["SET search_path = 'a'; SELECT 1", W, { sets: ['search_path'], count: 2 }],
  ['SELECT 1; INSERT INTO t VALUES (1)', W, { count: 2 }],
  ["RESET ALL; SET TIME ZONE 'UTC'; LISTEN x", W, { resetAll: true, sets: ['timezone'], pins: ['listen'], count: 3 }],
  [
    "SET search_path = a; SET search_path = b; SELECT set_config('search_path', 'c', false)",
    W,
    { sets: ['search_path'], count: 3 },
  ],
  ['SET b.x = 1; SET a.x = 2; SET b.x = 3', W, { sets: ['b.x', 'a.x'], count: 3 }],
  ['SET a.x = 1; RESET a.x; RESET b.y', W, { sets: ['a.x'], resets: ['a.x', 'b.y'], count: 3 }],
  [
    'LISTEN a; SELECT pg_advisory_lock(1); LISTEN b; CREATE TEMP TABLE t (a int); SELECT pg_advisory_lock(2)',
    W,
    { pins: ['listen', 'advisory_lock', 'temp_object'], count: 5 },
  ],
  ['SELECT 1;;', R],
  [';', R, { count: 0 }],
  ['', R, { count: 0 }],
  ['   \n  ', R, { count: 0 }],
  ['-- only a comment', R, { count: 0 }],
  ['/* c */', R, { count: 0 }],
  ['SELEC 1', W, { count: 0, unparsable: true }],
  ['SELECT 1; SELEC 2', W, { count: 0, unparsable: true }],
  ["LISTEN x; SET search_path = 'a'; SELEC 2", W, { count: 0, unparsable: true }],
  ['SET search_path = ;', W, { count: 0, unparsable: true }],
  ['/* unterminated', W, { count: 0, unparsable: true }],
  ["SELECT 'unterminated", W, { count: 0, unparsable: true }],
  ['LISTEN', W, { count: 0, unparsable: true }],
];

const ALL: Case[] = [...SET_CASES, ...SET_CONFIG_CASES, ...PIN_CASES, ...WRITE_CASES, ...TEXT_CASES];

function expected(write: boolean, fx: Fx = {}): SqlAnalysis {
  return {
    sets: fx.sets ?? [],
    resets: fx.resets ?? [],
    resetAll: fx.resetAll ?? false,
    pins: fx.pins ?? [],
    write,
    count: fx.count ?? 1,
    unparsable: fx.unparsable ?? false,
  };
}

const effectsOf = (a: SessionEffects): SessionEffects => ({
  sets: a.sets,
  resets: a.resets,
  resetAll: a.resetAll,
  pins: a.pins,
});

describe('analyzeSql', () => {
  it('has well over 120 cases and no duplicate texts', () => {
    expect(ALL.length).toBeGreaterThan(120);
    expect(new Set(ALL.map((c) => c[0])).size).toBe(ALL.length);
  });

  it.each(ALL)('%j → write=%s', (sql, write, fx) => {
    expect(analyzeSql(sql)).toEqual(expected(write, fx));
  });
});

/** Texts the fast path must settle without parsing. */
const FAST_YES = [
  'SELECT 1',
  '  select * from t',
  '-- c\nINSERT INTO t VALUES (1)',
  '/* x /* y */ */ UPDATE t SET a = 1;',
  'DELETE FROM t;  ;\n',
  'WITH x AS (SELECT 1) SELECT * FROM x',
  'VALUES (1)',
  'TABLE t',
  'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE',
  'COPY t TO STDOUT',
  'FETCH 1 FROM c',
  'MOVE c',
  'CLOSE c',
  'EXPLAIN ANALYZE DELETE FROM t',
  'SHOW search_path',
  'BEGIN',
  'START TRANSACTION',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT a',
  'RELEASE a',
  'TRUNCATE t',
  'CALL p()',
  'LOCK t',
  'ANALYZE t',
  'VACUUM t',
  'SeLeCt 1',
  'SELECT * FROM t FOR UPDATE',
  "INSERT INTO t SELECT nextval('s')",
  'SELECT * FROM attempts', // "temp" inside a word
];

/** Texts the fast path must leave to the parser. */
const FAST_NO = [
  "SET search_path = 'a'",
  'RESET ALL',
  'DISCARD ALL',
  'LISTEN x',
  'PREPARE p AS SELECT 1',
  'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
  'CREATE TEMP TABLE t (a int)',
  "SELECT set_config('a.b', 'x', false)",
  "SELECT SET_CONFIG('a.b', 'x', false)",
  'SELECT pg_advisory_lock(1)',
  'SELECT PG_TRY_ADVISORY_LOCK(1)',
  'SELECT pg_advisory_xact_lock(1)', // conservative: no effect, but the lexical test cannot tell
  'SELECT 1 INTO TEMP t',
  'select 1 into temporary t',
  'SELECT 1 INTO pg_temp.t',
  'SELECT 1 INTO Pg_Temp.t',
  'EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1',
  'EXPLAIN ANALYZE CREATE TABLE pg_temp.t AS SELECT 1',
  'SELECT U&"pg\\005fadvisory\\005flock"(1)',
  "SELECT 1; SET search_path = 'a'",
  "SELECT ';'",
  'SELECT 1; -- trailing comment',
  '',
  '   ',
  '-- c',
  '/* unterminated SELECT 1',
  'selectx 1',
  '"select" 1',
  '(SELECT 1)',
  'DO $$ BEGIN END $$',
  'SELECT temp FROM weather',
];

describe('sessionEffectsFast', () => {
  it.each(FAST_YES)('settles %j without parsing', (sql) => {
    expect(sessionEffectsFast(sql)).toBe(NO_SESSION_EFFECTS);
  });

  it.each(FAST_NO)('leaves %j to the parser', (sql) => {
    expect(sessionEffectsFast(sql)).toBeNull();
  });

  it('agrees with the full analysis wherever it answers', () => {
    const texts = [...ALL.map((c) => c[0]), ...FAST_YES, ...FAST_NO];
    const disagreements = texts.filter((sql) => {
      const fast = sessionEffectsFast(sql);
      return fast !== null && JSON.stringify(effectsOf(fast)) !== JSON.stringify(effectsOf(analyzeSql(sql)));
    });
    expect(disagreements).toEqual([]);
    // It answers for a meaningful share of the table, or the check above proves little.
    expect(texts.filter((sql) => sessionEffectsFast(sql) !== null).length).toBeGreaterThan(60);
  });

  it('carries no read/write information', () => {
    expect(Object.keys(NO_SESSION_EFFECTS).sort()).toEqual(['pins', 'resetAll', 'resets', 'sets']);
    expect(Object.isFrozen(NO_SESSION_EFFECTS)).toBe(true);
  });
});

describe('constants', () => {
  it('NO_EFFECTS is a frozen single pure read without effects', () => {
    expect(NO_EFFECTS).toEqual(expected(false));
    expect(Object.isFrozen(NO_EFFECTS)).toBe(true);
    expect(Object.isFrozen(NO_EFFECTS.sets)).toBe(true);
  });
});

describe('SqlAnalyzer cache and options', () => {
  it('returns the same frozen object for the same text', () => {
    const sql = "SELECT set_config('cache.test', 'x', false)";
    const a = analyzeSql(sql);
    expect(analyzeSql(sql)).toBe(a);
    expect(analyzeSql(`${sql} `)).not.toBe(a); // exact text is the key
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.sets)).toBe(true);
    expect(() => (a.sets as string[]).push('x')).toThrow();
  });

  it('evicts the least recently used entry beyond cacheSize', () => {
    const an = new SqlAnalyzer({ cacheSize: 2 });
    const one = an.analyze('SELECT 1');
    an.analyze('SELECT 2');
    expect(an.analyze('SELECT 1')).toBe(one); // hit, now most recent
    an.analyze('SELECT 3'); // evicts SELECT 2
    expect(an.cacheEntries).toBe(2);
    expect(an.analyze('SELECT 1')).toBe(one);
    const two = an.analyze('SELECT 2');
    expect(two).toEqual(expected(false));
    expect(an.analyze('SELECT 2')).toBe(two);
  });

  it('does not cache very long texts', () => {
    const an = new SqlAnalyzer();
    const big = `SELECT 1 ${' '.repeat(20_000)}`;
    const a = an.analyze(big);
    expect(a).toEqual(expected(false));
    expect(an.analyze(big)).not.toBe(a);
    expect(an.cacheEntries).toBe(0);
  });

  it('effects() uses a cached analysis, else the fast path (uncached), else parses and caches', () => {
    const an = new SqlAnalyzer();
    expect(an.effects('SELECT 1')).toBe(NO_SESSION_EFFECTS);
    expect(an.cacheEntries).toBe(0);
    const full = an.analyze('SELECT 1');
    expect(an.effects('SELECT 1')).toBe(full);
    expect(effectsOf(an.effects('SET x.y = 1'))).toEqual(effectsOf(expected(true, { sets: ['x.y'] })));
    expect(an.cacheEntries).toBe(2);
    expect(an.effectsFast('LISTEN x')).toBeNull();
  });

  it('extraWriteFunctions make calls writes (case-insensitive, last name part)', () => {
    const an = new SqlAnalyzer({ extraWriteFunctions: ['Audit_Log'] });
    expect(an.analyze("SELECT audit_log('x')").write).toBe(true);
    expect(an.analyze("SELECT app.audit_log('x')").write).toBe(true);
    expect(an.analyze("SELECT nextval('s')").write).toBe(true); // defaults kept
    expect(analyzeSql("SELECT audit_log('x')").write).toBe(false);
  });

  it('initSqlAnalysis is idempotent', async () => {
    expect(initSqlAnalysis()).toBe(initSqlAnalysis());
    await initSqlAnalysis();
    expect(analyzeSql('SELECT 1').count).toBe(1);
  });
});

describe('before initSqlAnalysis', () => {
  it('analysis throws a clear error; the fast path works; init fixes it', async () => {
    vi.resetModules();
    const fresh = await import('../../../src/routing/sql-analysis.js');
    expect(() => fresh.analyzeSql('SELECT 1')).toThrow(/initSqlAnalysis/);
    expect(() => new fresh.SqlAnalyzer().effects('LISTEN x')).toThrow(/initSqlAnalysis/);
    expect(fresh.sessionEffectsFast('SELECT 1')).toBe(fresh.NO_SESSION_EFFECTS);
    await fresh.initSqlAnalysis();
    expect(fresh.analyzeSql('LISTEN x').pins).toEqual(['listen']);
  });
});
