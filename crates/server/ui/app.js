// Strata web UI. Each page is a server-rendered shell; this script fills it from the public
// HTTP API (/api/v1/...). No framework, no build step. A token the server asks for is typed
// once and kept in sessionStorage (this tab only). Every action shows its `strata` command.
'use strict';

const TOKEN_KEY = 'strata-token';

// ---- DOM and formatting helpers -------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);

/** el('td', {class: 'num'}, 'text', childNode...) */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'on') for (const [ev, f] of Object.entries(v)) e.addEventListener(ev, f);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function fmtBytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.max(0, Math.round(seconds));
  if (s < 90) return s + ' s';
  if (s < 5400) return Math.round(s / 60) + ' min';
  if (s < 172800) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}

/** A time in the browser's zone, with UTC on hover. Accepts RFC 3339 or ns since the epoch. */
function fmtTime(t) {
  if (t === null || t === undefined || t === '') return document.createTextNode('–');
  const d = typeof t === 'number' ? new Date(t / 1e6) : new Date(t);
  if (isNaN(d.getTime())) return document.createTextNode(String(t));
  return el('time', { datetime: d.toISOString(), title: d.toISOString().replace('.000Z', 'Z') + ' (UTC)' },
    d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }));
}

function list(values) {
  return (values || []).join(', ');
}

function splitList(s) {
  return (s || '').split(',').map((x) => x.trim()).filter((x) => x);
}

/** A value from a datetime-local input (the browser's zone) as RFC 3339 UTC, or null. */
function localToRfc3339(v) {
  if (!v) return null;
  const d = new Date(v);
  return isNaN(d.getTime()) ? null : d.toISOString();
}

function shellQuote(s) {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(s) ? s : "'" + String(s).replace(/'/g, "'\\''") + "'";
}

/** Shows a `strata` command in a <pre class="cli">. */
function cli(id, args) {
  const pre = document.getElementById(id);
  if (pre) pre.textContent = '$ strata ' + args.map(shellQuote).join(' ');
}

function setStatus(id, text, cls) {
  const p = document.getElementById(id);
  if (!p) return;
  p.textContent = text;
  p.className = 'status' + (cls ? ' ' + cls : '');
}

// ---- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function showError(msg) {
  const b = $('#error');
  b.textContent = msg;
  b.hidden = false;
}

function clearError() {
  const b = $('#error');
  b.hidden = true;
  b.textContent = '';
}

let tokenWaiters = [];

function askToken() {
  const f = $('#token-form');
  f.hidden = false;
  $('#token-input').focus();
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

function setupTokenForm() {
  $('#token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('#token-input').value);
    $('#token-input').value = '';
    $('#token-form').hidden = true;
    const w = tokenWaiters;
    tokenWaiters = [];
    w.forEach((r) => r());
  });
}

/** Calls the API; an error answer becomes an ApiError with the server's message. A 401 asks
 *  for the token and tries again. */
async function api(method, path, body) {
  for (;;) {
    const headers = {};
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let resp;
    try {
      resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiError(0, `${method} ${path}: the server cannot be reached (${e.message})`);
    }
    if (resp.status === 401) {
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      showError(token ? 'The token was refused; type it again.' : 'This server needs its API token.');
      await askToken();
      clearError();
      continue;
    }
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) {
      const msg = (data && data.error) || text || resp.statusText;
      throw new ApiError(resp.status, `${method} ${path} failed (${resp.status}): ${msg}`);
    }
    return data;
  }
}

/** Runs an async page action; its error goes to the banner instead of a blank page. */
async function guarded(f) {
  try {
    await f();
  } catch (e) {
    showError(e.message || String(e));
    console.error(e);
  }
}

let repoUrl = 'REPO';

function repoArgs() {
  return ['--repo', repoUrl];
}

async function loadRepoUrl() {
  try {
    const r = await api('GET', '/api/v1/repository');
    repoUrl = r.repository.url;
  } catch (e) {
    if (e.status !== 409 && e.status !== 503) throw e;
  }
}

// ---- jobs ------------------------------------------------------------------------------------

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function progressText(p) {
  if (!p) return '';
  let s = p.phase || '';
  if (p.files_total) s += ` ${p.files_done}/${p.files_total} files`;
  if (p.bytes_total) s += `, ${fmtBytes(p.bytes_done)} of ${fmtBytes(p.bytes_total)}`;
  return s.trim();
}

/** Polls job `id` until it ends; `onProgress(job)` sees each state. Returns the final job. */
async function watchJob(id, onProgress) {
  for (;;) {
    const j = await api('GET', `/api/v1/jobs/${encodeURIComponent(id)}`);
    onProgress(j);
    if (j.state !== 'running') return j;
    await sleep(400);
  }
}

