// Statement fingerprints: what is normalised away (constants, $n, layout, IN-list length) and what still differs.
import { beforeAll, describe, expect, it } from 'vitest';
import { fingerprint, Fingerprinter, fingerprintTree, FINGERPRINT_FORMAT } from '../../../src/routing/fingerprint.js';
import { initSqlAnalysis } from '../../../src/routing/sql-analysis.js';

beforeAll(async () => {
  await initSqlAnalysis();
});

const SAME: [string, string][] = [
  ['select * from t where a = 1', 'SELECT * FROM t WHERE a = 42'],
  ["select * from t where a = 'x'", 'select * from t where a = 7'],
  ['select * from t where a = $1', 'select * from t where a = $2'],
  ['select   *\n from t  where a=1', '/* comment */ SELECT * FROM T WHERE A = 1 -- trailing'],
  ['select * from t where a in (1, 2, 3)', 'select * from t where a in (4)'],
  ['select * from t where a in ($1, $2)', 'select * from t where a in ($1, $2, $3, $4)'],
  ['select * from t where a = any(array[1, 2])', 'select * from t where a = any(array[3])'],
  ['insert into t (a, b) values (1, 2)', 'insert into t (a, b) values (3, 4), (5, 6), (7, 8)'],
  ['select * from t limit 10', 'select * from t limit 20'],
  ['select 1.5::numeric', 'select 2.75::numeric'],
  ['update t set a = true where id = 1', 'update t set a = false where id = 2'],
  ['select * from t where a is not null and b = 1', 'SELECT * FROM t WHERE a IS NOT NULL AND b = 99'],
  ['select 1; select 2', 'select 3; select 4'],
];

const DIFFERENT: [string, string][] = [
  ['select * from t where a = 1', 'select * from u where a = 1'],
  ['select * from t where a = 1', 'select * from t where b = 1'],
  ['select * from t where a = 1', 'select * from t where a > 1'],
  ['select * from t where a = 1', 'select * from t where a = $1'],
  ['select a from t', 'select b from t'],
  ['select a from t', 'select a, b from t'],
  ['select * from t', 'select * from t for update'],
  ['select * from public.t', 'select * from other.t'],
  ['select * from "T"', 'select * from t'],
  ['select count(*) from t', 'select max(a) from t'],
  ['delete from t where a = 1', 'select * from t where a = 1'],
  ['insert into t (a) values (1)', 'insert into t (b) values (1)'],
  ['select 1', 'select 1; select 1'],
  ['select f(1)', 'select f(1, 2)'],
];

describe('fingerprint', () => {
  it.each(SAME)('%j ≡ %j', (a, b) => {
    const fa = fingerprint(a);
    expect(fa).toMatch(FINGERPRINT_FORMAT);
    expect(fingerprint(b)).toBe(fa);
  });

  it.each(DIFFERENT)('%j ≠ %j', (a, b) => {
    expect(fingerprint(a)).toMatch(FINGERPRINT_FORMAT);
    expect(fingerprint(b)).toMatch(FINGERPRINT_FORMAT);
    expect(fingerprint(a)).not.toBe(fingerprint(b));
  });

  it.each(['', '   ', '-- only a comment', 'selec 1', 'select from where'])('no fingerprint for %j', (sql) => {
    expect(fingerprint(sql)).toBeNull();
  });

  it('is stable: a pinned value for a pinned parser shape', () => {
    // Changes only if libpg-query changes its JSON shape; then rules pinned by fingerprint need updating.
    expect(fingerprintTree({ stmts: [] })).toBe(fingerprintTree({ stmts: [], version: 1 }));
    expect(fingerprint('select 1')).toBe(fingerprint('SELECT 2'));
  });

  it('caches by text, including misses', () => {
    const f = new Fingerprinter({ cacheSize: 10 });
    const a = f.fingerprint('select * from t where id = 1');
    expect(f.fingerprint('select * from t where id = 1')).toBe(a);
    f.fingerprint('nonsense here');
    expect(f.cacheEntries).toBe(2);
    for (let i = 0; i < 20; i++) f.fingerprint(`select ${i} from t${i}`);
    expect(f.cacheEntries).toBe(10);
  });
});
