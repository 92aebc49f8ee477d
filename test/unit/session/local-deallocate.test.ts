// DEALLOCATE of a client's own statement in transaction mode: answered by pgnear in both protocols, never sent
// to a server (which knows the statement only by its shared name).
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import type { ServerConn } from '../../../src/pool/server-conn.js';
import { encodeCommandComplete, RFQ_IDLE, RFQ_IN_TX } from '../../../src/protocol/backend.js';
import { BE } from '../../../src/protocol/codes.js';
import {
  BIND_COMPLETE,
  CLOSE_COMPLETE,
  NO_DATA,
  NO_PARAMETERS,
  PARSE_COMPLETE,
} from '../../../src/protocol/extended.js';
import { serverStatements, sharedName } from '../../../src/session/statements.js';
import { client, hex, NO_TYPES } from '../../support/tx-messages-client.js';

/** A client holding protocol-level statements s1 and s2, attached to a server in status `status`. */
function withStatements(status: 'I' | 'T' | 'E' = 'I') {
  const c = client();
  c.out.server = { txStatus: status } as ServerConn;
  for (const [name, text] of [
    ['s1', 'SELECT 1'],
    ['s2', 'SELECT 2'],
  ]) {
    c.feed(serialize.parse({ name, text }));
    c.reply(BE.ParseComplete);
  }
  c.emitted.length = 0;
  c.sent.length = 0;
  return c;
}

/** What psycopg 3 sends to evict a statement from its cache (PQsendQueryParams of the text). */
const extended = (sql: string) => [
  serialize.parse({ text: sql }),
  serialize.bind({}),
  serialize.describe({ type: 'P' }),
  serialize.execute({}),
];

const DEALLOCATE = hex(encodeCommandComplete('DEALLOCATE'));

describe('simple-Query DEALLOCATE', () => {
  it('of a statement of the client: answered with DEALLOCATE and ReadyForQuery, the statement is gone', () => {
    const c = withStatements('T');
    expect(c.feed(serialize.query('DEALLOCATE s1'))).toBe(false);
    expect(c.sent).toHaveLength(0);
    expect(c.emitted.map(hex)).toEqual([DEALLOCATE + hex(RFQ_IN_TX)]);
    expect(c.m.statements.has('s1')).toBe(false);
    expect(c.m.statements.has('s2')).toBe(true);
    // The server keeps the shared statement for other clients.
    expect(serverStatements(c.out.server, 100).has(sharedName('SELECT 1', NO_TYPES))).toBe(true);
  });

  it('DEALLOCATE ALL of an unpinned client: answered, every client statement gone, the server untouched', () => {
    const c = withStatements();
    expect(c.feed(serialize.query('deallocate prepare all;'))).toBe(false);
    expect(c.emitted.map(hex)).toEqual([hex(encodeCommandComplete('DEALLOCATE ALL')) + hex(RFQ_IDLE)]);
    expect(c.m.statements.size).toBe(0);
    expect(serverStatements(c.out.server, 100).has(sharedName('SELECT 2', NO_TYPES))).toBe(true);
  });

  it('of an unknown name, in a failed transaction, or with replies in flight: the server answers', () => {
    const c = withStatements();
    expect(c.feed(serialize.query('DEALLOCATE nope'))).toBe(true);
    const failed = withStatements('E');
    expect(failed.feed(serialize.query('DEALLOCATE s1'))).toBe(true);
    const busy = withStatements();
    busy.feed(serialize.query('SELECT pg_sleep(1)'));
    expect(busy.feed(serialize.query('DEALLOCATE s1'))).toBe(true);
  });

  it('without a server: answered, with the deferred transaction status', () => {
    const c = withStatements();
    expect(c.m.handleIdle(0x51, serialize.query('DEALLOCATE "s1"'), c.plan)).toBe(true);
    expect(c.emitted.map(hex)).toEqual([DEALLOCATE + hex(RFQ_IDLE)]);
    expect(c.m.statements.has('s1')).toBe(false);
  });
});

describe('extended-protocol DEALLOCATE of the unnamed statement', () => {
  it('Parse, Bind, Describe, Execute answered by pgnear as Postgres would; Sync goes on', () => {
    const c = withStatements();
    const [parse, bind, describe, execute] = extended('DEALLOCATE s2');
    expect(c.feed(parse)).toBe(false);
    expect(c.m.statements.has('s2')).toBe(true); // dropped when it runs
    expect(c.feed(bind)).toBe(false);
    expect(c.feed(describe)).toBe(false);
    expect(c.feed(execute)).toBe(false);
    expect(c.m.statements.has('s2')).toBe(false);
    expect(c.sent).toHaveLength(0);
    expect(c.emitted.map(hex)).toEqual([PARSE_COMPLETE, BIND_COMPLETE, NO_DATA].map(hex).concat(DEALLOCATE));
    expect(c.feed(serialize.sync())).toBe(true);
  });

  it('with no server attached, Sync included', () => {
    const c = withStatements();
    for (const f of [...extended('DEALLOCATE ALL'), serialize.sync()])
      expect(c.m.handleIdle(f[0], f, c.plan)).toBe(true);
    expect(c.m.statements.size).toBe(0);
    expect(c.emitted.at(-1)).toEqual(RFQ_IDLE);
  });

  it('Describe of the statement, a named portal and Close of it', () => {
    const c = withStatements();
    c.feed(serialize.parse({ text: 'DEALLOCATE s1' }));
    expect(c.feed(serialize.describe({ type: 'S' }))).toBe(false);
    expect(c.feed(serialize.bind({ portal: 'p' }))).toBe(false);
    expect(c.feed(serialize.execute({ portal: 'p' }))).toBe(false);
    expect(c.feed(serialize.close({ type: 'P', name: 'p' }))).toBe(false);
    expect(c.emitted.map(hex)).toEqual([
      hex(PARSE_COMPLETE),
      hex(NO_PARAMETERS) + hex(NO_DATA),
      hex(BIND_COMPLETE),
      DEALLOCATE,
      hex(CLOSE_COMPLETE),
    ]);
    expect(c.sent).toHaveLength(0);
  });

  it('a later Parse of the unnamed statement goes to the server, and so do its Bind and Execute', () => {
    const c = withStatements();
    for (const f of extended('DEALLOCATE s1')) c.feed(f);
    c.feed(serialize.sync());
    expect(c.feed(serialize.parse({ text: 'SELECT 3' }))).toBe(true);
    expect(c.feed(serialize.bind({}))).toBe(true);
    expect(c.feed(serialize.execute({}))).toBe(true);
  });

  it('a simple Query replaces the unnamed statement: a Bind without a new Parse goes to the server', () => {
    const c = withStatements();
    c.feed(serialize.parse({ text: 'DEALLOCATE s1' }));
    c.feed(serialize.sync());
    c.feed(serialize.query('SELECT 1'));
    expect(c.feed(serialize.bind({}))).toBe(true);
  });

  it('of an unknown name, or in a failed transaction: the server answers', () => {
    const c = withStatements();
    expect(c.feed(serialize.parse({ text: 'DEALLOCATE nope' }))).toBe(true);
    const failed = withStatements('E');
    expect(failed.feed(serialize.parse({ text: 'DEALLOCATE s1' }))).toBe(true);
  });

  it('DEALLOCATE ALL of a pinned client goes to the server', () => {
    const c = withStatements();
    c.out.pinned = true;
    expect(c.feed(serialize.parse({ text: 'DEALLOCATE ALL' }))).toBe(true);
  });
});
