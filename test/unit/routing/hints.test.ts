// Routing hints in SQL comments: where they are looked for, syntax, case, literals that look like comments.
import { describe, expect, it } from 'vitest';
import { parseHints, type RouteHint } from '../../../src/routing/hints.js';

const P: RouteHint = { route: 'primary' };
const R: RouteHint = { route: 'replica' };

const CASES: [string, RouteHint | null][] = [
  // no hint
  ['SELECT 1', null],
  ['select * from t where a = $1', null],
  ['/* app=web */ SELECT 1', null],
  ['-- just a comment\nSELECT 1', null],
  ['/* pgnear: */ SELECT 1', null],
  ['/* pgnear:bogus */ SELECT 1', null],
  ['/* pgnear:region=Bad_Region! */ SELECT 1', null],
  ['/* pgnear:route=elsewhere */ SELECT 1', null],
  ["SELECT '/* pgnear:primary */'", null],
  ['SELECT "/* pgnear:primary */" FROM t', null],
  ['SELECT $$ /* pgnear:primary */ $$', null],
  ['SELECT $tag$ -- pgnear:primary $tag$', null],
  ["SELECT E'it\\'s /* pgnear:primary */'", null],
  ["SELECT 'it''s -- pgnear:primary'", null],
  ['SELECT 1 /* app */ /* pgnear:primary */', null], // only the first comment when none leads
  ['/* app */ SELECT 1 /* pgnear:primary */', null], // leading comments exist: later ones are not read
  ['SELECT pgnear_primary FROM t', null],
  // leading block comments
  ['/* pgnear:primary */ SELECT 1', P],
  ['/* pgnear:replica */ SELECT 1', R],
  ['/*pgnear:replica*/SELECT 1', R],
  ['/* PGNEAR:PRIMARY */ select 1', P],
  ['/* PgNear:Replica */ select 1', R],
  ['/* pgnear:route=replica */ select 1', R],
  ['/* pgnear:region=ams */ SELECT 1', { region: 'ams' }],
  ['/* pgnear:region=US-East-1 */ SELECT 1', { region: 'us-east-1' }],
  ['/* pgnear:replica pgnear:region=fra */ SELECT 1', { route: 'replica', region: 'fra' }],
  ['/* pgnear:replica */ /* pgnear:region=fra */ SELECT 1', { route: 'replica', region: 'fra' }],
  ['/* pgnear:replica */ /* pgnear:primary */ SELECT 1', R], // first wins
  ['/* app=web, pgnear:primary, controller=x */ UPDATE t SET a = 1', P],
  ['\n  /* outer /* nested */ pgnear:replica */ SELECT 1', R],
  ['/* unterminated pgnear:replica', R],
  // line comments
  ['-- pgnear:primary\nSELECT 1', P],
  ['--pgnear:replica\r\nSELECT 1', R],
  ['-- first\n-- pgnear:region=sin\nSELECT 1', { region: 'sin' }],
  // first comment of the text (no leading comment)
  ['SELECT /* pgnear:replica */ * FROM t', R],
  ['SELECT * FROM t -- pgnear:primary', P],
  ["SELECT * FROM t WHERE a = 'x' /*pgnear:replica*/", R],
  ['SELECT a$b FROM t /* pgnear:replica */', R],
  ['SELECT $1::text /* pgnear:replica */', R],
  ['SELECT 1; /* pgnear:primary */ SELECT 2', P],
  ['SELECT 10-1 /* pgnear:replica */', R],
];

describe('parseHints', () => {
  it.each(CASES)('%j → %j', (sql, expected) => {
    expect(parseHints(sql)).toEqual(expected);
  });
});
