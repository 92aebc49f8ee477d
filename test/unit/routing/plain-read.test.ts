// provablyPlainRead: the parse-free read test must never accept what the parser classifies as a write.
import { beforeAll, describe, expect, it } from 'vitest';
import { initSqlAnalysis, SqlAnalyzer } from '../../../src/routing/sql-analysis.js';
import { provablyPlainRead } from '../../../src/routing/sql-fast-path.js';

const analyzer = new SqlAnalyzer();
beforeAll(() => initSqlAnalysis());

const ACCEPTED = [
  'SELECT abalance FROM pgbench_accounts WHERE aid = 12345;',
  'select * from t where a = 1 and b = $1',
  '  /* pgnear:replica */ SELECT x FROM y',
  '-- comment\nselect 1',
  'SELECT a, b FROM t ORDER BY a LIMIT 10 ;  ',
];

const REJECTED = [
  "select nextval('s')", // function call
  'select count(*) from t', // any parenthesis
  'select * from t for update',
  'select * from t for share',
  'select * into newtable from t',
  'select 1; delete from t',
  'with x as (delete from t returning *) select * from x',
  'insert into t values (1)',
  'selectx from t',
  'select * from pg_temp.t',
  'explain select 1',
  'SELECT',
  '',
  '/* unterminated select 1',
  "select 'a;b' as s", // conservative: a ';' inside a literal still means "parse it"
  'select 1 /* ( */ from t', // a parenthesis even in a comment
];

describe('provablyPlainRead', () => {
  it.each(ACCEPTED)('accepts %s, which the parser also calls a read', (sql) => {
    expect(provablyPlainRead(sql)).toBe(true);
    expect(analyzer.analyze(sql).write).toBe(false);
  });

  it.each(REJECTED)('leaves %s to the parser', (sql) => {
    expect(provablyPlainRead(sql)).toBe(false);
  });
});
