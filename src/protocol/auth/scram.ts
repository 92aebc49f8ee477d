// SCRAM-SHA-256 (RFC 5802/7677) both ways, including pass-through: the ClientKey recovered from a client proof logs in to servers.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';

/** What a server stores for a role (pg_authid.rolpassword "SCRAM-SHA-256$iter:salt$StoredKey:ServerKey"). */
export interface ScramSecret {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export class ScramError extends Error {
  readonly code = 'PGNEAR_E_SCRAM';
}

const sha256 = (b: Buffer): Buffer => createHash('sha256').update(b).digest();
const hmac = (key: Buffer, msg: string | Buffer): Buffer => createHmac('sha256', key).update(msg).digest();

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

export function parseScramVerifier(s: string): ScramSecret | null {
  const m = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(s);
  if (!m) return null;
  const secret = {
    iterations: Number(m[1]),
    salt: Buffer.from(m[2], 'base64'),
    storedKey: Buffer.from(m[3], 'base64'),
    serverKey: Buffer.from(m[4], 'base64'),
  };
  if (secret.storedKey.length !== 32 || secret.serverKey.length !== 32 || secret.iterations < 1) return null;
  return secret;
}

export function formatScramVerifier(s: ScramSecret): string {
  const b = (x: Buffer) => x.toString('base64');
  return `SCRAM-SHA-256$${s.iterations}:${b(s.salt)}$${b(s.storedKey)}:${b(s.serverKey)}`;
}

/** SASLprep for the common case; NFKC covers the normalisation step for non-ASCII passwords. */
function prep(password: string): string {
  return password.normalize('NFKC');
}

function clientKeyOf(password: string, salt: Buffer, iterations: number): { clientKey: Buffer; serverKey: Buffer } {
  const salted = pbkdf2Sync(prep(password), salt, iterations, 32, 'sha256');
  return { clientKey: hmac(salted, 'Client Key'), serverKey: hmac(salted, 'Server Key') };
}

export function scramSecretFromPassword(
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = 4096,
): ScramSecret {
  const { clientKey, serverKey } = clientKeyOf(password, salt, iterations);
  return { iterations, salt, storedKey: sha256(clientKey), serverKey };
}

/** Split "k=v,k=v" SCRAM attributes; values may contain '='. */
function attrs(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    if (part.length < 2 || part[1] !== '=') throw new ScramError(`malformed SCRAM message`);
    out.set(part[0], part.slice(2));
  }
  return out;
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/** pgnear as the SCRAM server, authenticating a client against a stored secret. */
export class ScramServer {
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private gs2 = '';
  private readonly secret: ScramSecret;

  /** With secret null the exchange runs against a fake secret and always fails, so unknown users look like wrong passwords. */
  constructor(
    secret: ScramSecret | null,
    private readonly mockSeed = 'pgnear',
  ) {
    this.secret = secret ?? {
      iterations: 4096,
      salt: sha256(Buffer.from(`mock-salt:${mockSeed}`)).subarray(0, 16),
      storedKey: randomBytes(32),
      serverKey: randomBytes(32),
    };
  }

  /** client-first-message → server-first-message. */
  handleClientFirst(data: Buffer): string {
    const msg = data.toString('utf8');
    // gs2-header: cbind-flag "," [authzid] ","
    const c1 = msg.indexOf(',');
    const c2 = c1 < 0 ? -1 : msg.indexOf(',', c1 + 1);
    if (c2 < 0) throw new ScramError('malformed SCRAM message');
    const flag = msg.slice(0, c1);
    if (flag === 'p' || flag.startsWith('p=')) {
      throw new ScramError('client requires SCRAM channel binding, but it is not supported');
    }
    if (flag !== 'n' && flag !== 'y') throw new ScramError('malformed SCRAM message');
    if (msg.slice(c1 + 1, c2) !== '')
      throw new ScramError('client uses authorization identity, but it is not supported');
    this.gs2 = msg.slice(0, c2 + 1);
    this.clientFirstBare = msg.slice(c2 + 1);
    const a = attrs(this.clientFirstBare);
    const cnonce = a.get('r');
    if (!cnonce || !PRINTABLE_NONCE.test(cnonce)) throw new ScramError('malformed SCRAM message');
    if (a.has('m')) throw new ScramError('unsupported SCRAM extension');
    this.nonce = cnonce + randomBytes(18).toString('base64');
    this.serverFirst = `r=${this.nonce},s=${this.secret.salt.toString('base64')},i=${this.secret.iterations}`;
    return this.serverFirst;
  }

