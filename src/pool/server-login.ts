// Answers one server's authentication requests with the credentials pgnear holds for the client.
import { AUTH } from '../protocol/codes.js';
import { encodePassword, encodeSASLInitialResponse, encodeSASLResponse } from '../protocol/frontend.js';
import { isMd5Hash, md5Hash, md5Response } from '../protocol/auth/md5.js';
import { SCRAM_MECHANISM, ScramClient } from '../protocol/auth/scram.js';
import type { ServerCredentials } from './credentials.js';

export class ServerAuthError extends Error {
  readonly code = 'PGNEAR_E_SERVER_AUTH';
}

/** Stateful responder for the Authentication* messages of one login; returns the bytes to send, if any. */
export class ServerLogin {
  private scram: ScramClient | null = null;

  constructor(
    private readonly creds: ServerCredentials,
    private readonly user: string,
  ) {}

  respond(subtype: number, data: Buffer): Buffer | null {
    const c = this.creds;
    switch (subtype) {
      case AUTH.Ok:
        return null;
      case AUTH.CleartextPassword:
        if (c.kind !== 'password') throw this.cannot('cleartext password');
        return encodePassword(c.password);
      case AUTH.MD5Password: {
        const salt = data.subarray(0, 4);
        if (c.kind === 'password') return encodePassword(md5Response(md5Hash(c.password, this.user), salt));
        if (c.kind === 'md5-hash' && isMd5Hash(c.hash)) return encodePassword(md5Response(c.hash, salt));
        throw this.cannot('md5');
      }
      case AUTH.SASL: {
        const mechs = data.toString('utf8').split('\0');
        if (!mechs.includes(SCRAM_MECHANISM))
          throw new ServerAuthError(`server offers no supported SASL mechanism (${mechs.join(', ')})`);
        if (c.kind === 'password') this.scram = new ScramClient({ password: c.password });
        else if (c.kind === 'scram-keys') this.scram = new ScramClient({ clientKey: c.clientKey, secret: c.secret });
        else throw this.cannot('SCRAM-SHA-256');
        return encodeSASLInitialResponse(SCRAM_MECHANISM, this.scram.clientFirst());
      }
      case AUTH.SASLContinue:
        if (!this.scram) throw new ServerAuthError('unexpected SASLContinue');
        return encodeSASLResponse(this.scram.handleServerFirst(data));
      case AUTH.SASLFinal:
        if (!this.scram) throw new ServerAuthError('unexpected SASLFinal');
        this.scram.verifyServerFinal(data);
        return null;
      default:
        throw new ServerAuthError(`server requested unsupported authentication method ${subtype}`);
    }
  }

  private cannot(method: string): ServerAuthError {
    return new ServerAuthError(
      `server asks for ${method} authentication for user "${this.user}", but pgnear holds no usable secret (${this.creds.kind})`,
    );
  }
}
