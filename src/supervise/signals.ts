// Signal names and numbers (Linux), and the parsing of a `down-signal` file.
import os from 'node:os';

const byNumber = new Map<number, NodeJS.Signals>();
for (const [name, num] of Object.entries(os.constants.signals)) {
  if (!byNumber.has(num)) byNumber.set(num, name as NodeJS.Signals);
}

export function signalNumber(name: NodeJS.Signals): number {
  return os.constants.signals[name];
}
export function signalName(num: number): NodeJS.Signals | undefined {
  return byNumber.get(num);
}

/** Parse "TERM", "SIGTERM", "term" or "15"; undefined when it is not a signal. */
export function parseSignal(raw: string): NodeJS.Signals | undefined {
  const s = raw.trim().toUpperCase();
  if (s === '') return undefined;
  if (/^\d+$/.test(s)) return signalName(Number(s));
  const name = (s.startsWith('SIG') ? s : 'SIG' + s) as NodeJS.Signals;
  return name in os.constants.signals ? name : undefined;
}

/** Control letters that only send a signal to the running process (runsv's ctrl()). */
export const controlSignals: Record<string, NodeJS.Signals> = {
  h: 'SIGHUP',
  a: 'SIGALRM',
  i: 'SIGINT',
  q: 'SIGQUIT',
  '1': 'SIGUSR1',
  '2': 'SIGUSR2',
};
