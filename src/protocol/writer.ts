// Growable message writer: reserves the 5-byte header and back-patches the length on finish.

export class Writer {
  private buf: Buffer;
  private pos = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v;
    return this;
  }

  int16(v: number): this {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  int32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
    return this;
  }

  /** NUL-terminated UTF-8 string. */
  cstr(s: string): this {
    const n = Buffer.byteLength(s);
    this.ensure(n + 1);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
    this.buf[this.pos++] = 0;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Offset of the length field of the message being written. */
  private lenAt = 0;

  /** Start a typed message: type byte + length placeholder. */
  begin(type: number): this {
    this.byte(type);
    this.lenAt = this.pos;
    return this.int32(0);
  }

  /** Start an untyped (startup-phase) packet: length placeholder only. */
  beginUntyped(): this {
    this.lenAt = this.pos;
    return this.int32(0);
  }

  /** Patch the length of the message begun last (the length counts itself, not the type byte). */
  end(): this {
    this.buf.writeInt32BE(this.pos - this.lenAt, this.lenAt);
    return this;
  }

  /** A copy of everything written, safe to keep. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}
