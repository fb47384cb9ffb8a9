// A failed GitHub API request as one line a person can act on, with the code
// the updater's retry and block decisions go by.
import type { RequestError } from '@octokit/request-error';
import { UpdateError } from '../types.js';

export function apiError(src: { repo: string; timeoutMs: number }, status: number, shown: string, body: string, attempts: number, timedOut: boolean, e?: RequestError): UpdateError {
  const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
  if (status === 0) {
    const why = timedOut ? `timed out after ${src.timeoutMs}ms` : `failed (${(e?.message ?? 'network error').split('\n')[0]})`;
    return new UpdateError(`GitHub ${src.repo}: ${shown} ${why}${tries}`, 'network');
  }
  const msg = body ? ` (${body.split('\n')[0]})` : '';
  if (status === 404) return new UpdateError(`GitHub ${src.repo}: ${shown} not found${msg}; check MOLT_GITHUB and that GITHUB_TOKEN can see the repository`, 'not-found');
  if (status === 401) return new UpdateError(`GitHub ${src.repo}: GITHUB_TOKEN was refused (401${msg})`, 'config');
  return new UpdateError(`GitHub ${src.repo}: ${shown} answered ${status}${msg}${tries}`, 'http');
}