async function backupNow(full, done) {
  const body = full ? { full: true } : {};
  const r = await api('POST', '/api/v1/backups', body);
  setStatus('backup-status', `backup job ${r.job} started`);
  const j = await watchJob(r.job, (j) => setStatus('backup-status', `backup job ${j.id}: ${j.state} ${progressText(j.progress)}`));
  if (j.state === 'succeeded') {
    setStatus('backup-status', `backup job ${j.id} succeeded: snapshot ${j.snapshot}, ${fmtBytes(j.bytes_uploaded)} uploaded`, 'ok');
  } else {
    setStatus('backup-status', `backup job ${j.id} ${j.state}: ${j.error || ''}`, 'bad');
  }
  if (done) await done(j);
}

function setupBackupButton(after) {
  const b = $('#backup-now');
  if (!b) return;
  const full = $('#backup-full');
  const show = () => cli('cli-backup', ['backup', ...repoArgs(), '--server', location.origin, ...(full && full.checked ? ['--full'] : [])]);
  if (full) full.addEventListener('change', show);
  show();
  b.addEventListener('click', () => guarded(async () => {
    b.disabled = true;
    try {
      await backupNow(full && full.checked, after);
    } finally {
      b.disabled = false;
    }
  }));
}

// ---- overview ------------------------------------------------------------------------------

