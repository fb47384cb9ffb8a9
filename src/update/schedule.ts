// MOLT_SCHEDULE: maintenance windows in the container's local time (TZ), such as
// "mo-fr 9-17", "sa,su", "18-22", "mo-fr 9-17; sa 10-12" or "22-6" (wraps past
// midnight: the window opens on the named day and closes the next morning).
// Wall-clock time is right here (a window is a time of day), and only here.

export interface Schedule {
  windows: { days: ReadonlySet<number> /* 0=su..6=sa */; from: number /* minute of day */; to: number }[];
}

const DAY_NAMES: Record<string, number> = {
  su: 0, sun: 0, sunday: 0,
  mo: 1, mon: 1, monday: 1,
  tu: 2, tue: 2, tuesday: 2,
  we: 3, wed: 3, wednesday: 3,
  th: 4, thu: 4, thursday: 4,
  fr: 5, fri: 5, friday: 5,
  sa: 6, sat: 6, saturday: 6,
};
const ALL_DAYS: ReadonlySet<number> = new Set([0, 1, 2, 3, 4, 5, 6]);
const DAY_MINUTES = 24 * 60;
const FORMS = 'e.g. "mo-fr 9-17", "sa,su", "18-22", "22-6", "mo-fr 9-17; sa 10-12"';

function day(name: string, window: string): number {
  const d = DAY_NAMES[name.toLowerCase()];
  if (d === undefined) throw new Error(`unknown day "${name}" in "${window}" (days: su mo tu we th fr sa)`);
  return d;
}

function parseDays(text: string, window: string): Set<number> {
  const days = new Set<number>();
  for (const item of text.split(',')) {
    if (item === '') throw new Error(`empty day in "${window}" (${FORMS})`);
    const range = item.split('-');
    if (range.length === 1) {
      days.add(day(item, window));
    } else if (range.length === 2 && range[0] && range[1]) {
      // fr-mo wraps the week: fr, sa, su, mo.
      const a = day(range[0], window);
      const b = day(range[1], window);
      for (let d = a; ; d = (d + 1) % 7) {
        days.add(d);
        if (d === b) break;
      }
    } else {
      throw new Error(`bad day range "${item}" in "${window}" (e.g. mo-fr)`);
    }
  }
  return days;
}

/** "9", "9:30", "24" -> minute of day. */
function clock(text: string, window: string): number {
  const m = /^(\d{1,2})(?::(\d{2}))?$/.exec(text);
  const bad = () => new Error(`bad time "${text}" in "${window}" (hours 0-24, optionally :MM)`);
  if (!m) throw bad();
  const h = Number(m[1]);
  const min = m[2] === undefined ? 0 : Number(m[2]);
  if (h > 24 || min > 59 || (h === 24 && min !== 0)) throw bad();
  return h * 60 + min;
}

function parseHours(text: string, window: string): { from: number; to: number }[] {
  const out: { from: number; to: number }[] = [];
  for (const item of text.split(',')) {
    const parts = item.split('-');
    if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`bad hours "${item}" in "${window}" (a range such as 9-17 or 22:30-6)`);
    const from = clock(parts[0], window);
    const to = clock(parts[1], window);
    if (from === DAY_MINUTES) throw new Error(`bad hours "${item}" in "${window}" (a window cannot start at 24)`);
    if (from === to) throw new Error(`empty hours "${item}" in "${window}" (start and end are the same)`);
    out.push({ from, to: to === 0 ? DAY_MINUTES : to });
  }
  return out;
}

/** Parse MOLT_SCHEDULE. Windows are separated by ';'; each is days, hours, or days then hours.
 *  Hours are [from, to): "9-17" is open from 09:00 until 16:59. Throws an Error with a one-line message naming the bad part. */
export function parseSchedule(text: string): Schedule {
  const windows: Schedule['windows'] = [];
  const parts = text.split(';').map((w) => w.trim());
  if (parts.every((w) => w === '')) throw new Error(`empty schedule (${FORMS})`);
  for (const raw of parts) {
    if (raw === '') continue; // a trailing ';' is harmless
    // "sa, su" and "9 - 17" are read as "sa,su" and "9-17".
    const w = raw.replace(/\s*([,-])\s*/g, '$1');
    const tokens = w.split(/\s+/);
    let days: Set<number> | undefined;
    let hours: { from: number; to: number }[] | undefined;
    for (const tok of tokens) {
      if (/^[A-Za-z]/.test(tok)) {
        if (days || hours) throw new Error(`unexpected "${tok}" in "${raw}" (write days first, then hours: ${FORMS})`);
        days = parseDays(tok, raw);
      } else if (/^\d/.test(tok)) {
        if (hours) throw new Error(`unexpected "${tok}" in "${raw}" (one hours part per window; separate ranges with ',')`);
        hours = parseHours(tok, raw);
      } else {
        throw new Error(`cannot read "${tok}" in "${raw}" (${FORMS})`);
      }
    }
    for (const h of hours ?? [{ from: 0, to: DAY_MINUTES }]) windows.push({ days: days ?? ALL_DAYS, from: h.from, to: h.to });
  }
  return { windows };
}

function minuteOfDay(at: Date): number {
  return at.getHours() * 60 + at.getMinutes();
}

export function inSchedule(s: Schedule, at: Date): boolean {
  const d = at.getDay();
  const prev = (d + 6) % 7;
  const m = minuteOfDay(at);
  for (const w of s.windows) {
    if (w.from < w.to) {
      if (w.days.has(d) && m >= w.from && m < w.to) return true;
    } else {
      // Past midnight: the evening part belongs to the named day, the morning part to the day after it.
      if (w.days.has(d) && m >= w.from) return true;
      if (w.days.has(prev) && m < w.to) return true;
    }
  }
  return false;
}

/** The next moment at or after `at` when the schedule is open (at itself when open now).
 *  Every opening is the start of a window on one of its days (the morning part of a wrapping
 *  window is only ever entered from its evening), so the answer is the earliest such start
 *  within the next eight days. Local dates are built field by field, so DST days stay right. */
export function nextOpening(s: Schedule, at: Date): Date {
  if (inSchedule(s, at)) return new Date(at.getTime());
  let best: Date | undefined;
  for (let offset = 0; offset <= 7; offset++) {
    const base = new Date(at.getFullYear(), at.getMonth(), at.getDate() + offset);
    const d = base.getDay();
    for (const w of s.windows) {
      if (!w.days.has(d)) continue;
      const start = new Date(base.getFullYear(), base.getMonth(), base.getDate(), Math.floor(w.from / 60), w.from % 60);
      if (start.getTime() <= at.getTime()) continue;
      if (!best || start.getTime() < best.getTime()) best = start;
    }
    if (best) return best;
  }
  throw new Error('schedule has no windows');
}
