// Frontend encoders byte-exact against pg-protocol's serializer; decoders round-trip and fail only with ProtocolError.
import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../../src/protocol/errors.js';
import {
  decodePassword,
  decodeQuery,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  encodePassword,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  SYNC,
  TERMINATE,
} from '../../../src/protocol/frontend.js';

const hex = (b: Buffer) => b.toString('hex');
const noNul = fc.string({ maxLength: 200 }).filter((s) => !s.includes('\0'));

describe('frontend encoders vs pg-protocol serialize', () => {
  it('Query', () => {
    for (const sql of ['SELECT 1', '', "SELECT 'héllo — 世界 🐘'", 'x'.repeat(5000)]) {
      expect(hex(encodeQuery(sql))).toBe(hex(serialize.query(sql)));
    }
  });

  it('Query (property)', () => {
    fc.assert(fc.property(noNul, (sql) => encodeQuery(sql).equals(serialize.query(sql))));
  });

  it('Sync and Terminate', () => {
    expect(hex(SYNC)).toBe(hex(serialize.sync()));
    expect(hex(TERMINATE)).toBe(hex(serialize.end()));
  });

  it('PasswordMessage', () => {
    for (const pw of ['pencil', '', 'md5' + 'a'.repeat(32), 'pässwörd']) {
      expect(hex(encodePassword(pw))).toBe(hex(serialize.password(pw)));
    }
  });

  it('SASLInitialResponse', () => {
    const data = 'n,,n=*,r=rOprNGfwEbeRWgbNEkqO';
    expect(hex(encodeSASLInitialResponse('SCRAM-SHA-256', Buffer.from(data)))).toBe(
      hex(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', data)),
    );
  });

  it('SASLResponse', () => {
    const data = 'c=biws,r=abc,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
    expect(hex(encodeSASLResponse(Buffer.from(data)))).toBe(hex(serialize.sendSCRAMClientFinalMessage(data)));
  });
});

describe('frontend decoders', () => {
  it('round-trip Query and PasswordMessage (property)', () => {
    fc.assert(
      fc.property(noNul, (s) => {
        expect(decodeQuery(serialize.query(s))).toBe(s);
        expect(decodePassword(serialize.password(s))).toBe(s);
      }),
    );
  });

  it('round-trip SASLInitialResponse and SASLResponse', () => {
    const init = decodeSASLInitialResponse(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', 'n,,n=*,r=xyz'));
    expect(init.mechanism).toBe('SCRAM-SHA-256');
    expect(init.data.toString()).toBe('n,,n=*,r=xyz');
    expect(decodeSASLResponse(serialize.sendSCRAMClientFinalMessage('c=biws,r=1,p=2')).toString()).toBe(
      'c=biws,r=1,p=2',
    );
  });

  it('SASLInitialResponse with length -1 means no data', () => {
    const b = Buffer.concat([Buffer.from('p\0\0\0\0SCRAM-SHA-256\0'), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    b.writeUInt32BE(b.length - 1, 1);
    const r = decodeSASLInitialResponse(b);
    expect(r.mechanism).toBe('SCRAM-SHA-256');
    expect(r.data.length).toBe(0);
  });

  it('SASLInitialResponse whose data length exceeds the message → ProtocolError', () => {
    const b = Buffer.concat([
      Buffer.from('p\0\0\0\0SCRAM-SHA-256\0'),
      Buffer.from([0, 0, 0, 50]),
      Buffer.from('short'),
    ]);
    b.writeUInt32BE(b.length - 1, 1);
    expect(() => decodeSASLInitialResponse(b)).toThrow(ProtocolError);
  });

  it('truncated messages → ProtocolError', () => {
    const trunc = (b: Buffer) => {
      const t = Buffer.from(b.subarray(0, b.length - 1));
      t.writeUInt32BE(t.length - 1, 1);
      return t;
    };
    expect(() => decodeQuery(trunc(serialize.query('SELECT 1')))).toThrow(ProtocolError);
    expect(() => decodePassword(trunc(serialize.password('pw')))).toThrow(ProtocolError);
    expect(() => decodeSASLInitialResponse(Buffer.from('p\0\0\0\x08SCR'))).toThrow(ProtocolError);
    expect(() => decodeSASLInitialResponse(Buffer.from('p\0\0\0\x0bSCRAM\0\0\0'))).toThrow(ProtocolError);
  });

  it('random frames never throw anything but ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (body) => {
        const f = Buffer.concat([Buffer.from([0x70, 0, 0, 0, 0]), Buffer.from(body)]);
        f.writeUInt32BE(f.length - 1, 1);
        for (const dec of [decodeQuery, decodePassword, decodeSASLInitialResponse, decodeSASLResponse]) {
          try {
            dec(f);
          } catch (e) {
            if (!(e instanceof ProtocolError)) throw e;
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