function facts(dl, pairs) {
  dl.replaceChildren(...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

async function overview() {
  const o = await api('GET', '/api/v1/overview');
  if (o.repository) repoUrl = o.repository.url;
  const rows = o.schedules.map((s) => {
    const trigger = [s.cron && `cron ${s.cron}`, s.space_trigger_bytes && `every ${fmtBytes(s.space_trigger_bytes)} written`].filter((x) => x).join('; ');
    const late = s.overdue === true;
    const age = el('td', { class: late ? 'late' : (s.overdue === false ? 'fresh' : '') },
      s.age_s === null ? 'never' : fmtAge(s.age_s),
      late ? el('span', { class: 'badge bad' }, ` older than promised (${fmtAge(s.overdue_after_s)})`) : null);
    const run = el('button', { type: 'button', on: { click: () => guarded(async () => {
      await api('POST', `/api/v1/schedules/${encodeURIComponent(s.name)}/run`);
      showRunning(`schedule ${s.name} started`);
      setTimeout(() => guarded(overview), 1000);
    }) } }, 'Run now');
    return el('tr', { class: late ? 'late-row' : null },
      el('th', { scope: 'row' }, s.name),
      el('td', {}, trigger || '–'),
      el('td', {}, fmtTime(s.last_success)),
      age,
      el('td', {}, s.running ? `running (${s.running})` : fmtTime(s.next_run)),
      el('td', { class: s.last_outcome === 'failed' ? 'bad' : null }, s.last_outcome || '–', s.last_error ? el('div', { class: 'small' }, s.last_error) : null),
      el('td', {}, run));
  });
  fill($('#schedules tbody'), rows);
  $('#no-schedules').hidden = rows.length > 0;
  $('#schedules').hidden = rows.length === 0;

  const repo = $('#repository');
  if (o.repository) {
    const r = o.repository;
    facts(repo, [
      ['URL', el('code', {}, r.url)],
      ['Snapshots', `${r.snapshots}` + (r.damaged ? ` (${r.damaged} damaged)` : '')],
      ['Newest', r.newest ? [fmtTime(r.newest.time), ` (${fmtAge(r.newest.age_s)} ago)`] : 'none yet'],
      ['Stored', `${fmtBytes(r.stored_bytes)} in ${r.objects} objects`],
      ['Growth', `${fmtBytes(r.growth_24h_bytes)} in 24 h, ${fmtBytes(r.growth_7d_bytes)} in 7 days`],
    ]);
  } else {
    facts(repo, [['Error', el('span', { class: 'bad' }, o.repository_error || 'no repository')]]);
  }

  const a = o.archive;
  facts($('#archive'), a.enabled ? [
    ['Archiving', 'on'],
    ['Lag', el('span', { class: a.lag_seconds > 5 ? 'bad' : 'ok' }, fmtAge(a.lag_seconds))],
    ['Last archived', fmtTime(a.window_end)],
    ['Failures', `${a.failures}`],
  ] : [['Archiving', 'off: restores reach snapshot times only (start the server with --archive)']]);
  const ws = (o.pitr && o.pitr.windows) || [];
  const gaps = (o.pitr && o.pitr.gaps) || [];
  fill($('#windows'), ws.length === 0 ? [el('li', { class: 'muted' }, 'No point-in-time window (no archived WAL continues a snapshot).')] : [
    ...ws.map((w) => el('li', {}, `node ${w.node_id}: `, fmtTime(w.start), ' → ', fmtTime(w.end))),
    ...gaps.map((g) => el('li', { class: 'bad' }, `gap on node ${g.node_id}: `, fmtTime(g.from), ' → ', fmtTime(g.to))),
  ]);

  const d = o.last_drill;
  const drill = $('#drill');
  drill.replaceChildren(d ? el('span', { class: d.state === 'succeeded' ? 'ok' : 'bad' },
    `last drill ${d.id}: ${d.state}`, d.finished ? [' at ', fmtTime(d.finished)] : '', d.error ? ` (${d.error})` : '')
    : 'No restore drill has run on this server yet (strata drill).');

  const fr = o.recent_failures.map((j) => el('tr', {},
    el('td', {}, el('a', { href: `/ui/jobs#${j.id}` }, j.id)),
    el('td', {}, j.schedule || j.trigger),
    el('td', {}, fmtTime(j.finished)),
    el('td', { class: 'bad' }, j.error || '')));
  fill($('#failures tbody'), fr);
  $('#no-failures').hidden = fr.length > 0;
  $('#failures').hidden = fr.length === 0;
  cli('cli-backup', ['backup', ...repoArgs(), '--server', location.origin]);
}

function showRunning(msg) {
  setStatus('backup-status', msg);
}

// ---- snapshots -------------------------------------------------------------------------------

const PAGE_SIZE = 25;

function snapshotQuery() {
  const p = new URLSearchParams(location.search);
  return { node: p.get('node') || '', schedule: p.get('schedule') || '', group: p.get('group') || '', offset: Number(p.get('offset') || 0) };
}

function setOptions(select, values, current) {
  const keep = select.querySelector('option[value=""]');
  select.replaceChildren(keep, ...values.map((v) => el('option', { value: v, selected: v === current }, v)));
}

async function pinToggle(id, pinned) {
  await api(pinned ? 'DELETE' : 'PUT', `/api/v1/repository/snapshots/${encodeURIComponent(id)}/pin`);
}

function confirmDelete(id, after) {
  const box = $('#confirm');
  $('#confirm-text').textContent = `Delete snapshot ${id}? Its manifest goes now and the data only it holds at the next prune. This cannot be undone.`;
  cli('cli-confirm', ['forget', ...repoArgs(), id]);
  box.hidden = false;
  const yes = $('#confirm-yes');
  const no = $('#confirm-no');
  yes.focus();
  const close = () => { box.hidden = true; yes.onclick = null; no.onclick = null; };
  no.onclick = close;
  yes.onclick = () => guarded(async () => {
    close();
    await api('DELETE', `/api/v1/repository/snapshots/${encodeURIComponent(id)}`);
    setStatus('backup-status', `snapshot ${id} deleted`, 'ok');
    await after();
  });
}

async function snapshots() {
  const q = snapshotQuery();
  const params = new URLSearchParams({ offset: q.offset, limit: PAGE_SIZE });
  for (const k of ['node', 'schedule', 'group']) if (q[k]) params.set(k, q[k]);
  const r = await api('GET', `/api/v1/repository/snapshots?${params}`);
  repoUrl = r.repository;
  const f = $('#filters');
  setOptions(f.node, r.nodes, q.node);
  setOptions(f.schedule, r.schedules, q.schedule);
  setOptions(f.group, r.groups, q.group);
  const reload = () => guarded(snapshots);
  const rows = r.snapshots.map((s) => {
    const keep = s.keep.length ? s.keep.join(', ') : (s.policy ? 'nothing: the next prune removes it' : 'no policy covers it');
    return el('tr', { 'data-id': s.id },
      el('td', {}, fmtTime(s.time)),
      el('td', {}, el('a', { href: `/ui/snapshots/${encodeURIComponent(s.id)}`, class: 'snap' }, s.id), s.kind === 'full' ? el('span', { class: 'badge' }, ' full') : null),
      el('td', {}, s.node_id),
      el('td', {}, s.schedule || 'manual'),
      el('td', {}, list(s.groups)),
      el('td', { class: 'num', title: `${s.files} files; stored ${fmtBytes(s.stored_bytes)}` }, fmtBytes(s.bytes)),
      el('td', { class: 'num' }, fmtBytes(s.unique_bytes)),
      el('td', {}, Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(', ')),
      el('td', { class: s.keep.length ? 'keep' : (s.policy ? 'bad' : 'muted') }, keep, s.policy ? el('div', { class: 'small' }, s.policy) : null),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'pin', 'aria-pressed': s.pinned ? 'true' : 'false', title: `strata ${s.pinned ? 'unpin' : 'pin'} --repo ${repoUrl} ${s.id}`,
          on: { click: () => guarded(async () => {
            await pinToggle(s.id, s.pinned);
            setStatus('backup-status', `snapshot ${s.id} ${s.pinned ? 'unpinned' : 'pinned'}`, 'ok');
            cli('cli', [s.pinned ? 'unpin' : 'pin', ...repoArgs(), s.id]);
            await snapshots();
          }) } }, s.pinned ? 'Unpin' : 'Pin'),
        el('button', { type: 'button', class: 'delete danger', disabled: s.pinned, title: s.pinned ? 'pinned: unpin it first' : null,
          on: { click: () => confirmDelete(s.id, snapshots) } }, 'Delete')));
  });
  fill($('#snapshots tbody'), rows);
  $('#empty').hidden = rows.length > 0;
  const from = r.total === 0 ? 0 : r.offset + 1;
  const to = r.offset + r.snapshots.length;
  $('#range').textContent = `${from}–${to} of ${r.total}`;
  const go = (offset) => {
    const p = new URLSearchParams(location.search);
    p.set('offset', Math.max(0, offset));
    history.pushState(null, '', `?${p}`);
    reload();
  };
  $('#prev').disabled = r.offset === 0;
  $('#next').disabled = to >= r.total;
  $('#prev').onclick = () => go(r.offset - PAGE_SIZE);
  $('#next').onclick = () => go(r.offset + PAGE_SIZE);
  const dmg = $('#damaged');
  dmg.hidden = r.damaged.length === 0;
  dmg.textContent = r.damaged.map((d) => `damaged snapshot ${d.id}: ${d.error}`).join('; ');
  cli('cli', ['snapshots', ...repoArgs(), ...(q.node ? ['--node', q.node] : [])]);
}

