#!/usr/bin/env node
// The MCP Inspector CLI (npm @modelcontextprotocol/inspector, `mcp-inspector --cli`) against
// mcp-session-coordinator.
//
//   node inspector.mjs --server BIN [--url URL [--token T] --db DB] [--transports T,...] [--only SUBSTRING]
//
// Stdio cells use a throwaway database; HTTP cells the driver's server (--url/--db/--token) when given,
// except those needing --output-schemas, which run on a server of our own (with a token). HTTP cells are
// http+bearer on a server with a token, http without one; +header where the Inspector also sends the
// Coordinator-Session-Token header. Cells:
//   mcp-inspector-2.12.0[+output-schemas], stdio and http(+bearer): `--strict --method tools/list` lists
//     20 tools and reports no schema portability problem (it flags `type` arrays such as ["string","null"]);
//   mcp-inspector-2.12.0-auto, http(+bearer) with and without +header: `--protocol-era auto` negotiates
//     the sessionless 2026-07-28 revision, one CLI process per tool call (as a person or a script uses
//     it), so the walkthrough only works if the model passes session_token on every call as the
//     instructions say, or if the person configured a Coordinator-Session-Token header (then the model
//     passes nothing).
// Over stdio each CLI run starts and ends its own server, which ends its sessions, so no walkthrough.
// Each cell's revision is the one the Inspector reports from its own `--method initialize`.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  HERE, NODE, Fail, check, parseArgs, tempDir, runCell, walkthroughWithPeer, httpServers, authHeaders, checkServerLog,
  wanted, brokeOff,
} from './sdk_clients.mjs';

