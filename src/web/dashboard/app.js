// Dashboard of mcp-session-coordinator: renders the server's snapshots (pushed over
// server-sent events) and sends the operator's actions to the JSON API.
//
// Everything the server sends (names, paths, messages) is untrusted: the DOM is built with
// createElement and text nodes only, never innerHTML.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  /** Latest snapshot from the server. */
  let snap = null;
  /** Server clock minus browser clock, in ms, so countdowns match the server's idea of expiry. */
  let clockSkew = 0;
  /** Selected project ('' = all), kept in the URL as ?project=NAME. */
  let project = new URLSearchParams(location.search).get('project') || '';
  let source = null;
  let retryTimer = null;

  // ---- DOM helpers -------------------------------------------------------------------------

  /** h('td', {class: 'x', onclick: fn}, 'text', node, ...): children become text nodes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child != null && child !== false) el.append(child);
    }
    return el;
  }

  // The explicit roles keep table semantics for screen readers when the narrow layout turns
  // rows into cards with `display: block` (Chrome and Safari drop them otherwise). The inner
  // <div> keeps a cell's content one grid item beside its label there.
  const cell = (label, ...children) => h('td', { 'data-label': label, role: 'cell' }, h('div', {}, ...children));
  const row = (attrs, ...cells) => h('tr', { role: 'row', ...attrs }, ...cells);
  const emptyRow = (columns, text) =>
    row({ class: 'empty-row' }, h('td', { colspan: columns, role: 'cell' }, text));
  function keepTableRoles() {
    for (const table of document.querySelectorAll('table.cards')) {
      table.setAttribute('role', 'table');
      for (const group of table.querySelectorAll('thead, tbody')) group.setAttribute('role', 'rowgroup');
      for (const tr of table.querySelectorAll('thead tr')) tr.setAttribute('role', 'row');
      for (const th of table.querySelectorAll('th')) th.setAttribute('role', 'columnheader');
    }
  }

  const key = (projectName, path) => `${projectName}\u0000${path}`;
  const count = (value) => (Array.isArray(value) ? value.length : Number(value) || 0);
  const plural = (n, word, words = `${word}s`) => `${n} ${n === 1 ? word : words}`;
  /** Whether an item belongs to the selected project. The server filters already; this also
   *  hides a snapshot of the previous project that arrives just after a switch. */
  const mine = (item) => !project || item.project === project;

  // ---- Time ----------------------------------------------------------------------------------

  const parseTime = (ts) => {
    const t = Date.parse(ts);
    return Number.isNaN(t) ? null : t;
  };
  const serverNow = () => Date.now() + clockSkew;
  // Compares parsed times: RFC 3339 strings with different fraction lengths do not sort as text.
  const newestFirst = (field) => (a, b) => (parseTime(b[field]) || 0) - (parseTime(a[field]) || 0);

  function span(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${s % 60}s`;
    const hours = Math.floor(m / 60);
    if (hours < 48) return `${hours}h ${m % 60}m`;
    return `${Math.floor(hours / 24)}d`;
  }

  /** A <time> that says how long ago `ts` was; refreshed every second by tick(). */
  const ago = (ts) => h('time', { datetime: ts, 'data-since': ts, title: ts });
  /** A <time> counting down to `ts`; refreshed every second by tick(). */
  const countdown = (ts) => h('time', { datetime: ts, 'data-until': ts, title: ts, 'data-testid': 'lock-expiry' });

  function tick() {
    const now = serverNow();
    for (const el of document.querySelectorAll('[data-since]')) {
      const t = parseTime(el.dataset.since);
      el.textContent = t == null ? '—' : `${span((now - t) / 1000)} ago`;
    }
    for (const el of document.querySelectorAll('[data-until]')) {
      const t = parseTime(el.dataset.until);
      const left = t == null ? null : (t - now) / 1000;
      el.textContent = left == null ? '—' : left <= 0 ? 'expired' : span(left);
      el.classList.toggle('soon', left != null && left > 0 && left < 60);
      el.classList.toggle('expired', left != null && left <= 0);
    }
  }

  // ---- Status line and API -------------------------------------------------------------------

  function showStatus(text, isError = false) {
    const el = $('status');
    // The time makes a repeated message a new text, so screen readers announce it again.
    el.textContent = `${new Date().toLocaleTimeString()} — ${text}`;
    $('status-bar').classList.toggle('error', isError);
    $('status-bar').classList.remove('idle');
  }
  $('status-dismiss').addEventListener('click', () => {
    $('status-bar').classList.add('idle');
    $('status').textContent = '';
  });

  async function api(method, path, body, signal) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' }, signal };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON (a proxy's error page, say): fall back to the status line below.
    }
    if (!response.ok) {
      throw new Error((data && data.error) || `${response.status} ${response.statusText}`.trim());
    }
    return data;
  }

  const withProject = (path, params = new URLSearchParams()) => {
    if (project) params.set('project', project);
    const query = params.toString();
    return query ? `${path}?${query}` : path;
  };

  // ---- Live updates --------------------------------------------------------------------------

  function setConnection(state, text) {
    const el = document.querySelector('[data-testid="connection-state"]');
    if (el.dataset.state === state) return; // a live region: say each change once
    el.dataset.state = state;
    el.replaceChildren(h('span', { class: 'sr-only' }, 'Connection: '), text || state);
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) source.close();
    const es = new EventSource(withProject('/api/events'));
    source = es;
    setConnection('connecting', 'connecting…');
    es.addEventListener('open', () => source === es && setConnection('live'));
    es.addEventListener('snapshot', (event) => {
      if (source !== es) return;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (error) {
        showStatus(`The server sent a snapshot that is not JSON: ${error.message}`, true);
        return;
      }
      setConnection('live');
      render(data);
    });
    es.addEventListener('error', () => {
      if (source !== es) return;
      if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, say 401): ask the JSON API for the reason,
        // show what it has, and try the stream again later.
        setConnection('offline', 'offline, retrying…');
        api('GET', withProject('/api/snapshot')).then(render, (error) => showStatus(error.message, true));
        retryTimer = setTimeout(connect, 5000);
      } else {
        setConnection('reconnecting', 'reconnecting…'); // EventSource retries by itself
      }
    });
  }

  // ---- Rendering -----------------------------------------------------------------------------

  function render(data) {
    snap = data;
    const now = parseTime(data.now);
    if (now != null) clockSkew = now - Date.now();
    // Rows are rebuilt on every snapshot; put keyboard focus back on the same button.
    const focusKey = document.activeElement && document.activeElement.dataset.focusKey;
    renderProjects(data.projects || []);
    const conflictKeys = renderConflicts(data.conflicts || []);
    renderSessions(data.sessions || []);
    renderLocks(data.locks || [], data.queue || [], conflictKeys);
    renderIntents(data.intents || []);
    renderMessages();
    tick();
    if (focusKey && document.activeElement === document.body) {
      const again = document.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
      if (again) again.focus({ preventScroll: true });
    }
    scheduleSearch(1000, true); // shared context may have changed too
  }

  /** Refills a <select> with '' plus `names`, keeping its value; only when the list changed,
   *  so an open select is not disturbed. */
  function fillSelect(select, firstLabel, names, wanted) {
    const signature = names.join('\u0000');
    if (select.dataset.names !== signature) {
      select.dataset.names = signature;
      select.replaceChildren(h('option', { value: '' }, firstLabel), ...names.map((n) => h('option', { value: n }, n)));
    }
    if (names.includes(wanted) || wanted === '') select.value = wanted;
  }

  function renderProjects(projects) {
    const names = [...new Set([...projects, ...(project ? [project] : [])])].sort();
    fillSelect($('project-filter'), 'All projects', names, project);
    const broadcast = $('bc-project');
    const chosen = broadcast.value || project || (projects.length === 1 ? projects[0] : '');
    fillSelect(broadcast, 'Choose a project', [...projects].sort(), chosen);
  }

  function renderConflicts(conflicts) {
    const mineOnly = conflicts.filter(mine);
    const section = document.querySelector('[data-testid="conflicts"]');
    section.classList.toggle('has-conflicts', mineOnly.length > 0);
    $('conflicts-h').textContent = mineOnly.length ? `⚠ Conflicts (${mineOnly.length})` : 'Conflicts';
    $('conflicts-empty').hidden = mineOnly.length > 0;
    $('conflicts-list').replaceChildren(
      ...mineOnly.map((c) =>
        h('li', { 'data-conflict-path': c.file_path, class: `severity-${c.severity}` },
          h('span', { class: `badge ${c.severity === 'high' ? 'danger' : 'warn'}` }, c.severity),
          ' ', h('code', {}, c.file_path), ` in ${c.project}: `,
          (c.sessions || []).map((s, i) => [i ? ', ' : '', h('strong', {}, s.name), ` (${s.how})`]))),
    );
    return new Set(mineOnly.map((c) => key(c.project, c.file_path)));
  }

  function renderSessions(sessions) {
    const list = sessions.filter(mine).sort((a, b) => a.project.localeCompare(b.project) || a.name.localeCompare(b.name));
    const rows = list.map((s) => {
      const stale = s.state === 'stale';
      return row({ 'data-session-id': s.session_id, 'data-state': s.state, class: stale ? 'stale' : null },
        cell('Name', h('span', { class: 'name' }, s.name),
          s.group ? [' ', h('span', { class: 'tag' }, `group ${s.group}`)] : null,
          s.who ? [' ', h('span', { class: 'tag', 'data-testid': 'session-who', title: 'Whose token registered it' }, `by ${s.who}`)] : null),
        cell('Project', s.project),
        cell('Branch', s.branch ? h('code', {}, s.branch) : '—'),
        cell('Last heartbeat', ago(s.last_heartbeat)),
        cell('State', h('span', { class: `badge ${stale ? 'warn' : 'ok'}` }, stale ? '⚠ stale' : 'active')),
        cell('Locks', String(count(s.locks_held))),
        cell('Intents', String(count(s.active_intents))),
        cell('Unread', String(count(s.unread))),
        cell('Actions', h('button', {
          type: 'button', class: 'danger', 'data-testid': 'end-session', 'data-focus-key': `end:${s.session_id}`,
          'aria-label': `End session ${s.name}`, onclick: () => confirmEndSession(s),
        }, 'End session')));
    });
    $('sessions-body').replaceChildren(...(rows.length ? rows : [emptyRow(9, 'No sessions.')]));
  }

  function renderLocks(locks, queue, conflictKeys) {
    const queued = new Map();
    for (const q of queue.filter(mine).sort((a, b) => a.position - b.position)) {
      const k = key(q.project, q.file_path);
      if (!queued.has(k)) queued.set(k, []);
      queued.get(k).push(q);
    }
    const list = locks.filter(mine).sort((a, b) =>
      a.project.localeCompare(b.project) || a.file_path.localeCompare(b.file_path) || -newestFirst('acquired_at')(a, b));
    const holders = new Map(); // how many locks each path has (shared locks), for the dialog text
    for (const l of list) holders.set(key(l.project, l.file_path), (holders.get(key(l.project, l.file_path)) || 0) + 1);

    const rows = list.map((l) => {
      const k = key(l.project, l.file_path);
      const conflict = conflictKeys.has(k);
      const waiting = queued.get(k) || [];
      return row({ 'data-lock-path': l.file_path, 'data-lock-id': l.lock_id, 'data-project': l.project, class: conflict ? 'conflict' : null },
        cell('File', h('code', {}, l.file_path), conflict ? [' ', h('span', { class: 'badge warn' }, '⚠ conflict')] : null),
        cell('Project', l.project),
        cell('Holder', h('span', { 'data-testid': 'lock-holder' }, l.holder_name)),
        cell('Type', l.lock_type),
        cell('Expires in', l.last_edit_at ? 'at commit' : countdown(l.expires_at)),
        cell('Fencing token', String(l.fencing_token)),
        cell('Queue', waiting.length
          ? h('ol', { class: 'queue', 'data-testid': 'lock-queue' },
            waiting.map((q) => h('li', { value: q.position }, h('strong', {}, q.session_name), ` (${q.lock_type})`)))
          : '—'),
        cell('Actions', h('button', {
          type: 'button', class: 'danger', 'data-testid': 'force-release', 'data-focus-key': `release:${k}`,
          'aria-label': `Force release ${l.file_path}`, onclick: () => confirmRelease(l, holders.get(k)),
        }, 'Force release')));
    });
    $('locks-body').replaceChildren(...(rows.length ? rows : [emptyRow(8, 'No locks held.')]));

    const lockKeys = new Set(holders.keys());
    const orphans = [...queued.entries()].filter(([k]) => !lockKeys.has(k)).flatMap(([, qs]) => qs);
    $('waiting').hidden = orphans.length === 0;
    $('waiting-body').replaceChildren(...orphans.map((q) =>
      row({ 'data-queue-path': q.file_path, 'data-project': q.project },
        cell('File', h('code', {}, q.file_path)),
        cell('Project', q.project),
        cell('Position', String(q.position)),
        cell('Session', q.session_name),
        cell('Type', q.lock_type),
        cell('Queued', ago(q.queued_at)))));
  }

  function renderIntents(intents) {
    const rows = intents.filter(mine).sort(newestFirst('created_at')).map((i) =>
      row({ 'data-intent-id': i.intent_id },
        cell('Type', i.intent_type),
        cell('Session', i.session_name),
        cell('Target / description',
          i.target ? h('code', {}, i.target) : null,
          i.target && i.description ? ' — ' : null,
          i.description || (i.target ? null : '—')),
        cell('Files', i.files && i.files.length ? h('ul', { class: 'files' }, i.files.map((f) => h('li', {}, h('code', {}, f)))) : '—'),
        cell('Status', i.status),
        cell('Age', ago(i.created_at))));
    $('intents-body').replaceChildren(...(rows.length ? rows : [emptyRow(6, 'No active intents.')]));
  }

  function renderMessages() {
    if (!snap) return;
    const channel = $('channel-filter').value;
    const names = new Map((snap.sessions || []).map((s) => [s.session_id, s.name]));
    const list = (snap.messages || [])
      .filter((m) => !channel || m.channel === channel)
      .sort(newestFirst('created_at'));
    const items = list.map((m) => {
      const loud = m.priority === 'urgent' || m.priority === 'high';
      const to = m.to_group ? `group ${m.to_group}` : m.to_session ? names.get(m.to_session) || m.to_session : 'everyone';
      return h('li', { class: `message priority-${m.priority}`, 'data-message-id': m.message_id, 'data-priority': m.priority, 'data-channel': m.channel },
        h('div', { class: 'meta' },
          loud ? h('span', { class: `badge ${m.priority === 'urgent' ? 'danger' : 'warn'}` }, m.priority === 'urgent' ? '‼ URGENT' : '! high') : null,
          h('span', { class: 'tag' }, m.channel),
          h('strong', {}, m.from_name), ` → ${to} · `, ago(m.created_at)),
        h('p', { class: 'content' }, m.content));
    });
    $('messages').replaceChildren(...(items.length
      ? items
      : [h('li', { class: 'empty' }, channel ? `No recent messages on ${channel}.` : 'No recent messages.')]));
  }

  // ---- Shared context search -----------------------------------------------------------------

  let searchTimer = null;
  let searchSeq = 0;
  let searchAbort = null;

  /** Runs the search after `delay` ms. A background refresh (after a snapshot) does not push
   *  back a search the operator is typing, and a stream of snapshots cannot starve it. */
  function scheduleSearch(delay, background = false) {
    if (background && searchTimer) return;
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, delay);
  }

  async function runSearch() {
    searchTimer = null;
    const words = $('context-search').value.trim();
    const seq = ++searchSeq;
    if (searchAbort) searchAbort.abort();
    searchAbort = new AbortController();
    const params = new URLSearchParams({ limit: '20' });
    if (words) params.set('q', words);
    try {
      const data = await api('GET', withProject('/api/context', params), undefined, searchAbort.signal);
      if (seq === searchSeq) renderContext((data && data.entries) || [], words);
    } catch (error) {
      if (error.name !== 'AbortError' && seq === searchSeq) $('context-count').textContent = `Search failed: ${error.message}`;
    }
  }

  function renderContext(entries, words) {
    $('context-count').textContent = words
      ? `${plural(entries.length, 'entry', 'entries')} matching “${words}”.`
      : `${plural(entries.length, 'recent entry', 'recent entries')}.`;
    $('context-results').replaceChildren(...entries.map((e) =>
      h('li', { 'data-context-id': e.context_id },
        h('div', { class: 'meta' },
          h('span', { class: 'tag' }, e.context_type),
          (e.tags || []).map((t) => [' ', h('span', { class: 'tag' }, `#${t}`)]),
          ' ', h('strong', {}, e.shared_by), ` · ${e.project} · `, ago(e.created_at)),
        h('p', { class: 'content' }, e.content))));
    tick();
  }

  // ---- Operator actions, each confirmed in the dialog ----------------------------------------

  const dialog = $('confirm-dialog');
  let pending = null;

  /** Opens the dialog; on Confirm, runs `run(reason)`, which resolves to the text to show. */
  function confirmAction({ title, text, confirmLabel, askReason = false, run }) {
    $('confirm-title').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-yes').textContent = confirmLabel;
    $('confirm-reason-field').hidden = !askReason;
    $('confirm-reason').value = '';
    pending = run;
    dialog.returnValue = '';
    dialog.showModal();
  }

  $('confirm-no').addEventListener('click', () => dialog.close('cancel'));
  dialog.addEventListener('close', async () => {
    const run = pending;
    pending = null;
    if (dialog.returnValue !== 'confirm' || !run) return;
    showStatus('Working…');
    try {
      showStatus(await run($('confirm-reason').value.trim()));
    } catch (error) {
      showStatus(`Failed: ${error.message}`, true);
    }
  });

  function confirmRelease(lock, holders) {
    const what = holders > 1
      ? `all ${holders} locks on ${lock.file_path}`
      : `${lock.holder_name}'s ${lock.lock_type} lock on ${lock.file_path}`;
    confirmAction({
      title: 'Force release a lock',
      text: `Release ${what} in project ${lock.project}? The holder is told by message; the first queued request, if any, is granted.`,
      confirmLabel: 'Force release',
      askReason: true,
      run: async (reason) => {
        const body = { project: lock.project, file_path: lock.file_path };
        if (reason) body.reason = reason;
        const result = await api('POST', '/api/locks/release', body);
        return `Released ${plural(count(result && result.released), 'lock')} on ${lock.file_path} (${lock.project}).`;
      },
    });
  }

  function confirmEndSession(s) {
    const note = s.state === 'stale'
      ? 'It is stale: its client has stopped sending heartbeats, which is when ending a session is usually right.'
      : 'It is still active: its client is sending heartbeats and would have to register again. Usually you end a stale session instead.';
    const locks = count(s.locks_held);
    const released = locks
      ? `Its ${plural(locks, 'lock')} will be released and its intents cleared.`
      : 'It holds no locks; its intents will be cleared.';
    confirmAction({
      title: 'End a session',
      text: `End session “${s.name}” in project ${s.project}? ${released} ${note}`,
      confirmLabel: 'End session',
      run: async () => {
        const result = (await api('POST', '/api/sessions/end', { session_id: s.session_id })) || {};
        return `Ended session ${s.name}: ${plural(count(result.locks_released), 'lock')} released, ${plural(count(result.intents_cleared), 'intent')} cleared.`;
      },
    });
  }

  $('broadcast-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!form.reportValidity()) return;
    const body = {
      project: $('bc-project').value,
      content: $('bc-content').value.trim(),
      priority: $('bc-priority').value,
      from: $('bc-from').value.trim() || 'dashboard',
    };
    confirmAction({
      title: 'Send a broadcast',
      text: `Send this ${body.priority}-priority message as “${body.from}” to every session in project ${body.project}?`,
      confirmLabel: 'Send broadcast',
      run: async () => {
        const result = (await api('POST', '/api/broadcast', body)) || {};
        $('bc-content').value = '';
        const id = result.message_id ? ` (${result.message_id})` : '';
        return `Broadcast${id} sent to ${plural(count(result.delivered_to ?? result.recipients), 'session')}.`;
      },
    });
  });

  // ---- Wiring --------------------------------------------------------------------------------

  $('project-filter').addEventListener('change', (event) => {
    project = event.target.value;
    const url = new URL(location.href);
    if (project) url.searchParams.set('project', project);
    else url.searchParams.delete('project');
    history.replaceState(null, '', url);
    if (project && !$('bc-project').value) $('bc-project').value = project;
    if (snap) render(snap); // filter at once; the new stream's snapshot follows
    connect();
    scheduleSearch(0);
  });
  $('channel-filter').addEventListener('change', () => { renderMessages(); tick(); });
  $('context-search').addEventListener('input', () => scheduleSearch(250));

  /** Opened with a person's token, the page signs broadcasts with their name: the server does. */
  async function showViewer() {
    try {
      const viewer = await api('GET', '/api/viewer');
      if (viewer && viewer.who) {
        $('bc-from').value = viewer.who;
        $('bc-from').readOnly = true;
        $('bc-from').title = 'Your token names you: broadcasts are signed with it.';
      }
    } catch {
      // The sender field stays editable; the server decides the name anyway.
    }
  }

  keepTableRoles();
  setInterval(tick, 1000);
  connect();
  scheduleSearch(0);
  showViewer();
})();
