// Extended-query codecs pgnear rewrites: byte-exact against pg-protocol's serializer, malformed input → ProtocolError.
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { BE, FE } from '../../../src/protocol/codes.js';
import { ProtocolError } from '../../../src/protocol/errors.js';
import {
  bindStatement,
  CLOSE_COMPLETE,
  decodeParse,
  decodeTarget,
  encodeParse,
  encodeTarget,
  KIND_PORTAL,
  KIND_STATEMENT,
  PARSE_COMPLETE,
  rewriteBindStatement,
} from '../../../src/protocol/extended.js';

const hex = (b: Buffer) => b.toString('hex');
const noNul = (maxLength = 60) => fc.string({ maxLength, unit: 'grapheme' }).filter((s) => !s.includes('\0'));
const oid = fc.integer({ min: 0, max: 0x7fffffff });

/** Raw parameter-type section as Postgres expects it: int16 count + int32 oids. */
function typesSection(oids: number[]): Buffer {
  const b = Buffer.alloc(2 + 4 * oids.length);
  b.writeInt16BE(oids.length, 0);
  oids.forEach((o, i) => b.writeInt32BE(o, 2 + 4 * i));
  return b;
}

/** Every strict prefix of a frame (still at least the header) must fail as a ProtocolError. */
function expectEveryPrefixRejected(frame: Buffer, decode: (f: Buffer) => unknown): void {
  for (let cut = 0; cut < frame.length; cut++) {
    const part = frame.subarray(0, cut);
    let err: unknown = null;
    try {
      decode(part);
    } catch (e) {
      err = e;
    }
    expect(err, `prefix of ${cut}/${frame.length} bytes`).toBeInstanceOf(ProtocolError);
  }
}

describe('Parse', () => {
  it('decodes name, text and the raw types section', () => {
    const f = serialize.parse({ name: 's1', text: 'SELECT $1::int, $2', types: [23, 25] });
    const p = decodeParse(f);
    expect(p.name).toBe('s1');
    expect(p.sql).toBe('SELECT $1::int, $2');
    expect(hex(p.types)).toBe('0002' + '00000017' + '00000019');
  });

  it('decodes an unnamed statement without types as an empty types section (count 0)', () => {
    const p = decodeParse(serialize.parse({ text: 'SELECT 1' }));
    expect(p.name).toBe('');
    expect(p.sql).toBe('SELECT 1');
    expect(hex(p.types)).toBe('0000');
  });

  it('decodes unicode names and text', () => {
    const p = decodeParse(serialize.parse({ name: 'ставка_🐘', text: "SELECT 'héllo — 世界'", types: [0] }));
    expect(p.name).toBe('ставка_🐘');
    expect(p.sql).toBe("SELECT 'héllo — 世界'");
    expect(hex(p.types)).toBe('000100000000');
  });

  it('encodes byte-exact with pg-protocol', () => {
    const cases: [string, string, number[]][] = [
      ['', 'SELECT 1', []],
      ['s1', 'SELECT $1, $2, $3', [23, 0, 25]],
      ['pgnear_abc', "SELECT 'é 🐘'", [1043]],
      ['名前', 'x'.repeat(3000), Array.from({ length: 100 }, (_, i) => i)],
    ];
    for (const [name, text, types] of cases) {
      expect(hex(encodeParse(name, text, typesSection(types)))).toBe(hex(serialize.parse({ name, text, types })));
    }
  });

  it('decode ∘ serialize and encode ∘ decode round-trip (property)', () => {
    fc.assert(
      fc.property(noNul(), noNul(300), fc.array(oid, { maxLength: 20 }), (name, text, types) => {
        const f = serialize.parse({ name, text, types });
        const p = decodeParse(f);
        expect(p.name).toBe(name);
        expect(p.sql).toBe(text);
        expect(hex(p.types)).toBe(hex(typesSection(types)));
        expect(hex(encodeParse(p.name, p.sql, p.types))).toBe(hex(f));
      }),
    );
  });

  it('rejects truncated frames with ProtocolError', () => {
    expectEveryPrefixRejected(serialize.parse({ name: 'st', text: 'SELECT $1', types: [23, 25] }), decodeParse);
    expectEveryPrefixRejected(serialize.parse({ name: '', text: 'SELECT 1' }), decodeParse);
  });

  it('rejects a negative parameter count', () => {
    const f = Buffer.from(serialize.parse({ name: 'a', text: 'b', types: [] }));
    f.writeInt16BE(-1, f.length - 2);
    expect(() => decodeParse(f)).toThrow(ProtocolError);
  });

  it('rejects a parameter count larger than the oids present', () => {
    const f = Buffer.from(serialize.parse({ name: 'a', text: 'b', types: [23, 25] }));
    f.writeInt16BE(3, f.length - 10);
    expect(() => decodeParse(f)).toThrow(ProtocolError);
  });

  it('rejects unterminated strings (no NUL anywhere) with ProtocolError, not RangeError', () => {
    const f = Buffer.concat([Buffer.from([FE.Parse, 0, 0, 0, 12]), Buffer.from('abcdefgh')]);
    expect(() => decodeParse(f)).toThrow(ProtocolError);
  });
});

