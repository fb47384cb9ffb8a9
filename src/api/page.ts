// GET / : the status page. Plain HTML, one inline style and one inline script, no
// external assets and no build step. The shell holds no state: the script reads
// /api/status with the admin token (typed once, kept in sessionStorage, sent only in
// the Authorization header) and renders with textContent, never innerHTML.
import { createHash } from 'node:crypto';

const style = `
:root{--bg:#f6f7f9;--card:#fff;--fg:#1d2330;--muted:#6b7385;--line:#e3e6ec;--accent:#2f6fec;--ok:#1f9d55;--warn:#c77c02;--bad:#d64545;--chip:#eef1f6;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--card:#1a1f28;--fg:#e6e9ef;--muted:#939bab;--line:#2a313d;--accent:#6c9cff;--ok:#3fcf7f;--warn:#f0b429;--bad:#ff6b6b;--chip:#232a35}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{display:flex;flex-wrap:wrap;align-items:center;gap:12px;padding:16px 24px;border-bottom:1px solid var(--line);background:var(--card)}
header h1{font-size:20px;margin:0;letter-spacing:.5px}
header h1 span{color:var(--muted);font-weight:400}
.grow{flex:1}
main{max-width:1180px;margin:0 auto;padding:20px 24px 40px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(min(100%,440px),1fr))}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 18px;min-width:0}
section.wide{grid-column:1/-1}
h2{font-size:13px;text-transform:uppercase;letter-spacing:.8px;color:var(--muted);margin:0 0 12px;font-weight:600}
.versions{display:grid;grid-template-columns:repeat(3,1fr);gap:10px}
.v{padding:10px 12px;border-radius:10px;background:var(--chip);min-width:0}
.v .label{font-size:12px;color:var(--muted)}
.v .value{font:600 20px/1.3 var(--mono);overflow-wrap:anywhere}
.v.current .value{color:var(--accent)}
.v.avail .value{color:var(--ok)}
.v .value.none{font-family:inherit;font-size:15px;font-weight:500;line-height:1.75;color:var(--muted)}
.kv{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin-top:12px;font-size:14px}
.kv dt{color:var(--muted)}
.kv dd{margin:0;overflow-wrap:anywhere}
.pill{display:inline-block;padding:2px 10px;border-radius:999px;font-size:12px;font-weight:600;background:var(--chip);color:var(--fg);white-space:nowrap}
.pill.ok{background:color-mix(in srgb,var(--ok) 18%,transparent);color:var(--ok)}
.pill.warn{background:color-mix(in srgb,var(--warn) 20%,transparent);color:var(--warn)}
.pill.bad{background:color-mix(in srgb,var(--bad) 18%,transparent);color:var(--bad)}
.pill.info{background:color-mix(in srgb,var(--accent) 18%,transparent);color:var(--accent)}
button,select,input{font:inherit;border-radius:8px;border:1px solid var(--line);background:var(--card);color:var(--fg);padding:7px 12px}
button{cursor:pointer;font-weight:600}
button.primary{background:var(--accent);border-color:var(--accent);color:#fff}
button.danger{color:var(--bad);border-color:color-mix(in srgb,var(--bad) 50%,var(--line))}
button.danger.armed{background:var(--bad);color:#fff}
button:disabled{opacity:.45;cursor:not-allowed}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center}
.controls select{min-width:150px;font-family:var(--mono)}
.bar{height:10px;background:var(--chip);border-radius:999px;overflow:hidden;margin:8px 0 6px}
.bar>div{height:100%;width:0;background:var(--accent);border-radius:999px;transition:width .4s}
.bar.ok>div{background:var(--ok)}
.muted{color:var(--muted)}
.small{font-size:13px}
table{width:100%;border-collapse:collapse;font-size:14px}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.6px;padding:6px 8px;border-bottom:1px solid var(--line)}
td{padding:8px;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:break-word}
td.nowrap,td.mono{white-space:nowrap}
td.reason{width:100%}
h3{font-size:12px;color:var(--muted);font-weight:600;margin:16px 0 4px;text-transform:uppercase;letter-spacing:.6px}
tr:last-child td{border-bottom:0}
td.mono,.mono{font-family:var(--mono)}
.dot{display:inline-block;width:9px;height:9px;border-radius:50%;margin-right:7px;background:var(--muted);vertical-align:1px}
.dot.up{background:var(--ok);box-shadow:0 0 0 3px color-mix(in srgb,var(--ok) 25%,transparent)}
.dot.down{background:var(--bad)}
.dot.finish{background:var(--warn)}
ol.history{list-style:none;margin:0;padding:0}
ol.history li{display:grid;grid-template-columns:92px 110px 1fr;gap:10px;padding:7px 0;border-bottom:1px solid var(--line);font-size:14px}
ol.history li:last-child{border-bottom:0}
.empty{color:var(--muted);font-style:italic;font-size:14px}
#banner{display:none;max-width:1180px;margin:16px auto 0;padding:0 24px}
#banner>div{background:var(--card);border:1px solid var(--line);border-left:4px solid var(--warn);border-radius:10px;padding:14px 16px;display:flex;flex-wrap:wrap;gap:10px;align-items:center}
#banner input{min-width:260px;flex:1;font-family:var(--mono)}
#toast{position:fixed;right:20px;bottom:20px;max-width:420px;padding:10px 14px;border-radius:10px;background:var(--fg);color:var(--bg);font-size:14px;opacity:0;transition:opacity .3s;pointer-events:none}
#toast.show{opacity:.95;pointer-events:auto;cursor:pointer}
#forget[hidden]{display:none}
@media (max-width:560px){.versions{gap:6px}.v{padding:8px}.v .value{font-size:16px}ol.history li{grid-template-columns:1fr;gap:2px}main,header{padding-left:12px;padding-right:12px}}
`;

