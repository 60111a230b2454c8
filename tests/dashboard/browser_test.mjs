#!/usr/bin/env node
// Browser test of the web dashboard, against a running server.
//
//   node tests/dashboard/browser_test.mjs BASE_URL SCREENSHOT_PATH
//   (BASE_URL like http://127.0.0.1:7420; MCP_COORDINATOR_TOKEN is used when set;
//    PERSON_TOKEN, a person's token from `token add`, adds the step that opens the page with it;
//    CHROMIUM overrides /usr/bin/chromium)
//
// It drives Debian's Chromium through playwright-core (which never downloads a browser) and
// plays two AI sessions itself by speaking MCP JSON-RPC to BASE_URL/mcp, then checks that
// the page follows what they do without a reload, and that the operator's actions work.
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [baseArg, shotArg] = process.argv.slice(2);
if (!baseArg || !shotArg) {
  console.error('usage: node tests/dashboard/browser_test.mjs BASE_URL SCREENSHOT_PATH');
  process.exit(2);
}
const BASE = baseArg.replace(/\/+$/, '');
const SCREENSHOT = resolve(shotArg);
const TOKEN = process.env.MCP_COORDINATOR_TOKEN || '';
const PERSON_TOKEN = process.env.PERSON_TOKEN || '';
const TIMEOUT = 10_000; // every wait, page or MCP
const PROTOCOL = '2025-11-25';
const PROJECT = 'browser-test';
const RUN = Math.random().toString(36).slice(2, 8);
const ALICE = `alice-${RUN}`;
const BOB = `bob-${RUN}`;

class Failure extends Error {}
const assert = (condition, message) => {
  if (!condition) throw new Failure(message);
};
const pass = (step) => console.log(`ok - ${step}`);

// ---- MCP over Streamable HTTP ----------------------------------------------------------------

/** Reads the JSON-RPC response with `id` from a JSON or an SSE (text/event-stream) body. */
async function readResponse(response, id) {
  const type = response.headers.get('content-type') || '';
  if (type.includes('application/json')) return JSON.parse(await response.text());
  assert(type.includes('text/event-stream'), `MCP answered with Content-Type '${type}', neither JSON nor SSE`);
  // Read event by event and stop at the answer: the server may keep the stream open after it.
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buffer = (buffer + (value || '')).replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).replace(/^ /, '')).join('\n');
        if (!data.trim()) continue; // a priming event or a comment
        const message = JSON.parse(data);
        if (message.id === id && ('result' in message || 'error' in message)) return message;
      }
      if (done) throw new Failure(`the MCP event stream ended without the answer to request ${id}`);
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

class McpClient {
  constructor(label, token = TOKEN) {
    this.label = label;
    this.token = token;
    this.mcpSession = null;
    this.nextId = 1;
  }

  headers() {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (this.mcpSession) {
      headers['Mcp-Session-Id'] = this.mcpSession;
      headers['MCP-Protocol-Version'] = PROTOCOL;
    }
    return headers;
  }

  post(body) {
    return fetch(`${BASE}/mcp`, {
      method: 'POST', headers: this.headers(), body: JSON.stringify(body), signal: AbortSignal.timeout(TIMEOUT),
    });
  }

  async request(method, params) {
    const id = this.nextId++;
    const response = await this.post({ jsonrpc: '2.0', id, method, params });
    if (!response.ok) throw new Failure(`${this.label}: ${method} answered HTTP ${response.status}: ${await response.text()}`);
    const message = await readResponse(response, id);
    if (message.error) throw new Failure(`${this.label}: ${method} failed: ${JSON.stringify(message.error)}`);
    return { message, response };
  }

  async initialize() {
    const { response } = await this.request('initialize', {
      protocolVersion: PROTOCOL, capabilities: {}, clientInfo: { name: 'browser-test', version: '1' },
    });
    this.mcpSession = response.headers.get('mcp-session-id');
    assert(this.mcpSession, `${this.label}: initialize gave no Mcp-Session-Id header`);
    const note = await this.post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await note.text();
    assert(note.status === 202, `${this.label}: notifications/initialized answered HTTP ${note.status}, not 202`);
  }

