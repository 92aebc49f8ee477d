// Session settings under transaction pooling: libpq options, sync SQL between client and server, read-back.
import { describe, expect, it } from 'vitest';
import type { ServerConn } from '../../../src/pool/server-conn.js';
import {
  appliedOn,
  mergeDateStyle,
  parseOptions,
  quoteLiteral,
  SessionParams,
} from '../../../src/session/session-params.js';

const conn = () => ({}) as ServerConn;
const startup = (o: Record<string, string>) => new Map(Object.entries(o));

describe('parseOptions', () => {
  it('reads -c name=value as two words', () => {
    expect(parseOptions('-c search_path=app')).toEqual([['search_path', 'app']]);
  });

  it('reads -cname=value as one word', () => {
    expect(parseOptions('-csearch_path=app')).toEqual([['search_path', 'app']]);
  });

  it('reads --name=value and turns dashes in the name into underscores', () => {
    expect(parseOptions('--statement-timeout=5s')).toEqual([['statement_timeout', '5s']]);
    expect(parseOptions('-c work-mem=64MB')).toEqual([['work_mem', '64MB']]);
  });

  it('lower-cases names but keeps values as written', () => {
    expect(parseOptions('-c TimeZone=Europe/Paris')).toEqual([['timezone', 'Europe/Paris']]);
  });

  it('keeps dashes and = in values', () => {
    expect(parseOptions('-c application_name=a-b=c')).toEqual([['application_name', 'a-b=c']]);
  });

  it('backslash escapes spaces (and backslashes) inside a word', () => {
    expect(parseOptions('-c application_name=my\\ app -c x.y=a\\\\b')).toEqual([
      ['application_name', 'my app'],
      ['x.y', 'a\\b'],
    ]);
  });

  it('reads several options separated by any whitespace', () => {
    expect(parseOptions('  -c a=1\t-cb=2\n--c-d=3   -c  e=4 ')).toEqual([
      ['a', '1'],
      ['b', '2'],
      ['c_d', '3'],
      ['e', '4'],
    ]);
  });

  it('allows an empty value', () => {
    expect(parseOptions('-c search_path=')).toEqual([['search_path', '']]);
  });

  it('ignores words that are not options, options without =, and a trailing -c', () => {
    expect(parseOptions('')).toEqual([]);
    expect(parseOptions('foo -c novalue --flag -c =x -c')).toEqual([]);
    expect(parseOptions('-c a=1 stray -c')).toEqual([['a', '1']]);
  });
});

describe('quoteLiteral', () => {
  it('doubles single quotes', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('')).toBe("''");
    expect(quoteLiteral("''")).toBe("''''''");
  });
});

