#!/usr/bin/env node
// Codex (npm @openai/codex) as a real client of mcp-session-coordinator.
//
//   node codex.mjs --server BIN [--url URL [--token T] --db DB] [--transports T,...] [--only SUBSTRING]
//
// `codex app-server` speaks JSON-RPC lines on stdio and drives Codex's own MCP client: the server is
// configured in an isolated CODEX_HOME's config.toml exactly as a person would (`[mcp_servers.NAME]`),
// and the script plays the model by calling tools through `mcpServer/tool/call`. Stdio uses a throwaway
// database; HTTP the driver's server (--url/--db/--token, its log in $MATRIX_SERVER_LOG) or our own. Cells:
//   stdio               command = BIN (through `sh -c 'exec BIN ... 2>>LOG'` so the server's `client
//                       connected` line, the only place the negotiated revision shows, lands in a file we
//                       can read)
//   http+bearer         url + bearer_token_env_var (`http`: a server without --token, url alone)
//   http+bearer+header  also http_headers = { "Coordinator-Session-Token" = ... } (`http+header`: without
//                       the token): the model passes no token, and a restarted Codex registers again without
//                       being refused or duplicated
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import {
  HERE, NODE, Fail, check, parseArgs, tempDir, sleep, runCell, walkthroughWithPeer, httpServers,
  loggedRevisions, checkServerLog, registerAgain, wanted, brokeOff,
} from './sdk_clients.mjs';

const CODEX = join(HERE, 'node_modules/@openai/codex/bin/codex.js');
const NAME = 'session-coordinator';
const TOOL_COUNT = 20;

// What Codex says about our server counts as a warning; its complaints about the sandbox
// (bubblewrap), the path aliases under /tmp and the unreachable model API do not concern us.
const aboutServer = (line) => /mcp|session-coordinator/i.test(line) && /\b(WARN|WARNING|ERROR)\b|fail/i.test(line);

const toml = (s) => JSON.stringify(s); // a TOML basic string is a JSON string for our paths and tokens

// One `codex app-server` process with its own CODEX_HOME; `config` is the [mcp_servers.NAME] body.
async function startCodex({ home, config, env = {} }) {
  mkdirSync(join(home, '.codex'), { recursive: true });
  writeFileSync(join(home, '.codex', 'config.toml'), `[mcp_servers.${NAME}]\n${config}`);
  const child = spawn(NODE, [CODEX, 'app-server'], {
    cwd: home, stdio: ['pipe', 'pipe', 'pipe'],
    env: { HOME: home, CODEX_HOME: join(home, '.codex'), PATH: process.env.PATH, ...env },
  });
  const stderr = []; const notes = [];
  createInterface({ input: child.stderr }).on('line', (l) => stderr.push(l.replace(/\x1b\[[0-9;]*m/g, '')));
  const pending = new Map(); let nextId = 0;
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg; try { msg = JSON.parse(line); } catch { stderr.push(`unparsable stdout: ${line}`); return; }
    if (msg.id !== undefined && pending.has(msg.id)) { pending.get(msg.id)(msg); pending.delete(msg.id); } else notes.push(msg);
  });
  const request = (method, params, ms = 60000) => new Promise((resolve, reject) => {
    const id = ++nextId;
    const timer = setTimeout(() => { pending.delete(id); reject(new Fail(`codex ${method} got no answer in ${ms / 1000} s`)); }, ms);
    pending.set(id, (m) => { clearTimeout(timer); m.error ? reject(new Fail(`codex ${method}: ${JSON.stringify(m.error)}`)) : resolve(m.result); });
    child.stdin.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n');
  });
  await request('initialize', { clientInfo: { name: 'matrix', version: '1.0.0' } });
  child.stdin.write(JSON.stringify({ jsonrpc: '2.0', method: 'initialized' }) + '\n');
  const { thread } = await request('thread/start', {});
  return {
    stderr, notes, request, threadId: thread.id,
    // What Codex told us about our server: startup status updates, and any warning or error.
    complaints: () => [
      ...notes.filter((n) => n.method === 'mcpServer/startupStatus/updated' && (n.params?.error || n.params?.status === 'failed'))
        .map((n) => `startup ${n.params.status}: ${n.params.error}`),
      ...notes.filter((n) => /warning|error/i.test(n.method ?? '') && aboutServer(JSON.stringify(n.params ?? {})))
        .map((n) => `${n.method}: ${JSON.stringify(n.params)}`),
      ...stderr.filter(aboutServer),
    ],
    async stop() {
      child.stdin.end();
      const exited = new Promise((r) => child.once('exit', r));
      if (await Promise.race([exited.then(() => true), sleep(5000).then(() => false)])) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// Codex connects MCP servers when a thread starts; wait for ours to be ready, then read its status.
async function connected(codex) {
  for (const deadline = Date.now() + 20000; Date.now() < deadline; await sleep(200)) {
    const update = codex.notes.filter((n) => n.method === 'mcpServer/startupStatus/updated' && n.params?.name === NAME).at(-1);
    if (update?.params?.status === 'failed') throw new Fail(`Codex could not start ${NAME}: ${update.params.error}`);
    if (update?.params?.status === 'ready') break;
  }
  const { data } = await codex.request('mcpServerStatus/list', { threadId: codex.threadId, detail: 'full' });
  const mine = data.find((s) => s.name === NAME);
  check(mine, `mcpServerStatus/list does not list ${NAME}: ${JSON.stringify(data).slice(0, 300)}`);
  check(mine.runtimeStatus === 'connected', `Codex reports ${NAME} as ${mine.runtimeStatus}${mine.toolsError ? `: ${mine.toolsError}` : ''}`);
  const tools = Object.keys(mine.tools ?? {});
  check(tools.length === TOOL_COUNT, `Codex lists ${tools.length} tools of ${NAME}, expected ${TOOL_COUNT}${mine.toolsError ? ` (${mine.toolsError})` : ''}`);
  return mine;
}

function codexCall(codex) {
  return async (tool, args) => {
    const r = await codex.request('mcpServer/tool/call', { server: NAME, threadId: codex.threadId, tool, arguments: args });
    return { isError: r.isError === true, structured: r.structuredContent, text: (r.content ?? []).map((c) => c.text ?? '').join('') };
  };
}

// Connect, list, walk through; returns the walkthrough's result. `instructions`: Codex does not hand
// them to us, so the stand-in reads them as Codex's model would, from the server's initialize answer.
async function codexSession({ ctx, bin, db, slug, config, env, http, headerIdentity = false, instructions }) {
  const home = tempDir(`codex-${slug}`);
  const codex = await startCodex({ home, config, env });
  try {
    await connected(codex);
    ctx.log(`Codex reports ${NAME} connected with ${TOOL_COUNT} tools`);
    const result = await walkthroughWithPeer({ bin, db, slug, http, headerIdentity, instructions, call: codexCall(codex), log: ctx.log });
    const complaints = codex.complaints();
    check(complaints.length === 0, `Codex printed: ${complaints.slice(0, 4).join(' | ')}`);
    return result;
  } catch (e) {
    for (const l of codex.stderr) ctx.log(`codex stderr: ${l}`);
    throw e;
  } finally {
    await codex.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

// The instructions a 2025-06-18 client gets over HTTP (Codex keeps them for its model).
async function httpInstructions(srv) {
  const auth = srv.token ? { authorization: `Bearer ${srv.token}` } : {};
  const res = await fetch(srv.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...auth },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'matrix-instructions', version: '1' } } }),
  });
  const text = await res.text();
  const session = res.headers.get('mcp-session-id');
  if (session) await fetch(srv.url, { method: 'DELETE', headers: { 'mcp-session-id': session, ...auth } }).catch(() => {});
  const data = text.split('\n').find((l) => l.startsWith('data: {')) ?? text;
  return JSON.parse(data.replace(/^data: /, '')).result?.instructions ?? '';
}

