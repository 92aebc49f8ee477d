// MD5 password auth: stored "md5<hex>" hashes, salted responses, and verification.
import { createHash, timingSafeEqual } from 'node:crypto';

const md5hex = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');

export function isMd5Hash(s: string): boolean {
  return /^md5[0-9a-f]{32}$/.test(s);
}

/** What pg_authid stores for a role with password_encryption = md5. */
export function md5Hash(password: string, user: string): string {
  return `md5${md5hex(password + user)}`;
}

/** The PasswordMessage a client sends for AuthenticationMD5Password(salt), from the stored hash. */
export function md5Response(storedHash: string, salt: Buffer): string {
  return `md5${md5hex(Buffer.concat([Buffer.from(storedHash.slice(3)), salt]))}`;
}

export function md5Verify(storedHash: string, salt: Buffer, response: string): boolean {
  const want = Buffer.from(md5Response(storedHash, salt));
  const got = Buffer.from(response);
  return want.length === got.length && timingSafeEqual(want, got);
}
