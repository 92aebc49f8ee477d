// Statements pgnear answers itself in the extended protocol (SHOW pgnear.*, EXPLAIN ROUTE, a DEALLOCATE of the
// client's own statement), unnamed or named: Bind, Describe, Execute and Close aimed at them answered as Postgres would.
import { FE, type TxStatus } from '../protocol/codes.js';
import {
  BIND_COMPLETE,
  bindStatement,
  CLOSE_COMPLETE,
  decodeTarget,
  KIND_STATEMENT,
  NO_PARAMETERS,
  portalName,
} from '../protocol/extended.js';
import { deallocateAnswer, ownDeallocate } from './local-deallocate.js';
import { type ResponsePlan, Slot } from './response-plan.js';
import type { ClientStatements } from './statements.js';
import type { TxRouteHooks } from './tx-ports.js';

/** pgnear's answer to one statement without parameters. */
export interface LocalAnswer {
  /** Its RowDescription, or NoData. */
  readonly rowDescription: Buffer;
  /** Runs it (at Execute): its DataRows and CommandComplete. */
  run(): Buffer;
}

const NO_TYPES = Buffer.from([0, 0]);

/**
 * Created on the first such Parse (memory per idle client); the simple-Query forms need no state. A named one is a
 * client statement (ClientStatements) carrying its answer, so Close and DEALLOCATE of it work as for any other.
 */
export class LocalStatements {
  /** The unnamed statement is pgnear's (the server's own unnamed statement is stale). */
  private unnamed: LocalAnswer | null = null;
  /** A portal bound from one (portals end with the transaction, so at the latest with Sync here). */
  private portal: string | null = null;
  private portalAnswer: LocalAnswer | null = null;

  constructor(private readonly statements: ClientStatements) {}

  /** The client's Parse was answered by pgnear (ParseComplete). */
  parsed(name: string, sql: string, a: LocalAnswer): void {
    if (name === '') this.unnamed = a;
    else this.statements.add(name, { shared: '', sql, types: NO_TYPES, gen: 0, local: a });
  }

  private answerOf(name: string): LocalAnswer | null {
    return name === '' ? this.unnamed : (this.statements.get(name)?.local ?? null);
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
        const a = this.answerOf(bindStatement(f));
        if (a !== null) {
          this.portal = portal;
          this.portalAnswer = a;
          plan.push(Slot.Synthetic, 0, BIND_COMPLETE);
          return true;
        }
        if (portal === this.portal) this.portal = null; // the server's portal of that name replaces ours
        return false;
      }
      case FE.Describe: {
        const d = decodeTarget(f);
        if (d.kind === KIND_STATEMENT) {
          const a = this.answerOf(d.name);
          if (a === null) return false;
          plan.push(Slot.Synthetic, 0, Buffer.concat([NO_PARAMETERS, a.rowDescription]));
          return true;
        }
        if (d.name !== this.portal) return false;
        plan.push(Slot.Synthetic, 0, this.portalAnswer!.rowDescription);
        return true;
      }
      case FE.Execute:
        if (this.portal === null || portalName(f) !== this.portal) return false;
        plan.push(Slot.Synthetic, 0, this.portalAnswer!.run());
        return true;
      case FE.Close: {
        const c = decodeTarget(f);
        if (c.kind === KIND_STATEMENT) {
          if (c.name === '') this.unnamed = null; // the server closes its stale one and answers
          return false; // a named one is a client statement: closed like the others
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

/** pgnear's answer to a statement Parsed in the extended protocol: a DEALLOCATE of the client's own statement,
 * SHOW pgnear.*, EXPLAIN ROUTE; null = the server's. */
export function localAnswer(
  sql: string,
  statements: ClientStatements,
  pinned: boolean,
  status: TxStatus,
  route: Pick<TxRouteHooks, 'ownAnswer'>,
): LocalAnswer | null {
  const t = ownDeallocate(sql, statements, pinned);
  if (t !== null) return deallocateAnswer(t, statements);
  const c = sql.charCodeAt(0);
  // Only SHOW or EXPLAIN can be pgnear's (a cheap test: every unnamed Parse comes here).
  if (c > 0x20 && (c | 0x20) !== 0x73 && (c | 0x20) !== 0x65) return null;
  return route.ownAnswer(sql, status);
}