describe('Bind', () => {
  const binaryParam = Buffer.from([0x00, 0x01, 0x02, 0x00, 0xff, 0xfe]);

  it('reads the statement name (the portal name comes first)', () => {
    expect(bindStatement(serialize.bind({ portal: 'p1', statement: 's1', values: ['a'] }))).toBe('s1');
    expect(bindStatement(serialize.bind({ portal: 'p1', values: [] }))).toBe('');
    expect(bindStatement(serialize.bind({ statement: 'ставка_🐘' }))).toBe('ставка_🐘');
  });

  it('rewrites the statement name and keeps everything else byte for byte (text, NULL, binary params)', () => {
    const values = ['text', null, binaryParam, '', 'é🐘'];
    for (const binary of [false, true]) {
      for (const portal of ['', 'portal_1', 'портал']) {
        const orig = serialize.bind({ portal, statement: 'client_stmt', values, binary });
        for (const stmt of ['pgnear_AbC-_09', '', 'x', 'длинное_имя_🐘'.repeat(3)]) {
          const re = rewriteBindStatement(orig, stmt);
          expect(hex(re)).toBe(hex(serialize.bind({ portal, statement: stmt, values, binary })));
          expect(re.readInt32BE(1)).toBe(re.length - 1);
          expect(bindStatement(re)).toBe(stmt);
        }
      }
    }
  });

  it('does not modify the input frame', () => {
    const orig = serialize.bind({ portal: 'p', statement: 's', values: [binaryParam] });
    const copy = Buffer.from(orig);
    rewriteBindStatement(orig, 'a_much_longer_statement_name');
    expect(hex(orig)).toBe(hex(copy));
  });

  it('rewrites byte-exact (property)', () => {
    const value = fc.oneof(
      fc.constant(null),
      noNul(40),
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
    );
    fc.assert(
      fc.property(
        noNul(),
        noNul(),
        noNul(),
        fc.array(value, { maxLength: 8 }),
        fc.boolean(),
        (portal, from, to, values, binary) => {
          const re = rewriteBindStatement(serialize.bind({ portal, statement: from, values, binary }), to);
          expect(hex(re)).toBe(hex(serialize.bind({ portal, statement: to, values, binary })));
        },
      ),
    );
  });

  it('rejects a Bind without terminated names with ProtocolError', () => {
    const f = serialize.bind({ portal: 'portal', statement: 'stmt', values: [] });
    // Cut inside the portal name or the statement name.
    for (let cut = 0; cut < 5 + 'portal'.length + 1 + 'stmt'.length + 1; cut++) {
      expect(() => bindStatement(f.subarray(0, cut)), `cut ${cut}`).toThrow(ProtocolError);
      expect(() => rewriteBindStatement(f.subarray(0, cut), 'x'), `cut ${cut}`).toThrow(ProtocolError);
    }
  });
});

describe('Describe / Close targets', () => {
  it('decodes statement and portal targets of both message types', () => {
    for (const [build, type] of [
      [serialize.describe, FE.Describe],
      [serialize.close, FE.Close],
    ] as const) {
      for (const name of ['', 's1', 'ставка_🐘']) {
        const s = build({ type: 'S', name });
        expect(s[0]).toBe(type);
        expect(decodeTarget(s)).toEqual({ kind: KIND_STATEMENT, name });
        expect(decodeTarget(build({ type: 'P', name }))).toEqual({ kind: KIND_PORTAL, name });
      }
    }
  });

  it('encodes byte-exact with pg-protocol', () => {
    for (const name of ['', 'pgnear_x', 'ставка_🐘', 'n'.repeat(500)]) {
      expect(hex(encodeTarget(FE.Describe, KIND_STATEMENT, name))).toBe(hex(serialize.describe({ type: 'S', name })));
      expect(hex(encodeTarget(FE.Describe, KIND_PORTAL, name))).toBe(hex(serialize.describe({ type: 'P', name })));
      expect(hex(encodeTarget(FE.Close, KIND_STATEMENT, name))).toBe(hex(serialize.close({ type: 'S', name })));
      expect(hex(encodeTarget(FE.Close, KIND_PORTAL, name))).toBe(hex(serialize.close({ type: 'P', name })));
    }
  });

  it('rejects an unknown kind with ProtocolError', () => {
    const f = Buffer.from(serialize.describe({ type: 'S', name: 'x' }));
    f[5] = 0x58; // 'X'
    expect(() => decodeTarget(f)).toThrow(ProtocolError);
    expect(() => decodeTarget(f)).toThrow(/subtype/);
  });

  it('rejects truncated frames with ProtocolError', () => {
    expectEveryPrefixRejected(serialize.close({ type: 'S', name: 'stmt' }), decodeTarget);
    expectEveryPrefixRejected(serialize.describe({ type: 'P', name: '' }), decodeTarget);
  });
});

describe('constant replies', () => {
  it('ParseComplete and CloseComplete are empty-bodied backend messages', () => {
    expect(hex(PARSE_COMPLETE)).toBe(hex(Buffer.from([BE.ParseComplete, 0, 0, 0, 4])));
    expect(hex(CLOSE_COMPLETE)).toBe(hex(Buffer.from([BE.CloseComplete, 0, 0, 0, 4])));
    expect(PARSE_COMPLETE[0]).toBe(0x31);
    expect(CLOSE_COMPLETE[0]).toBe(0x33);
  });
});
