import os from 'node:os';

export type UpdateErrorCode =
  | 'network'
  | 'http'
  | 'rate-limited'
  | 'not-found'
  | 'integrity'
  | 'hostile-archive'
  /** No valid signature from a key or identity the image trusts (MOLT_TRUST_*). */
  | 'untrusted'
  | 'disk-full'
  | 'bad-input'
  | 'config'
  | 'aborted';

/** An error a person can act on: one line, naming what was wrong. Never a stack trace to users. */
export class UpdateError extends Error {
  constructor(
    message: string,
    readonly code: UpdateErrorCode,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'UpdateError';
  }
}

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** The one shape of a failed libc call: the call, what it was called on, and errno by name
 *  (EACCES, not 13), after libc's own words when the caller has them. */
export class SyscallError extends Error {
  readonly code: string;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    opts: { target?: string; text?: string } = {},
  ) {
    const name = errnoNames.get(errno) ?? `errno ${errno}`;
    super(`${syscall}${opts.target ? ` ${opts.target}` : ''}: ${opts.text ? `${opts.text} (${name})` : name}`);
    this.name = 'SyscallError';
    this.code = name;
  }
}