  /** Calls a tool and returns its structuredContent; a tool error fails the test. */
  async call(name, args) {
    const { message } = await this.request('tools/call', { name, arguments: args });
    const result = message.result || {};
    if (result.isError) {
      const text = (result.content || []).map((c) => c.text).join(' ');
      throw new Failure(`${this.label}: ${name} returned a tool error: ${text}`);
    }
    return result.structuredContent || {};
  }
}

// ---- Page helpers ----------------------------------------------------------------------------

async function waitFor(locator, what, state = 'visible') {
  try {
    await locator.first().waitFor({ state, timeout: TIMEOUT });
  } catch {
    throw new Failure(`timed out after ${TIMEOUT / 1000}s waiting for ${what}`);
  }
}

/** Retries `check` (which returns a truthy value when satisfied) until TIMEOUT. */
async function eventually(check, what) {
  const deadline = Date.now() + TIMEOUT;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Failure(`timed out after ${TIMEOUT / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function confirmDialog(page, what) {
  const dialog = page.getByTestId('confirm-dialog');
  await waitFor(dialog, `the confirmation dialog for ${what}`);
  return dialog;
}

// ---- The test --------------------------------------------------------------------------------

async function main(page, problems, clients) {
  const lockRow = (path) => page.locator(`[data-testid="locks-table"] tr[data-lock-path="${path}"][data-project="${PROJECT}"]`);
  const status = page.getByTestId('status');

  // 1. The page loads and its event stream goes live.
  const response = await page.goto(TOKEN ? `${BASE}/?token=${encodeURIComponent(TOKEN)}` : `${BASE}/`);
  assert(response && response.ok(), `opening the page answered HTTP ${response && response.status()}${TOKEN ? ' (is MCP_COORDINATOR_TOKEN right?)' : ''}`);
  const title = await page.title();
  assert(/coordinator/i.test(title), `the page title '${title}' does not mention the coordinator`);
  assert(!page.url().includes('token='), `the token stayed in the address bar: ${page.url()}`);
  await waitFor(page.locator('[data-testid="connection-state"][data-state="live"]'), 'the connection indicator to say live');
  pass('1 page loads, title mentions the coordinator, connection is live');

  // 2. A session registered after the page opened shows up without a reload.
  const a = new McpClient('A');
  clients.push(a);
  await a.initialize();
  const alice = await a.call('session_register', { name: ALICE, project: PROJECT, branch: 'main' });
  a.id = alice.session_id;
  assert(a.id, `session_register gave no session_id: ${JSON.stringify(alice)}`);
  await waitFor(page.locator(`[data-testid="sessions-table"] tr[data-session-id="${a.id}"]`).filter({ hasText: ALICE }),
    `the sessions table to show ${ALICE}`);
  // Narrow the page to the test's project, through the selector, which the URL remembers.
  const filter = page.getByTestId('project-filter');
  await waitFor(filter.locator(`option[value="${PROJECT}"]`), `${PROJECT} in the project selector`, 'attached');
  await filter.selectOption(PROJECT);
  assert(new URL(page.url()).searchParams.get('project') === PROJECT, `the URL does not remember the project: ${page.url()}`);
  await waitFor(page.locator('[data-testid="connection-state"][data-state="live"]'), 'the stream of the selected project to go live');
  await waitFor(page.locator(`tr[data-session-id="${a.id}"]`), `${ALICE} still shown in project ${PROJECT}`);
  pass(`2 session ${ALICE} appears live; project selector sets ?project=${PROJECT}`);

  // 3. A lock appears, with a countdown that ticks in the browser.
  const got = await a.call('lock_acquire', { file_path: 'src/app.rs', lock_type: 'exclusive', ttl_seconds: 600 });
  assert(got.granted === true, `A did not get src/app.rs: ${JSON.stringify(got)}`);
  await waitFor(lockRow('src/app.rs').getByTestId('lock-holder').filter({ hasText: ALICE }), `src/app.rs held by ${ALICE}`);
  const expiry = lockRow('src/app.rs').getByTestId('lock-expiry');
  const before = (await expiry.textContent()).trim();
  assert(/^\d+m \d+s$/.test(before), `the expiry countdown reads '${before}', expected like '9m 59s'`);
  await eventually(async () => (await expiry.textContent()).trim() !== before, `the countdown to tick (it reads ${before})`);
  pass(`3 lock on src/app.rs shows holder ${ALICE} and a ticking countdown (${before})`);

  // 4. A released lock disappears.
  await a.call('lock_release', { file_path: 'src/app.rs' });
  await waitFor(lockRow('src/app.rs'), 'the src/app.rs lock row to disappear', 'detached');
  pass('4 released lock disappears');

  // 5. A queued request and a conflict.
  const b = new McpClient('B');
  clients.push(b);
  await b.initialize();
  b.id = (await b.call('session_register', { name: BOB, project: PROJECT, branch: 'main' })).session_id;
  assert(b.id, 'session_register gave B no session_id');
  const held = await a.call('lock_acquire', { file_path: 'src/lib.rs', lock_type: 'exclusive', ttl_seconds: 600 });
  assert(held.granted === true, `A did not get src/lib.rs: ${JSON.stringify(held)}`);
  const queued = await b.call('lock_acquire', { file_path: 'src/lib.rs', lock_type: 'exclusive', queue: true });
  assert(queued.granted === false, `B should have been queued for src/lib.rs: ${JSON.stringify(queued)}`);
  await waitFor(lockRow('src/lib.rs').getByTestId('lock-holder').filter({ hasText: ALICE }), `src/lib.rs held by ${ALICE}`);
  await waitFor(lockRow('src/lib.rs').getByTestId('lock-queue').filter({ hasText: BOB }), `${BOB} queued behind src/lib.rs`);
  await b.call('intent_announce', { intent_type: 'file_edit', files: ['src/lib.rs'], description: 'refactor' });
  await waitFor(page.getByTestId('conflicts').filter({ hasText: 'src/lib.rs' }), 'the conflicts panel to mention src/lib.rs');
  await waitFor(lockRow('src/lib.rs').and(page.locator('.conflict')), 'the src/lib.rs lock row to be flagged as a conflict');
  pass(`5 src/lib.rs shows holder ${ALICE}, ${BOB} queued, and a conflict`);

  // 6. Force release from the page: the queued request is granted, the holder is told.
  await lockRow('src/lib.rs').getByTestId('force-release').click();
  const dialog = await confirmDialog(page, 'force release');
  await dialog.getByTestId('confirm-reason').fill('browser test');
  await dialog.getByTestId('confirm-yes').click();
  await waitFor(dialog, 'the confirmation dialog to close', 'hidden');
  await waitFor(lockRow('src/lib.rs').getByTestId('lock-holder').filter({ hasText: BOB }),
    `src/lib.rs to pass to ${BOB} after the force release (status: '${await status.textContent()}')`);
  await eventually(async () => {
    const inbox = await a.call('message_list', { session_id: a.id });
    return (inbox.messages || []).some((m) => String(m.content).includes('src/lib.rs'));
  }, `a message to ${ALICE} about src/lib.rs`);
  pass(`6 force release hands src/lib.rs to ${BOB}; ${ALICE} is told`);

  // 7. A broadcast from the form.
  const text = `Browser test broadcast ${RUN}: please pause merges`;
  const form = page.getByTestId('broadcast-form');
  await form.getByLabel('Project', { exact: true }).selectOption(PROJECT);
  await form.getByLabel('Priority').selectOption('urgent');
  await form.getByLabel(/message/i).fill(text);
  await form.getByRole('button', { name: /send broadcast/i }).click();
  await (await confirmDialog(page, 'the broadcast')).getByTestId('confirm-yes').click();
  const posted = page.getByTestId('messages').locator('li').filter({ hasText: text });
  await waitFor(posted, `the broadcast in the messages list (status: '${await status.textContent()}')`);
  assert(await posted.first().getAttribute('data-priority') === 'urgent', 'the broadcast is not marked urgent');
  pass('7 urgent broadcast appears in the messages list');

  // 8. Shared context search. A second entry that does not match shows the search filters;
  // entries of earlier runs on the same server may match too, so look for this run's.
  await a.call('context_share', { context_type: 'convention', content: 'Prefer thiserror for library errors', tags: ['errors'] });
  await a.call('context_share', {
    context_type: 'decision', content: 'Use tokio for the async runtime', tags: ['runtime'],
  });
  await page.getByTestId('context-search').fill('tokio');
  const results = page.getByTestId('context-results').locator('li');
  await waitFor(results.filter({ hasText: 'Use tokio for the async runtime' }).filter({ hasText: ALICE }),
    `the shared context search to find ${ALICE}'s tokio decision`);
  await eventually(async () => (await results.filter({ hasText: 'thiserror' }).count()) === 0,
    'the search for tokio to leave out the thiserror entry');
  pass('8 context search finds the shared decision, and only what matches');

  // 9. Screenshot of the whole page, with the test's sessions on it.
  await page.evaluate(() => window.scrollTo(0, 0)); // the sticky status bar belongs at the top
  await mkdir(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  pass('9 full-page screenshot saved');

  // 10. End a session from the page (also cleans up after the test).
  await page.locator(`tr[data-session-id="${b.id}"]`).getByTestId('end-session').click();
  await (await confirmDialog(page, 'ending a session')).getByTestId('confirm-yes').click();
  await waitFor(page.locator(`tr[data-session-id="${b.id}"]`), `${BOB}'s row to disappear after ending it`, 'detached');
  b.id = null;
  pass(`10 ending ${BOB} from the page removes the session`);

  // 11. A page opened with a person's token: sessions registered with it say whose they are,
  // and the broadcast form signs with the person's name.
  if (PERSON_TOKEN) {
    const theirs = await page.context().browser().newPage({ viewport: { width: 1280, height: 900 } });
    try {
      theirs.setDefaultTimeout(TIMEOUT);
      const opened = await theirs.goto(`${BASE}/?token=${encodeURIComponent(PERSON_TOKEN)}`);
      assert(opened && opened.ok(), `opening the page with the person's token answered HTTP ${opened && opened.status()}`);
      const c = new McpClient('C', PERSON_TOKEN);
      clients.push(c);
      await c.initialize();
      const CAROL = `carol-${RUN}`;
      c.id = (await c.call('session_register', { name: CAROL, project: PROJECT, branch: 'main' })).session_id;
      const who = theirs.locator(`tr[data-session-id="${c.id}"]`).getByTestId('session-who');
      await waitFor(who, `${CAROL}'s row to say whose token registered it`);
      const tag = (await who.textContent()).trim();
      assert(tag === 'by browser-person', `the session's tag reads '${tag}'`);
      const sender = theirs.locator('#bc-from');
      await eventually(async () => (await sender.inputValue()) === 'browser-person', 'the sender field to show the person');
      assert(await sender.evaluate((input) => input.readOnly), 'the sender field is still editable');
    } finally {
      await theirs.close();
    }
    pass("11 a person's token: sessions show 'by browser-person', broadcasts are signed with it");
  }

  assert(problems.length === 0, `the page reported errors:\n  ${problems.join('\n  ')}`);
  console.log(`screenshot: ${SCREENSHOT}`);
}

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({
  executablePath,
  timeout: 30_000,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
}).catch((error) => {
  console.error(`FAIL: cannot start Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM): ${error.message}`);
  process.exit(1);
});
const clients = [];
let code = 0;
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
try {
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // The browser asks for /favicon.ico on its own; the page has no icon, and the CSP
    // (default-src 'self') forbids a data: one, so a 404 there is no fault of the page.
    if (message.type() !== 'error' || new URL(message.location().url || BASE).pathname === '/favicon.ico') return;
    problems.push(`console error: ${message.text()}`);
  });
  await main(page, problems, clients);
  console.log('dashboard browser test: all steps passed');
} catch (error) {
  code = 1;
  console.error(`FAIL: ${error instanceof Failure ? error.message : error.stack || error}`);
  try {
    await mkdir(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.error(`failure screenshot: ${SCREENSHOT}`);
  } catch {
    // The page itself may be what broke.
  }
} finally {
  // Leave no test session behind on a server that outlives the test.
  for (const client of clients) {
    if (client.id) await client.call('session_deregister', { session_id: client.id }).catch(() => {});
  }
  await browser.close();
}
process.exit(code);
