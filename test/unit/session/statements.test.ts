// Shared statement names, the per-server LRU of prepared shared statements, and the per-client name table.
import { describe, expect, it } from 'vitest';
import type { ServerConn } from '../../../src/pool/server-conn.js';
import { ClientStatements, ServerStatements, serverStatements, sharedName } from '../../../src/session/statements.js';

const types = (...oids: number[]): Buffer => {
  const b = Buffer.alloc(2 + 4 * oids.length);
  b.writeInt16BE(oids.length, 0);
  oids.forEach((o, i) => b.writeInt32BE(o, 2 + 4 * i));
  return b;
};
const st = (sql: string) => ({ shared: sharedName(sql, types()), sql, types: types(), gen: 0 });

describe('sharedName', () => {
  it('is deterministic', () => {
    expect(sharedName('SELECT 1', types())).toBe(sharedName('SELECT 1', types()));
    expect(sharedName('SELECT $1', types(23))).toBe(sharedName('SELECT $1', Buffer.from(types(23))));
  });

  it('fits a Postgres identifier (NAMEDATALEN 64) and has a pgnear_ prefix', () => {
    for (const sql of ['', 'SELECT 1', 'x'.repeat(100_000), 'SELECT "🐘"']) {
      const n = sharedName(sql, types(23, 25));
      expect(n).toMatch(/^pgnear_[A-Za-z0-9_-]{22}$/);
      expect(Buffer.byteLength(n)).toBeLessThan(64);
    }
  });

  it('differs for different texts', () => {
    const names = new Set(['SELECT 1', 'SELECT 2', 'select 1', 'SELECT 1 ', ''].map((s) => sharedName(s, types())));
    expect(names.size).toBe(5);
  });

  it('differs for different parameter types of the same text', () => {
    const sql = 'SELECT $1';
    const names = new Set([types(), types(0), types(23), types(25), types(23, 23)].map((t) => sharedName(sql, t)));
    expect(names.size).toBe(5);
  });
});

describe('ServerStatements', () => {
  it('has / add', () => {
    const s = new ServerStatements(10);
    expect(s.has('a')).toBe(false);
    s.add('a');
    expect(s.has('a')).toBe(true);
    expect(s.toClose).toEqual([]);
  });

  it('evicts the least recently used name into toClose', () => {
    const s = new ServerStatements(2);
    s.add('a');
    s.add('b');
    expect(s.has('a')).toBe(true); // a is now the most recently used
    s.add('c');
    expect(s.toClose).toEqual(['b']);
    s.add('d');
    expect(s.toClose).toEqual(['b', 'a']);
    expect(s.has('c')).toBe(true);
    expect(s.has('d')).toBe(true);
  });

  it('re-adding a cached name does not evict or close it', () => {
    const s = new ServerStatements(2);
    s.add('a');
    s.add('a');
    s.add('b');
    expect(s.toClose).toEqual([]);
  });

  it('a name evicted but not yet closed is still prepared on the server: has() takes it back', () => {
    const s = new ServerStatements(2);
    s.add('a');
    s.add('b');
    s.add('c'); // evicts a, which the server still holds until the Close is sent
    expect(s.toClose).toEqual(['a']);
    expect(s.has('a')).toBe(true);
    // a is cached again (evicting b instead) and must no longer be closed.
    expect(s.toClose).toEqual(['b']);
    expect(s.has('c')).toBe(true);
  });

  it('forget removes a name without scheduling a Close', () => {
    const s = new ServerStatements(2);
    s.add('a');
    s.forget('a');
    expect(s.has('a')).toBe(false);
    expect(s.toClose).toEqual([]);
    s.forget('never-added');
    expect(s.toClose).toEqual([]);
  });

  it('clear forgets everything, including pending Closes', () => {
    const s = new ServerStatements(1);
    s.add('a');
    s.add('b');
    expect(s.toClose).toEqual(['a']);
    s.clear();
    expect(s.has('a')).toBe(false);
    expect(s.has('b')).toBe(false);
    expect(s.toClose).toEqual([]);
  });

  it('serverStatements gives one table per server connection', () => {
    const c1 = {} as ServerConn;
    const c2 = {} as ServerConn;
    const s1 = serverStatements(c1, 5);
    expect(serverStatements(c1, 5)).toBe(s1);
    expect(serverStatements(c2, 5)).not.toBe(s1);
    s1.add('x');
    expect(serverStatements(c2, 5).has('x')).toBe(false);
  });
});

describe('ClientStatements', () => {
  it('get / has / delete / clear / size', () => {
    const c = new ClientStatements(10);
    const a = st('SELECT 1');
    expect(c.add('a', a)).toBe(true);
    expect(c.get('a')).toBe(a);
    expect(c.has('a')).toBe(true);
    expect(c.has('b')).toBe(false);
    expect(c.get('b')).toBeUndefined();
    c.add('b', st('SELECT 2'));
    expect(c.size).toBe(2);
    c.delete('a');
    expect(c.has('a')).toBe(false);
    expect(c.size).toBe(1);
    c.clear();
    expect(c.size).toBe(0);
  });

  it('caps the names at ten times the per-server statement limit', () => {
    const c = new ClientStatements(2);
    for (let i = 0; i < 20; i++) expect(c.add(`s${i}`, st(`SELECT ${i}`))).toBe(true);
    expect(c.add('one-more', st('SELECT 99'))).toBe(false);
    expect(c.has('one-more')).toBe(false);
    expect(c.size).toBe(20);
    // Replacing an existing name is allowed at the cap.
    const repl = st('SELECT replaced');
    expect(c.add('s3', repl)).toBe(true);
    expect(c.get('s3')).toBe(repl);
    // Deleting makes room again.
    c.delete('s0');
    expect(c.add('one-more', st('SELECT 99'))).toBe(true);
    expect(c.size).toBe(20);
  });
});
