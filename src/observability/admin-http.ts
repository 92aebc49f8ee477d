// HTTP admin endpoint: /metrics (Prometheus text) and /health.
import http from 'node:http';
import type { Metrics } from './metrics.js';

export function startAdminHttp(
  metrics: Metrics,
  host: string,
  port: number,
  health: () => { ok: boolean; detail: Record<string, unknown> },
): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(async (req, res) => {
    if (req.url === '/metrics') {
      res.setHeader('content-type', metrics.registry.contentType);
      res.end(await metrics.registry.metrics());
    } else if (req.url === '/health') {
      const h = health();
      res.statusCode = h.ok ? 200 : 503;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ status: h.ok ? 'ok' : 'unavailable', ...h.detail }));
    } else {
      res.statusCode = 404;
      res.end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}
