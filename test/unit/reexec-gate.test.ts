// The re-exec gate (issue 15): PID 1 hands its services over only when each is
// in a steady state; the decision is a pure function over the state table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reexecBlocker, serviceBlocker, slotBlocker, type ServiceView, type SlotView } from '../../src/supervise/reexecGate.js';
import { initialState, type SlotState } from '../../src/supervise/machine.js';

const running = (over: Partial<SlotView> = {}, state: Partial<SlotState> = {}): SlotView => ({
  state: { ...initialState(false), phase: 'run', ...state },
  pid: 42,
  superviseOpen: true,
  finishRunning: false,
  controlRunning: false,
  awaitingReady: false,
  ...over,
});
const service = (over: Partial<ServiceView> = {}): ServiceView => ({ name: 'web', lettingGo: false, waitsForDependencies: false, handoverRunning: false, main: running(), pipeOpen: false, ...over });

test('steady slots pass: running and ready, down as wanted, paused, in a restart backoff, held by the updater', () => {
  assert.equal(slotBlocker(running()), undefined);
  assert.equal(slotBlocker(running({}, { paused: true })), undefined);
  assert.equal(slotBlocker(running({ pid: 0 }, { phase: 'down', want: 'down' })), undefined);
  assert.equal(slotBlocker(running({ pid: 0 }, { phase: 'down', want: 'up', throttled: true })), undefined, 'a backoff is serialized (its delay is re-armed)');
  assert.equal(slotBlocker(running({ pid: 0 }, { phase: 'down', want: 'up', held: true })), undefined);
  assert.equal(slotBlocker(running({ pid: 0 }, { phase: 'down', want: 'exit' })), undefined);
});

test('each transient slot state blocks, with its own reason', () => {
  const cases: [SlotView, string][] = [
    [running({ superviseOpen: false }), 'its supervise/ is not open'],
    [running({}, { phase: 'finish' }), 'finish is running'],
    [running({ pid: 0, finishRunning: true }, { phase: 'down' }), 'finish is running'],
    [running({ controlRunning: true }), 'control/u is running'],
    [running({}, { want: 'down' }), 'it is stopping'],
    [running({}, { want: 'exit' }), 'it is stopping'],
    [running({ pid: 0 }), 'it is starting'],
    [running({ awaitingReady: true }), 'it has not reported ready yet'],
    [running({ pid: 0 }, { phase: 'down', want: 'up' }), 'it is starting'],
  ];
  for (const [view, why] of cases) assert.equal(slotBlocker(view), why, JSON.stringify(view));
});

test('a service blocks on its own transitions, its logger, or a closed log pipe', () => {
  assert.equal(serviceBlocker(service()), undefined);
  assert.equal(serviceBlocker(service({ log: running(), pipeOpen: true })), undefined);
  assert.equal(serviceBlocker(service({ lettingGo: true })), 'it is being let go');
  assert.equal(serviceBlocker(service({ waitsForDependencies: true })), 'it waits for its dependencies');
  assert.equal(serviceBlocker(service({ handoverRunning: true })), 'a handover is under way');
  assert.equal(serviceBlocker(service({ log: running({ awaitingReady: false }, { want: 'down' }), pipeOpen: true })), 'log: it is stopping');
  assert.equal(serviceBlocker(service({ log: running(), pipeOpen: false })), 'its log pipe is closed');
  // The run's own reason comes first.
  assert.equal(serviceBlocker(service({ main: running({ awaitingReady: true }), log: running({}, { want: 'down' }), pipeOpen: true })), 'it has not reported ready yet');
});

test('the whole table: the first blocking service is named; shutting down blocks everything; an empty table passes', () => {
  assert.equal(reexecBlocker([], false), undefined);
  assert.equal(reexecBlocker([], true), 'shutting down');
  const table = [service({ name: 'a' }), service({ name: 'b', main: running({ pid: 0 }, { phase: 'down', want: 'up' }) }), service({ name: 'c', lettingGo: true })];
  assert.equal(reexecBlocker(table, false), 'service b: it is starting');
  assert.equal(reexecBlocker([table[0]!], false), undefined);
  assert.equal(reexecBlocker([table[0]!], true), 'shutting down');
});
