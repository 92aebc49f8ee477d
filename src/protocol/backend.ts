// Backend messages pgnear originates (encode) or acts on (decode); everything else passes through as bytes.
import { AUTH, BE, type TxStatus } from './codes.js';
import { ProtocolError } from './errors.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'LOG' | 'INFO' | 'DEBUG';

export interface ErrorFields {
  severity: Severity;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** R: the server routine; drivers match some errors by it (pgjdbc re-prepares after RevalidateCachedQuery). */
  routine?: string;
}

/** ErrorResponse / NoticeResponse with the fields Postgres always sends (S, V, C, M). */
export function encodeError(f: ErrorFields, type: number = BE.ErrorResponse): Buffer {
  const w = new Writer(64 + f.message.length);
  w.begin(type);
  w.byte(0x53).cstr(f.severity); // S
  w.byte(0x56).cstr(f.severity); // V (non-localized)
  w.byte(0x43).cstr(f.code); // C
  w.byte(0x4d).cstr(f.message); // M
  if (f.detail) w.byte(0x44).cstr(f.detail); // D
  if (f.hint) w.byte(0x48).cstr(f.hint); // H
  if (f.routine) w.byte(0x52).cstr(f.routine); // R
  w.byte(0);
  return w.end().finish();
}

/** The same ErrorResponse / NoticeResponse with `from` replaced by `to` in its message and detail. */
export function replaceInError(frame: Buffer, from: string, to: string): Buffer {
  const w = new Writer(frame.length + 2 * to.length);
  w.begin(frame[0]);
  for (const [k, v] of decodeErrorFields(frame))
    w.byte(k.charCodeAt(0)).cstr(k === 'M' || k === 'D' ? v.split(from).join(to) : v);
  w.byte(0);
  return w.end().finish();
}

/** Decode an ErrorResponse or NoticeResponse into its fields (keyed by field code letter). */
export function decodeErrorFields(frame: Buffer): Map<string, string> {
  const r = new Reader(frame, 5);
  const out = new Map<string, string>();
  for (;;) {
    const code = r.byte();
    if (code === 0) break;
    out.set(String.fromCharCode(code), r.cstr());
  }
  return out;
}

export function encodeAuth(subtype: number, extra?: Uint8Array): Buffer {
  const w = new Writer(16 + (extra?.length ?? 0));
  w.begin(BE.Authentication).int32(subtype);
  if (extra) w.bytes(extra);
  return w.end().finish();
}

export const AUTH_OK: Buffer = encodeAuth(AUTH.Ok);

export function encodeAuthSASL(mechanisms: string[]): Buffer {
  const w = new Writer();
  w.begin(BE.Authentication).int32(AUTH.SASL);
  for (const m of mechanisms) w.cstr(m);
  w.byte(0);
  return w.end().finish();
}

export function encodeParameterStatus(name: string, value: string): Buffer {
  const w = new Writer(16 + name.length + value.length);
  w.begin(BE.ParameterStatus).cstr(name).cstr(value);
  return w.end().finish();
}

export function decodeParameterStatus(frame: Buffer): [string, string] {
  const r = new Reader(frame, 5);
  return [r.cstr(), r.cstr()];
}

export function encodeBackendKeyData(pid: number, secret: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  b[0] = BE.BackendKeyData;
  b.writeInt32BE(12, 1);
  b.writeInt32BE(pid, 5);
  b.writeInt32BE(secret, 9);
  return b;
}

export function decodeBackendKeyData(frame: Buffer): { pid: number; secret: number } {
  const r = new Reader(frame, 5);
  return { pid: r.int32(), secret: r.int32() };
}

function rfq(status: TxStatus): Buffer {
  return Buffer.from([BE.ReadyForQuery, 0, 0, 0, 5, status.charCodeAt(0)]);
}
export const RFQ_IDLE: Buffer = rfq('I');
export const RFQ_IN_TX: Buffer = rfq('T');
export const RFQ_FAILED_TX: Buffer = rfq('E');

/** Status byte of a ReadyForQuery frame. */
export function readyStatus(frame: Buffer): TxStatus {
  if (frame.length !== 6) throw new ProtocolError('invalid ReadyForQuery message');
  const s = String.fromCharCode(frame[5]);
  if (s !== 'I' && s !== 'T' && s !== 'E') throw new ProtocolError(`invalid transaction status "${s}"`);
  return s;
}

/** NegotiateProtocolVersion: newest minor we support plus the protocol options we did not recognise. */
export function encodeNegotiateProtocolVersion(minor: number, unrecognized: string[]): Buffer {
  const w = new Writer();
  w.begin(BE.NegotiateProtocolVersion)
    .int32((3 << 16) | minor)
    .int32(unrecognized.length);
  for (const o of unrecognized) w.cstr(o);
  return w.end().finish();
}

/** Authentication request from a server: subtype plus its payload. */
export function decodeAuth(frame: Buffer): { subtype: number; data: Buffer } {
  const r = new Reader(frame, 5);
  const subtype = r.int32();
  return { subtype, data: r.rest() };
}

/** Command tag of a CommandComplete frame, e.g. "INSERT 0 1". */
export function commandTag(frame: Buffer): string {
  return new Reader(frame, 5).cstr();
}

export function encodeReady(status: TxStatus): Buffer {
  return status === 'I' ? RFQ_IDLE : status === 'T' ? RFQ_IN_TX : RFQ_FAILED_TX;
}

export function encodeCommandComplete(tag: string): Buffer {
  const w = new Writer(8 + tag.length);
  w.begin(BE.CommandComplete).cstr(tag);
  return w.end().finish();
}

/** A small text result pgnear answers itself: RowDescription (text columns), DataRows, CommandComplete. */
export function encodeTextResult(
  columns: readonly string[],
  rows: readonly (readonly (string | null)[])[],
  tag: string,
): Buffer {
  const w = new Writer(128);
  w.begin(BE.RowDescription).int16(columns.length);
  for (const c of columns) w.cstr(c).int32(0).int16(0).int32(25).int16(-1).int32(-1).int16(0);
  w.end();
  for (const r of rows) {
    w.begin(BE.DataRow).int16(r.length);
    for (const v of r) {
      if (v === null) w.int32(-1);
      else {
        const b = Buffer.from(v, 'utf8');
        w.int32(b.length).bytes(b);
      }
    }
    w.end();
  }
  w.begin(BE.CommandComplete).cstr(tag);
  return w.end().finish();
}
