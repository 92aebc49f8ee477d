// Config loading: defaults, durations, strict keys with path-qualified problems, semantic checks, override merging.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfig, parseConfigText } from '../../../src/config/load.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/config/${name}`, import.meta.url));
const MIN = 'primary:\n  url: postgres://pgnear@db:5432/app\n';

/** The ConfigError thrown by fn (fails the test when fn does not throw one). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('valid configs', () => {
  it('minimal config: only primary.url, everything else defaulted', () => {
    const c = parseConfigText(MIN, 'min.yaml');
    expect(c.primary).toEqual({ url: 'postgres://pgnear@db:5432/app' });
    expect(c.listen).toBe('127.0.0.1:6432');
    expect(c.admin_listen).toBeUndefined();
    expect(c.replicas).toEqual([]);
    expect(c.pool_mode).toBe('transaction');
    expect(c.auth.type).toBe('scram-sha-256');
    expect(c.auth.query).toBe('SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1');
    expect(c.auth.users).toEqual([]);
    expect(c.tls).toEqual({ mode: 'allow', self_signed: false });
    expect(c.limits).toEqual({
      max_client_conn: 10_000,
      max_message_size: 256 * 1024 * 1024,
      client_login_timeout: 15_000,
      server_connect_timeout: 5_000,
      shutdown_grace: 30_000,
    });
    expect(c.pool).toEqual({
      pool_size: 20,
      min_pool_size: 0,
      max_db_connections: 0,
      query_wait_timeout: 120_000,
      server_reset_query: 'DISCARD ALL',
      server_idle_timeout: 600_000,
      server_lifetime: 3_600_000,
      server_check_delay: 30_000,
      server_check_query: ';',
      idle_transaction_timeout: 0,
      max_prepared_statements: 1000,
    });
    expect(c.databases).toEqual([]);
    expect(c.log).toEqual({ level: 'info', pretty: false });
  });

  it('a full file loads with its values (loadConfigFile on a fixture)', () => {
    const c = loadConfigFile(fixture('full.yaml'));
    expect(c.listen).toBe('0.0.0.0:6432');
    expect(c.admin_listen).toBe('127.0.0.1:9187');
    expect(c.region).toBe('ams');
    expect(c.primary?.region).toBe('fra');
    expect(c.replicas).toEqual([{ url: 'postgres://pgnear:secret@db-ams:5432/app', region: 'ams', name: 'ams-1' }]);
    expect(c.auth.type).toBe('md5');
    expect(c.auth.users).toEqual([{ name: 'app', password: 's3cret' }]);
    expect(c.limits.max_client_conn).toBe(500);
    expect(c.limits.max_message_size).toBe(256 * 1024 * 1024);
    expect(c.log.level).toBe('debug');
  });

  it('durations: "15s", "500ms", "2m", "1h", "1.5s", bare strings and numbers are milliseconds', () => {
    const c = loadConfigFile(fixture('full.yaml'));
    expect(c.limits.client_login_timeout).toBe(15_000);
    expect(c.limits.server_connect_timeout).toBe(500);
    expect(c.limits.shutdown_grace).toBe(120_000);
    expect(c.pool.server_idle_timeout).toBe(90_000);
    const d = (v: unknown) =>
      parseConfig({ primary: { url: 'postgres://h/d' }, limits: { shutdown_grace: v } }).limits.shutdown_grace;
    expect(d('1h')).toBe(3_600_000);
    expect(d('1.5s')).toBe(1_500);
    expect(d('250')).toBe(250);
    expect(d(' 3 s ')).toBe(3_000);
    expect(d(0)).toBe(0);
  });

  it('bracketed IPv6 listen addresses are accepted', () => {
    expect(parseConfigText(`${MIN}listen: "[::1]:6432"\n`, 'x').listen).toBe('[::1]:6432');
  });

  it('an empty file with overrides supplying the primary is valid', () => {
    const c = parseConfigText('', 'empty.yaml', { primary: { url: 'postgres://h/db' } });
    expect(c.primary?.url).toBe('postgres://h/db');
  });
});

describe('invalid configs → ConfigError with a problems list', () => {
  it('unknown nested key: the problem names the key', () => {
    const e = configError(() => loadConfigFile(fixture('bad-key.yaml')));
    expect(e.problems.length).toBe(1);
    expect(e.problems[0]).toContain('max_clent_conn');
    expect(e.message).toContain(fixture('bad-key.yaml'));
  });

  it('unknown nested key: the problem is path-qualified as limits.max_clent_conn', () => {
    const e = configError(() => loadConfigFile(fixture('bad-key.yaml')));
    expect(e.problems.join('\n')).toContain('limits.max_clent_conn');
  });

  it('unknown keys in array items and at the root are path-qualified', () => {
    const e = configError(() =>
      parseConfigText(`${MIN}replicas:\n  - url: postgres://r/db\n    nme: x\nbogus: 1\n`, 'x'),
    );
    const all = e.problems.join('\n');
    expect(all).toContain('replicas[0].nme');
    expect(all).toMatch(/(^|\s)bogus\b|"bogus"/);
  });

  it('bad listen format', () => {
    for (const listen of ['6432', 'localhost', 'host:port', ':6432', 'a:b:6432', 'h:123456']) {
      const e = configError(() => parseConfigText(`${MIN}listen: "${listen}"\n`, 'x'));
      expect(
        e.problems.some((p) => p.startsWith('listen:')),
        listen,
      ).toBe(true);
    }
  });

  it('bad duration', () => {
    const e = configError(() => parseConfigText(`${MIN}limits:\n  client_login_timeout: 15x\n`, 'x'));
    expect(e.problems).toEqual([expect.stringMatching(/^limits\.client_login_timeout: .*15x/)]);
    configError(() => parseConfig({ primary: { url: 'postgres://h/d' }, limits: { shutdown_grace: -5 } }));
    configError(() => parseConfig({ primary: { url: 'postgres://h/d' }, limits: { shutdown_grace: '5 days' } }));
  });

  it('missing primary', () => {
    const e = configError(() => parseConfigText('listen: 127.0.0.1:6432\n', 'x'));
    expect(e.problems).toEqual([expect.stringMatching(/^primary: /)]);
  });

  it('primary url that is not a postgres:// URL', () => {
    const e = configError(() => parseConfigText('primary:\n  url: mysql://h/db\n', 'x'));
    expect(e.problems).toEqual([expect.stringMatching(/^primary\.url: /)]);
  });

  it('tls cert without key (and key without cert)', () => {
    let e = configError(() => parseConfigText(`${MIN}tls:\n  cert: /etc/pgnear/cert.pem\n`, 'x'));
    expect(e.problems.some((p) => p.startsWith('tls'))).toBe(true);
    e = configError(() => parseConfigText(`${MIN}tls:\n  key: /etc/pgnear/key.pem\n`, 'x'));
    expect(e.problems.some((p) => p.startsWith('tls'))).toBe(true);
    expect(() => parseConfigText(`${MIN}tls:\n  cert: /c.pem\n  key: /k.pem\n`, 'x')).not.toThrow();
  });

  it('tls require without a certificate or self_signed', () => {
    const e = configError(() => parseConfigText(`${MIN}tls:\n  mode: require\n`, 'x'));
    expect(e.problems.some((p) => p.startsWith('tls.mode'))).toBe(true);
    expect(() => parseConfigText(`${MIN}tls:\n  mode: require\n  self_signed: true\n`, 'x')).not.toThrow();
  });

  it('routing rules: an invalid pattern and a malformed fingerprint are reported with their paths', () => {
    const e = configError(() =>
      parseConfigText(
        `${MIN}routing:\n  rules:\n    - { match: { pattern: "select ([" }, route: primary }\n    - { match: { fingerprint: xyz }, route: replica }\n`,
        'x',
      ),
    );
    expect(e.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^routing\.rules\[1\]\.match\.fingerprint: /)]),
    );
    const e2 = configError(() =>
      parseConfigText(`${MIN}routing:\n  rules:\n    - { match: { pattern: "select ([" }, route: primary }\n`, 'x'),
    );
    expect(e2.problems).toEqual([
      expect.stringMatching(/^routing\.rules\[0\]\.match\.pattern: invalid regular expression/),
    ]);
    const ok = parseConfigText(
      `${MIN}routing:\n  rules:\n    - { match: { application_name: reports }, route: replica, consistency: eventual }\n`,
      'x',
    );
    expect(ok.routing.rules[0]).toMatchObject({ route: 'replica', consistency: 'eventual' });
    expect(ok.routing).toMatchObject({ enabled: true, consistency: 'session', lsn_policy: 'fastest', max_wait: 1000 });
  });

  it('wrong types and enum values are reported with their paths, all at once', () => {
    const e = configError(() =>
      parseConfigText(
        `${MIN}auth:\n  type: kerberos\n  users:\n    - name: u\n      password: 1\nlog:\n  level: loud\n`,
        'x',
      ),
    );
    const all = e.problems.join('\n');
    expect(all).toContain('auth.type');
    expect(all).toContain('auth.users[0].password');
    expect(all).toContain('log.level');
    expect(e.problems.length).toBe(3);
  });

  it('YAML syntax error', () => {
    const e = configError(() => parseConfigText('primary: [\n', 'broken.yaml'));
    expect(e.problems.length).toBe(1);
    expect(e.problems[0]).toMatch(/^YAML: /);
    expect(e.message).toContain('broken.yaml');
  });

  it('a YAML document that is not a mapping', () => {
    for (const text of ['- a\n- b\n', 'just a string\n', '42\n']) {
      const e = configError(() => parseConfigText(text, 'x'));
      expect(e.problems[0]).toMatch(/^\(root\): /);
    }
  });

  it('an unreadable file', () => {
    const e = configError(() => loadConfigFile(fixture('does-not-exist.yaml')));
    expect(e.problems[0]).toMatch(/cannot read .*does-not-exist\.yaml: ENOENT/);
  });
});

describe('overrides (flags/env) over the file', () => {
  it('scalars replace, objects merge deeply, arrays replace', () => {
    const c = loadConfigFile(fixture('full.yaml'), {
      listen: '127.0.0.1:7000',
      auth: { type: 'plain' },
      log: { level: 'warn' },
      replicas: [{ url: 'postgres://other/db', region: 'iad' }],
    });
    expect(c.listen).toBe('127.0.0.1:7000');
    expect(c.auth.type).toBe('plain');
    expect(c.auth.users).toEqual([{ name: 'app', password: 's3cret' }]); // kept from the file
    expect(c.log.level).toBe('warn');
    expect(c.replicas).toEqual([{ url: 'postgres://other/db', region: 'iad' }]);
    expect(c.limits.max_client_conn).toBe(500); // untouched section
    expect(c.admin_listen).toBe('127.0.0.1:9187');
  });

  it('undefined override values do not erase file values', () => {
    const c = loadConfigFile(fixture('full.yaml'), { listen: undefined, region: undefined });
    expect(c.listen).toBe('0.0.0.0:6432');
    expect(c.region).toBe('ams');
  });

  it('overrides are validated like the file', () => {
    const e = configError(() => parseConfigText(MIN, 'x', { listen: 'nope' }));
    expect(e.problems.some((p) => p.startsWith('listen:'))).toBe(true);
  });

  it('the file object is not mutated by merging', () => {
    const raw = { primary: { url: 'postgres://h/db' }, log: { level: 'error' } };
    parseConfig(raw, 'obj', { log: { level: 'debug' } });
    expect(raw.log.level).toBe('error');
  });
});
