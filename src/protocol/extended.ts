// Extended-query messages pgnear reads or rewrites to manage prepared statements under transaction pooling.
import { BE, FE } from './codes.js';
import { ProtocolError } from './errors.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

export interface ParseMsg {
  name: string;
  sql: string;
  /** Raw parameter-type section (int16 count + int32 oids), kept as bytes for re-encoding and keying. */
  types: Buffer;
}

export function decodeParse(frame: Buffer): ParseMsg {
  const r = new Reader(frame, 5);
  const name = r.cstr();
  const sql = r.cstr();
  const start = r.pos;
  const n = r.int16();
  if (n < 0) throw new ProtocolError('invalid number of parameter types in Parse message');
  r.bytes(n * 4);
  return { name, sql, types: frame.subarray(start, r.pos) };
}

export function encodeParse(name: string, sql: string, types: Buffer): Buffer {
  const w = new Writer(16 + name.length + sql.length + types.length);
  w.begin(FE.Parse).cstr(name).cstr(sql).bytes(types);
  return w.end().finish();
}

/** Portal name of a Bind or an Execute (both start with it). */
export function portalName(frame: Buffer): string {
  return new Reader(frame, 5).cstr();
}

/** Statement name of a Bind (portal name first). */
export function bindStatement(frame: Buffer): string {
  const r = new Reader(frame, 5);
  r.cstr();
  return r.cstr();
}

/** The same Bind with another statement name; everything after the name is copied byte for byte. */
export function rewriteBindStatement(frame: Buffer, stmt: string): Buffer {
  const r = new Reader(frame, 5);
  r.cstr();
  const nameStart = r.pos;
  r.cstr();
  const tail = frame.subarray(r.pos);
  const head = frame.subarray(5, nameStart);
  const nameLen = Buffer.byteLength(stmt);
  const out = Buffer.allocUnsafe(5 + head.length + nameLen + 1 + tail.length);
  out[0] = FE.Bind;
  out.writeInt32BE(out.length - 1, 1);
  head.copy(out, 5);
  out.write(stmt, 5 + head.length, 'utf8');
  out[5 + head.length + nameLen] = 0;
  tail.copy(out, 5 + head.length + nameLen + 1);
  return out;
}

/** Describe and Close share a layout: 'S' (statement) or 'P' (portal) and a name. */
export function decodeTarget(frame: Buffer): { kind: number; name: string } {
  const r = new Reader(frame, 5);
  const kind = r.byte();
  if (kind !== 0x53 && kind !== 0x50)
    throw new ProtocolError(`invalid ${String.fromCharCode(frame[0])} message subtype ${kind}`);
  return { kind, name: r.cstr() };
}

export function encodeTarget(type: number, kind: number, name: string): Buffer {
  const w = new Writer(8 + name.length);
  w.begin(type).byte(kind).cstr(name);
  return w.end().finish();
}

export const PARSE_COMPLETE: Buffer = Buffer.from([BE.ParseComplete, 0, 0, 0, 4]);
export const CLOSE_COMPLETE: Buffer = Buffer.from([BE.CloseComplete, 0, 0, 0, 4]);
export const BIND_COMPLETE: Buffer = Buffer.from([BE.BindComplete, 0, 0, 0, 4]);
export const NO_DATA: Buffer = Buffer.from([BE.NoData, 0, 0, 0, 4]);
/** ParameterDescription of a statement without parameters. */
export const NO_PARAMETERS: Buffer = Buffer.from([BE.ParameterDescription, 0, 0, 0, 6, 0, 0]);
export const KIND_STATEMENT = 0x53;
export const KIND_PORTAL = 0x50;