async function main() {
  const opts = parseArgs();
  const bin = opts.server;
  const tmp = tempDir('codex');
  const db = join(tmp, 'stdio.db');
  const servers = httpServers({ opts, bin, tmp });
  let allPassed = true;
  const cell = async (meta, body) => {
    if (wanted(opts, meta)) allPassed = (await runCell(meta, body)) && allPassed;
  };
  const client = 'codex-0.171.0';
  // Codex does not show the revision it negotiated; the server's `client connected` line does.
  const observe = (lines, ctx) => {
    const seen = loggedRevisions(lines.filter((l) => /client="?codex/.test(l))); // Codex calls itself codex-mcp-client
    ctx.setRevision(seen.at(-1));
    if (!seen.length) ctx.log('the server logged no `client connected` line: revision not observed');
    checkServerLog(lines);
  };
  // The [mcp_servers.NAME] body for the HTTP server, as a person writes it.
  const httpConfig = (srv, identity) => `url = ${toml(srv.url)}\n` +
    (srv.token ? 'bearer_token_env_var = "COORD_TOKEN"\n' : '') +
    (identity ? `http_headers = { "Coordinator-Session-Token" = ${toml(identity)} }\n` : '');

  try {
    await cell({ client, transport: 'stdio' }, async (ctx) => {
      const logFile = join(tmp, 'stdio-server.log');
      // exec: the server replaces the shell, so Codex is its parent as with `command = BIN`.
      const config = `command = "/bin/sh"\nargs = ${JSON.stringify(['-c', 'exec "$0" "$@" 2>>"$COORD_LOG"', bin, '--db-path', db])}\n` +
        `env = { COORD_LOG = ${toml(logFile)} }\n`;
      await codexSession({ ctx, bin, db, slug: 'codex-stdio', config, http: false });
      observe(existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n') : [], ctx);
    });

    await cell({ client, transport: servers.transport() }, async (ctx) => {
      const srv = await servers.get();
      const mark = srv.mark();
      const r = await codexSession({ ctx, bin, db: srv.db, slug: 'codex-http', config: httpConfig(srv), env: { COORD_TOKEN: srv.token ?? '' },
        http: true, instructions: await httpInstructions(srv) });
      observe(srv.since(mark), ctx);
      return { note: r.passToken ? 'passed session_token as told' : 'no session_token needed' };
    });

    await cell({ client, transport: servers.transport({}, true) }, async (ctx) => {
      const srv = await servers.get();
      const mark = srv.mark();
      const config = httpConfig(srv, randomBytes(16).toString('hex'));
      const env = { COORD_TOKEN: srv.token ?? '' };
      const r = await codexSession({ ctx, bin, db: srv.db, slug: 'codex-hdr', config, env, http: true, headerIdentity: true,
        instructions: await httpInstructions(srv) });
      // Codex restarted with the same config (it ended the session on exit with DELETE) registers again.
      const home = tempDir('codex-again');
      const codex = await startCodex({ home, config, env });
      try {
        await connected(codex);
        await registerAgain({ call: codexCall(codex), result: r, ctx, who: 'a restarted Codex' });
      } finally {
        await codex.stop();
        rmSync(home, { recursive: true, force: true });
      }
      observe(srv.since(mark), ctx);
      return { note: 'no session_token passed; a restarted Codex registered again by its header alone' };
    });
  } finally {
    await servers.stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
  process.exit(allPassed ? 0 : 1);
}

main().catch((e) => brokeOff('codex', e));
