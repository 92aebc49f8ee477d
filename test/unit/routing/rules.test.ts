// Operator routing rules: compile-time validation and first-match semantics over user/db/app/pattern/fingerprint.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { fingerprint } from '../../../src/routing/fingerprint.js';
import { compileRules, matchRule, type RoutingRule, type RuleContext } from '../../../src/routing/rules.js';
import { initSqlAnalysis } from '../../../src/routing/sql-analysis.js';

let REPORT_FP: string;
let RULES: RoutingRule[];

beforeAll(async () => {
  await initSqlAnalysis();
  REPORT_FP = fingerprint('select * from reports where day = $1')!;
  RULES = [
    { match: { user: 'etl' }, route: 'primary' },
    { match: { application_name: 'dashboard', database: 'app' }, route: 'replica', consistency: 'eventual' },
    { match: { pattern: '\\bfrom\\s+audit_log\\b' }, route: 'primary', consistency: 'global' },
    { match: { fingerprint: REPORT_FP.toUpperCase() }, route: 'replica' },
    { match: { database: 'analytics', pattern: '^\\s*select' }, route: 'replica', consistency: 'token' },
    { match: { user: 'web', pattern: 'pg_sleep' }, route: 'auto' },
  ];
});

const ctx = (over: Partial<RuleContext>): RuleContext => ({ user: 'web', database: 'app', sql: 'select 1', ...over });

describe('matchRule', () => {
  const CASES: [string, Partial<RuleContext>, { route: string; consistency?: string; index: number } | null][] = [
    ['no rule applies', {}, null],
    ['user', { user: 'etl', sql: 'select * from reports where day = 1' }, { route: 'primary', index: 0 }],
    ['user is case-sensitive', { user: 'ETL' }, null],
    [
      'application_name and database',
      { applicationName: 'dashboard' },
      { route: 'replica', consistency: 'eventual', index: 1 },
    ],
    ['application_name but other database', { applicationName: 'dashboard', database: 'other' }, null],
    [
      'pattern (case-insensitive)',
      { sql: 'SELECT * FROM Audit_Log' },
      { route: 'primary', consistency: 'global', index: 2 },
    ],
    [
      'pattern is unanchored',
      { sql: 'with x as (select 1) select * from audit_log' },
      { route: 'primary', consistency: 'global', index: 2 },
    ],
    ['pattern word boundary', { sql: 'select * from audit_log_old' }, null],
    ['fingerprint (other constants)', { sql: 'SELECT * FROM reports WHERE day = $7' }, { route: 'replica', index: 3 }],
    ['fingerprint (literal vs param differs)', { sql: "select * from reports where day = '2024-01-01'" }, null],
    [
      'database + pattern',
      { database: 'analytics', sql: '  select 2' },
      { route: 'replica', consistency: 'token', index: 4 },
    ],
    ['database + pattern, pattern misses', { database: 'analytics', sql: 'update t set a = 1' }, null],
    ['auto route is still a match', { sql: 'select pg_sleep(1)' }, { route: 'auto', index: 5 }],
    ['first match wins', { user: 'etl', sql: 'select * from audit_log' }, { route: 'primary', index: 0 }],
    ['unparsable text has no fingerprint', { sql: 'selec * from reports' }, null],
  ];
  it.each(CASES)('%s', (_name, over, expected) => {
    const compiled = compileRules(RULES);
    const c = ctx(over);
    expect(matchRule(compiled, { ...c, fingerprint: () => fingerprint(c.sql) })).toEqual(expected);
    expect(matchRule(compiled, { ...c, fingerprint: fingerprint(c.sql) })).toEqual(expected);
  });

  it('computes a lazy fingerprint at most once, and only when a fingerprint rule is reached', () => {
    const compiled = compileRules([
      { match: { user: 'etl' }, route: 'primary' },
      { match: { fingerprint: '0123456789abcdef' }, route: 'replica' },
      { match: { fingerprint: 'fedcba9876543210' }, route: 'replica' },
    ]);
    const fp = vi.fn(() => '0000000000000000');
    expect(matchRule(compiled, ctx({ user: 'etl', fingerprint: fp }))).toEqual({ route: 'primary', index: 0 });
    expect(fp).not.toHaveBeenCalled();
    expect(matchRule(compiled, ctx({ fingerprint: fp }))).toBeNull();
    expect(fp).toHaveBeenCalledTimes(1);
  });

  it('an empty match is a catch-all; an empty list matches nothing', () => {
    expect(matchRule(compileRules([{ match: {}, route: 'replica' }]), ctx({}))).toEqual({ route: 'replica', index: 0 });
    expect(matchRule(compileRules([]), ctx({}))).toBeNull();
  });
});

describe('compileRules validation', () => {
  const BAD: [string, unknown, RegExp][] = [
    ['invalid regex', [{ match: { pattern: '(unclosed' }, route: 'primary' }], /routing rule 0: invalid pattern/],
    ['bad fingerprint', [{ match: { fingerprint: 'xyz' }, route: 'primary' }], /rule 0: fingerprint must be 16 hex/],
    ['short fingerprint', [{ match: { fingerprint: 'abcdef' }, route: 'primary' }], /fingerprint must be 16 hex/],
    ['bad route', [{ match: {}, route: 'standby' }], /rule 0: route must be one of primary, replica, auto/],
    ['bad consistency', [{ match: {}, route: 'auto', consistency: 'strong' }], /consistency must be one of/],
    ['unknown key', [{ match: { usr: 'x' }, route: 'auto' }], /unknown match key "usr"/],
    ['non-string user', [{ match: { user: 5 }, route: 'auto' }], /match.user must be a string/],
    [
      'index names the rule',
      [
        { match: {}, route: 'auto' },
        { match: { pattern: '[' }, route: 'auto' },
      ],
      /routing rule 1: invalid pattern \/\[\//,
    ],
  ];
  it.each(BAD)('%s', (_name, list, message) => {
    expect(() => compileRules(list as RoutingRule[])).toThrow(message);
  });

  it('compiles once: frozen, pattern as a case-insensitive RegExp, fingerprint lower-cased', () => {
    const [r] = compileRules([{ match: { pattern: 'x', fingerprint: 'ABCDEF0123456789' }, route: 'replica' }]);
    expect(Object.isFrozen(r)).toBe(true);
    expect(r.pattern?.flags).toBe('i');
    expect(r.fingerprint).toBe('abcdef0123456789');
  });
});
