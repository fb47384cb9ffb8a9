// The API's routes: a path and a method to a handler's name, or the status to refuse with. Pure.

export interface Route {
  name: string;
  params: string[];
}

/** The route table: path -> allowed methods. `:v` is one path segment. */
const ROUTES: { pattern: RegExp; name: string; methods: string[] }[] = [
  { pattern: /^\/$/, name: 'page', methods: ['GET', 'HEAD'] },
  { pattern: /^\/healthz$/, name: 'healthz', methods: ['GET', 'HEAD'] },
  { pattern: /^\/metrics$/, name: 'metrics', methods: ['GET', 'HEAD'] },
  { pattern: /^\/api\/status$/, name: 'status', methods: ['GET', 'HEAD'] },
  { pattern: /^\/api\/check$/, name: 'check', methods: ['POST'] },
  { pattern: /^\/api\/update$/, name: 'update', methods: ['POST'] },
  { pattern: /^\/api\/rollback$/, name: 'rollback', methods: ['POST'] },
  { pattern: /^\/api\/ready$/, name: 'ready', methods: ['POST'] },
  { pattern: /^\/api\/blocked$/, name: 'blocked', methods: ['GET', 'HEAD'] },
  { pattern: /^\/api\/blocked\/(.*)$/, name: 'unblock', methods: ['DELETE'] },
  { pattern: /^\/api\/blocked\/(.*)$/, name: 'block', methods: ['PUT'] },
  // molt's own blocked versions (MOLT_SELF): unblocked as the app's are.
  { pattern: /^\/api\/self\/blocked\/(.*)$/, name: 'unblock-self', methods: ['DELETE'] },
  { pattern: /^\/api\/notify$/, name: 'notify', methods: ['POST'] },
];

/** Match a raw path and method: a route, or the status to refuse with. */
export function matchRoute(method: string, path: string): Route | { status: 404 | 405; allow?: string } {
  // One path may have a route per method (PUT and DELETE /api/blocked/VERSION).
  const allow: string[] = [];
  for (const r of ROUTES) {
    const m = r.pattern.exec(path);
    if (!m) continue;
    if (r.methods.includes(method)) return { name: r.name, params: m.slice(1) };
    allow.push(...r.methods);
  }
  return allow.length ? { status: 405, allow: allow.join(', ') } : { status: 404 };
}
