// MD5 auth: stored hash, salted response and verification against values computed independently (Python hashlib).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isMd5Hash, md5Hash, md5Response, md5Verify } from '../../../../src/protocol/auth/md5.js';

const md5 = (s: string | Buffer) => createHash('md5').update(s).digest('hex');

describe('md5 auth', () => {
  it("md5Hash('pw', 'user') = 'md5' + md5('pwuser')", () => {
    expect(md5Hash('pw', 'user')).toBe(`md5${md5('pwuser')}`);
    expect(md5Hash('pw', 'user')).toBe('md5871c429757b7a0bf1654fad112b77bd4');
  });

  it('password and user are concatenated in that order', () => {
    expect(md5Hash('user', 'pw')).not.toBe(md5Hash('pw', 'user'));
  });

  it('md5Response = md5 + md5(hex-of-stored-hash + salt) (known value)', () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    expect(md5Response(md5Hash('pw', 'user'), salt)).toBe('md546eacb7412409e1444bde22e56e70744');
  });

  it('md5Response uses the raw salt bytes (non-ASCII salt)', () => {
    const salt = Buffer.from([0xff, 0x00, 0x80, 0x7f]);
    const stored = md5Hash('secret', 'alice');
    expect(md5Response(stored, salt)).toBe(`md5${md5(Buffer.concat([Buffer.from(stored.slice(3)), salt]))}`);
  });

  it('md5Verify accepts the right response and rejects others', () => {
    const stored = md5Hash('pw', 'user');
    const salt = Buffer.from([1, 2, 3, 4]);
    expect(md5Verify(stored, salt, 'md546eacb7412409e1444bde22e56e70744')).toBe(true);
    expect(md5Verify(stored, salt, 'md546eacb7412409e1444bde22e56e70745')).toBe(false);
    expect(md5Verify(stored, Buffer.from([1, 2, 3, 5]), 'md546eacb7412409e1444bde22e56e70744')).toBe(false);
    expect(md5Verify(stored, salt, 'pw')).toBe(false);
    expect(md5Verify(stored, salt, '')).toBe(false);
  });

  it('isMd5Hash', () => {
    expect(isMd5Hash('md5871c429757b7a0bf1654fad112b77bd4')).toBe(true);
    expect(isMd5Hash('md5871C429757B7A0BF1654FAD112B77BD4')).toBe(false);
    expect(isMd5Hash('md5871c429757b7a0bf1654fad112b77bd')).toBe(false);
    expect(isMd5Hash('pencil')).toBe(false);
  });
});
