// The pino root logger: JSON by default, pretty in dev, with secrets redacted wherever they might appear.
import pino, { type Logger } from 'pino';

export function createLogger(level: string, pretty: boolean, fd: 1 | 2 = 1): Logger {
  const opts = {
    level,
    base: { name: 'pgnear' },
    redact: {
      paths: [
        'password',
        '*.password',
        'secret',
        '*.secret',
        'clientKey',
        '*.clientKey',
        'url',
        '*.url',
        'creds',
        '*.creds',
      ],
      censor: '[redacted]',
    },
  };
  if (pretty) {
    return pino({
      ...opts,
      transport: {
        target: 'pino-pretty',
        options: { destination: fd, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,name' },
      },
    });
  }
  return pino(opts, pino.destination({ fd, sync: false }));
}

/** A postgres:// URL with its password replaced, safe to log or print. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]+:)[^@]*@/, '$1***@');
}