function setupSnapshots() {
  const f = $('#filters');
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of ['node', 'schedule', 'group']) if (f[k].value) p.set(k, f[k].value);
    history.pushState(null, '', `?${p}`);
    guarded(snapshots);
  });
  window.addEventListener('popstate', () => guarded(snapshots));
  setupBackupButton(() => snapshots());
  return snapshots();
}

// ---- snapshot detail -------------------------------------------------------------------------

/** A count, or a dash (with why) when the manifest cannot tell it for one measure. */
function count(v) {
  return v === null || v === undefined ? el('span', { title: 'shared with other measures in the same parts; this snapshot does not record each measure\'s share' }, '–') : String(v);
}

function detailRows(d) {
  const rows = [];
  for (const g of d.groups) {
    rows.push(el('tr', { class: 'group' },
      el('th', { scope: 'row' }, g.name),
      el('td', { class: 'num' }, g.parts), el('td', { class: 'num' }, count(g.series)), el('td', { class: 'num' }, count(g.rows)),
      el('td', {}, fmtTime(g.min_time)), el('td', {}, fmtTime(g.max_time)), el('td', { class: 'num' }, fmtBytes(g.bytes))));
    for (const m of g.measures) {
      rows.push(el('tr', { class: 'measure' },
        el('td', {}, '· ' + m.name),
        el('td', { class: 'num' }, m.parts), el('td', { class: 'num' }, count(m.series)), el('td', { class: 'num' }, count(m.rows)),
        el('td', {}, fmtTime(m.min_time)), el('td', {}, fmtTime(m.max_time)), el('td', { class: 'num' }, fmtBytes(m.bytes))));
    }
  }
  return rows;
}