describe('SessionParams', () => {
  it('startup parameters and -c options (the parameters winning, as in Postgres) become wanted settings; user/database/options/replication do not', () => {
    const p = new SessionParams(
      startup({
        user: 'alice',
        database: 'app',
        replication: 'false',
        application_name: 'psql',
        DateStyle: 'ISO',
        options: '-c search_path=s1 -c statement_timeout=5s --application-name=from_options',
      }),
    );
    expect(Object.fromEntries(p.wanted)).toEqual({
      application_name: 'psql',
      datestyle: 'ISO',
      search_path: 's1',
      statement_timeout: '5s',
    });
    expect(p.dirty.size).toBe(0);
  });

  it('clients with the same startup settings share their defaults, and one client changing its own leaves the others alone', () => {
    const a = new SessionParams(startup({ application_name: 'app', search_path: 's1' }));
    const b = new SessionParams(startup({ application_name: 'app', search_path: 's1' }));
    const ca = conn();
    const cb = conn();
    // a's client ran SET search_path and the server reported it back
    a.noteSet(['search_path']);
    a.readBack(ca, ['search_path'], ['s2']);
    expect(a.syncSql(cb)).toContain("set_config('search_path', 's2', false)");
    expect(b.syncSql(cb)).toContain("set_config('search_path', 's1', false)");
    // RESET of a startup setting goes back to the client's own default, RESET ALL to all of them
    a.noteReset(['search_path'], ca);
    expect(Object.fromEntries(a.wanted)).toEqual({ application_name: 'app', search_path: 's1' });
    a.wanted.set('work_mem', '1MB');
    a.noteResetAll(ca);
    expect(Object.fromEntries(a.wanted)).toEqual({ application_name: 'app', search_path: 's1' });
    expect(Object.fromEntries(b.wanted)).toEqual({ application_name: 'app', search_path: 's1' });
    const c = new SessionParams(startup({ application_name: 'app', search_path: 's1' }));
    expect(Object.fromEntries(c.wanted)).toEqual({ application_name: 'app', search_path: 's1' });
  });

  it('syncSql sets what differs and is null when the server already matches', () => {
    const p = new SessionParams(startup({ application_name: 'a', search_path: 's1' }));
    const c = conn();
    expect(p.syncSql(c)).toBe(
      "SELECT pg_catalog.set_config('application_name', 'a', false), pg_catalog.set_config('search_path', 's1', false)",
    );
    p.synced(c);
    expect(Object.fromEntries(appliedOn(c))).toEqual({ application_name: 'a', search_path: 's1' });
    expect(p.syncSql(c)).toBeNull();

    appliedOn(c).set('search_path', 'other');
    expect(p.syncSql(c)).toBe("SELECT pg_catalog.set_config('search_path', 's1', false)");
  });

  it('syncSql is null for a client without settings on a clean server', () => {
    expect(new SessionParams(startup({ user: 'u', database: 'd' })).syncSql(conn())).toBeNull();
  });

  it('syncSql RESETs settings the server carries that the client does not have, then sets', () => {
    const p = new SessionParams(startup({ search_path: 's1' }));
    const c = conn();
    appliedOn(c).set('statement_timeout', '1s');
    appliedOn(c).set('myext.flag', 'on');
    appliedOn(c).set('search_path', 's1');
    expect(p.syncSql(c)).toBe('RESET "statement_timeout"; RESET "myext"."flag"; ');
    p.synced(c);
    expect(Object.fromEntries(appliedOn(c))).toEqual({ search_path: 's1' });
    expect(p.syncSql(c)).toBeNull();

    appliedOn(c).set('work_mem', '1MB');
    appliedOn(c).delete('search_path');
    expect(p.syncSql(c)).toBe("RESET \"work_mem\"; SELECT pg_catalog.set_config('search_path', 's1', false)");
  });

  it('quotes quotes in names and values', () => {
    const p = new SessionParams(startup({ application_name: "it's; DROP TABLE x; --" }));
    const c = conn();
    expect(p.syncSql(c)).toBe("SELECT pg_catalog.set_config('application_name', 'it''s; DROP TABLE x; --', false)");
    appliedOn(c).set('we"ird', 'x');
    expect(p.syncSql(c)).toMatch(/^RESET "we""ird"; /);
  });

  it('noteSet marks names dirty; readBackSql reads them in order', () => {
    const p = new SessionParams(startup({}));
    expect(p.readBackSql()).toBeNull();
    p.noteSet(['search_path', "o'dd"]);
    p.noteSet(['search_path']);
    const rb = p.readBackSql()!;
    expect(rb.names).toEqual(['search_path', "o'dd"]);
    expect(rb.sql).toBe(
      "SELECT unnest(ARRAY[pg_catalog.current_setting('search_path', true), pg_catalog.current_setting('o''dd', true)])",
    );
  });

  it('readBack records values as both wanted and applied, drops NULLs, clears dirty', () => {
    const p = new SessionParams(startup({ search_path: 's1', application_name: 'a' }));
    const c = conn();
    p.synced(c);
    p.noteSet(['search_path', 'myext.x', 'application_name']);
    p.readBack(c, ['search_path', 'myext.x', 'application_name'], ['s2', null, 'b']);
    expect(Object.fromEntries(p.wanted)).toEqual({ search_path: 's2', application_name: 'b' });
    expect(Object.fromEntries(appliedOn(c))).toEqual({ search_path: 's2', application_name: 'b' });
    expect(p.dirty.size).toBe(0);
    expect(p.syncSql(c)).toBeNull();

    // Another server (still at the client's old values) now needs the new ones.
    const other = conn();
    appliedOn(other).set('search_path', 's1');
    expect(p.syncSql(other)).toBe(
      "SELECT pg_catalog.set_config('search_path', 's2', false), pg_catalog.set_config('application_name', 'b', false)",
    );
  });

  it('noteReset of a name with a startup default goes back to that default and is synced again', () => {
    const p = new SessionParams(startup({ search_path: 's1' }));
    const c = conn();
    p.synced(c);
    p.noteSet(['search_path']);
    p.readBack(c, ['search_path'], ['s2']);
    p.noteSet(['search_path']);
    p.noteReset(['search_path'], c);
    expect(p.wanted.get('search_path')).toBe('s1');
    expect(appliedOn(c).has('search_path')).toBe(false); // the server is at its own default now
    expect(p.dirty.has('search_path')).toBe(false);
    expect(p.syncSql(c)).toBe("SELECT pg_catalog.set_config('search_path', 's1', false)");
  });

  it('noteReset of a name without a startup default forgets it', () => {
    const p = new SessionParams(startup({}));
    const c = conn();
    p.noteSet(['work_mem']);
    p.readBack(c, ['work_mem'], ['64MB']);
    p.noteReset(['work_mem'], c);
    expect(p.wanted.has('work_mem')).toBe(false);
    expect(appliedOn(c).has('work_mem')).toBe(false);
    expect(p.syncSql(c)).toBeNull();
  });

  it('noteResetAll returns to the startup defaults and forgets what the server carried', () => {
    const p = new SessionParams(startup({ application_name: 'a', options: '-c search_path=s1' }));
    const c = conn();
    p.synced(c);
    p.noteSet(['work_mem', 'search_path']);
    p.readBack(c, ['work_mem', 'search_path'], ['64MB', 's9']);
    p.noteSet(['timezone']);
    p.noteResetAll(c);
    expect(Object.fromEntries(p.wanted)).toEqual({ application_name: 'a', search_path: 's1' });
    expect(appliedOn(c).size).toBe(0);
    expect(p.dirty.size).toBe(0);
    expect(p.syncSql(c)).toBe(
      "SELECT pg_catalog.set_config('search_path', 's1', false), pg_catalog.set_config('application_name', 'a', false)",
    );
  });

  it('applied settings are per server connection', () => {
    const p = new SessionParams(startup({ application_name: 'a' }));
    const c1 = conn();
    const c2 = conn();
    p.synced(c1);
    expect(p.syncSql(c1)).toBeNull();
    expect(p.syncSql(c2)).not.toBeNull();
    expect(appliedOn(c1)).toBe(appliedOn(c1));
    expect(appliedOn(c1)).not.toBe(appliedOn(c2));
  });
});

