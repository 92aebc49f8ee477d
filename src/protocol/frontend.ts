// Frontend messages pgnear originates toward servers or decodes from clients during auth.
import { FE } from './codes.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

export function encodeQuery(sql: string): Buffer {
  const w = new Writer(8 + sql.length);
  w.begin(FE.Query).cstr(sql);
  return w.end().finish();
}

export function decodeQuery(frame: Buffer): string {
  return new Reader(frame, 5).cstr();
}

/** Index of the first byte of a Query's text that is not ASCII whitespace (for byte filters before decoding). */
export function queryStart(frame: Buffer): number {
  let i = 5;
  while (i < frame.length && (frame[i] === 0x20 || (frame[i] >= 0x09 && frame[i] <= 0x0d))) i++;
  return i;
}

export const TERMINATE: Buffer = Buffer.from([FE.Terminate, 0, 0, 0, 4]);
export const SYNC: Buffer = Buffer.from([FE.Sync, 0, 0, 0, 4]);

/** PasswordMessage (cleartext or "md5…" hash). */
export function encodePassword(pw: string): Buffer {
  const w = new Writer();
  w.begin(FE.Password).cstr(pw);
  return w.end().finish();
}

export function encodeSASLInitialResponse(mechanism: string, data: Buffer): Buffer {
  const w = new Writer();
  w.begin(FE.Password).cstr(mechanism).int32(data.length).bytes(data);
  return w.end().finish();
}

export function encodeSASLResponse(data: Buffer): Buffer {
  const w = new Writer();
  w.begin(FE.Password).bytes(data);
  return w.end().finish();
}

/** Body of a 'p' message as a PasswordMessage: the NUL-terminated password. */
export function decodePassword(frame: Buffer): string {
  return new Reader(frame, 5).cstr();
}

export function decodeSASLInitialResponse(frame: Buffer): { mechanism: string; data: Buffer } {
  const r = new Reader(frame, 5);
  const mechanism = r.cstr();
  const n = r.int32();
  return { mechanism, data: n < 0 ? Buffer.alloc(0) : r.bytes(n) };
}

export function decodeSASLResponse(frame: Buffer): Buffer {
  return new Reader(frame, 5).rest();
}

/** Message types a frontend may send after startup (non-zero = valid). */
export const FRONTEND_TYPES: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const ty of Object.values(FE)) t[ty] = 1;
  return t;
})();

/**
 * What a relay watches on the client side: every message but CopyData is delivered whole, so the session knows
 * where requests start and end; CopyData streams through uncollected to keep memory flat.
 */
export const CLIENT_WATCH: Uint8Array = (() => {
  const t = new Uint8Array(256).fill(1);
  t[FE.CopyData] = 0;
  return t;
})();

/** Messages that complete a request: the server is borrowed when one arrives. */
export const REQUEST_END: Uint8Array = (() => {
  const t = new Uint8Array(256);
  for (const ty of [FE.Query, FE.Sync, FE.Flush, FE.FunctionCall]) t[ty] = 1;
  return t;
})();