const script = `
'use strict';
const KEY = 'molt-admin-token';
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(KEY) || '';
let status = null;

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  if (props) for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v; else if (k === 'on') e.addEventListener('click', v);
    else if (k === 'text') e.textContent = v; else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) if (k !== undefined && k !== null) e.append(typeof k === 'string' ? document.createTextNode(k) : k);
  return e;
}
function fill(id, ...kids) { const n = $(id); n.replaceChildren(...kids.flat(Infinity).filter((k) => k !== undefined && k !== null)); return n; }
function ago(iso) {
  if (!iso) return '';
  let s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const future = s < 0; s = Math.abs(s);
  const t = s < 60 ? s + 's' : s < 3600 ? Math.floor(s / 60) + 'm' : s < 86400 ? Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm' : Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  return future ? 'in ' + t : t + ' ago';
}
function dur(sec) {
  if (sec === undefined) return '';
  if (sec < 60) return sec + 's';
  if (sec < 3600) return Math.floor(sec / 60) + 'm ' + (sec % 60) + 's';
  if (sec < 86400) return Math.floor(sec / 3600) + 'h ' + Math.floor((sec % 3600) / 60) + 'm';
  return Math.floor(sec / 86400) + 'd ' + Math.floor((sec % 86400) / 3600) + 'h';
}
function when(iso) { return el('span', { title: iso ? new Date(iso).toLocaleString() : '' , text: ago(iso) }); }
function bytes(n) { return n < 1024 ? n + ' B' : n < 1048576 ? (n / 1024).toFixed(1) + ' KiB' : (n / 1048576).toFixed(1) + ' MiB'; }
let toastTimer;
function toast(msg) { const t = $('toast'); t.textContent = msg; t.classList.add('show'); clearTimeout(toastTimer); toastTimer = setTimeout(() => t.classList.remove('show'), 3000); }

async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401) { showBanner(token ? 'That token was refused. Enter the admin token (MOLT_ADMIN_TOKEN):' : 'This page needs the admin token (MOLT_ADMIN_TOKEN):'); throw new Error('unauthorized'); }
  return { status: res.status, data };
}
function showForget() { $('forget').hidden = !token; }
function showBanner(msg) { $('banner-msg').textContent = msg; $('banner').style.display = 'block'; $('token').focus(); }

const phaseClass = { idle: 'ok', committed: 'ok', trial: 'warn', 'rolling-back': 'bad', checking: 'info', downloading: 'info', staged: 'info', stopping: 'warn', swapping: 'warn', starting: 'warn' };
const stateClass = { running: 'info', done: 'ok', failed: 'bad' };
const eventClass = { commit: 'ok', update: 'info', rollback: 'bad', block: 'bad', 'crash-loop': 'bad', 'check-failed': 'warn', unblock: 'info', recover: 'warn', unhealthy: 'bad', healed: 'warn', 'gave-up': 'bad' };

function render(s) {
  status = s;
  document.title = 'molt · ' + (s.host || '') + ' · ' + (s.current || 'no version');
  fill('host', s.host || '');
  const ph = fill('phase', s.phase); ph.className = 'pill ' + (phaseClass[s.phase] || '');
  fill('updated', 'updated ' + new Date().toLocaleTimeString());
  fill('current', s.current || '—');
  fill('previous', s.previous || '—');
  const av = fill('available', s.available || 'up to date'); av.classList.toggle('none', !s.available);
  const kv = [];
  kv.push(['source', s.source], ['policy', s.policy]);
  if (s.unverified) kv.push(['signed by', el('span', { class: 'pill bad', text: 'unverified', title: s.verifiedBy ? s.verifiedBy + ' is no longer trusted' : 'installed before signatures were required' })]);
  else if (s.verifiedBy) kv.push(['signed by', s.verifiedBy]);
  if (s.trustRoot) kv.push(['trust root', el('span', null, s.trustRoot.mirror + ' (TUF), ', s.trustRoot.verifiedAt ? when(s.trustRoot.verifiedAt) : 'none yet', s.trustRoot.lastError ? el('div', { class: 'small muted', text: 'last refresh failed: ' + s.trustRoot.lastError }) : null)]);
  if (s.lastCheck) kv.push(['last check', el('span', null, when(s.lastCheck.at), ' ', el('span', { class: 'pill ' + (s.lastCheck.ok ? 'ok' : 'bad'), text: s.lastCheck.ok ? (s.lastCheck.notModified ? 'not modified' : 'ok') : 'failed' }), s.lastCheck.error ? el('div', { class: 'small muted', text: s.lastCheck.error }) : null)]);
  if (s.freshness) {
    const f = s.freshness;
    kv.push(['source answered', el('span', null, f.lastSuccessAt ? when(f.lastSuccessAt) : 'not since the start', f.stale ? [' ', el('span', { class: 'pill bad', text: 'stale', title: 'no answer for over ' + f.staleAfterSeconds + ' s (MOLT_STALE_AFTER)' })] : null)]);
    if (f.lastChangeAt) kv.push(['last new answer', when(f.lastChangeAt)]);
    if (f.newestPublishedAt) kv.push(['newest release', el('span', null, (f.newestVersion || '') + ' published ', when(f.newestPublishedAt))]);
  }
  if (s.nextCheckAt) kv.push(['next check', when(s.nextCheckAt)]);
  if (s.waiting) kv.push(['waiting', s.waiting]);
  fill('facts', kv.map(([k, v]) => [el('dt', { text: k }), el('dd', null, v)]));

  // Trial and download progress
  const prog = [];
  if (s.download) {
    const pct = s.download.total ? Math.min(100, Math.floor((s.download.bytes * 100) / s.download.total)) : null;
    const bar = el('div', { class: 'bar' }, el('div'));
    bar.firstChild.style.width = (pct ?? 5) + '%';
    prog.push(el('div', null, el('strong', { text: 'Downloading ' + s.download.version }), bar,
      el('div', { class: 'small muted', text: bytes(s.download.bytes) + (s.download.total ? ' of ' + bytes(s.download.total) + ' · ' + pct + '%' : '') })));
  }
  if (s.trial) {
    const t = s.trial, start = Date.parse(t.startedAt), end = Date.parse(t.deadlineAt);
    const pct = Math.max(0, Math.min(100, ((Date.now() - start) * 100) / Math.max(1, end - start)));
    const bar = el('div', { class: 'bar' + (t.ready ? ' ok' : ''), id: 'trial-bar' }, el('div'));
    bar.firstChild.style.width = (t.ready ? 100 : pct) + '%';
    prog.push(el('div', { id: 'trial' }, el('strong', { text: 'Trial of ' + t.version }), t.from ? el('span', { class: 'muted', text: ' (from ' + t.from + ')' }) : null, bar,
      el('div', { class: 'small muted' }, 'started ', when(t.startedAt), ' · deadline ', when(t.deadlineAt), ' · crashes ' + t.crashes + '/' + t.crashLimit + ' · ' + (t.ready ? 'ready' : t.readyMode === 'explicit' ? 'waiting for ready' : 'must stay up'))));
  }
  $('progress').hidden = !prog.length;
  fill('progress-body', prog);

  // Controls
  const sel = $('version');
  const keep = sel.value;
  sel.replaceChildren(el('option', { value: '', text: 'newest allowed' }), ...(s.releases || []).map((r) =>
    el('option', { value: r.version, text: r.version + (r.version === s.current ? '  (current)' : '') + (r.blocked ? '  (blocked)' : '') + (r.prerelease ? '  (pre)' : '') })));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  $('btn-rollback').disabled = !s.previous;

  const acts = (s.actions || []).slice().sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt)).slice(0, 6);
  fill('actions', acts.length ? acts.map((a) => el('tr', { 'data-action': a.id },
    el('td', null, el('span', { class: 'pill ' + (a.refused ? 'warn' : stateClass[a.state] || ''), text: a.refused ? 'refused' : a.state })),
    el('td', { class: 'nowrap', text: a.kind + (a.version ? ' ' + a.version : '') }),
    el('td', { class: 'small reason' }, a.message || '', a.message ? el('br') : null, el('span', { class: 'muted' }, when(a.startedAt))))) :
    el('tr', null, el('td', { class: 'empty', text: 'No actions yet.' })));

  // Services
  const svc = s.services || [];
  fill('services', svc.length ? svc.map((v) => el('tr', null,
    el('td', { class: 'nowrap' }, el('span', { class: 'dot ' + v.state }), el('strong', { text: v.name })),
    el('td', null, v.state + (v.paused ? ', paused' : '') + (v.want && ((v.want === 'up') !== (v.state === 'up')) ? ', want ' + v.want : '') + (v.supervised ? '' : ', unsupervised'),
      v.health && v.health.healthy !== null ? [' ', el('span', { class: 'pill ' + (v.health.healthy ? 'ok' : 'bad'), title: v.health.lastCheck ? 'last check ' + new Date(v.health.lastCheck).toLocaleString() : '', text: v.health.healthy ? 'healthy' : v.health.gaveUp ? 'check failing, gave up' : 'check failing ×' + v.health.failures })] : null,
      v.health && v.health.healthy === null && !v.health.ready ? [' ', el('span', { class: 'pill', text: 'not ready' })] : null,
      v.failed ? [' ', el('span', { class: 'pill bad', title: 'too many deaths (max-deaths): not restarted until sv up', text: 'failed' })] : null,
      v.next ? [' ', el('span', { class: 'pill', title: 'handover: a new instance runs beside this one', text: 'next ' + v.next.pid + (v.next.stopping ? ' stopping' : v.next.ready ? ' ready' : ' starting') })] : null),
    el('td', { class: 'mono', text: v.pid ? String(v.pid) : '' }),
    el('td', { text: v.seconds !== undefined ? dur(v.seconds) : '' }),
    el('td', { class: 'small muted', text: v.lastExit ? (v.lastExit.code >= 0 ? 'exit ' + v.lastExit.code : 'signal ' + v.lastExit.signal) : '' }))) :
    el('tr', null, el('td', { class: 'empty', colspan: '5', text: 'No services known.' })));

  // Blocked
  fill('blocked', s.blocked.length ? s.blocked.map((b) => el('tr', { 'data-version': b.version },
    el('td', { class: 'mono', text: b.version }), el('td', { class: 'reason', text: b.reason }), el('td', { class: 'small muted nowrap' }, when(b.at)),
    el('td', { class: 'nowrap' }, el('button', { class: 'unblock', on: () => act('DELETE', '/api/blocked/' + encodeURIComponent(b.version), undefined, 'Unblocked ' + b.version), text: 'Unblock' })))) :
    el('tr', null, el('td', { class: 'empty', text: 'Nothing is blocked.' })));

  // molt itself (MOLT_SELF): its versions, source, blocks and recent history
  const m = s.self;
  $('self').hidden = !m;
  if (m) {
    const mk = [['running', (m.running || 'unknown') + ' (PID 1) · updater ' + m.updater]];
    if (m.source) {
      mk.push(['current', m.current || "the image's molt"]);
      if (m.previous) mk.push(['previous', m.previous]);
      mk.push(['available', m.available || 'up to date'], ['source', m.source], ['policy', m.policy || '']);
      if (m.lastCheck) mk.push(['last check', el('span', null, when(m.lastCheck.at), ' ', el('span', { class: 'pill ' + (m.lastCheck.ok ? 'ok' : 'bad'), text: m.lastCheck.ok ? 'ok' : 'failed' }))]);
      if (m.trial) mk.push(['trial', el('span', null, m.trial.version + ' · deadline ', when(m.trial.deadlineAt))]);
      for (const b of m.blocked) mk.push(['blocked', el('span', null, el('span', { class: 'mono', text: b.version }), ' ', el('span', { class: 'muted', text: b.reason }))]);
      for (const h of m.history.slice(0, 5)) mk.push([el('span', { class: 'pill ' + (eventClass[h.event] || ''), text: h.event }), el('span', null, el('span', { class: 'mono', text: (h.from ? h.from + ' → ' : '') + (h.version || '') }), ' ', when(h.at))]);
    } else {
      mk.push(['updates', 'off (MOLT_SELF)']);
    }
    fill('self-facts', mk.map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
  }

  // History
  const hist = (s.history || []).slice().sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, 25);
  fill('history', hist.length ? hist.map((h) => el('li', null,
    el('span', { class: 'small muted', title: new Date(h.at).toLocaleString(), text: ago(h.at) }),
    el('span', null, el('span', { class: 'pill ' + (eventClass[h.event] || ''), text: h.event })),
    el('span', null, el('span', { class: 'mono', text: (h.from ? h.from + ' → ' : '') + (h.version || '') }), h.detail ? el('span', { class: 'muted', text: (h.version || h.from ? ' · ' : '') + h.detail }) : null))) :
    el('li', { class: 'empty', text: 'No history yet.' }));
}

async function refresh() {
  try {
    const r = await api('GET', '/api/status');
    if (r.status === 200) { $('banner').style.display = 'none'; render(r.data); }
    else fill('updated', 'error: ' + ((r.data && r.data.error) || r.status));
  } catch (e) { if (e.message !== 'unauthorized') fill('updated', 'updater not reachable'); }
}

async function act(method, path, body, done) {
  try {
    const r = await api(method, path, body);
    if (r.status >= 400) toast((r.data && r.data.error) || 'failed: ' + r.status);
    else toast(done || 'Started ' + (r.data && r.data.kind ? r.data.kind + ' ' + r.data.id : ''));
  } catch (e) { if (e.message !== 'unauthorized') toast('request failed: ' + e.message); }
  refresh();
}

$('btn-check').addEventListener('click', () => act('POST', '/api/check', undefined, 'Checking for releases…'));
$('btn-update').addEventListener('click', () => { const v = $('version').value; act('POST', '/api/update', v ? { version: v } : {}, 'Updating to ' + (v || 'the newest release') + '…'); });
let armed;
$('btn-rollback').addEventListener('click', (ev) => {
  const b = ev.currentTarget;
  if (!b.classList.contains('armed')) { b.classList.add('armed'); b.textContent = 'Confirm roll back to ' + (status && status.previous || 'previous'); clearTimeout(armed); armed = setTimeout(() => { b.classList.remove('armed'); b.textContent = 'Roll back'; }, 5000); return; }
  clearTimeout(armed); b.classList.remove('armed'); b.textContent = 'Roll back';
  act('POST', '/api/rollback', undefined, 'Rolling back…');
});
$('token-form').addEventListener('submit', (ev) => { ev.preventDefault(); token = $('token').value.trim(); $('token').value = ''; sessionStorage.setItem(KEY, token); showForget(); refresh(); });
$('forget').addEventListener('click', () => { sessionStorage.removeItem(KEY); token = ''; showForget(); toast('Token forgotten for this tab.'); });
$('toast').addEventListener('click', () => $('toast').classList.remove('show'));
showForget();
refresh();
setInterval(refresh, 2000);
`;

