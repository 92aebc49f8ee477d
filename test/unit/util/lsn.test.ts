// LSN helpers: pg_lsn text parsing/formatting round trips, invalid inputs, comparison and arithmetic.
import { describe, expect, it } from 'vitest';
import {
  compareLsn,
  formatLsn,
  INVALID_LSN,
  isLsn,
  lsnDiff,
  MAX_LSN,
  maxLsn,
  parseLsn,
} from '../../../src/util/lsn.js';

describe('parseLsn / formatLsn', () => {
  const valid: [string, bigint, string][] = [
    ['16/B374D848', 0x16b374d848n, '16/B374D848'],
    ['0/0', 0n, '0/0'],
    ['0/1', 1n, '0/1'],
    ['1/0', 1n << 32n, '1/0'],
    ['16/b374d848', 0x16b374d848n, '16/B374D848'],
    ['00000016/0000B374', (0x16n << 32n) | 0xb374n, '16/B374'],
    ['FFFFFFFF/FFFFFFFF', MAX_LSN, 'FFFFFFFF/FFFFFFFF'],
    ['0/3000060', 0x3000060n, '0/3000060'],
  ];
  it.each(valid)('%s → %s', (text, value, formatted) => {
    expect(parseLsn(text)).toBe(value);
    expect(formatLsn(value)).toBe(formatted);
    expect(parseLsn(formatLsn(value))).toBe(value);
  });

  const invalid = [
    '',
    '/',
    '16',
    '16/',
    '/B374',
    '123456789/0',
    '0/123456789',
    ' 0/1',
    '0/1 ',
    '0x1/2',
    'G/1',
    '1/2/3',
  ];
  it.each(invalid)('invalid %j → null', (text) => {
    expect(parseLsn(text)).toBeNull();
  });

  it('rejects non-strings and out-of-range values', () => {
    expect(parseLsn(undefined as unknown as string)).toBeNull();
    expect(() => formatLsn(-1n)).toThrow(RangeError);
    expect(() => formatLsn(MAX_LSN + 1n)).toThrow(RangeError);
    expect(isLsn(0n)).toBe(true);
    expect(isLsn(MAX_LSN)).toBe(true);
    expect(isLsn(-1n)).toBe(false);
    expect(isLsn(1)).toBe(false);
    expect(INVALID_LSN).toBe(0n);
  });
});

describe('compare and arithmetic', () => {
  const a = parseLsn('16/B374D848')!;
  const b = parseLsn('16/B374D849')!;
  it('compareLsn orders by position (high word dominates)', () => {
    expect(compareLsn(a, b)).toBe(-1);
    expect(compareLsn(b, a)).toBe(1);
    expect(compareLsn(a, a)).toBe(0);
    expect(compareLsn(parseLsn('1/0')!, parseLsn('0/FFFFFFFF')!)).toBe(1);
  });
  it('maxLsn treats null as none', () => {
    expect(maxLsn(null, null)).toBeNull();
    expect(maxLsn(a, null)).toBe(a);
    expect(maxLsn(null, b)).toBe(b);
    expect(maxLsn(a, b)).toBe(b);
    expect(maxLsn(b, a)).toBe(b);
  });
  it('lsnDiff is pg_wal_lsn_diff(to, from)', () => {
    expect(lsnDiff(b, a)).toBe(1);
    expect(lsnDiff(a, b)).toBe(-1);
    expect(lsnDiff(parseLsn('1/0')!, parseLsn('0/FFFFFFFF')!)).toBe(1);
  });
});
