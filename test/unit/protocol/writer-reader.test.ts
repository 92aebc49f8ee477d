// Writer builds framed messages (checked against pg-protocol); Reader never overruns with anything but ProtocolError.
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/protocol/errors.js';
import { Reader } from '../../../src/protocol/reader.js';
import { Writer } from '../../../src/protocol/writer.js';

function protocolErrorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('Writer', () => {
  it('builds a Parse message identical to pg-protocol serialize.parse', () => {
    const w = new Writer(1); // forces several growths
    w.begin(0x50).cstr('stmt').cstr('SELECT $1, $2').int16(2).int32(23).int32(25).end();
    expect(w.finish().toString('hex')).toBe(
      serialize.parse({ name: 'stmt', text: 'SELECT $1, $2', types: [23, 25] }).toString('hex'),
    );
  });

  it('several messages in one writer each get their own length', () => {
    const w = new Writer(4);
    w.begin(0x51).cstr('SELECT 1').end();
    w.begin(0x53).end();
    w.begin(0x58).end();
    const want = Buffer.concat([serialize.query('SELECT 1'), serialize.sync(), serialize.end()]);
    expect(w.finish().equals(want)).toBe(true);
  });

  it('beginUntyped: the length counts itself and the whole packet', () => {
    const w = new Writer(2);
    w.beginUntyped().int32(196608).cstr('user').cstr('u').byte(0).end();
    const b = w.finish();
    expect(b.readUInt32BE(0)).toBe(b.length);
    expect(b.subarray(8).toString('latin1')).toBe('user\0u\0\0');
  });

  it('cstr writes UTF-8 bytes; bytes() copies input', () => {
    const w = new Writer(1);
    w.cstr('é🐘').bytes(new Uint8Array([1, 2, 3]));
    expect(w.finish().toString('hex')).toBe(`${Buffer.from('é🐘').toString('hex')}00010203`);
  });

  it('large payloads grow the buffer without losing earlier bytes', () => {
    const big = Buffer.alloc(100_000, 0xab);
    const w = new Writer(8);
    w.begin(0x64).bytes(big).end();
    expect(w.finish().equals(serialize.copyData(big))).toBe(true);
  });

  it('finish() returns a copy unaffected by later writes', () => {
    const w = new Writer(64);
    w.byte(1);
    const first = w.finish();
    w.byte(2).int32(-1);
    expect([...first]).toEqual([1]);
    expect([...w.finish()]).toEqual([1, 2, 0xff, 0xff, 0xff, 0xff]);
  });

  it('int16/int32 are signed big-endian', () => {
    const w = new Writer();
    w.int16(-2).int32(-2).int32(0x01020304);
    expect(w.finish().toString('hex')).toBe('fffe' + 'fffffffe' + '01020304');
  });
});

describe('Reader', () => {
  it('reads what Writer wrote (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: -32768, max: 32767 }),
        fc.integer({ min: -2147483648, max: 2147483647 }),
        fc.string({ maxLength: 30 }).filter((s) => !s.includes('\0')),
        fc.uint8Array({ maxLength: 30 }),
        (b, s16, s32, str, bytes) => {
          const buf = new Writer(1).byte(b).int16(s16).int32(s32).cstr(str).bytes(bytes).finish();
          const r = new Reader(buf);
          expect(r.byte()).toBe(b);
          expect(r.int16()).toBe(s16);
          expect(r.int32()).toBe(s32);
          expect(r.cstr()).toBe(str);
          expect([...r.rest()]).toEqual([...bytes]);
          expect(r.remaining()).toBe(0);
        },
      ),
    );
  });

  const overruns: [string, (r: Reader) => unknown, number[]][] = [
    ['byte on empty', (r) => r.byte(), []],
    ['int16 with 1 byte', (r) => r.int16(), [1]],
    ['int32 with 3 bytes', (r) => r.int32(), [1, 2, 3]],
    ['cstr without NUL', (r) => r.cstr(), [0x61, 0x62]],
    ['cstr on empty', (r) => r.cstr(), []],
    ['bytes(n) beyond end', (r) => r.bytes(3), [1, 2]],
    ['bytes(-1)', (r) => r.bytes(-1), [1, 2]],
  ];
  for (const [name, op, content] of overruns) {
    it(`overrun → ProtocolError, never RangeError: ${name}`, () => {
      const err = protocolErrorOf(() => op(new Reader(Buffer.from(content))));
      expect(err).toBeInstanceOf(ProtocolError);
      expect((err as ProtocolError).sqlstate).toBe('08P01');
    });
  }

  it('respects an `end` before the buffer end (no reading into the next message)', () => {
    const buf = Buffer.from([0, 0, 0, 7, 0x61, 0x62, 0, 0x63]);
    expect(() => new Reader(buf, 0, 3).int32()).toThrow(ProtocolError);
    expect(() => new Reader(buf, 4, 6).cstr()).toThrow(ProtocolError); // NUL at 6 lies outside [4,6)
    expect(new Reader(buf, 4, 7).cstr()).toBe('ab');
    expect(() => new Reader(buf, 0, 2).bytes(3)).toThrow(ProtocolError);
    expect(new Reader(buf, 2, 5).rest().length).toBe(3);
  });

  it('a start beyond the end (frame shorter than its header) → ProtocolError for every read', () => {
    const tiny = Buffer.from([0x5a, 0, 0]);
    for (const op of [
      (r: Reader) => r.byte(),
      (r: Reader) => r.int16(),
      (r: Reader) => r.int32(),
      (r: Reader) => r.cstr(),
      (r: Reader) => r.rest(),
      (r: Reader) => r.bytes(0),
    ]) {
      expect(protocolErrorOf(() => op(new Reader(tiny, 5)))).toBeInstanceOf(ProtocolError);
    }
  });

  it('random reads over random bytes only throw ProtocolError', () => {
    const opArb = fc.oneof(
      fc.constant((r: Reader) => r.byte()),
      fc.constant((r: Reader) => r.int16()),
      fc.constant((r: Reader) => r.int32()),
      fc.constant((r: Reader) => r.cstr()),
      fc.constant((r: Reader) => r.rest()),
      fc.integer({ min: -3, max: 12 }).map((n) => (r: Reader) => r.bytes(n)),
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 24 }),
        fc.nat(30),
        fc.nat(30),
        fc.array(opArb, { maxLength: 10 }),
        (bytes, a, b, ops) => {
          const buf = Buffer.from(bytes);
          const start = Math.min(a, b);
          const end = Math.min(Math.max(a, b), buf.length);
          const r = new Reader(buf, start, end);
          for (const op of ops) {
            try {
              op(r);
            } catch (e) {
              if (!(e instanceof ProtocolError)) throw e;
              return;
            }
            expect(r.pos).toBeLessThanOrEqual(end);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
