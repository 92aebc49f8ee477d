// Codec error: the byte stream broke the protocol; carries the SQLSTATE to report.
import { SQLSTATE, type SqlState } from './codes.js';

export class ProtocolError extends Error {
  readonly code = 'PGNEAR_E_PROTOCOL';
  readonly sqlstate: SqlState;
  constructor(message: string, sqlstate: SqlState = SQLSTATE.ProtocolViolation) {
    super(message);
    this.name = 'ProtocolError';
    this.sqlstate = sqlstate;
  }
}
