import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeState, encodeState, handedFds, ReexecStateError, type ReexecState, type SlotRecord } from '../../src/supervise/reexecState.js';
import { initialState } from '../../src/supervise/machine.js';

let nextFd = 10;
const slot = (pid: number, over: Partial<SlotRecord> = {}): SlotRecord => ({
  state: { ...initialState(false), phase: pid ? 'run' : 'down' },
  pid,
  stampMs: 1_700_000_000_000,
  ranMs: 1234.5,
  delayMs: 0,
  deathAgesMs: [10, 20],
  ready: true,
  sup: { lock: nextFd++, control: nextFd++, controlWrite: nextFd++, ok: nextFd++ },
  ...over,
});

const sample = (): ReexecState => ({
  version: 1,
  pid: 1,
  writtenMs: 1_700_000_000_000,
  servicesDir: '/etc/service',
  cmdPid: 7,
  services: [
    { name: 'web', dir: '/etc/service/web', listen: [40], pipe: [41, 42], main: slot(12, { stdout: 43 }), log: slot(11) },
    { name: 'idle', dir: '/etc/service/idle', listen: [], main: slot(0, { state: { ...initialState(true) } }) },
  ],
});

test('a state survives encode then decode unchanged', () => {
  const s = sample();
  assert.deepEqual(decodeState(encodeState(s)), s);
});

test('handedFds lists every fd the state hands over, once', () => {
  const s = sample();
  const fds = handedFds(s);
  assert.equal(new Set(fds).size, fds.length);
  for (const f of [40, 41, 42, 43, s.services[0]!.main.sup.ok, s.services[1]!.main.sup.lock]) assert.ok(fds.includes(f), `fd ${f}`);
  assert.equal(fds.length, 4 + 3 * 4);
});

const refuses = (mutate: (o: any) => void, pattern: RegExp) => {
  const o = JSON.parse(encodeState(sample()));
  mutate(o);
  assert.throws(() => decodeState(JSON.stringify(o)), (e: unknown) => e instanceof ReexecStateError && pattern.test(e.message));
};

test('corrupt or truncated text is refused with one line', () => {
  const text = encodeState(sample());
  assert.throws(() => decodeState(text.slice(0, text.length / 2)), /not JSON/);
  assert.throws(() => decodeState(''), /not JSON/);
  assert.throws(() => decodeState('[]'), /state: not an object/);
});

test('each kind of bad field is refused, naming where', () => {
  refuses((o) => (o.version = 2), /state\.version/);
  refuses((o) => delete o.services, /state\.services: not a list/);
  refuses((o) => (o.services[0].main.state.phase = 'sleeping'), /services\[0\]\.main\.state\.phase/);
  refuses((o) => (o.services[0].main.state.want = 'maybe'), /main\.state\.want/);
  refuses((o) => (o.services[0].main.state.paused = 'no'), /main\.state\.paused/);
  refuses((o) => (o.services[0].main.pid = 0), /a running slot needs its pid/);
  refuses((o) => (o.services[0].main.pid = -3), /main\.pid/);
  refuses((o) => (o.services[0].main.state.phase = 'finish'), /finish is running/);
  refuses((o) => (o.services[0].main.sup.ok = 1), /sup\.ok: not a whole number >= 3/);
  refuses((o) => (o.services[0].pipe = [41]), /pipe: not a pair/);
  refuses((o) => delete o.services[0].pipe, /a logger and its pipe go together/);
  refuses((o) => (o.services[1].name = '../etc'), /not a service name/);
  refuses((o) => (o.services[0].main.deathAgesMs = [1, 'x']), /deathAgesMs\[1\]/);
  refuses((o) => (o.cmdPid = 1), /cmdPid/);
  refuses((o) => (o.services[0].main.stampMs = Infinity), /stampMs/);
});

test('a state that hands the same fd, pid or service twice is refused', () => {
  refuses((o) => (o.services[1].main.sup.lock = o.services[0].main.sup.lock), /fd \d+ appears twice/);
  refuses((o) => (o.services[1].listen = [40]), /fd 40 appears twice/);
  refuses((o) => (o.services[0].log.pid = 12), /pid 12 appears twice/);
  refuses((o) => (o.cmdPid = 12), /pid 12 appears twice/);
  refuses((o) => (o.services[1].name = 'web'), /service web appears twice/);
});

test('held signals travel in order, and only real signal names are accepted', () => {
  const s = { ...sample(), signals: ['SIGUSR1', 'SIGTERM', 'SIGUSR1'] as NodeJS.Signals[] };
  assert.deepEqual(decodeState(encodeState(s)).signals, ['SIGUSR1', 'SIGTERM', 'SIGUSR1']);
  refuses((o) => (o.signals = 'SIGTERM'), /state\.signals: not a list/);
  refuses((o) => (o.signals = ['SIGTERM', 'TERM']), /state\.signals\[1\]: not a signal name/);
  refuses((o) => (o.signals = ['SIGNOPE']), /state\.signals\[0\]/);
  refuses((o) => (o.signals = [15]), /state\.signals\[0\]/);
});
