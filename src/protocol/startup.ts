// Startup-phase packets (untyped: int32 length + int32 code): StartupMessage, SSL/GSS requests, CancelRequest.
import { MAX_STARTUP_PACKET, STARTUP } from './codes.js';
import { ProtocolError } from './errors.js';
import { Reader } from './reader.js';
import { Writer } from './writer.js';

export type StartupPacket =
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'startup'; major: number; minor: number; params: Map<string, string> };

/** Length of the complete startup packet at the start of `buf`, or -1 if more bytes are needed. */
export function startupPacketLength(buf: Buffer): number {
  if (buf.length < 4) return -1;
  const len = buf.readUInt32BE(0);
  // Postgres' limit is on the packet after its length word.
  if (len < 8 || len - 4 > MAX_STARTUP_PACKET) throw new ProtocolError('invalid length of startup packet');
  return buf.length >= len ? len : -1;
}

/** Decode one complete startup packet (exactly `len` bytes). */
export function decodeStartupPacket(pkt: Buffer): StartupPacket {
  const r = new Reader(pkt, 4);
  const code = r.int32() >>> 0;
  if (code === STARTUP.SSLRequest) return { kind: 'ssl' };
  if (code === STARTUP.GSSENCRequest) return { kind: 'gssenc' };
  if (code === STARTUP.CancelRequest) {
    if (pkt.length !== 16) throw new ProtocolError('invalid length of cancel request packet');
    return { kind: 'cancel', pid: r.int32(), secret: r.int32() };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  const params = new Map<string, string>();
  if (major === 3) {
    // name/value pairs terminated by an empty name
    for (;;) {
      if (r.remaining() === 0)
        throw new ProtocolError('invalid startup packet layout: expected terminator as last byte');
      const name = r.cstr();
      if (name === '') break;
      params.set(name, r.cstr());
    }
    if (r.remaining() !== 0) throw new ProtocolError('invalid startup packet layout: expected terminator as last byte');
  }
  return { kind: 'startup', major, minor, params };
}

/** Encode a 3.0 StartupMessage (pgnear → server). */
export function encodeStartup(params: Iterable<[string, string]>): Buffer {
  const w = new Writer();
  w.beginUntyped();
  w.int32(STARTUP.Protocol30);
  for (const [k, v] of params) w.cstr(k).cstr(v);
  w.byte(0);
  return w.end().finish();
}

export function encodeCancelRequest(pid: number, secret: number): Buffer {
  const b = Buffer.allocUnsafe(16);
  b.writeInt32BE(16, 0);
  b.writeInt32BE(STARTUP.CancelRequest, 4);
  b.writeInt32BE(pid, 8);
  b.writeInt32BE(secret, 12);
  return b;
}

export const SSL_REQUEST: Buffer = (() => {
  const b = Buffer.allocUnsafe(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(STARTUP.SSLRequest, 4);
  return b;
})();
