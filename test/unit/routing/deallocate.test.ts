// deallocateTarget: which prepared statement a lone DEALLOCATE names, lexed as Postgres' grammar reads it.
import { describe, expect, it } from 'vitest';
import { deallocateTarget } from '../../../src/routing/deallocate.js';

describe('deallocateTarget', () => {
  const cases: [string, ReturnType<typeof deallocateTarget>][] = [
    ['DEALLOCATE _pg3_0', { all: false, name: '_pg3_0' }],
    ['deallocate prepare S_1;', { all: false, name: 's_1' }],
    ['DEALLOCATE "S_1"', { all: false, name: 'S_1' }],
    ['DEALLOCATE "a""b" ;; ', { all: false, name: 'a"b' }],
    ['/* evict */ DEALLOCATE\n-- next\n x', { all: false, name: 'x' }],
    ['DEALLOCATE ALL', { all: true }],
    ['deallocate prepare all', { all: true }],
    ['DEALLOCATE "all"', { all: false, name: 'all' }],
    ['DEALLOCATE prepare', { all: false, name: 'prepare' }],
    ['DEALLOCATE ÄBC', { all: false, name: 'Äbc' }],
  ];
  for (const [sql, want] of cases) {
    it(`${JSON.stringify(sql)} → ${JSON.stringify(want)}`, () => expect(deallocateTarget(sql)).toEqual(want));
  }

  for (const sql of [
    'SELECT 1',
    'DEALLOCATE',
    'DEALLOCATE a b',
    'DEALLOCATE a; SELECT 1',
    'DEALLOCATE a; -- trailing comment after the semicolon',
    'DEALLOCATE ""',
    'DEALLOCATE "unterminated',
    'DEALLOCATE /* unterminated',
    '"DEALLOCATE" a',
    'DEALLOCATEx a',
    'DEALLOCATE 1a',
  ]) {
    it(`${JSON.stringify(sql)} is not one (the server answers it)`, () => expect(deallocateTarget(sql)).toBeNull());
  }
});
