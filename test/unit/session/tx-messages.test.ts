// TxMessages: client extended-protocol messages in transaction mode, driven with pg-protocol frames against a
// real ResponsePlan and a fake relay (no sockets).
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import type { ServerConn } from '../../../src/pool/server-conn.js';
import { decodeErrorFields } from '../../../src/protocol/backend.js';
import { BE, FE } from '../../../src/protocol/codes.js';
import {
  bindStatement,
  CLOSE_COMPLETE,
  decodeParse,
  encodeTarget,
  KIND_STATEMENT,
  PARSE_COMPLETE,
} from '../../../src/protocol/extended.js';
import { appliedOn } from '../../../src/session/session-params.js';
import { serverStatements, sharedName } from '../../../src/session/statements.js';
import { client, hex, NO_TYPES } from '../../support/tx-messages-client.js';

/** A server on which another client already prepared 'SELECT 1', and a second client attached to it. */
function sharedServerWithSelect1() {
  const server = {} as ServerConn;
  const a = client();
  a.out.server = server;
  a.feed(serialize.parse({ name: 'ok', text: 'SELECT 1' }));
  a.reply(BE.ParseComplete);
  const b = client();
  b.out.server = server;
  return { server, b };
}

describe('named Parse', () => {
  it('is renamed to the shared pgnear_ name and sent instead of the original', () => {
    const c = client();
    const f = serialize.parse({ name: 's1', text: 'SELECT $1', types: [23] });
    expect(c.feed(f)).toBe(false);
    expect(c.sent).toHaveLength(1);
    const p = decodeParse(c.sent[0]);
    expect(p.name).toMatch(/^pgnear_/);
    expect(p.name).toBe(sharedName('SELECT $1', decodeParse(f).types));
    expect(p.sql).toBe('SELECT $1');
    expect(hex(p.types)).toBe('000100000017');
    expect(c.m.statements.get('s1')?.shared).toBe(p.name);
    expect(c.plan.pending).toBe(1);
    expect(c.reply(BE.ParseComplete)).toBe(true);
    expect(c.emitted).toEqual([]);
  });

  it('is sent once per server: the same client on another server prepares it again only when used', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
    c.reply(BE.ParseComplete);
    c.feed(serialize.parse({ name: 's2', text: 'SELECT 1' })); // same text, other client name
    expect(c.sent).toHaveLength(1);
    expect(c.emitted.map(hex)).toEqual([hex(PARSE_COMPLETE)]);
  });

  it('a second client parsing the same text on the same server gets a synthetic ParseComplete, nothing sent', () => {
    const server = {} as ServerConn;
    const a = client();
    a.out.server = server;
    a.feed(serialize.parse({ name: 'a_stmt', text: 'SELECT * FROM t WHERE id = $1', types: [23] }));
    a.reply(BE.ParseComplete);
    expect(a.sent).toHaveLength(1);

    const b = client();
    b.out.server = server;
    expect(b.feed(serialize.parse({ name: 'b_stmt', text: 'SELECT * FROM t WHERE id = $1', types: [23] }))).toBe(false);
    expect(b.sent).toEqual([]);
    expect(b.emitted.map(hex)).toEqual([hex(PARSE_COMPLETE)]); // nothing pending: emitted at once
    expect(b.m.statements.get('b_stmt')?.shared).toBe(a.m.statements.get('a_stmt')?.shared);

    // Different parameter types: a different shared statement, so it is sent.
    b.feed(serialize.parse({ name: 'b2', text: 'SELECT * FROM t WHERE id = $1', types: [20] }));
    expect(b.sent).toHaveLength(1);
  });

  it('a synthetic ParseComplete waits behind earlier replies', () => {
    const server = {} as ServerConn;
    const a = client();
    a.out.server = server;
    a.feed(serialize.parse({ name: 'x', text: 'SELECT 1' }));
    a.reply(BE.ParseComplete);
    a.feed(serialize.sync());
    a.reply(BE.ReadyForQuery);

    a.feed(serialize.parse({ text: 'SELECT 2' })); // unnamed: goes to the server
    a.feed(serialize.parse({ name: 'y', text: 'SELECT 1' })); // known there: synthetic
    expect(a.emitted).toEqual([]);
    a.reply(BE.ParseComplete);
    expect(a.emitted.map(hex)).toEqual([hex(PARSE_COMPLETE)]);
  });

  it('a duplicate name gets a synthetic 42P05 error and later messages are dropped until Sync', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
    expect(c.feed(serialize.parse({ name: 's1', text: 'SELECT 2' }))).toBe(false);
    expect(c.sent).toHaveLength(1);
    expect(c.emitted).toEqual([]); // waits for the first Parse's reply
    c.reply(BE.ParseComplete);
    expect(c.emitted).toHaveLength(1);
    const err = decodeErrorFields(c.emitted[0]);
    expect(c.emitted[0][0]).toBe(BE.ErrorResponse);
    expect(err.get('C')).toBe('42P05');
    expect(err.get('M')).toBe('prepared statement "s1" already exists');
    expect(c.m.statements.get('s1')?.sql).toBe('SELECT 1');

    const pendingBefore = c.plan.pending;
    for (const f of [
      serialize.bind({ statement: 's1' }),
      serialize.describe({ type: 'P', name: '' }),
      serialize.execute({}),
      serialize.parse({ name: 's3', text: 'SELECT 3' }),
      serialize.close({ type: 'S', name: 's1' }),
      serialize.query('SELECT 1'),
      serialize.flush(),
    ]) {
      expect(c.feed(f)).toBe(false);
    }
    expect(c.sent).toHaveLength(1);
    expect(c.plan.pending).toBe(pendingBefore);
    expect(c.m.statements.has('s3')).toBe(false);
    expect(c.m.statements.has('s1')).toBe(true);

    expect(c.feed(serialize.sync())).toBe(true);
    c.reply(BE.ReadyForQuery);
    expect(c.feed(serialize.parse({ name: 's3', text: 'SELECT 3' }))).toBe(false);
    expect(c.sent).toHaveLength(2);
  });

  it('too many statements on one client: synthetic 54000 error', () => {
    const c = client({ maxPrepared: 1 });
    for (let i = 0; i < 10; i++) c.feed(serialize.parse({ name: `s${i}`, text: `SELECT ${i}` }));
    for (let i = 0; i < 10; i++) c.reply(BE.ParseComplete);
    expect(c.emitted).toEqual([]);
    c.feed(serialize.parse({ name: 'one_more', text: 'SELECT 10' }));
    expect(decodeErrorFields(c.emitted[0]).get('C')).toBe('54000');
    expect(c.m.statements.has('one_more')).toBe(false);
  });

  it('a failed Parse removes the client statement, so parsing the name again is sent again and succeeds', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELEC oops' }));
    c.feed(serialize.bind({ statement: 's1' }));
    c.feed(serialize.execute({}));
    c.feed(serialize.sync());
    expect(c.reply(BE.ErrorResponse)).toBe(true);
    expect(c.m.statements.has('s1')).toBe(false);
    expect(serverStatements(c.out.server, 100).has(sharedName('SELEC oops', NO_TYPES))).toBe(false);
    c.reply(BE.ReadyForQuery);
    expect(c.plan.pending).toBe(0);

    const before = c.sent.length;
    expect(c.feed(serialize.parse({ name: 's1', text: 'SELEC oops' }))).toBe(false);
    expect(c.emitted).toEqual([]); // no 42P05
    expect(c.sent.length).toBe(before + 1);
    expect(decodeParse(c.sent.at(-1)!).name).toBe(sharedName('SELEC oops', NO_TYPES));
  });

  it('settled() with an unknown tag is ignored', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'bad' }));
    c.m.settled(999, false);
    expect(c.m.statements.has('s1')).toBe(true);
  });

  it('a Parse the server skips after an earlier error does not create the statement (synthetic reply dropped)', () => {
    const { server, b } = sharedServerWithSelect1();
    b.feed(serialize.parse({ name: 'b1', text: 'SELEC oops' })); // sent, fails
    b.feed(serialize.parse({ name: 'b2', text: 'SELECT 1' })); // already on the server: synthetic ParseComplete
    b.feed(serialize.sync());
    b.reply(BE.ErrorResponse); // Postgres skips b2's Parse: the client never sees its ParseComplete
    b.reply(BE.ReadyForQuery);
    expect(b.emitted).toEqual([]);
    expect(b.m.statements.has('b1')).toBe(false);
    expect(b.m.statements.has('b2')).toBe(false);
    // The shared statement itself is still prepared on the server.
    expect(serverStatements(server, 100).has(sharedName('SELECT 1', NO_TYPES))).toBe(true);
    // So the client can parse b2 again, as it could against Postgres.
    b.feed(serialize.parse({ name: 'b2', text: 'SELECT 1' }));
    expect(b.emitted.map(hex)).toEqual([hex(PARSE_COMPLETE)]);
  });

  it('a synthetic Parse while the server skips to Sync does not create the statement either', () => {
    const { b } = sharedServerWithSelect1();
    b.feed(serialize.parse({ name: 'b1', text: 'SELEC oops' }));
    b.reply(BE.ErrorResponse); // nothing else queued: the server now skips until Sync
    b.feed(serialize.parse({ name: 'b2', text: 'SELECT 1' }));
    expect(b.emitted).toEqual([]);
    expect(b.m.statements.has('b2')).toBe(false);
  });

  it('synthetic ParseCompletes that are emitted leave no bookkeeping behind', () => {
    const { b } = sharedServerWithSelect1();
    for (let i = 0; i < 50; i++) {
      b.feed(serialize.parse({ name: `n${i}`, text: 'SELECT 1' }));
      b.feed(serialize.close({ type: 'S', name: `n${i}` }));
    }
    expect(b.emitted).toHaveLength(100);
    expect((b.m as unknown as { tags: Map<number, unknown> }).tags.size).toBe(0);
  });
});

