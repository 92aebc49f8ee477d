// Backend encoders/decoders, checked against pg-protocol's own parser as an independent oracle.
import fc from 'fast-check';
import { Parser } from 'pg-protocol/dist/parser.js';
import { describe, expect, it } from 'vitest';
import {
  AUTH_OK,
  commandTag,
  decodeAuth,
  decodeBackendKeyData,
  decodeErrorFields,
  decodeParameterStatus,
  encodeAuth,
  encodeAuthSASL,
  encodeBackendKeyData,
  encodeError,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  type ErrorFields,
  RFQ_FAILED_TX,
  RFQ_IDLE,
  RFQ_IN_TX,
  readyStatus,
  replaceInError,
} from '../../../src/protocol/backend.js';
import { AUTH, BE } from '../../../src/protocol/codes.js';
import { ProtocolError } from '../../../src/protocol/errors.js';

/** Parse backend bytes with pg-protocol; exactly one message expected. */
function pgParse(buf: Buffer): { name: string; [field: string]: unknown } {
  const out: unknown[] = [];
  new Parser().parse(buf, (m) => out.push(m));
  expect(out.length).toBe(1);
  return out[0] as { name: string; [field: string]: unknown };
}

function msg(type: string, body: Uint8Array | string): Buffer {
  const b = Buffer.from(body as string);
  const out = Buffer.alloc(5 + b.length);
  out[0] = type.charCodeAt(0);
  out.writeUInt32BE(4 + b.length, 1);
  b.copy(out, 5);
  return out;
}

const noNul = (max = 40) => fc.string({ maxLength: max }).filter((s) => !s.includes('\0'));

describe('ErrorResponse / NoticeResponse', () => {
  const full: ErrorFields = {
    severity: 'FATAL',
    code: '28P01',
    message: 'password authentication failed for user "bob"',
    detail: 'Détail ✓',
    hint: 'check it',
  };

  it('encodeError → pg-protocol parses the same fields', () => {
    const m = pgParse(encodeError(full));
    expect(m.name).toBe('error');
    expect(m.severity).toBe('FATAL');
    expect(m.code).toBe('28P01');
    expect(m.message).toBe(full.message);
    expect(m.detail).toBe(full.detail);
    expect(m.hint).toBe(full.hint);
  });

  it('NoticeResponse type byte', () => {
    const b = encodeError({ severity: 'NOTICE', code: '00000', message: 'hi' }, BE.NoticeResponse);
    expect(b[0]).toBe(0x4e);
    expect(pgParse(b).name).toBe('notice');
  });

  it('frame length field matches the buffer', () => {
    const b = encodeError(full);
    expect(b.readUInt32BE(1)).toBe(b.length - 1);
  });

  it('decodeErrorFields round-trips encodeError (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('ERROR', 'FATAL', 'PANIC', 'WARNING', 'NOTICE', 'LOG', 'INFO', 'DEBUG' as const),
        fc.stringMatching(/^[0-9A-Z]{5}$/),
        noNul(100),
        fc.option(
          noNul().filter((s) => s !== ''),
          { nil: undefined },
        ),
        fc.option(
          noNul().filter((s) => s !== ''),
          { nil: undefined },
        ),
        (severity, code, message, detail, hint) => {
          const f = decodeErrorFields(encodeError({ severity, code, message, detail, hint }));
          const want = new Map<string, string>([
            ['S', severity],
            ['V', severity],
            ['C', code],
            ['M', message],
          ]);
          if (detail) want.set('D', detail);
          if (hint) want.set('H', hint);
          expect(f).toEqual(want);
        },
      ),
    );
  });

  it('decodes a hand-built Postgres error with extra fields', () => {
    const f = decodeErrorFields(
      msg('E', 'SERROR\0VERROR\0C42P01\0Mrelation "x" does not exist\0P15\0Fparse_relation.c\0L1392\0\0'),
    );
    expect(f.get('C')).toBe('42P01');
    expect(f.get('P')).toBe('15');
    expect(f.get('L')).toBe('1392');
    expect(f.size).toBe(7);
  });

  it('missing terminator / truncated field → ProtocolError', () => {
    expect(() => decodeErrorFields(msg('E', 'SERROR\0'))).toThrow(ProtocolError);
    expect(() => decodeErrorFields(msg('E', 'SERR'))).toThrow(ProtocolError);
    expect(() => decodeErrorFields(msg('E', ''))).toThrow(ProtocolError);
  });
});

describe('replaceInError', () => {
  it('replaces in M and D only, keeps every other field and their order', () => {
    const f = encodeError({
      severity: 'ERROR',
      code: '08P01',
      message: 'statement "pgnear_x" requires 1',
      detail: 'see "pgnear_x"',
      hint: '"pgnear_x"',
    });
    const out = replaceInError(f, '"pgnear_x"', '"bw"');
    expect([...decodeErrorFields(out)]).toEqual([
      ['S', 'ERROR'],
      ['V', 'ERROR'],
      ['C', '08P01'],
      ['M', 'statement "bw" requires 1'],
      ['D', 'see "bw"'],
      ['H', '"pgnear_x"'],
    ]);
    expect(out.readInt32BE(1)).toBe(out.length - 1);
  });
});