const INSPECTOR = join(HERE, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
const TOOL_COUNT = 20;

// One `mcp-inspector --cli` run; `target` is either a command line or ['--server-url', URL, ...headers].
function inspector(home, args, target) {
  return new Promise((resolve) => {
    execFile(NODE, [INSPECTOR, '--cli', '--format', 'json', ...args, ...target],
      { env: { HOME: home, PATH: process.env.PATH }, timeout: 30000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        let json = null;
        try { json = JSON.parse(stdout); } catch { /* reported below */ }
        resolve({ code: err ? (err.code ?? err.signal) : 0, json, stdout, stderr });
      });
  });
}

const describe = (run) => `exit ${run.code}: ${(run.json?.error?.message ?? run.stderr ?? run.stdout).trim().slice(0, 400)}`;

// The revision the Inspector negotiates with these flags, from its own initialize result.
async function negotiated(home, era, target) {
  const run = await inspector(home, [...era, '--method', 'initialize'], target);
  check(run.json?.result?.protocolVersion, `--method initialize failed, ${describe(run)}`);
  return run.json.result;
}

// `--strict --method tools/list`: 20 tools and not one portability warning or error.
async function strictListing(home, target, { outputSchemas }) {
  const run = await inspector(home, ['--strict', '--method', 'tools/list'], target);
  const tools = run.json?.result?.tools;
  check(Array.isArray(tools), `tools/list failed, ${describe(run)}`);
  check(tools.length === TOOL_COUNT, `tools/list gave ${tools.length} tools, expected ${TOOL_COUNT}`);
  if (outputSchemas !== undefined) {
    const withSchema = tools.filter((t) => t.outputSchema).length;
    check(withSchema === (outputSchemas ? TOOL_COUNT : 0), `${withSchema} tools list an outputSchema (--output-schemas ${outputSchemas ? 'on' : 'off'})`);
  }
  // Problems are printed as blocks "Warning: tool ..."/"Error: tool ..." with Path/Issue lines, then
  // a summary "N errors, M warnings across K tools."; errors also make the exit code 6.
  const lines = run.stderr.split('\n');
  const problems = lines.filter((l) => /^(Warning|Error): tool /.test(l)).length;
  const summary = lines.find((l) => /\d+ errors?, \d+ warnings?/.test(l));
  const issues = lines.filter((l) => /^\s+Issue: /.test(l)).map((l) => l.trim().slice(0, 120));
  check(run.code === 0 && problems === 0 && (!summary || /^\D*0 errors?, 0 warnings?/.test(summary)),
    `--strict: ${summary ?? `exit ${run.code}`}${issues.length ? `; first: ${[...new Set(issues)].slice(0, 2).join(' | ')}` : ''}`);
  return { tools, run };
}

// The walkthrough as a stand-in for a model behind the Inspector: every tool call is its own CLI run.
function cliCall(home, era, target) {
  return async (tool, args) => {
    const run = await inspector(home, [...era, '--method', 'tools/call', '--tool-name', tool, '--tool-args-json', JSON.stringify(args)], target);
    const r = run.json?.result;
    if (!r) throw new Fail(`tools/call ${tool} failed, ${describe(run)}`);
    return { isError: r.isError === true, structured: r.structuredContent, text: (r.content ?? []).map((c) => c.text ?? '').join('') };
  };
}

// A server's stderr lines among the Inspector's (it passes a stdio server's stderr through).
const serverLines = (stderr) => stderr.split('\n').filter((l) => /^\d{4}-\d\d-\d\dT\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\b/.test(l));

async function main() {
  const opts = parseArgs();
  const bin = opts.server;
  const tmp = tempDir('inspector');
  const home = tempDir('inspector-home'); // the Inspector keeps a catalog and OAuth state in ~/.mcp-inspector
  const db = join(tmp, 'stdio.db');
  const servers = httpServers({ opts, bin, tmp });
  let allPassed = true;
  const cell = async (meta, body) => {
    if (wanted(opts, meta)) allPassed = (await runCell(meta, body)) && allPassed;
  };
  const target = (srv, identity) => ['--server-url', srv.url,
    ...Object.entries(authHeaders(srv, identity)).flatMap(([k, v]) => ['--header', `${k}: ${v}`])];
  const version = '2.12.0';

  try {
    for (const outputSchemas of [false, true]) {
      const client = `mcp-inspector-${version}${outputSchemas ? '+output-schemas' : ''}`;
      await cell({ client, transport: 'stdio' }, async (ctx) => {
        const command = [bin, ...(outputSchemas ? ['--output-schemas'] : []), '--db-path', db];
        ctx.setRevision((await negotiated(home, [], command)).protocolVersion);
        const { run } = await strictListing(home, command, { outputSchemas });
        checkServerLog(serverLines(run.stderr));
      });
      await cell({ client, transport: servers.transport({ outputSchemas }) }, async (ctx) => {
        const srv = await servers.get({ outputSchemas });
        const mark = srv.mark();
        ctx.setRevision((await negotiated(home, [], target(srv))).protocolVersion);
        await strictListing(home, target(srv), { outputSchemas });
        checkServerLog(srv.since(mark));
      });
    }

    // Sessionless (2026-07-28): the identity travels with each call, as session_token or as the header.
    const era = ['--protocol-era', 'auto'];
    for (const headerIdentity of [false, true]) {
      await cell({ client: `mcp-inspector-${version}-auto`, transport: servers.transport({}, headerIdentity) }, async (ctx) => {
        const srv = await servers.get();
        const mark = srv.mark();
        const to = target(srv, headerIdentity ? randomBytes(16).toString('hex') : undefined);
        const init = await negotiated(home, era, to);
        ctx.setRevision(init.protocolVersion);
        await strictListing(home, to, {});
        const r = await walkthroughWithPeer({ bin, db: srv.db, slug: `inspector-auto${headerIdentity ? '-hdr' : ''}`, http: true, headerIdentity,
          instructions: init.instructions, call: cliCall(home, era, to), log: ctx.log });
        if (!headerIdentity) check(r.passToken, `the instructions a ${init.protocolVersion} client sees never say to pass session_token: ${init.instructions}`);
        checkServerLog(srv.since(mark));
        return { note: headerIdentity ? 'no session_token passed (header)' : 'passed session_token as told' };
      });
    }
  } finally {
    await servers.stopAll();
    rmSync(tmp, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  }
  process.exit(allPassed ? 0 : 1);
}

main().catch((e) => brokeOff('mcp-inspector', e));
