// Prometheus metrics (prom-client): subscribes to session and pool events; core code never imports this.
import client from 'prom-client';
import type { SessionEvents } from '../session/context.js';

export class Metrics {
  readonly registry = new client.Registry();
  private readonly clients = new client.Gauge({ name: 'pgnear_client_connections', help: 'Logged-in client connections', registers: [this.registry] });
  private readonly logins = new client.Counter({
    name: 'pgnear_client_logins_total',
    help: 'Client login attempts by result and SQLSTATE',
    labelNames: ['result', 'sqlstate'] as const,
    registers: [this.registry],
  });
  private readonly serverConns = new client.Gauge({
    name: 'pgnear_server_connections',
    help: 'Open server connections by node',
    labelNames: ['node'] as const,
    registers: [this.registry],
  });
  private readonly serverEvents = new client.Counter({
    name: 'pgnear_server_connection_events_total',
    help: 'Server connections opened and closed, by node and event',
    labelNames: ['node', 'event'] as const,
    registers: [this.registry],
  });

  private readonly pins = new client.Counter({
    name: 'pgnear_client_pins_total',
    help: 'Transaction-mode clients pinned to one server connection, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor() {
    client.collectDefaultMetrics({ register: this.registry, prefix: 'pgnear_' });
  }

  sessionEvents(): SessionEvents {
    return {
      clientOpened: () => this.clients.inc(),
      clientClosed: () => this.clients.dec(),
      loginFailed: (sqlstate) => this.logins.inc({ result: 'failed', sqlstate }),
      loginSucceeded: () => this.logins.inc({ result: 'ok', sqlstate: '00000' }),
      clientPinned: (reason) => this.pins.inc({ reason }),
    };
  }

  serverEvent(node: string, event: 'server_open' | 'server_close'): void {
    this.serverEvents.inc({ node, event });
    if (event === 'server_open') this.serverConns.inc({ node });
    else this.serverConns.dec({ node });
  }
}
