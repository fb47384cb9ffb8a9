// Times are built with the local-time Date constructor, so the assertions hold in any TZ;
// this file pins Europe/Berlin (each test file runs in its own process) for the DST cases.
process.env.TZ = 'Europe/Berlin';

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { inSchedule, nextOpening, parseSchedule, type Schedule } from '../../src/update/schedule.js';

// January 2024: Monday the 1st ... Sunday the 7th, Monday the 8th.
const at = (day: number, h: number, m = 0, s = 0) => new Date(2024, 0, day, h, m, s);
const MON = 1, TUE = 2, WED = 3, THU = 4, FRI = 5, SAT = 6, SUN = 7;

function windows(s: Schedule) {
  return s.windows.map((w) => ({ days: [...w.days].sort(), from: w.from, to: w.to }));
}
const ALL = [0, 1, 2, 3, 4, 5, 6];

describe('parseSchedule', () => {
  test('days and hours: "mo-fr 9-17"', () => {
    assert.deepEqual(windows(parseSchedule('mo-fr 9-17')), [{ days: [1, 2, 3, 4, 5], from: 540, to: 1020 }]);
  });

  test('days only: "sa,su" is the whole day', () => {
    assert.deepEqual(windows(parseSchedule('sa,su')), [{ days: [0, 6], from: 0, to: 1440 }]);
  });

  test('hours only: "18-22" is every day', () => {
    assert.deepEqual(windows(parseSchedule('18-22')), [{ days: ALL, from: 1080, to: 1320 }]);
  });

  test('several windows: "mo-fr 9-17; sa 10-12"', () => {
    assert.deepEqual(windows(parseSchedule('mo-fr 9-17; sa 10-12')), [
      { days: [1, 2, 3, 4, 5], from: 540, to: 1020 },
      { days: [6], from: 600, to: 720 },
    ]);
  });

  test('past midnight: "22-6" keeps from > to', () => {
    assert.deepEqual(windows(parseSchedule('22-6')), [{ days: ALL, from: 1320, to: 360 }]);
  });

  test('minutes, 24 as end of day, 0 as end, several hour ranges, and relaxed spacing and case', () => {
    assert.deepEqual(windows(parseSchedule('Mo 9:30-17:15')), [{ days: [1], from: 570, to: 1035 }]);
    assert.deepEqual(windows(parseSchedule('22-24')), [{ days: ALL, from: 1320, to: 1440 }]);
    assert.deepEqual(windows(parseSchedule('22-0')), [{ days: ALL, from: 1320, to: 1440 }]);
    assert.deepEqual(windows(parseSchedule('0-24')), [{ days: ALL, from: 0, to: 1440 }]);
    assert.deepEqual(windows(parseSchedule('we 9-12,13-17')), [
      { days: [3], from: 540, to: 720 },
      { days: [3], from: 780, to: 1020 },
    ]);
    assert.deepEqual(windows(parseSchedule('  sa , su  ;  mon - tue  9 - 10 ;')), [
      { days: [0, 6], from: 0, to: 1440 },
      { days: [1, 2], from: 540, to: 600 },
    ]);
    assert.deepEqual(windows(parseSchedule('Saturday,SUNDAY')), [{ days: [0, 6], from: 0, to: 1440 }]);
  });

  test('a day range wraps the week: fr-mo is fr, sa, su, mo', () => {
    assert.deepEqual(windows(parseSchedule('fr-mo')), [{ days: [0, 1, 5, 6], from: 0, to: 1440 }]);
    assert.deepEqual(windows(parseSchedule('su-sa')), [{ days: ALL, from: 0, to: 1440 }]);
    assert.deepEqual(windows(parseSchedule('we-we')), [{ days: [3], from: 0, to: 1440 }]);
  });

  test('bad forms are refused with one line naming the bad part', () => {
    const bad: [string, RegExp][] = [
      ['', /empty schedule/],
      ['  ;  ', /empty schedule/],
      ['mo-xx 9-17', /unknown day "xx" in "mo-xx 9-17"/],
      ['monday-friday-sunday', /bad day range "monday-friday-sunday"/],
      ['mo,,tu', /empty day in "mo,,tu"/],
      ['mo 9', /bad hours "9" in "mo 9"/],
      ['mo 9-', /bad hours "9-"/],
      ['mo 25-26', /bad time "25" in "mo 25-26"/],
      ['mo 9:60-10', /bad time "9:60"/],
      ['mo 24:30-1', /bad time "24:30"/],
      ['mo 9-9', /empty hours "9-9"/],
      ['24-6', /cannot start at 24/],
      ['9-17 mo', /unexpected "mo" in "9-17 mo"/],
      ['mo 9-17 10-12', /unexpected "10-12"/],
      ['mo tu', /unexpected "tu" in "mo tu"/],
      ['* 9-17', /cannot read "\*"/],
      ['mo 9.5-17', /bad time "9.5"/],
    ];
    for (const [text, re] of bad) {
      assert.throws(() => parseSchedule(text), (err: Error) => {
        assert.match(err.message, re, `for ${JSON.stringify(text)}`);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
    }
  });
});

describe('inSchedule', () => {
  test('edges of "mo-fr 9-17": the minute before and after each end', () => {
    const s = parseSchedule('mo-fr 9-17');
    assert.equal(inSchedule(s, at(MON, 8, 59, 59)), false);
    assert.equal(inSchedule(s, at(MON, 9, 0)), true);
    assert.equal(inSchedule(s, at(MON, 16, 59, 59)), true);
    assert.equal(inSchedule(s, at(MON, 17, 0)), false);
    assert.equal(inSchedule(s, at(FRI, 12)), true);
    assert.equal(inSchedule(s, at(SAT, 12)), false);
    assert.equal(inSchedule(s, at(SUN, 12)), false);
  });

  test('"22-6" wraps midnight', () => {
    const s = parseSchedule('22-6');
    assert.equal(inSchedule(s, at(TUE, 21, 59)), false);
    assert.equal(inSchedule(s, at(TUE, 22, 0)), true);
    assert.equal(inSchedule(s, at(TUE, 23, 59)), true);
    assert.equal(inSchedule(s, at(WED, 0, 0)), true);
    assert.equal(inSchedule(s, at(WED, 5, 59)), true);
    assert.equal(inSchedule(s, at(WED, 6, 0)), false);
    assert.equal(inSchedule(s, at(WED, 12)), false);
  });

  test('a wrapping window belongs to its named day: "fr 22-6" is Friday night into Saturday morning', () => {
    const s = parseSchedule('fr 22-6');
    assert.equal(inSchedule(s, at(FRI, 23)), true);
    assert.equal(inSchedule(s, at(SAT, 5, 59)), true);
    assert.equal(inSchedule(s, at(SAT, 6)), false);
    assert.equal(inSchedule(s, at(FRI, 3)), false, 'Thursday is not named, so Friday morning is closed');
    assert.equal(inSchedule(s, at(SAT, 23)), false);
  });

  test('"su 22-6" wraps the week into Monday morning', () => {
    const s = parseSchedule('su 22-6');
    assert.equal(inSchedule(s, at(MON, 3)), true);
    assert.equal(inSchedule(s, at(MON, 23)), false);
  });

  test('day ranges wrapping the week: "fr-mo 10-12"', () => {
    const s = parseSchedule('fr-mo 10-12');
    for (const d of [FRI, SAT, SUN, MON]) assert.equal(inSchedule(s, at(d, 11)), true, `day ${d}`);
    for (const d of [TUE, WED, THU]) assert.equal(inSchedule(s, at(d, 11)), false, `day ${d}`);
  });

  test('days only: "sa,su" is open from Saturday 00:00 to Sunday 23:59', () => {
    const s = parseSchedule('sa,su');
    assert.equal(inSchedule(s, at(FRI, 23, 59, 59)), false);
    assert.equal(inSchedule(s, at(SAT, 0, 0)), true);
    assert.equal(inSchedule(s, at(SUN, 23, 59, 59)), true);
    assert.equal(inSchedule(s, at(MON, 0, 0)), false);
  });

  test('several windows: either one opens', () => {
    const s = parseSchedule('mo-fr 9-17; sa 10-12');
    assert.equal(inSchedule(s, at(SAT, 11)), true);
    assert.equal(inSchedule(s, at(SAT, 13)), false);
    assert.equal(inSchedule(s, at(WED, 10)), true);
  });
});

describe('nextOpening', () => {
  test('is `at` itself when open now', () => {
    const s = parseSchedule('mo-fr 9-17');
    const t = at(TUE, 10, 30, 15);
    assert.equal(nextOpening(s, t).getTime(), t.getTime());
  });

  test('later the same day', () => {
    const s = parseSchedule('18-22');
    assert.equal(nextOpening(s, at(TUE, 8, 15, 30)).getTime(), at(TUE, 18).getTime());
    assert.equal(nextOpening(s, at(TUE, 17, 59, 59)).getTime(), at(TUE, 18).getTime());
  });

  test('the next day after the window closed', () => {
    const s = parseSchedule('18-22');
    assert.equal(nextOpening(s, at(TUE, 22)).getTime(), at(WED, 18).getTime());
  });

  test('across the weekend: Friday evening to Monday 9:00', () => {
    const s = parseSchedule('mo-fr 9-17');
    assert.equal(nextOpening(s, at(FRI, 17)).getTime(), at(MON + 7, 9).getTime());
    assert.equal(nextOpening(s, at(SAT, 12)).getTime(), at(MON + 7, 9).getTime());
  });

  test('a whole week ahead: a one-day window just missed', () => {
    const s = parseSchedule('we 9-10');
    assert.equal(nextOpening(s, at(WED, 10)).getTime(), at(WED + 7, 9).getTime());
    assert.equal(nextOpening(s, at(WED, 8, 59)).getTime(), at(WED, 9).getTime());
  });

  test('the earliest of several windows', () => {
    const s = parseSchedule('mo-fr 9-17; sa 10-12');
    assert.equal(nextOpening(s, at(FRI, 18)).getTime(), at(SAT, 10).getTime());
    assert.equal(nextOpening(s, at(SAT, 12)).getTime(), at(MON + 7, 9).getTime());
  });

  test('a wrapping window opens at its evening start', () => {
    const s = parseSchedule('fr 22-6');
    assert.equal(nextOpening(s, at(SAT, 6)).getTime(), at(FRI + 7, 22).getTime());
    assert.equal(nextOpening(s, at(MON, 12)).getTime(), at(FRI, 22).getTime());
  });

  test('across a month and a year boundary', () => {
    const s = parseSchedule('mo 9-17');
    // Sunday 31 December 2023 -> Monday 1 January 2024.
    assert.equal(nextOpening(s, new Date(2023, 11, 31, 12)).getTime(), at(MON, 9).getTime());
  });

  test('the answer is always open, and nothing earlier was (minute scan over two weeks)', () => {
    const schedules = ['mo-fr 9-17', 'sa,su', '22-6', 'fr 22-6', 'fr-mo 10-12', 'mo-fr 9-17; sa 10-12', 'we 9:30-9:45'];
    for (const text of schedules) {
      const s = parseSchedule(text);
      for (let i = 0; i < 14 * 24 * 60; i += 37) {
        const t = new Date(2024, 0, 1, 0, i, 13);
        const n = nextOpening(s, t);
        assert.ok(n.getTime() >= t.getTime(), `${text} at ${t.toString()}`);
        assert.equal(inSchedule(s, n), true, `${text} at ${t.toString()} -> ${n.toString()}`);
        // One minute before the opening (when after t) the schedule was closed.
        const before = new Date(n.getTime() - 60_000);
        if (before.getTime() > t.getTime()) assert.equal(inSchedule(s, before), false, `${text}: ${before.toString()} already open`);
      }
    }
  });

  test('daylight saving: a window starting in the skipped hour opens when the clock jumps', () => {
    // Europe/Berlin, Sunday 31 March 2024: 02:00 becomes 03:00.
    const s = parseSchedule('su 2-4');
    const n = nextOpening(s, new Date(2024, 2, 30, 12));
    assert.equal(n.getDate(), 31);
    assert.equal(n.getHours(), 3);
    assert.equal(inSchedule(s, n), true);
  });

  test('daylight saving: the long autumn Sunday still opens at 09:00 local time', () => {
    // Europe/Berlin, Sunday 27 October 2024: 03:00 becomes 02:00, so Saturday noon to Sunday 09:00 is 22 hours.
    const s = parseSchedule('su 9-17');
    const from = new Date(2024, 9, 26, 12);
    const n = nextOpening(s, from);
    assert.equal(n.getHours(), 9);
    assert.equal(n.getTime() - from.getTime(), 22 * 3600_000);
  });
});