describe('startup parameters over -c options (as Postgres applies them)', () => {
  it('a startup parameter wins over the same -c option', () => {
    const p = new SessionParams(
      new Map([
        ['options', '-c TimeZone=America/New_York -c work_mem=8MB'],
        ['TimeZone', 'Asia/Tokyo'],
      ]),
    );
    expect(p.get('timezone')).toBe('Asia/Tokyo');
    expect(p.get('work_mem')).toBe('8MB');
  });

  it('DateStyle=ISO over -c DateStyle=SQL,DMY keeps the DMY order (pgjdbc needs ISO first)', () => {
    const p = new SessionParams(
      new Map([
        ['options', '-c DateStyle=SQL,DMY'],
        ['DateStyle', 'ISO'],
      ]),
    );
    expect(p.get('datestyle')).toBe('ISO, DMY');
  });

  it('mergeDateStyle takes each part from the later value when it has one', () => {
    expect(mergeDateStyle('SQL, DMY', 'ISO')).toBe('ISO, DMY');
    expect(mergeDateStyle('ISO, MDY', 'euro')).toBe('ISO, DMY');
    expect(mergeDateStyle('German', 'Postgres, YMD')).toBe('Postgres, YMD');
    expect(mergeDateStyle('sql', 'us')).toBe('SQL, MDY');
  });
});
