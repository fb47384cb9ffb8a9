// A bounded loopback HTTP load for the zero-downtime tests: one request at a
// time, a new connection each, every failure kept by kind.
import http from 'node:http';

export function get(port: number): Promise<{ ok: boolean; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ ok: res.statusCode === 200, body }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, error: e.code ?? e.message }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** Requests back to back until stop() (bounded by count); returns failures by kind. */
export function load(port: number, max = 5000, onBody?: (body: string) => void) {
  let stopped = false;
  const failures: string[] = [];
  let done = 0;
  const finished = (async () => {
    while (!stopped && done < max) {
      const r = await get(port);
      done++;
      if (!r.ok) failures.push(r.error ?? 'http');
      else if (r.body !== undefined) onBody?.(r.body);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await finished;
      return { done, failures };
    },
  };
}