describe('Authentication requests', () => {
  it('AuthenticationOk', () => {
    expect(AUTH_OK.toString('hex')).toBe('520000000800000000');
    expect(pgParse(AUTH_OK).name).toBe('authenticationOk');
  });

  it('CleartextPassword and MD5Password(salt)', () => {
    expect(pgParse(encodeAuth(AUTH.CleartextPassword)).name).toBe('authenticationCleartextPassword');
    const salt = Buffer.from([1, 2, 3, 4]);
    const m = pgParse(encodeAuth(AUTH.MD5Password, salt));
    expect(m.name).toBe('authenticationMD5Password');
    expect(Buffer.from(m.salt as Buffer).equals(salt)).toBe(true);
  });

  it('SASL mechanisms list', () => {
    const m = pgParse(encodeAuthSASL(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']));
    expect(m.name).toBe('authenticationSASL');
    expect(m.mechanisms).toEqual(['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS']);
  });

  it('SASLContinue / SASLFinal payloads', () => {
    const c = pgParse(encodeAuth(AUTH.SASLContinue, Buffer.from('r=abc,s=c2FsdA==,i=4096')));
    expect(c.name).toBe('authenticationSASLContinue');
    expect(c.data).toBe('r=abc,s=c2FsdA==,i=4096');
    const f = pgParse(encodeAuth(AUTH.SASLFinal, Buffer.from('v=xyz')));
    expect(f.name).toBe('authenticationSASLFinal');
    expect(f.data).toBe('v=xyz');
  });

  it('decodeAuth returns subtype and payload', () => {
    const d = decodeAuth(encodeAuth(AUTH.MD5Password, Buffer.from([9, 8, 7, 6])));
    expect(d.subtype).toBe(5);
    expect([...d.data]).toEqual([9, 8, 7, 6]);
    expect(decodeAuth(AUTH_OK)).toEqual({ subtype: 0, data: Buffer.alloc(0) });
    expect(() => decodeAuth(msg('R', '\0\0'))).toThrow(ProtocolError);
  });
});

describe('ParameterStatus, BackendKeyData, CommandComplete', () => {
  it('ParameterStatus encode → pg-protocol and back', () => {
    const b = encodeParameterStatus('TimeZone', 'Europe/Amsterdam');
    const m = pgParse(b);
    expect([m.parameterName, m.parameterValue]).toEqual(['TimeZone', 'Europe/Amsterdam']);
    expect(decodeParameterStatus(b)).toEqual(['TimeZone', 'Europe/Amsterdam']);
    expect(() => decodeParameterStatus(msg('S', 'TimeZone\0UTC'))).toThrow(ProtocolError);
  });

  it('BackendKeyData encode → pg-protocol and back', () => {
    for (const [pid, secret] of [
      [4242, 123456789],
      [1, -1],
      [2147483647, -2147483648],
    ]) {
      const b = encodeBackendKeyData(pid, secret);
      const m = pgParse(b);
      expect(m.processID).toBe(pid);
      expect(m.secretKey).toBe(secret);
      expect(decodeBackendKeyData(b)).toEqual({ pid, secret });
    }
    expect(() => decodeBackendKeyData(msg('K', '\0\0\0\x01'))).toThrow(ProtocolError);
  });

  it('commandTag', () => {
    expect(commandTag(msg('C', 'INSERT 0 1\0'))).toBe('INSERT 0 1');
    expect(() => commandTag(msg('C', 'INSERT'))).toThrow(ProtocolError);
  });
});

describe('ReadyForQuery', () => {
  it('constants are what Postgres sends, and pg-protocol reads their status', () => {
    expect(RFQ_IDLE.toString('hex')).toBe('5a0000000549');
    expect(RFQ_IN_TX.toString('hex')).toBe('5a0000000554');
    expect(RFQ_FAILED_TX.toString('hex')).toBe('5a0000000545');
    expect(pgParse(RFQ_IN_TX).status).toBe('T');
  });

  it('readyStatus reads the status byte', () => {
    expect(readyStatus(RFQ_IDLE)).toBe('I');
    expect(readyStatus(RFQ_IN_TX)).toBe('T');
    expect(readyStatus(RFQ_FAILED_TX)).toBe('E');
  });

  it('invalid status or length → ProtocolError', () => {
    for (const s of ['X', 'i', '\0']) expect(() => readyStatus(msg('Z', s))).toThrow(ProtocolError);
    expect(() => readyStatus(msg('Z', ''))).toThrow(ProtocolError);
    expect(() => readyStatus(msg('Z', 'II'))).toThrow(ProtocolError);
  });
});

describe('NegotiateProtocolVersion', () => {
  it('layout: v, length, int32 protocol version (3.minor), int32 count, option names', () => {
    const b = encodeNegotiateProtocolVersion(0, ['_pq_.foo', '_pq_.bar']);
    const want = Buffer.concat([
      Buffer.from('v'),
      Buffer.from([0, 0, 0, 4 + 4 + 4 + 9 + 9]),
      Buffer.from([0, 3, 0, 0]),
      Buffer.from([0, 0, 0, 2]),
      Buffer.from('_pq_.foo\0_pq_.bar\0'),
    ]);
    expect(b.toString('hex')).toBe(want.toString('hex'));
  });

  it('no unrecognised options, minor 2', () => {
    expect(encodeNegotiateProtocolVersion(2, []).toString('hex')).toBe('76' + '0000000c' + '00030002' + '00000000');
  });
});
