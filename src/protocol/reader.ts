// Bounds-checked cursor over one message body; any overrun is a ProtocolError, never a RangeError.
import { ProtocolError } from './errors.js';

export class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  remaining(): number {
    return this.end - this.pos;
  }

  byte(): number {
    if (this.pos + 1 > this.end) throw new ProtocolError('message too short');
    return this.buf[this.pos++];
  }

  int16(): number {
    if (this.pos + 2 > this.end) throw new ProtocolError('message too short');
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  int32(): number {
    if (this.pos + 4 > this.end) throw new ProtocolError('message too short');
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  cstr(): string {
    const z = this.buf.indexOf(0, this.pos);
    if (z < 0 || z >= this.end) throw new ProtocolError('unterminated string in message');
    const s = this.buf.toString('utf8', this.pos, z);
    this.pos = z + 1;
    return s;
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.pos + n > this.end) throw new ProtocolError('message too short');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  rest(): Buffer {
    return this.bytes(this.end - this.pos);
  }
}
