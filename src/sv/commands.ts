// What each sv command means: the control letters written to
// supervise/control, whether to wait for them to take effect, and whether a
// timeout ends in a KILL. Like runit's sv, mostly only the first letter counts.

export interface Plan {
  /** 'control' writes `letters`; 'status' prints; 'none' only waits (check). */
  act: 'control' | 'status' | 'none';
  /** Control letters, and the conditions to wait for (`C`: the wanted state). */
  letters: string;
  /** Wait (up to -w seconds) for the letters to take effect, printing ok/timeout. */
  wait: boolean;
  /** On timeout, print `kill: ` and send `k` (the force-* commands). */
  killOnTimeout: boolean;
}

const control = (letters: string, wait: boolean, killOnTimeout = false): Plan => ({
  act: 'control',
  letters,
  wait,
  killOnTimeout,
});

/** Exact LSB words; any other word starting with r or f is a usage error. */
const lsb: Record<string, Plan> = {
  shutdown: control('x', true),
  start: control('u', true),
  stop: control('d', true),
  restart: control('tcu', true),
  reload: control('h', true),
  'try-restart': control('tc', true),
  'force-reload': control('tc', true, true),
  'force-restart': control('tcu', true, true),
  'force-shutdown': control('x', true, true),
  'force-stop': control('d', true, true),
  check: { act: 'none', letters: 'C', wait: true, killOnTimeout: false },
};

/** Letters sent as they are: up, down, once, pause, cont, hup, alarm, interrupt, kill, quit, 1, 2, term. */
const plainLetters = 'udophaikq12tc';

/** The plan for a command word, or undefined for a usage error. */
export function planFor(action: string, verbose: boolean): Plan | undefined {
  const first = action[0];
  if (first === undefined) return undefined;
  if (Object.hasOwn(lsb, action)) {
    // 'check', 'try-restart' and the s/r/f words are matched whole.
    return lsb[action]!;
  }
  switch (first) {
    case 'x':
    case 'e':
      return control('x', verbose);
    case 'X':
    case 'E':
      return control('x', true, true);
    case 'D':
      return control('d', true, true);
    case 'T':
      return control('tc', true, true);
    case 's':
      // Any other word starting with s is status; -v does not make it wait.
      return { act: 'status', letters: 's', wait: false, killOnTimeout: false };
    case 'r':
    case 'f':
      return undefined;
  }
  if (plainLetters.includes(first)) return control(first, verbose);
  return undefined;
}