describe('Bind and Describe of named statements', () => {
  it('Bind on a server that lacks the statement injects a hidden Parse and rewrites the Bind', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT $1, $2', types: [25, 17] }));
    c.reply(BE.ParseComplete);
    c.feed(serialize.sync());
    c.reply(BE.ReadyForQuery);
    const shared = c.m.statements.get('s1')!.shared;

    c.out.server = {} as ServerConn; // the next transaction runs elsewhere
    c.sent.length = 0;
    const values = ['tëxt', Buffer.from([0, 1, 2, 0xff])];
    const bind = serialize.bind({ portal: 'p', statement: 's1', values, binary: true });
    expect(c.feed(bind)).toBe(false);
    expect(c.sent).toHaveLength(2);
    const p = decodeParse(c.sent[0]);
    expect(p).toMatchObject({ name: shared, sql: 'SELECT $1, $2' });
    expect(hex(p.types)).toBe('0002' + '00000019' + '00000011');
    expect(hex(c.sent[1])).toBe(hex(serialize.bind({ portal: 'p', statement: shared, values, binary: true })));

    // The injected Parse's reply is hidden, the Bind's is shown.
    expect(c.reply(BE.ParseComplete)).toBe(false);
    expect(c.reply(BE.BindComplete)).toBe(true);

    // Prepared there now: the next Bind is only rewritten.
    c.feed(serialize.bind({ statement: 's1', values: ['a', 'b'] }));
    expect(c.sent).toHaveLength(3);
    expect(bindStatement(c.sent[2])).toBe(shared);
  });

  it('a failed injected Parse is shown and forgotten on the server, but the client keeps its statement', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT * FROM gone' }));
    c.reply(BE.ParseComplete);
    c.out.server = {} as ServerConn;
    const shared = c.m.statements.get('s1')!.shared;
    c.feed(serialize.bind({ statement: 's1' }));
    c.feed(serialize.execute({}));
    c.feed(serialize.sync());
    expect(c.reply(BE.ErrorResponse)).toBe(true);
    expect(serverStatements(c.out.server, 100).has(shared)).toBe(false);
    expect(c.m.statements.has('s1')).toBe(true);
  });

  it('Bind of an unknown name passes through for the server to reject', () => {
    const c = client();
    const f = serialize.bind({ statement: 'nope' });
    expect(c.feed(f)).toBe(true);
    expect(c.sent).toEqual([]);
    expect(c.plan.pending).toBe(1);
  });

  it('Describe of a named statement is rewritten (and prepared first where missing)', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
    const shared = c.m.statements.get('s1')!.shared;
    expect(c.feed(serialize.describe({ type: 'S', name: 's1' }))).toBe(false);
    expect(c.sent.map(hex)).toEqual([hex(c.sent[0]), hex(encodeTarget(FE.Describe, KIND_STATEMENT, shared))]);

    c.out.server = {} as ServerConn;
    c.sent.length = 0;
    c.feed(serialize.describe({ type: 'S', name: 's1' }));
    expect(c.sent).toHaveLength(2);
    expect(decodeParse(c.sent[0]).name).toBe(shared);
  });

  it('Describe of a portal, the unnamed statement or an unknown statement passes through', () => {
    const c = client();
    expect(c.feed(serialize.describe({ type: 'P', name: 'p' }))).toBe(true);
    expect(c.feed(serialize.describe({ type: 'S', name: '' }))).toBe(true);
    expect(c.feed(serialize.describe({ type: 'S', name: 'unknown' }))).toBe(true);
    expect(c.sent).toEqual([]);
    expect(c.plan.pending).toBe(3);
  });

  it('reusing a statement evicted from the server cache but not yet closed does not prepare it twice', () => {
    const c = client({ maxPrepared: 1 });
    c.feed(serialize.parse({ name: 'a', text: 'SELECT 1' }));
    c.feed(serialize.parse({ name: 'b', text: 'SELECT 2' })); // evicts a's shared statement (still on the server)
    c.sent.length = 0;
    c.feed(serialize.bind({ statement: 'a' }));
    // A second Parse of the same shared name would fail on the server with 42P05.
    expect(c.sent.map((f) => String.fromCharCode(f[0]))).toEqual(['B']);
  });
});