async function snapshotDetail() {
  const id = document.body.dataset.snapshot;
  const path = `/api/v1/repository/snapshots/${encodeURIComponent(id)}`;
  const d = await api('GET', path);
  repoUrl = d.repository;
  const m = d.snapshot;
  document.title = `Snapshot ${m.id} · Strata`;
  facts($('#facts'), [
    ['Time', fmtTime(m.time)],
    ['Node', m.node_id],
    ['Kind', m.kind + (m.parent ? ` (parent ${m.parent})` : '')],
    ['Schedule', m.schedule || 'manual'],
    ['Size', `${fmtBytes(m.bytes)} in ${m.files} files; stored ${fmtBytes(m.stored_bytes)}; only here ${fmtBytes(m.unique_bytes)}`],
    ['Uploaded by this backup', `${fmtBytes(m.uploaded_bytes)} (${m.new_objects} new objects, ${m.reused_objects} reused)`],
    ['Log sequence number', `${m.lsn}`],
    ['Labels', Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '–'],
    ['Kept because', m.keep.length ? m.keep.join(', ') : (m.policy ? 'nothing: the next prune removes it' : 'no policy covers it')],
    ['Encryption', d.encryption],
  ]);
  fill($('#groups tbody'), detailRows(d));
  $('#restore-link').href = `/ui/restore?snapshot=${encodeURIComponent(m.id)}`;
  const pin = $('#pin-toggle');
  pin.textContent = m.pinned ? 'Unpin' : 'Pin';
  pin.setAttribute('aria-pressed', m.pinned ? 'true' : 'false');
  pin.onclick = () => guarded(async () => {
    await pinToggle(m.id, m.pinned);
    await snapshotDetail();
  });
  const diff = d.diff;
  if (diff) {
    const t = diff.total;
    $('#diff-summary').replaceChildren(`Against ${diff.from}: `, el('strong', {}, `+${t.parts_added} parts (${fmtBytes(t.bytes_added)})`), `, −${t.parts_removed} parts (${fmtBytes(t.bytes_removed)}); ${fmtBytes(diff.new_object_bytes)} in objects the previous snapshot did not hold.`);
    fill($('#diff tbody'), Object.entries(diff.by_measure).map(([k, c]) => el('tr', {},
      el('th', { scope: 'row' }, k), el('td', { class: 'num' }, c.parts_added), el('td', { class: 'num' }, fmtBytes(c.bytes_added)),
      el('td', { class: 'num' }, c.parts_removed), el('td', { class: 'num' }, fmtBytes(c.bytes_removed)))));
    cli('cli-diff', ['diff', ...repoArgs(), diff.from, m.id]);
  } else {
    $('#diff-summary').textContent = 'This is the node’s first snapshot: nothing to compare with.';
    $('#diff').hidden = true;
  }
  const showVerifyCli = () => cli('cli-verify', ['verify', ...repoArgs(), m.id, ...($('#read-data').checked ? ['--read-data'] : [])]);
  showVerifyCli();
  $('#read-data').onchange = showVerifyCli;
  $('#verify').onclick = () => guarded(() => verify(m.id));
}

async function verify(id) {
  const btn = $('#verify');
  btn.disabled = true;
  const bar = $('#verify-progress');
  try {
    const r = await api('POST', `/api/v1/repository/snapshots/${encodeURIComponent(id)}/verify`, { read_data: $('#read-data').checked });
    bar.hidden = false;
    bar.value = 0;
    const j = await watchJob(r.job, (j) => {
      const p = j.progress;
      if (p && p.bytes_total) { bar.max = p.bytes_total; bar.value = p.bytes_done; }
      setStatus('verify-status', `verify job ${j.id}: ${j.state} ${progressText(p)}`);
    });
    const rep = (j.detail && j.detail.report) || {};
    if (j.state === 'succeeded') {
      bar.value = bar.max;
      setStatus('verify-status', `verified: ${rep.objects_checked} objects intact` + (rep.bytes_read ? `, ${fmtBytes(rep.bytes_read)} read and checked` : ''), 'ok');
    } else {
      setStatus('verify-status', `verify job ${j.id} ${j.state}: ${j.error || ''}`, 'bad');
    }
    fill($('#verify-damage'), (rep.damage || []).map((d) => el('li', {}, `${d.object}: ${d.problem}`)));
  } finally {
    btn.disabled = false;
  }
}

// ---- restore ---------------------------------------------------------------------------------

function restoreRequest(f) {
  const source = f.source.value;
  // (`f.target` is the form's own attribute, hence `where`.)
  const target = f.where.value;
  const req = {
    snapshot: source === 'snapshot' ? f.snapshot.value : null,
    at: source === 'at' ? localToRfc3339(f.at.value) : null,
    groups: splitList(f.groups.value),
    measures: splitList(f.measures.value),
    tags: splitList(f.tags.value),
    from: localToRfc3339(f.from.value),
    to: localToRfc3339(f.to.value),
  };
  if (target === 'offline') req.data_dir = f.data_dir.value;
  else req.into_group = f.into_group.value.trim();
  return req;
}

function restoreArgs(req) {
  const a = ['restore', ...repoArgs()];
  if (req.data_dir) a.push('--data-dir', req.data_dir);
  else a.push('--server', location.origin, '--into-group', req.into_group);
  if (req.at) a.push('--at', req.at);
  else a.push('--snapshot', req.snapshot);
  for (const g of req.groups) a.push('--group', g);
  for (const m of req.measures) a.push('--measure', m);
  for (const t of req.tags) a.push('--tag', t);
  if (req.from) a.push('--from', req.from);
  if (req.to) a.push('--to', req.to);
  return a;
}

async function restorePage() {
  const f = $('#restore-form');
  const snaps = await api('GET', '/api/v1/repository/snapshots?limit=1000');
  repoUrl = snaps.repository;
  const want = new URLSearchParams(location.search).get('snapshot');
  f.snapshot.replaceChildren(el('option', { value: 'latest' }, 'latest'),
    ...snaps.snapshots.map((s) => el('option', { value: s.id, selected: s.id === want }, `${s.id} (${s.node_id}, ${new Date(s.time).toLocaleString()})`)));
  try {
    const o = await api('GET', '/api/v1/repository');
    const ws = (o.pitr && o.pitr.windows) || [];
    $('#window').textContent = ws.length ? 'Recoverable: ' + ws.map((w) => `${new Date(w.start).toLocaleString()} → ${new Date(w.end).toLocaleString()} (node ${w.node_id})`).join('; ') : 'No point-in-time window: only snapshot times can be restored.';
  } catch (e) {
    showError(e.message);
  }
  $('#online-note').textContent = 'An online restore imports the selected group (one group: choose it under Only) as a new group while this server keeps serving, and publishes it in one step.';
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(() => planRestore(f));
  });
}

