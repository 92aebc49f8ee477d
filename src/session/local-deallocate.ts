// DEALLOCATE of a client's own prepared statement in transaction mode, answered by pgnear: servers know the
// statement only by its shared name (and other clients may be using it), so no server may see the request.
import { encodeCommandComplete } from '../protocol/backend.js';
import { FE } from '../protocol/codes.js';
import {
  BIND_COMPLETE,
  bindStatement,
  CLOSE_COMPLETE,
  decodeTarget,
  KIND_STATEMENT,
  NO_DATA,
  NO_PARAMETERS,
  portalName,
} from '../protocol/extended.js';
import { type DeallocateTarget, deallocateTarget } from '../routing/deallocate.js';
import { type ResponsePlan, Slot } from './response-plan.js';
import type { ClientStatements } from './statements.js';

const DEALLOCATE = encodeCommandComplete('DEALLOCATE');
const DEALLOCATE_ALL = encodeCommandComplete('DEALLOCATE ALL');
const DESCRIBE_STATEMENT = Buffer.concat([NO_PARAMETERS, NO_DATA]);

/**
 * The DEALLOCATE pgnear answers: one of the client's protocol-level statements, or ALL unless the client is
 * pinned (then SQL-level PREPAREs live on its server and the server must drop them too). Anything else goes to
 * the server as before.
 */
export function ownDeallocate(sql: string, statements: ClientStatements, pinned: boolean): DeallocateTarget | null {
  const t = deallocateTarget(sql);
  if (t === null) return null;
  return (t.all ? !pinned : statements.has(t.name)) ? t : null;
}

/** Cheap test on a Query frame's bytes before decoding its text: can it be a DEALLOCATE (or start with a comment)? */
export function mayBeDeallocate(query: Buffer): boolean {
  let i = 5;
  while (i < query.length && (query[i] === 32 || (query[i] >= 9 && query[i] <= 13))) i++;
  const c = query[i];
  return c === 0x64 || c === 0x44 || c === 0x2d || c === 0x2f; // d D - /
}

/** Drop what the DEALLOCATE names from the client's statements; its CommandComplete. */
export function runDeallocate(t: DeallocateTarget, statements: ClientStatements): Buffer {
  if (t.all) statements.clear();
  else statements.delete(t.name);
  return t.all ? DEALLOCATE_ALL : DEALLOCATE;
}

/**
 * The extended-protocol form (psycopg 3 evicting from its statement cache sends Parse/Bind/Describe/Execute of the
 * unnamed statement): pgnear answers each message as Postgres would. Created on the first such Parse (memory per
 * idle client); the simple-Query form needs no state.
 */
export class LocalDeallocate {
  /** The unnamed statement is a DEALLOCATE pgnear answered (the server's own unnamed statement is stale). */
  private unnamed: DeallocateTarget | null = null;
  /** A portal bound from it (portals end with the transaction, so at the latest with Sync here). */
  private portal: string | null = null;
  private portalTarget: DeallocateTarget | null = null;

  constructor(private readonly statements: ClientStatements) {}

  /** The client's Parse of the unnamed statement was this DEALLOCATE (pgnear answered ParseComplete). */
  parsed(t: DeallocateTarget): void {
    this.unnamed = t;
  }

  /** Another Parse of the unnamed statement went to the server. */
  forgetUnnamed(): void {
    this.unnamed = null;
  }

  /** Answer a message aimed at the local statement or portal; false = not ours, handle it as usual. */
  handle(type: number, f: Buffer, plan: ResponsePlan): boolean {
    switch (type) {
      case FE.Bind: {
        const portal = portalName(f);
        if (this.unnamed !== null && bindStatement(f) === '') {
          this.portal = portal;
          this.portalTarget = this.unnamed;
          plan.push(Slot.Synthetic, 0, BIND_COMPLETE);
          return true;
        }
        if (portal === this.portal) this.portal = null; // the server's portal of that name replaces ours
        return false;
      }
      case FE.Describe: {
        const d = decodeTarget(f);
        const statement = d.kind === KIND_STATEMENT;
        if (statement ? d.name !== '' || this.unnamed === null : d.name !== this.portal) return false;
        plan.push(Slot.Synthetic, 0, statement ? DESCRIBE_STATEMENT : NO_DATA);
        return true;
      }
      case FE.Execute:
        if (this.portal === null || portalName(f) !== this.portal) return false;
        plan.push(Slot.Synthetic, 0, runDeallocate(this.portalTarget!, this.statements));
        return true;
      case FE.Close: {
        const c = decodeTarget(f);
        if (c.kind === KIND_STATEMENT) {
          if (c.name === '') this.unnamed = null; // the server closes its stale one and answers
          return false;
        }
        if (c.name !== this.portal) return false;
        this.portal = null;
        plan.push(Slot.Synthetic, 0, CLOSE_COMPLETE);
        return true;
      }
      case FE.Sync:
        this.portal = null;
        return false;
      case FE.Query: // a simple query replaces the unnamed statement and portal
        this.unnamed = null;
        this.portal = null;
        return false;
      default:
        return false;
    }
  }
}