describe('Close', () => {
  it('Close of a named statement answers CloseComplete itself and sends nothing', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
    c.reply(BE.ParseComplete);
    c.sent.length = 0;
    expect(c.feed(serialize.close({ type: 'S', name: 's1' }))).toBe(false);
    expect(c.sent).toEqual([]);
    expect(c.emitted.map(hex)).toEqual([hex(CLOSE_COMPLETE)]);
    expect(c.m.statements.has('s1')).toBe(false);
    // The shared statement stays prepared for other clients.
    expect(serverStatements(c.out.server, 100).has(sharedName('SELECT 1', NO_TYPES))).toBe(true);
    // Closing a missing name is not an error.
    c.feed(serialize.close({ type: 'S', name: 'never' }));
    expect(c.emitted.map(hex)).toEqual([hex(CLOSE_COMPLETE), hex(CLOSE_COMPLETE)]);
    // The name can be parsed again.
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 2' }));
    expect(c.emitted).toHaveLength(2);
  });

  it('a Close the server skips after an earlier error leaves the statement in place', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
    c.reply(BE.ParseComplete);
    c.feed(serialize.sync());
    c.reply(BE.ReadyForQuery);
    c.feed(serialize.parse({ text: 'SELEC oops' })); // unnamed, fails
    c.feed(serialize.close({ type: 'S', name: 's1' })); // Postgres would skip it
    c.feed(serialize.sync());
    expect(c.m.statements.has('s1')).toBe(false);
    c.reply(BE.ErrorResponse);
    c.reply(BE.ReadyForQuery);
    expect(c.emitted).toEqual([]); // no CloseComplete
    expect(c.m.statements.has('s1')).toBe(true);
    // And it still binds to the shared statement.
    c.sent.length = 0;
    expect(c.feed(serialize.bind({ statement: 's1' }))).toBe(false);
    expect(bindStatement(c.sent[0])).toBe(sharedName('SELECT 1', NO_TYPES));
  });

  it('a skipped Close does not bring back a statement the client has parsed again since', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
    c.feed(serialize.parse({ text: 'SELEC oops' }));
    c.feed(serialize.close({ type: 'S', name: 's1' }));
    c.feed(serialize.sync());
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 2' })); // next batch, pipelined
    c.reply(BE.ParseComplete);
    c.reply(BE.ErrorResponse);
    expect(c.m.statements.get('s1')?.sql).toBe('SELECT 2');
  });

  it('Close of a portal or of the unnamed statement passes through', () => {
    const c = client();
    expect(c.feed(serialize.close({ type: 'P', name: 'p' }))).toBe(true);
    expect(c.feed(serialize.close({ type: 'S', name: '' }))).toBe(true);
    expect(c.plan.pending).toBe(2);
    expect(c.emitted).toEqual([]);
  });

  it('closeEvicted sends hidden Closes for shared statements the server cache evicted', () => {
    const c = client({ maxPrepared: 1 });
    c.feed(serialize.parse({ name: 'a', text: 'SELECT 1' }));
    c.feed(serialize.parse({ name: 'b', text: 'SELECT 2' }));
    c.reply(BE.ParseComplete);
    c.reply(BE.ParseComplete);
    c.sent.length = 0;
    c.m.closeEvicted(c.out);
    expect(c.sent.map(hex)).toEqual([hex(serialize.close({ type: 'S', name: sharedName('SELECT 1', NO_TYPES) }))]);
    expect(c.reply(BE.CloseComplete)).toBe(false);
    c.m.closeEvicted(c.out);
    expect(c.sent).toHaveLength(1);
  });
});

