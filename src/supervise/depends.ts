// Start and stop order between services: a `depends` file in a service
// directory names, one a line, the services that must be up (and ready, when
// they report readiness through notification-fd) before it starts. At
// shutdown the order is reversed: a service gets its stop signal only once
// every service that depends on it is down. Pure: graphs in, decisions out.

/** Parse a `depends` file: one service name a line, `#` starts a comment. Throws on a bad name. */
export function parseDepends(text: string): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const name = raw.replace(/#.*/, '').trim();
    if (!name) return;
    if (name.includes('/') || name.startsWith('.') || /\s/.test(name)) throw new Error(`depends line ${i + 1} "${name}": want one service name`);
    if (!out.includes(name)) out.push(name);
  });
  return out;
}

export type Graph = ReadonlyMap<string, readonly string[]>;

/** Every service that sits on a dependency cycle (its order cannot be honoured). */
export function inCycles(graph: Graph): Set<string> {
  const cyclic = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'open') {
      for (const n of stack.slice(stack.indexOf(name))) cyclic.add(n);
      return;
    }
    state.set(name, 'open');
    stack.push(name);
    for (const dep of graph.get(name) ?? []) if (graph.has(dep)) visit(dep);
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of graph.keys()) visit(name);
  return cyclic;
}

/** What `name` still waits for before it may start: dependencies that are missing or not ready. */
export function startBlockers(name: string, graph: Graph, ready: (dep: string) => boolean, cyclic: ReadonlySet<string>): string[] {
  if (cyclic.has(name)) return [];
  return (graph.get(name) ?? []).filter((dep) => !ready(dep));
}

/** Whether `name` may be stopped now: no service that depends on it is still running. */
export function mayStop(name: string, graph: Graph, running: (svc: string) => boolean, cyclic: ReadonlySet<string>): boolean {
  if (cyclic.has(name)) return true;
  for (const [other, deps] of graph) if (other !== name && deps.includes(name) && running(other) && !cyclic.has(other)) return false;
  return true;
}