  /** client-final-message → server-final-message and the recovered ClientKey, or null when the proof is wrong. */
  handleClientFinal(data: Buffer): { serverFinal: string; clientKey: Buffer } | null {
    const msg = data.toString('utf8');
    const pIdx = msg.lastIndexOf(',p=');
    if (pIdx < 0) throw new ScramError('malformed SCRAM message');
    const withoutProof = msg.slice(0, pIdx);
    const a = attrs(withoutProof);
    if (a.get('c') !== Buffer.from(this.gs2).toString('base64')) {
      throw new ScramError('SCRAM channel binding check failed');
    }
    if (a.get('r') !== this.nonce) throw new ScramError('SCRAM nonce mismatch');
    const proof = Buffer.from(msg.slice(pIdx + 3), 'base64');
    if (proof.length !== 32) throw new ScramError('malformed SCRAM message');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.secret.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    if (!timingSafeEqual(sha256(clientKey), this.secret.storedKey)) return null;
    const serverSignature = hmac(this.secret.serverKey, authMessage);
    return { serverFinal: `v=${serverSignature.toString('base64')}`, clientKey };
  }
}

/** Credentials pgnear can log in to a server with using SCRAM. */
export type ScramClientCreds = { password: string } | { clientKey: Buffer; secret: ScramSecret };

/** pgnear as the SCRAM client, logging in to a server. */
export class ScramClient {
  private readonly cnonce = randomBytes(18).toString('base64');
  private clientFirstBare = '';
  private expectedServerSig: Buffer | null = null;

  constructor(private readonly creds: ScramClientCreds) {}

  clientFirst(): Buffer {
    this.clientFirstBare = `n=*,r=${this.cnonce}`;
    return Buffer.from(`n,,${this.clientFirstBare}`);
  }

  handleServerFirst(data: Buffer): Buffer {
    const serverFirst = data.toString('utf8');
    const a = attrs(serverFirst);
    const nonce = a.get('r');
    const salt = Buffer.from(a.get('s') ?? '', 'base64');
    const iterations = Number(a.get('i'));
    if (!nonce?.startsWith(this.cnonce) || salt.length === 0 || !(iterations > 0)) {
      throw new ScramError('invalid SCRAM server-first-message');
    }
    let clientKey: Buffer;
    let serverKey: Buffer;
    if ('password' in this.creds) {
      ({ clientKey, serverKey } = clientKeyOf(this.creds.password, salt, iterations));
    } else {
      const s = this.creds.secret;
      // Pass-through only works when the server stores the very secret we verified the client with.
      if (!salt.equals(s.salt) || iterations !== s.iterations) {
        throw new ScramError('server SCRAM secret differs from the one pgnear authenticated the client with');
      }
      clientKey = this.creds.clientKey;
      serverKey = s.serverKey;
    }
    const withoutProof = `c=biws,r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const storedKey = sha256(clientKey);
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSig = hmac(serverKey, authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`);
  }

  verifyServerFinal(data: Buffer): void {
    const a = attrs(data.toString('utf8').replace(/\0+$/, ''));
    if (a.has('e')) throw new ScramError(`SCRAM server error: ${a.get('e')}`);
    const v = Buffer.from(a.get('v') ?? '', 'base64');
    if (!this.expectedServerSig || v.length !== 32 || !timingSafeEqual(v, this.expectedServerSig)) {
      throw new ScramError('invalid SCRAM server signature');
    }
  }
}
