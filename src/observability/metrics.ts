// Prometheus metrics (prom-client): subscribes to session and pool events; core code never imports this.
import client from 'prom-client';
import type { SessionEvents } from '../session/context.js';

export class Metrics {
  readonly registry = new client.Registry();
  private readonly clients = new client.Gauge({
    name: 'pgnear_client_connections',
    help: 'Logged-in client connections',
    registers: [this.registry],
  });
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

  /** Pool gauges, read from the pools at scrape time (the first gauge's collect fills all three). */
  watchPools(
    stats: () => {
      node: string;
      user: string;
      database: string;
      idle: number;
      active: number;
      tested: number;
      connecting: number;
      waiting: number;
      maxWaitMs: number;
    }[],
  ): void {
    const labelNames = ['node', 'user', 'database'] as const;
    const r = [this.registry];
    const waiting = new client.Gauge({
      name: 'pgnear_pool_waiting_clients',
      help: 'Clients queued for a server connection',
      labelNames,
      registers: [],
    });
    const maxWait = new client.Gauge({
      name: 'pgnear_pool_max_wait_seconds',
      help: 'Age of the oldest queued client',
      labelNames,
      registers: [],
    });
    new client.Gauge({
      name: 'pgnear_pool_servers',
      help: 'Server connections per pool by state',
      labelNames: [...labelNames, 'state'],
      registers: r,
      collect() {
        this.reset();
        waiting.reset();
        maxWait.reset();
        for (const p of stats()) {
          const l = { node: p.node, user: p.user, database: p.database };
          for (const state of ['idle', 'active', 'tested', 'connecting'] as const) this.set({ ...l, state }, p[state]);
          waiting.set(l, p.waiting);
          maxWait.set(l, p.maxWaitMs / 1000);
        }
      },
    });
    this.registry.registerMetric(waiting);
    this.registry.registerMetric(maxWait);
  }

  private readonly routes = new client.Counter({
    name: 'pgnear_route_decisions_total',
    help: 'Routing decisions by node, role and reason',
    labelNames: ['node', 'role', 'reason'] as const,
    registers: [this.registry],
  });

  routeDecision(node: string, role: string, reason: string): void {
    this.routes.inc({ node, role, reason });
  }

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
