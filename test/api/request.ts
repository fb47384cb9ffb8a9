// Raw HTTP requests for the API tests, over a Unix socket or loopback TCP, with
// full control of headers and body (declared length, chunked, bytes as given).
import http from 'node:http';

export interface Target {
  socket?: string;
  port?: number;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function req(
  target: Target,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean; timeoutMs?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...opts.headers };
    const body = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : Buffer.from(opts.body);
    if (body && !opts.chunked && !('content-length' in headers)) headers['content-length'] = String(body.length);
    const r = http.request(
      {
        method,
        path,
        headers,
        agent: false,
        ...(target.socket ? { socketPath: target.socket } : { host: '127.0.0.1', port: target.port }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    r.setTimeout(opts.timeoutMs ?? 5000, () => r.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 5000} ms`)));
    r.on('error', reject);
    if (body && opts.chunked) {
      // Several writes so that the body arrives chunked and crosses the limit mid-stream.
      const step = 16 * 1024;
      for (let i = 0; i < body.length; i += step) r.write(body.subarray(i, i + step));
      r.end();
    } else {
      r.end(body);
    }
  });
}
