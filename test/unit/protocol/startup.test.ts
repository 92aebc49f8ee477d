// Startup-phase packets: decoding SSL/GSS/cancel/3.0 startup, length bounds, and encoders against pg-protocol.
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/protocol/errors.js';
import {
  decodeStartupPacket,
  encodeCancelRequest,
  encodeStartup,
  SSL_REQUEST,
  startupPacketLength,
} from '../../../src/protocol/startup.js';

/** An untyped packet: int32 length (counting itself) + int32 code + payload. */
function packet(code: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(code >>> 0, 4);
  Buffer.from(payload).copy(b, 8);
  return b;
}
const nulJoin = (...parts: string[]) => Buffer.from(parts.map((p) => `${p}\0`).join(''), 'utf8');

function throwsProtocolError(fn: () => unknown): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ProtocolError);
}

describe('decodeStartupPacket', () => {
  it('SSLRequest (as pg-protocol sends it)', () => {
    expect(decodeStartupPacket(serialize.requestSsl())).toEqual({ kind: 'ssl' });
  });

  it('GSSENCRequest', () => {
    expect(decodeStartupPacket(packet(80877104))).toEqual({ kind: 'gssenc' });
  });

  it('CancelRequest (as pg-protocol sends it)', () => {
    expect(decodeStartupPacket(serialize.cancel(12345, -559038737))).toEqual({
      kind: 'cancel',
      pid: 12345,
      secret: -559038737,
    });
  });

  it('CancelRequest of the wrong length → ProtocolError', () => {
    const short = packet(80877102, Buffer.alloc(4));
    const long = packet(80877102, Buffer.alloc(12));
    throwsProtocolError(() => decodeStartupPacket(short));
    throwsProtocolError(() => decodeStartupPacket(long));
    throwsProtocolError(() => decodeStartupPacket(packet(80877102)));
  });

  it('3.0 StartupMessage with parameters (pg-protocol encoded)', () => {
    const p = decodeStartupPacket(serialize.startup({ user: 'alice', database: 'shop', application_name: 'é-app' }));
    expect(p.kind).toBe('startup');
    if (p.kind !== 'startup') return;
    expect(p.major).toBe(3);
    expect(p.minor).toBe(0);
    expect([...p.params]).toEqual([
      ['user', 'alice'],
      ['database', 'shop'],
      ['application_name', 'é-app'],
      ['client_encoding', 'UTF8'],
    ]);
  });

  it('3.x minor versions are parsed too, and other majors come back without params', () => {
    const p = decodeStartupPacket(packet((3 << 16) | 2, nulJoin('user', 'bob', '')));
    expect(p).toEqual({ kind: 'startup', major: 3, minor: 2, params: new Map([['user', 'bob']]) });
    const v2 = decodeStartupPacket(packet(2 << 16, Buffer.alloc(8)));
    expect(v2.kind).toBe('startup');
    if (v2.kind === 'startup') {
      expect(v2.major).toBe(2);
      expect(v2.params.size).toBe(0);
    }
  });

  it('3.0 without the final terminator → ProtocolError', () => {
    throwsProtocolError(() => decodeStartupPacket(packet(196608, nulJoin('user', 'bob'))));
    throwsProtocolError(() => decodeStartupPacket(packet(196608)));
  });

  it('3.0 with a value missing its NUL → ProtocolError', () => {
    throwsProtocolError(() => decodeStartupPacket(packet(196608, Buffer.from('user\0bob'))));
  });

  it('3.0 with bytes after the terminator → ProtocolError', () => {
    throwsProtocolError(() => decodeStartupPacket(packet(196608, Buffer.from('user\0bob\0\0x'))));
  });

  it('a packet too short to hold the code → ProtocolError', () => {
    throwsProtocolError(() => decodeStartupPacket(Buffer.from([0, 0, 0, 4])));
    throwsProtocolError(() => decodeStartupPacket(Buffer.from([0, 0, 0, 6, 0, 3])));
  });

  it('random bytes never throw anything but ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(0, 196608, 80877102, 80877103), (body, code) => {
        const candidates = [Buffer.from(body), packet(code, body)];
        for (const c of candidates) {
          try {
            decodeStartupPacket(c);
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('startupPacketLength', () => {
  it('needs four bytes to say anything', () => {
    expect(startupPacketLength(Buffer.alloc(0))).toBe(-1);
    expect(startupPacketLength(Buffer.from([0, 0, 0]))).toBe(-1);
  });

  it('length < 8 → ProtocolError', () => {
    for (const n of [0, 1, 4, 7]) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      throwsProtocolError(() => startupPacketLength(b));
    }
  });

  it('a packet of more than 10,000 bytes after its length word → ProtocolError; 10,004 in all is allowed (as Postgres)', () => {
    for (const n of [10_005, 0x7fffffff, 0xffffffff]) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      throwsProtocolError(() => startupPacketLength(b));
    }
    const ok = Buffer.alloc(4);
    ok.writeUInt32BE(10_004);
    expect(startupPacketLength(ok)).toBe(-1);
    expect(startupPacketLength(Buffer.concat([ok, Buffer.alloc(10_000)]))).toBe(10_004);
  });

  it('returns the length once the packet is complete, -1 before', () => {
    const p = serialize.startup({ user: 'u' });
    for (let i = 4; i < p.length; i++) expect(startupPacketLength(p.subarray(0, i))).toBe(-1);
    expect(startupPacketLength(p)).toBe(p.length);
    expect(startupPacketLength(Buffer.concat([p, Buffer.from('trailing')]))).toBe(p.length);
    expect(startupPacketLength(SSL_REQUEST)).toBe(8);
  });
});

describe('startup encoders', () => {
  it('encodeStartup is byte-identical to pg-protocol serialize.startup', () => {
    const ours = encodeStartup([
      ['user', 'alice'],
      ['database', 'shop'],
      ['client_encoding', 'UTF8'],
    ]);
    expect(ours.toString('hex')).toBe(serialize.startup({ user: 'alice', database: 'shop' }).toString('hex'));
  });

  it('encodeStartup round-trips through decodeStartupPacket', () => {
    const key = fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !s.includes('\0'));
    const val = fc.string({ maxLength: 20 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(fc.uniqueArray(fc.tuple(key, val), { selector: (t) => t[0], maxLength: 6 }), (pairs) => {
        const p = decodeStartupPacket(encodeStartup(pairs));
        expect(p).toEqual({ kind: 'startup', major: 3, minor: 0, params: new Map(pairs) });
      }),
    );
  });

  it('encodeCancelRequest is byte-identical to pg-protocol serialize.cancel', () => {
    for (const [pid, secret] of [
      [1, 2],
      [2147483647, -1],
      [0, -2147483648],
    ]) {
      expect(encodeCancelRequest(pid, secret).equals(serialize.cancel(pid, secret))).toBe(true);
    }
  });

  it('SSL_REQUEST is byte-identical to pg-protocol serialize.requestSsl', () => {
    expect(SSL_REQUEST.equals(serialize.requestSsl())).toBe(true);
  });
});