const body = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>molt</title>
<style>${style}</style>
</head>
<body>
<header>
  <h1>molt <span id="host"></span></h1>
  <span id="phase" class="pill">…</span>
  <span class="grow"></span>
  <span id="updated" class="small muted">loading…</span>
  <button id="forget" type="button" title="Remove the admin token from this tab" hidden>Forget token</button>
</header>
<div id="banner"><div>
  <span id="banner-msg">This page needs the admin token.</span>
  <form id="token-form" class="controls grow" autocomplete="off">
    <input id="token" type="password" placeholder="admin token" aria-label="admin token" autocomplete="off" spellcheck="false">
    <button class="primary" type="submit">Use token</button>
  </form>
</div></div>
<main>
  <section>
    <h2>Versions</h2>
    <div class="versions">
      <div class="v current"><div class="label">current</div><div class="value" id="current">—</div></div>
      <div class="v"><div class="label">previous</div><div class="value" id="previous">—</div></div>
      <div class="v avail"><div class="label">available</div><div class="value" id="available">—</div></div>
    </div>
    <dl class="kv" id="facts"></dl>
  </section>
  <section>
    <h2>Control</h2>
    <div class="controls">
      <button id="btn-check" class="primary" type="button">Check now</button>
      <select id="version" aria-label="version to update to"><option value="">newest allowed</option></select>
      <button id="btn-update" type="button">Update</button>
      <button id="btn-rollback" class="danger" type="button">Roll back</button>
    </div>
    <h3>Recent actions</h3>
    <table><tbody id="actions"></tbody></table>
  </section>
  <section id="progress" class="wide" hidden>
    <h2>In progress</h2>
    <div id="progress-body"></div>
  </section>
  <section>
    <h2>Services</h2>
    <table><thead><tr><th>service</th><th>state</th><th>pid</th><th>for</th><th>last exit</th></tr></thead><tbody id="services"></tbody></table>
  </section>
  <section>
    <h2>Blocked versions</h2>
    <table><tbody id="blocked"></tbody></table>
  </section>
  <section id="self">
    <h2>molt itself</h2>
    <dl class="kv" id="self-facts"></dl>
  </section>
  <section class="wide">
    <h2>History</h2>
    <ol class="history" id="history"></ol>
  </section>
</main>
<div id="toast" role="status" aria-live="polite"></div>
<script>${script}</script>
</body>
</html>
`;

const sha = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

export const pageHtml = body;

/** Only this page's own inline script and style run; it may talk to its own origin only. */
export const pageCsp = [
  "default-src 'none'",
  `script-src ${sha(script)}`,
  `style-src ${sha(style)}`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