async function planRestore(f) {
  const req = restoreRequest(f);
  setStatus('plan-status', 'planning…');
  $('#plan-out').hidden = true;
  $('#run').hidden = true;
  if (req.into_group !== undefined) return planOnline(req);
  const p = await api('POST', '/api/v1/repository/restore-plan', req);
  setStatus('plan-status', `plan ready: nothing was written`, 'ok');
  facts($('#plan-facts'), [
    ['Snapshot', p.snapshot],
    ['Point in time', p.point_in_time ? [fmtTime(p.point_in_time.at), ` (+${p.point_in_time.batches} archived batches from ${p.point_in_time.objects.length} objects, ${fmtBytes(p.point_in_time.archive_bytes)})`] : 'no (the snapshot as it is)'],
    ['Objects to read', `${p.objects} (${fmtBytes(p.stored_bytes)} stored)`],
    ['Files to write', `${p.files} (${fmtBytes(p.bytes)} of the snapshot's ${fmtBytes(p.snapshot_bytes)})`],
    ['Target', el('code', {}, p.target)],
    ['Selection', p.selective ? `${p.selective.parts_selected} of ${p.selective.parts_total} parts` : 'the whole snapshot'],
    ['Checked', p.verified],
  ]);
  fill($('#plan-changes'), p.changes.map((c) => el('li', {}, c)));
  cli('cli-dry', [...restoreArgs(req), '--dry-run']);
  cli('cli-run', [...restoreArgs(req), ...(p.target_in_use ? ['--force'] : [])]);
  $('#plan-out').hidden = false;
}

/** The body of POST /api/v1/restores (online restore into this server). */
function onlineBody(req, dryRun) {
  if (req.at) throw new Error('A point-in-time restore goes to a data directory (offline); an online restore takes a snapshot.');
  if (!req.into_group) throw new Error('Name the new group to restore into.');
  const tags = {};
  for (const t of req.tags) {
    const i = t.indexOf('=');
    if (i <= 0) throw new Error(`tag '${t}': expected KEY=VALUE`);
    tags[t.slice(0, i)] = t.slice(i + 1);
  }
  return { snapshot: req.snapshot || 'latest', groups: req.groups, measures: req.measures, tags, from: req.from, to: req.to, into_group: req.into_group, dry_run: dryRun };
}

async function planOnline(req) {
  const body = onlineBody(req, true);
  const r = await api('POST', '/api/v1/restores', body);
  const p = r.plan;
  setStatus('plan-status', 'plan ready: nothing was written', 'ok');
  facts($('#plan-facts'), [
    ['Snapshot', p.snapshot],
    ['Objects to read', `${p.objects} (${fmtBytes(p.stored_bytes)} stored)`],
    ['Files to fetch', `${p.files} (${fmtBytes(p.bytes)} of the snapshot's ${fmtBytes(p.snapshot_bytes)})`],
    ['Parts', `${p.parts_selected} of ${p.parts_total}`],
    ['Target', 'this running server (it keeps serving; the group appears in one step)'],
  ]);
  fill($('#plan-changes'), p.groups.map((g) => el('li', {},
    `group ${g.source} of the snapshot → ${g.action === 'create' ? 'new group' : g.action === 'replace' ? 'replaces group' : 'brings back group'} `,
    el('code', {}, g.target), ` (${(g.measures || []).join(', ') || 'every measure'})`)));
  cli('cli-dry', [...restoreArgs(req), '--dry-run']);
  cli('cli-run', restoreArgs(req));
  $('#plan-out').hidden = false;
  const run = $('#run');
  run.hidden = false;
  run.onclick = () => guarded(async () => {
    run.disabled = true;
    try {
      const started = await api('POST', '/api/v1/restores', onlineBody(req, false));
      const j = await watchJob(started.job, (j) => setStatus('plan-status', `restore job ${j.id}: ${j.state} ${progressText(j.progress)}`));
      if (j.state !== 'succeeded') throw new Error(`restore job ${j.id} ${j.state}: ${j.error || ''}`);
      setStatus('plan-status', `restored: group ${p.groups.map((g) => g.target).join(', ')} answers queries now (job ${j.id})`, 'ok');
      run.hidden = true;
    } finally {
      run.disabled = false;
    }
  });
}