describe('stale plans (0A000 cached plan must not change result type)', () => {
  it('the statement is prepared afresh on servers; clients that prepared it before get 0A000 until they re-prepare', () => {
    const server = {} as ServerConn;
    const text = 'SELECT * FROM stale_t';
    const shared = sharedName(text, NO_TYPES);
    const a = client();
    a.out.server = server;
    a.feed(serialize.parse({ name: 'a', text }));
    a.reply(BE.ParseComplete);
    a.feed(serialize.bind({ statement: 'a' }));
    // The server refuses the Bind: its statement's result type changed (DDL).
    a.m.stalePlan(a.plan.headTag);
    a.reply(BE.ErrorResponse);
    a.feed(serialize.sync());
    a.reply(BE.ReadyForQuery);
    a.sent.length = 0;
    a.emitted.length = 0;
    // A's statement predates it: pgnear refuses it as Postgres would, without a server.
    expect(a.feed(serialize.bind({ statement: 'a' }))).toBe(false);
    expect(a.sent).toHaveLength(0);
    expect(decodeErrorFields(a.emitted[0]).get('C')).toBe('0A000');
    a.feed(serialize.sync());
    a.reply(BE.ReadyForQuery);
    // A client preparing the text now gets it prepared afresh: the stale one is closed first.
    const b = client();
    b.out.server = server;
    b.feed(serialize.parse({ name: 's', text }));
    expect(b.sent.map((f) => String.fromCharCode(f[0]))).toEqual(['C', 'P']);
    expect(b.reply(BE.CloseComplete)).toBe(false);
    expect(b.reply(BE.ParseComplete)).toBe(true);
    b.sent.length = 0;
    expect(b.feed(serialize.bind({ statement: 's' }))).toBe(false);
    expect(bindStatement(b.sent[0])).toBe(shared);
    // A prepares it again: the server's fresh one serves it.
    a.sent.length = 0;
    a.feed(serialize.close({ type: 'S', name: 'a' }));
    a.feed(serialize.parse({ name: 'a', text }));
    expect(a.feed(serialize.bind({ statement: 'a' }))).toBe(false);
    expect(a.sent.map((f) => String.fromCharCode(f[0]))).toEqual(['B']);
  });
});

