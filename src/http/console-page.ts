/**
 * `GET /ui`: the live cluster console, one self-contained page (no CDN, no UI library: the page is
 * small and its data comes from the documented routes). It polls `GET /v1/cluster` and
 * `GET /v1/generations`, follows `GET /v1/events` (Server-Sent Events read with fetch, so the
 * bearer token can be sent), and searches with `GET /v1/search`. Everything a peer said is put on
 * the page as text (never as HTML). The inline script and style are pinned by hash in the page's
 * Content-Security-Policy. With an HTTP token, open `/ui#token=…` or paste it into the page.
 */
import { createHash } from 'node:crypto';

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 16px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{font-size:18px;margin:0}
main{display:grid;grid-template-columns:1fr 1fr;gap:16px;padding:16px}
section{background:#fff;border-radius:6px;padding:12px;box-shadow:0 1px 2px #0002;overflow:auto}
section.wide{grid-column:1/3}
h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}
td,th{padding:4px 8px;border-bottom:1px solid #e4e6eb;text-align:left;white-space:nowrap}
.h-healthy{color:#137333}.h-degraded{color:#b3261e}.h-catching_up,.h-bootstrapping{color:#a15c00}
.gen{display:flex;align-items:center;gap:8px;margin:3px 0}
.bar{height:14px;background:#9bb3d9;border-radius:3px}
.gen[data-active=true] .bar{background:#1f6feb}
.gen[data-active=true] .label{font-weight:600}
#events{list-style:none;margin:0;padding:0;max-height:320px;overflow:auto;font-family:ui-monospace,monospace;font-size:12px}
#events li{padding:2px 0;border-bottom:1px solid #f0f1f3}
#events li.warn{color:#a15c00}#events li.critical{color:#b3261e}
#results{padding-left:20px}
#auth{display:none;background:#fff3cd;padding:8px 16px}
form{display:flex;gap:8px;flex-wrap:wrap;align-items:center;margin-bottom:8px}
.muted{color:#667}
#k{width:4em}
`;

const SCRIPT = `
'use strict';
const $ = (s) => document.querySelector(s);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let token = '';
const m = /token=([^&]+)/.exec(location.hash);
if (m) { token = decodeURIComponent(m[1]); sessionStorage.setItem('fsmesh-token', token); history.replaceState(null, '', location.pathname); }
else token = sessionStorage.getItem('fsmesh-token') || '';
const headers = () => (token ? { authorization: 'Bearer ' + token } : {});
async function getJson(path) {
  const r = await fetch(path, { headers: headers() });
  if (r.status === 401) { $('#auth').style.display = 'block'; throw new Error('unauthorized'); }
  $('#auth').style.display = 'none';
  const j = await r.json();
  if (!r.ok) throw new Error((j.error && j.error.message) || r.status);
  return j;
}
$('#auth-form').addEventListener('submit', (ev) => { ev.preventDefault(); token = $('#token').value.trim(); sessionStorage.setItem('fsmesh-token', token); refresh(); });
const short = (id) => (id && id.length > 14 ? id.slice(0, 6) + '…' + id.slice(-6) : id || '-');

function progressCell(m) {
  const td = el('td');
  const p = m.sync_progress;
  if (p && p.objects_total > 0 && p.phase !== 'done' && p.objects_done < p.objects_total) {
    const bar = el('progress'); bar.max = p.objects_total; bar.value = p.objects_done;
    td.append(bar, el('span', ' ' + p.objects_done + '/' + p.objects_total, 'muted'));
  } else td.append(el('span', p ? 'synced' : '-', 'muted'));
  if (m.repairing > 0) td.append(el('span', ' repairing ' + m.repairing));
  return td;
}

function renderShards(c) {
  $('#shards-section').hidden = !c.shards;
  if (!c.shards) return;
  const body = $('#shards tbody');
  body.replaceChildren();
  for (const [k, v] of Object.entries(c.shards)) {
    const me = v.members.find((m) => m.self) || {};
    const tr = el('tr');
    tr.dataset.shard = k;
    tr.append(el('td', k), el('td', short(v.writer)), el('td', me.role || '-'), el('td', me.health || '-', 'h-' + me.health),
      el('td', me.generation_id || '-'), el('td', me.lag_commits === null || me.lag_commits === undefined ? '-' : me.lag_commits),
      el('td', v.writer_commit_seq_high === null ? '-' : v.writer_commit_seq_high), el('td', v.members.length));
    body.append(tr);
  }
}

function renderCluster(c) {
  renderShards(c);
  $('#self').textContent = short(c.self);
  $('#shard').textContent = c.shard;
  $('#writer').textContent = short(c.writer);
  $('#epoch').textContent = c.epoch;
  const body = $('#members tbody');
  body.replaceChildren();
  for (const m of c.members) {
    const tr = el('tr');
    tr.dataset.peer = m.peer_id;
    tr.dataset.role = m.role;
    const name = m.self ? short(m.peer_id) + ' (this node' + (m.name ? ', ' + m.name : '') + ')' : short(m.peer_id);
    const health = el('td', m.health + (m.draining ? ' (draining)' : ''), 'h-' + m.health);
    tr.append(el('td', name), el('td', m.role + (m.role === 'replica' && m.replication === 'commits' ? ' (commits)' : '')), health, el('td', m.lag_commits === null ? '-' : m.lag_commits),
      el('td', m.generation_id || '-'), el('td', m.commit_seq_high === null ? '-' : m.commit_seq_high),
      el('td', m.queries_per_s), progressCell(m));
    tr.title = m.peer_id;
    body.append(tr);
  }
}

let generations = [];
function renderGenerations(list) {
  generations = [...list].sort((a, b) => a.commit_seq_high - b.commit_seq_high);
  const max = Math.max(1, ...generations.map((g) => g.commit_seq_high));
  const box = $('#timeline');
  box.replaceChildren();
  let prev = 0;
  for (const g of generations) {
    const row = el('div', undefined, 'gen');
    row.dataset.active = String(!!g.active);
    row.dataset.generation = g.generation_id;
    const bar = el('div', undefined, 'bar');
    bar.style.width = Math.max(4, Math.round((g.commit_seq_high / max) * 260)) + 'px';
    const when = g.activated_at_ms ? new Date(g.activated_at_ms).toLocaleTimeString() : '';
    row.append(bar, el('span', g.generation_id + (g.active ? ' (active)' : ''), 'label'),
      el('span', 'commits ' + (prev + 1 > g.commit_seq_high ? g.commit_seq_high : prev + 1) + '–' + g.commit_seq_high + (when ? ' · ' + when : ''), 'muted'));
    box.append(row);
    prev = g.commit_seq_high;
  }
  const slider = $('#asof');
  const atEnd = Number(slider.value) >= Number(slider.max);
  slider.max = String(generations.length);
  if (atEnd) slider.value = slider.max;
  showAsOf();
}
function asOf() {
  const i = Number($('#asof').value);
  return i >= generations.length ? null : generations[i];
}
function showAsOf() {
  const g = asOf();
  $('#asof-label').textContent = g ? 'as of ' + g.generation_id + ' (commit ' + g.commit_seq_high + ')' : 'latest';
}
$('#asof').addEventListener('input', showAsOf);

function addEvent(e) {
  const li = el('li', new Date(e.ts_ms).toLocaleTimeString() + ' ' + e.event + (e.generation_id ? ' ' + e.generation_id : '') + (e.commit_seq !== null && e.commit_seq !== undefined ? ' @' + e.commit_seq : ''), e.severity);
  li.dataset.event = e.event;
  const list = $('#events');
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

async function followEvents() {
  for (;;) {
    try {
      const r = await fetch('/v1/events?recent=50', { headers: headers() });
      if (r.status === 401) { $('#auth').style.display = 'block'; await sleep(2000); continue; }
      if (!r.ok || !r.body) { await sleep(2000); continue; }
      $('#events-state').textContent = 'live';
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        for (let i = buf.indexOf('\\n\\n'); i >= 0; i = buf.indexOf('\\n\\n')) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = chunk.split('\\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\\n');
          if (data) addEvent(JSON.parse(data));
        }
      }
    } catch {}
    $('#events-state').textContent = 'reconnecting';
    await sleep(1000);
  }
}

$('#search-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const p = new URLSearchParams({ q: $('#q').value, mode: $('#mode').value, k: $('#k').value });
  const g = asOf();
  if (g) p.set('as_of_commit_seq', String(g.commit_seq_high));
  const out = $('#results');
  out.replaceChildren();
  try {
    const r = await getJson('/v1/search?' + p);
    if (r.snapshot) {
      // A multi-shard answer: one generation per shard (its snapshot).
      $('#answered-by').textContent = 'answered from snapshot ' + Object.entries(r.snapshot).map(([k, g]) => 'shard ' + k + ': ' + g).join(', ');
      $('#answered-by').dataset.snapshot = JSON.stringify(r.snapshot);
    } else {
      $('#answered-by').textContent = 'answered by ' + r.generation_id + ' (commit ' + r.commit_seq_high + ')' + (r.served_by ? ' on ' + short(r.served_by) : '');
      $('#answered-by').dataset.generation = r.generation_id;
    }
    for (const h of r.hits) {
      const li = el('li', h.doc_id + '  ', 'hit');
      li.dataset.doc = h.doc_id;
      li.append(el('span', Number(h.score).toFixed(3), 'muted'));
      out.append(li);
    }
    if (!r.hits.length) out.append(el('li', 'no hits', 'muted'));
  } catch (e) {
    $('#answered-by').textContent = 'error: ' + e.message;
  }
});

async function refresh() {
  try { renderCluster(await getJson('/v1/cluster')); } catch {}
  try { renderGenerations((await getJson('/v1/generations')).generations); } catch {}
}
(async () => { for (;;) { await refresh(); await sleep(1000); } })();
followEvents();
`;

const BODY = `
<header><h1>fsmesh</h1>
<span>node <b id="self">-</b></span><span>shard <b id="shard">-</b></span>
<span>writer <b id="writer">-</b></span><span>epoch <b id="epoch">-</b></span></header>
<div id="auth"><form id="auth-form">This node needs its HTTP token:
<input id="token" type="password" autocomplete="off" placeholder="bearer token"><button>Use</button></form></div>
<main>
<section class="wide" id="shards-section" hidden><h2>Shards</h2>
<table id="shards"><thead><tr><th>shard</th><th>writer</th><th>this node</th><th>health here</th>
<th>active generation here</th><th>lag (commits)</th><th>writer commit_seq_high</th><th>members</th></tr></thead><tbody></tbody></table></section>
<section class="wide"><h2>Members</h2>
<table id="members"><thead><tr><th>peer</th><th>role</th><th>health</th><th>lag (commits)</th>
<th>active generation</th><th>commit_seq_high</th><th>queries/s</th><th>sync / repair</th></tr></thead><tbody></tbody></table></section>
<section><h2>Generations</h2><div id="timeline"></div></section>
<section><h2>Events <span id="events-state" class="muted">connecting</span></h2><ul id="events"></ul></section>
<section class="wide"><h2>Search</h2>
<form id="search-form"><input id="q" placeholder="query" required>
<select id="mode"><option>lexical</option><option>vector</option><option>hybrid</option></select>
<label>k <input id="k" type="number" min="1" max="100" value="10"></label>
<label>time travel <input id="asof" type="range" min="0" max="0" value="0"></label>
<span id="asof-label" class="muted">latest</span><button>Search</button></form>
<div id="answered-by" class="muted"></div><ol id="results"></ol></section>
</main>`;

const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

export const CONSOLE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>fsmesh console</title><style>${STYLE}</style></head>
<body>${BODY}<script>${SCRIPT}</script></body></html>`;

/** Only this page's own script and style run; data comes from this origin only. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