// ---- retention -------------------------------------------------------------------------------

const POLICY_KEYS = ['keep_last', 'keep_hourly', 'keep_daily', 'keep_weekly', 'keep_monthly', 'keep_within'];

function policyFromForm(f) {
  const p = { schedule: f.schedule.value || null, grace: f.grace.value || null };
  for (const k of POLICY_KEYS) {
    const v = f[k].value.trim();
    if (v !== '') p[k] = k === 'keep_within' ? v : Number(v);
  }
  return p;
}

function pruneArgs(p) {
  const a = ['prune', ...repoArgs()];
  for (const k of POLICY_KEYS) if (p[k] !== undefined) a.push('--' + k.replace('_', '-'), String(p[k]));
  if (p.grace) a.push('--grace', p.grace);
  return a;
}

async function retentionPage() {
  const f = $('#policy');
  const s = await api('GET', '/api/v1/schedules');
  const withPolicy = s.schedules.filter((x) => x.retention);
  const sel = f.schedule;
  sel.replaceChildren(sel.querySelector('option[value=""]'), ...withPolicy.map((x) => el('option', { value: x.name }, `schedule ${x.name}`)));
  sel.addEventListener('change', () => {
    const x = withPolicy.find((y) => y.name === sel.value);
    for (const k of POLICY_KEYS) f[k].value = x && x.retention[k] !== null && x.retention[k] !== undefined ? x.retention[k] : '';
    f.grace.value = (x && x.retention.grace) || '1h';
  });
  if (withPolicy.length) {
    sel.value = withPolicy[0].name;
    sel.dispatchEvent(new Event('change'));
  }
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(() => preview(f));
  });
  await loadRepoUrl();
}

async function preview(f) {
  const p = policyFromForm(f);
  const plan = await api('POST', '/api/v1/repository/prune-preview', p);
  const removed = plan.decisions.filter((d) => !d.keep);
  setStatus('summary', `${plan.decisions.length - removed.length} kept, ${removed.length} removed; ${plan.objects_to_remove} objects (${fmtBytes(plan.bytes_to_remove)}) freed, ${plan.objects_in_grace} unreferenced objects wait out the grace period` +
    (plan.archive_objects_to_remove ? `; ${plan.archive_objects_to_remove} archive objects (${fmtBytes(plan.archive_bytes_to_remove)})` : ''));
  fill($('#decisions tbody'), plan.decisions.map((d) => el('tr', { class: d.keep ? 'kept' : 'removed', 'data-id': d.id },
    el('td', {}, fmtTime(d.time)),
    el('td', {}, el('a', { href: `/ui/snapshots/${encodeURIComponent(d.id)}` }, d.id)),
    el('td', { class: d.keep ? 'ok' : 'bad' }, d.keep ? 'keep' : 'remove'),
    el('td', {}, d.reasons.join(', ') || 'no rule keeps it'))));
  cli('cli', [...pruneArgs(p), '--dry-run']);
  const btn = $('#prune');
  btn.hidden = removed.length === 0;
  btn.onclick = () => {
    $('#confirm-text').textContent = `Remove ${removed.length} snapshots (${removed.map((d) => d.id).join(', ')})? Unreferenced data goes once it has stayed unreferenced for the grace period.`;
    $('#confirm').hidden = false;
    $('#confirm-yes').focus();
    $('#confirm-no').onclick = () => { $('#confirm').hidden = true; };
    $('#confirm-yes').onclick = () => guarded(async () => {
      $('#confirm').hidden = true;
      const r = await api('POST', '/api/v1/repository/prune', p);
      const j = await watchJob(r.job, (j) => setStatus('summary', `prune job ${j.id}: ${j.state} ${progressText(j.progress)}`));
      if (j.state !== 'succeeded') throw new Error(`prune job ${j.id} ${j.state}: ${j.error || ''}`);
      const rep = (j.detail && j.detail.report) || {};
      await preview(f);
      setStatus('summary', `pruned: ${rep.snapshots_removed} snapshots removed, ${rep.objects_removed} objects deleted (${fmtBytes(rep.bytes_removed)})`, 'ok');
    });
    cli('cli', pruneArgs(p));
  };
}

// ---- jobs ------------------------------------------------------------------------------------

let jobsTimer = null;