describe('unnamed statements and other messages', () => {
  it('pass through untouched, each with its slot', () => {
    const c = client();
    for (const f of [
      serialize.parse({ text: 'SELECT $1', types: [23] }),
      serialize.bind({ values: ['1'] }),
      serialize.describe({ type: 'P', name: '' }),
      serialize.execute({}),
      serialize.sync(),
    ]) {
      expect(c.feed(f)).toBe(true);
    }
    expect(c.sent).toEqual([]);
    expect(c.plan.pending).toBe(5);
    expect(c.plan.awaitingReady).toBe(true);
    expect(c.m.statements.size).toBe(0);
  });

  it('Flush and CopyData pass through without a slot', () => {
    const c = client();
    expect(c.feed(serialize.flush())).toBe(true);
    expect(c.feed(serialize.copyData(Buffer.from('x')))).toBe(true);
    expect(c.feed(serialize.copyDone())).toBe(true);
    expect(c.plan.pending).toBe(0);
  });

  it('Query takes a Sync slot', () => {
    const c = client();
    expect(c.feed(serialize.query('SELECT 1'))).toBe(true);
    expect(c.plan.awaitingReady).toBe(true);
    expect(c.analyzed).toEqual(['SELECT 1']);
  });
});

describe('DISCARD ALL / DEALLOCATE ALL of a pinned client', () => {
  // An unpinned client's DEALLOCATE ALL is pgnear's to answer (local-deallocate.test.ts).
  for (const sql of ['DISCARD ALL', 'discard all;', '  DEALLOCATE ALL ', 'deallocate prepare all;']) {
    it(`${JSON.stringify(sql)} drops the client's statements and the server's shared ones`, () => {
      const c = client();
      c.out.pinned = !sql.toLowerCase().includes('discard');
      c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
      c.reply(BE.ParseComplete);
      expect(c.feed(serialize.query(sql))).toBe(true);
      expect(c.m.statements.size).toBe(0);
      expect(serverStatements(c.out.server, 100).has(sharedName('SELECT 1', NO_TYPES))).toBe(false);
      // The next Parse of the text goes to the server again.
      c.reply(BE.ReadyForQuery);
      c.sent.length = 0;
      c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
      expect(c.sent).toHaveLength(1);
    });
  }

  it('other statements mentioning it do not', () => {
    const c = client();
    c.feed(serialize.parse({ name: 's1', text: 'SELECT 1' }));
    c.feed(serialize.query("SELECT 'DISCARD ALL'"));
    expect(c.m.statements.size).toBe(1);
  });
});

