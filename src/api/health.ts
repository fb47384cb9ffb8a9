// When molt counts as healthy (`molt health`, GET /healthz): the updater answers,
// the app service is up, and no update is failing. A pure function over status.
import type { ServiceInfo, UpdaterStatus } from './types.js';

/** One line saying why molt is unhealthy, or undefined when it is healthy.
 *  `app` undefined means "not looked at" (no services directory known); null means "not found". */
export function healthProblem(
  status: UpdaterStatus,
  app: ServiceInfo | null | undefined,
  appName = 'app',
  /** Actions the updater refused outright (409: nothing was tried, nothing is failing). */
  refused: ReadonlySet<string> = new Set(),
): string | undefined {
  if (app === null) return `service ${appName} not found`;
  if (app) {
    if (!app.supervised) return `service ${appName} is not supervised (is molt init running?)`;
    if (app.state !== 'up') return `service ${appName} is ${app.state}`;
    if (app.health?.gaveUp) return `service ${appName} fails its check and healing gave up`;
    if (app.health?.healthy === false) return `service ${appName} fails its check (${app.health.failures} in a row)`;
  }
  if (status.phase === 'rolling-back') return `rolling back${status.trial ? ` ${status.trial.version}` : ''}`;
  // The newest update or rollback decides: a failed one that nothing has replaced yet is a failing update.
  const last = status.actions
    .filter((a) => (a.kind === 'update' || a.kind === 'rollback') && !refused.has(a.id))
    .sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt))[0];
  if (last && last.state === 'failed') return `${last.kind}${last.version ? ` to ${last.version}` : ''} failed${last.message ? `: ${last.message}` : ''}`;
  return undefined;
}