async function jobs() {
  const f = $('#filters');
  const p = new URLSearchParams({ limit: 100 });
  if (f.kind.value) p.set('kind', f.kind.value);
  if (f.state.value) p.set('state', f.state.value);
  const r = await api('GET', `/api/v1/jobs?${p}`);
  const running = r.jobs.filter((j) => j.state === 'running');
  const live = {};
  await Promise.all(running.map(async (j) => {
    try { live[j.id] = (await api('GET', `/api/v1/jobs/${encodeURIComponent(j.id)}`)).progress; } catch (e) { /* finished meanwhile */ }
  }));
  fill($('#jobs tbody'), r.jobs.map((j) => {
    const prog = live[j.id];
    const bar = prog && prog.bytes_total ? el('progress', { max: prog.bytes_total, value: prog.bytes_done }) : null;
    return el('tr', { id: j.id, class: `job ${j.state}` },
      el('th', { scope: 'row' }, j.id),
      el('td', {}, j.schedule ? `${j.schedule} (${j.trigger})` : j.trigger),
      el('td', {}, fmtTime(j.started)),
      el('td', { class: j.state === 'failed' || j.state === 'interrupted' ? 'bad' : (j.state === 'succeeded' ? 'ok' : null) }, j.state,
        j.error ? el('details', {}, el('summary', {}, 'error'), el('pre', { class: 'log' }, j.error)) : null),
      el('td', {}, bar, prog ? progressText(prog) : (j.finished ? ['took ', fmtAge((new Date(j.finished) - new Date(j.started)) / 1000)] : '')),
      el('td', { class: 'num' }, j.bytes_uploaded ? fmtBytes(j.bytes_uploaded) + ' up' : (j.bytes_read ? fmtBytes(j.bytes_read) : '–')),
      el('td', {}, j.snapshot ? el('a', { href: `/ui/snapshots/${encodeURIComponent(j.snapshot)}` }, j.snapshot) : '–'),
      el('td', {}, j.state === 'running' ? el('button', { type: 'button', class: 'cancel', on: { click: () => guarded(async () => {
        await api('POST', `/api/v1/jobs/${encodeURIComponent(j.id)}/cancel`);
        await jobs();
      }) } }, 'Cancel') : null));
  }));
  $('#empty').hidden = r.jobs.length > 0;
  clearTimeout(jobsTimer);
  if (running.length) jobsTimer = setTimeout(() => guarded(jobs), 1000);
  $('#cli').textContent = `$ curl -H "Authorization: Bearer $TOKEN" ${location.origin}/api/v1/jobs?${p}`;
}

function setupJobs() {
  $('#filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(jobs);
  });
  return jobs();
}

// ---- attachments -----------------------------------------------------------------------------

async function attachments() {
  const r = await api('GET', '/api/v1/attachments');
  fill($('#attachments tbody'), r.attachments.map((a) => el('tr', {},
    el('th', { scope: 'row' }, a.name),
    el('td', {}, el('a', { href: `/ui/snapshots/${encodeURIComponent(a.snapshot)}` }, a.snapshot)),
    el('td', {}, Object.entries(a.groups).map(([g, as]) => `${g} → ${as}`).join(', ')),
    el('td', { class: 'num' }, fmtBytes(a.fetched && a.fetched.bytes_fetched)),
    el('td', {}, a.configured ? el('span', { class: 'muted' }, 'configured') : el('button', { type: 'button', on: { click: () => guarded(async () => {
      await api('DELETE', `/api/v1/attachments/${encodeURIComponent(a.name)}`);
      await attachments();
    }) } }, 'Detach')))));
  $('#empty').hidden = r.attachments.length > 0;
}

async function attachmentsPage() {
  await loadRepoUrl();
  try {
    const snaps = await api('GET', '/api/v1/repository/snapshots?limit=1000');
    const sel = $('#attach-snapshot');
    sel.replaceChildren(el('option', { value: 'latest' }, 'latest'), ...snaps.snapshots.map((s) => el('option', { value: s.id }, s.id)));
  } catch (e) {
    showError(e.message);
  }
  const f = $('#attach');
  const show = () => cli('cli', ['query', ...repoArgs(), '--snapshot', f.snapshot.value, '{"group": "…"}']);
  f.addEventListener('change', show);
  show();
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    guarded(async () => {
      const a = await api('POST', '/api/v1/attachments', { as: f.as.value, snapshot: f.snapshot.value, groups: splitList(f.groups.value) });
      setStatus('attach-status', `attached ${a.name}: snapshot ${a.snapshot}`, 'ok');
      await attachments();
    });
  });
  await attachments();
}

// ---- start -----------------------------------------------------------------------------------

const PAGES = {
  overview: async () => { setupBackupButton(() => overview()); await overview(); },
  snapshots: setupSnapshots,
  snapshot: snapshotDetail,
  restore: restorePage,
  retention: retentionPage,
  jobs: setupJobs,
  attachments: attachmentsPage,
};

document.addEventListener('DOMContentLoaded', () => {
  setupTokenForm();
  const page = PAGES[document.body.dataset.page];
  if (page) guarded(page).finally(() => document.body.setAttribute('data-ready', 'true'));
});