describe('session effects', () => {
  it('a pinning Query pins the client', () => {
    const c = client({ effects: { 'CREATE TEMP TABLE t (x int)': { pins: ['temp_object'] } } });
    c.feed(serialize.query('CREATE TEMP TABLE t (x int)'));
    expect(c.pins).toEqual(['temp_object']);
    c.feed(serialize.query('SELECT 1'));
    expect(c.pins).toEqual(['temp_object']);
  });

  it('a pinning Parse pins at Parse time (named and unnamed)', () => {
    const c = client({
      effects: { 'LISTEN ch': { pins: ['listen'] }, 'SELECT pg_advisory_lock(1)': { pins: ['advisory_lock'] } },
    });
    c.feed(serialize.parse({ name: 'l', text: 'LISTEN ch' }));
    expect(c.pins).toEqual(['listen']);
    c.feed(serialize.parse({ text: 'SELECT pg_advisory_lock(1)' }));
    expect(c.pins).toEqual(['listen', 'advisory_lock']);
  });

  it('SET in a Query marks the setting dirty', () => {
    const c = client({ effects: { 'SET search_path = app': { sets: ['search_path'] } } });
    c.feed(serialize.query('SET search_path = app'));
    expect([...c.params.dirty]).toEqual(['search_path']);
  });

  it('SET in an unnamed statement counts when it is bound', () => {
    const c = client({ effects: { 'SET work_mem = $1': { sets: ['work_mem'] } } });
    c.feed(serialize.parse({ text: 'SET work_mem = $1' }));
    expect(c.params.dirty.size).toBe(0);
    c.feed(serialize.bind({ values: ['64MB'] }));
    expect([...c.params.dirty]).toEqual(['work_mem']);
  });

  it('SET in a named statement counts at every Bind', () => {
    const c = client({ effects: { "SET TIME ZONE 'UTC'": { sets: ['timezone'] } } });
    c.feed(serialize.parse({ name: 'tz', text: "SET TIME ZONE 'UTC'" }));
    expect(c.params.dirty.size).toBe(0);
    c.feed(serialize.bind({ statement: 'tz' }));
    expect([...c.params.dirty]).toEqual(['timezone']);
    c.params.dirty.clear();
    c.feed(serialize.bind({ statement: 'tz' }));
    expect([...c.params.dirty]).toEqual(['timezone']);
  });

  it('RESET and RESET ALL go to SessionParams for the attached server', () => {
    const c = client({
      startup: { search_path: 's1' },
      effects: { 'RESET search_path': { resets: ['search_path'] }, 'RESET ALL': { resetAll: true } },
    });
    c.params.synced(c.out.server);
    c.params.wanted.set('search_path', 'changed');
    c.params.wanted.set('work_mem', '1MB');
    c.feed(serialize.query('RESET search_path'));
    expect(c.params.wanted.get('search_path')).toBe('s1');
    expect(appliedOn(c.out.server).has('search_path')).toBe(false);
    c.feed(serialize.query('RESET ALL'));
    expect(Object.fromEntries(c.params.wanted)).toEqual({ search_path: 's1' });
    expect(appliedOn(c.out.server).size).toBe(0);
  });
});
