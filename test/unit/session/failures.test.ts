// Startup checks before authentication: the `replication` parameter read as Postgres reads it.
import { describe, expect, it } from 'vitest';
import type { SessionContext } from '../../../src/session/context.js';
import { checkStartup, LoginError, pgBool } from '../../../src/session/failures.js';

const ctx = {
  settings: { tlsMode: 'allow', maxClientConn: 10 },
  isShuttingDown: () => false,
  activeClients: { count: 0 },
} as unknown as Pick<SessionContext, 'settings' | 'isShuttingDown' | 'activeClients'>;

const check = (replication: string) =>
  checkStartup(
    new Map([
      ['user', 'u'],
      ['replication', replication],
    ]),
    ctx,
    false,
  );
const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e instanceof LoginError ? e.sqlstate : String(e);
  }
};

describe('pgBool (Postgres parse_bool)', () => {
  it('reads the words, digits and unambiguous prefixes in any case', () => {
    for (const v of ['true', 'T', 'tr', 'yes', 'Y', 'on', 'ON', '1']) expect(pgBool(v), v).toBe(true);
    for (const v of ['false', 'f', 'FAL', 'no', 'N', 'off', 'of', '0']) expect(pgBool(v), v).toBe(false);
    for (const v of ['', 'o', 'bogus', 'truex', '2', 'database']) expect(pgBool(v), v).toBeNull();
  });
});

describe('checkStartup: replication', () => {
  it('false, off, no, 0 are ordinary logins', () => {
    for (const v of ['false', 'off', 'no', '0', 'OFF']) expect(check(v)).toBe('u');
  });

  it('true, on, database ask for replication: 0A000', () => {
    for (const v of ['true', 'on', 'yes', '1', 'database', 'Database'])
      expect(
        codeOf(() => check(v)),
        v,
      ).toBe('0A000');
  });

  it('anything else: 22023, as Postgres', () => {
    expect(codeOf(() => check('bogus'))).toBe('22023');
  });
});
