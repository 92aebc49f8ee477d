// Authenticates a client to pgnear (SCRAM-SHA-256, md5, cleartext or trust) and yields what pgnear may log in to servers with.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { encodeAuth, encodeAuthSASL } from '../protocol/backend.js';
import { AUTH, FE, SQLSTATE } from '../protocol/codes.js';
import { ProtocolError } from '../protocol/errors.js';
import { decodePassword, decodeSASLInitialResponse, decodeSASLResponse } from '../protocol/frontend.js';
import { md5Hash, md5Verify } from '../protocol/auth/md5.js';
import {
  SCRAM_MECHANISM,
  ScramError,
  type ScramSecret,
  ScramServer,
  scramSecretFromPassword,
} from '../protocol/auth/scram.js';
import type { ServerCredentials } from '../pool/credentials.js';
import type { StoredSecret } from './secrets.js';
import { ownedCopy } from '../util/bytes.js';

export type AuthMethod = 'scram-sha-256' | 'md5' | 'plain' | 'trust';

export interface AuthIO {
  send(b: Buffer): void;
  /** Next complete message from the client. */
  recv(): Promise<Buffer>;
}

/** Authentication failed: report as FATAL with this SQLSTATE, exactly as Postgres words it. */
export class AuthFailure extends Error {
  readonly code = 'PGNEAR_E_AUTH_FAILED';
  constructor(
    message: string,
    readonly sqlstate: string = SQLSTATE.InvalidPassword,
    readonly detail?: string,
  ) {
    super(message);
  }
}

function credsFrom(secret: StoredSecret | null): ServerCredentials {
  if (!secret || secret.kind === 'none') return { kind: 'none' };
  if (secret.kind === 'plain') return { kind: 'password', password: secret.password };
  if (secret.kind === 'md5') return { kind: 'md5-hash', hash: secret.hash };
  return { kind: 'none' };
}

/**
 * Credentials per secret, shared by every client that proved it: a verified ClientKey is the same for every login
 * with one secret (H(ClientKey) = StoredKey), so one object serves them all (memory per idle client).
 */
const sharedCreds = new WeakMap<object, ServerCredentials>();

function scramCreds(secret: StoredSecret, scramSecret: ScramSecret, clientKey: Buffer): ServerCredentials {
  const have = sharedCreds.get(secret);
  if (have?.kind === 'scram-keys' && have.clientKey.equals(clientKey)) return have;
  if (have?.kind === 'password') return have;
  const creds: ServerCredentials =
    secret.kind === 'plain'
      ? credsFrom(secret)
      : { kind: 'scram-keys', clientKey: ownedCopy(clientKey), secret: scramSecret };
  sharedCreds.set(secret, creds);
  return creds;
}

async function recvPassword(io: AuthIO, what: string): Promise<Buffer> {
  const f = await io.recv();
  if (f[0] !== FE.Password) {
    throw new ProtocolError(`expected ${what} response, got message type ${f[0]}`);
  }
  return f;
}

export async function authenticateClient(
  io: AuthIO,
  method: AuthMethod,
  user: string,
  secret: StoredSecret | null,
): Promise<ServerCredentials> {
  const failed = (detail?: string) =>
    new AuthFailure(`password authentication failed for user "${user}"`, SQLSTATE.InvalidPassword, detail);
  if (method === 'trust') {
    if (!secret) throw new AuthFailure(`role "${user}" does not exist`, SQLSTATE.InvalidAuthorization);
    return credsFrom(secret);
  }

  if (method === 'plain') {
    io.send(encodeAuth(AUTH.CleartextPassword));
    const pw = decodePassword(await recvPassword(io, 'password'));
    if (!secret || !plainMatches(secret, pw, user)) throw failed();
    return { kind: 'password', password: pw };
  }

  // Like Postgres: an md5 method with a SCRAM secret upgrades to SCRAM; a SCRAM method cannot use an md5 secret.
  const useScram = method === 'scram-sha-256' || secret?.kind === 'scram';
  if (!useScram) {
    const salt = randomBytes(4);
    io.send(encodeAuth(AUTH.MD5Password, salt));
    const resp = decodePassword(await recvPassword(io, 'password'));
    const hash =
      secret?.kind === 'md5' ? secret.hash : secret?.kind === 'plain' ? md5Hash(secret.password, user) : null;
    if (!hash || !md5Verify(hash, salt, resp)) throw failed();
    return credsFrom(secret);
  }

  const scramSecret = secret?.kind === 'scram' ? secret.secret : secret?.kind === 'plain' ? secret.scram : null;
  const server = new ScramServer(scramSecret, user);
  io.send(encodeAuthSASL([SCRAM_MECHANISM]));
  try {
    const init = decodeSASLInitialResponse(await recvPassword(io, 'SASL'));
    if (init.mechanism !== SCRAM_MECHANISM) {
      throw new ProtocolError('client selected an invalid SASL authentication mechanism');
    }
    io.send(encodeAuth(AUTH.SASLContinue, Buffer.from(server.handleClientFirst(init.data))));
    const fin = decodeSASLResponse(await recvPassword(io, 'SASL'));
    const ok = server.handleClientFinal(fin);
    if (!ok || !scramSecret) {
      throw failed(secret?.kind === 'md5' ? `User "${user}" does not have a valid SCRAM secret.` : undefined);
    }
    io.send(encodeAuth(AUTH.SASLFinal, Buffer.from(ok.serverFinal)));
    return scramCreds(secret!, scramSecret, ok.clientKey);
  } catch (e) {
    if (e instanceof ScramError) throw new ProtocolError(e.message);
    throw e;
  }
}

function plainMatches(secret: StoredSecret, pw: string, user: string): boolean {
  const eq = (a: string | Buffer, b: string | Buffer) => {
    const x = Buffer.from(a);
    const y = Buffer.from(b);
    return x.length === y.length && timingSafeEqual(x, y);
  };
  if (secret.kind === 'plain') return eq(secret.password, pw);
  if (secret.kind === 'md5') return eq(secret.hash, md5Hash(pw, user));
  if (secret.kind === 'none') return false;
  const s = scramSecretFromPassword(pw, secret.secret.salt, secret.secret.iterations);
  return eq(s.storedKey, secret.secret.storedKey);
}
