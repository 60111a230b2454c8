#!/usr/bin/env python3
"""Client matrix: the Python clients (official SDK `mcp` 2.x and `fastmcp` 4.x) run the walkthrough.

  .venv/bin/python tests/clients/matrix/python_clients.py --server BIN                # stdio
  .venv/bin/python tests/clients/matrix/python_clients.py --server BIN --url URL --db DB [--token T]

Without --url every client starts its own stdio server (`BIN --db-path DB`, DB a throwaway one);
with --url it talks Streamable HTTP to the running `serve --http` at URL, whose database is DB (the
peer needs it), sending `Authorization: Bearer T` when --token is given. Each client runs once per
lifecycle it offers: mode="auto" (sessionless 2026-07-28) and mode="legacy" (initialize, 2025-11-25).
Over HTTP one more cell: the SDK in auto mode with a `Coordinator-Session-Token` header, where the
model passes no session_token at all (transport http+bearer+header, or http+header without --token).

A cell is the brief's walkthrough against tests/clients/matrix/peer.py, plus: 20 tools listed, a bad
argument is a tool error naming it (fastmcp: a ToolError), and nothing logged at WARNING or warned
through `warnings` from connect to close. Over HTTP also: a 2026-07-28 client is told to pass
session_token (instructions, and the error when it forgets), and a second client of the same kind
registering the cell's live name without its token is refused. Over stdio, the server's stderr
must carry no WARN/ERROR line (over HTTP the driver reads the server's log). What
protocol_modes.py and http_clients.py already check (token refusal, acting for another
connection's session) is not repeated here.

Prints a line per failed assertion, then one line per cell, and exits 1 if any cell failed:
  MATRIX client=<python-sdk|fastmcp|python-sdk+session-header>
         transport=<stdio|http|http+header|http+bearer|http+bearer+header>
         revision=<negotiated> result=<pass|fail> [note=<first failure>]
where http is a server without --token, http+bearer one with it (sent as `Authorization: Bearer`),
and +header a cell sending the Coordinator-Session-Token header too.
"""
import argparse
import asyncio
import logging
import os
import re
import secrets
import sys
import tempfile
import time
import warnings

import fastmcp
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from fastmcp.exceptions import ToolError
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_NAME = "peer"
FILE = "src/shared/config.ts"
TOOL_COUNT = 20
CELL_TIMEOUT = 55  # seconds: the walkthrough itself needs ~2-3 s; a hang must not stall the matrix


class CellFailed(Exception):
    """An assertion of the walkthrough failed; the message is what a user would have seen."""


# ---------------------------------------------------------------------------------------------
# Capturing warnings: Python `warnings` and any log record at WARNING or above, from any logger
# (the SDK logs e.g. `Session termination failed: 202` when it closes an HTTP session).

class Captured(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(f"{record.name}: {record.getMessage()}")


CAPTURE = Captured()


def install_capture():
    logging.getLogger().addHandler(CAPTURE)
    # fastmcp's loggers may not propagate to the root logger: listen on them directly as well.
    for name in ("fastmcp", "FastMCP"):
        lg = logging.getLogger(name)
        if not lg.propagate:
            lg.addHandler(CAPTURE)


# ---------------------------------------------------------------------------------------------
# The two client libraries behind one small interface: call(tool, args) -> (is_error, data, text).

def _text(content):
    return " ".join(getattr(block, "text", "") for block in content or [])


class _Connected:
    """What both libraries' clients say about the server once connected (`self.client`)."""

    @property
    def revision(self):
        return str(self.client.protocol_version)

    @property
    def instructions(self):
        return self.client.instructions or ""

    @property
    def server_name(self):
        info = self.client.server_info
        return getattr(info, "name", None)


class SdkClient(_Connected):
    """The official SDK's high-level mcp.Client."""
    label = "python-sdk"

    def __init__(self, mode, server, db, url, headers, errlog):
        self.mode = mode
        if url is None:
            params = StdioServerParameters(command=server, args=["--db-path", db])
            transport = stdio_client(params, errlog=errlog)
            self.http = None
        else:
            self.http = create_mcp_http_client(headers=headers)
            transport = streamable_http_client(url, http_client=self.http)
        self.client = Client(transport, mode=mode)

    async def __aenter__(self):
        if self.http is not None:
            await self.http.__aenter__()
        try:
            await self.client.__aenter__()
        except BaseException:
            if self.http is not None:
                await self.http.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc):
        try:
            await self.client.__aexit__(*exc)
        finally:
            if self.http is not None:
                await self.http.__aexit__(None, None, None)

    async def tool_names(self):
        return [tool.name for tool in (await self.client.list_tools()).tools]

    async def call(self, tool, args):
        result = await self.client.call_tool(tool, args)
        data = getattr(result, "structured_content", None) or {}
        return bool(result.is_error), data, _text(result.content)

    async def bad_argument(self, tool, args):
        """What a user sees for a bad argument: (reported as an error?, its text)."""
        is_error, _, text = await self.call(tool, args)
        return is_error, text


class FastMcpClient(_Connected):
    """fastmcp.Client; call_tool raises ToolError on isError unless told not to."""
    label = "fastmcp"

    def __init__(self, mode, server, db, url, headers, errlog):
        self.mode = mode
        if url is None:
            # keep_alive=False: close the server with the client, as an agent's client would.
            transport = StdioTransport(command=server, args=["--db-path", db], keep_alive=False, log_file=errlog)
        else:
            transport = StreamableHttpTransport(url, headers=headers or None)
        self.client = fastmcp.Client(transport, mode=mode, timeout=40)

    async def __aenter__(self):
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc):
        await self.client.__aexit__(*exc)

    async def tool_names(self):
        return [tool.name for tool in await self.client.list_tools()]

    async def call(self, tool, args):
        result = await self.client.call_tool(tool, args, raise_on_error=False)
        return bool(result.is_error), result.structured_content or {}, _text(result.content)

    async def bad_argument(self, tool, args):
        try:
            result = await self.client.call_tool(tool, args)  # the default: raise on isError
        except ToolError as e:
            return True, str(e)
        return False, f"no ToolError; got {result.structured_content or _text(result.content)}"


# ---------------------------------------------------------------------------------------------
# The walkthrough.

async def start_peer(server, db, project, target):
    cmd = [sys.executable, os.path.join(HERE, "peer.py"), "--server", server, "--db", db, "--project", project,
           "--name", PEER_NAME, "--file", FILE, "--target", target, "--timeout", "45"]
    peer = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(peer.stdout.readline(), 30)
    except TimeoutError:
        line = b""
    if line.strip() != b"ready":
        peer.kill()
        _, err = await peer.communicate()
        raise CellFailed(f"peer did not get ready: {err.decode(errors='replace').strip()[-500:]}")
    return peer


async def finish_peer(peer):
    try:
        out, err = await asyncio.wait_for(peer.communicate(), 20)
    except TimeoutError:
        peer.kill()
        out, err = await peer.communicate()
    if peer.returncode != 0 or b"released" not in out:
        raise CellFailed(f"peer exited {peer.returncode}: {err.decode(errors='replace').strip()[-500:]}")


def expect(ok, what, got):
    """A step the rest of the walkthrough depends on: stop the cell when it fails."""
    if not ok:
        raise CellFailed(f"{what}; got: {str(got)[:400]}")


def check(cell, ok, what, got):
    """A finding that does not block the next steps: record it and go on, so one run shows them all."""
    if not ok:
        cell["failures"].append(f"{what}; got: {str(got)[:400]}")


async def walkthrough(c, cell, server, db, transport, session_header, intruder=None):
    project = f"matrix-{cell['client']}-{c.mode}-{transport}-{secrets.token_hex(3)}"
    me = f"{cell['client']}-{c.mode}"
    peer = await start_peer(server, db, project, me)
    try:
        async with c:
            cell["revision"] = c.revision
            # What the client shows as connected: the server by its name.
            check(cell, c.server_name == "mcp-session-coordinator", "the client should show the server's name",
                  c.server_name)
            expected = "2025-11-25" if c.mode == "legacy" else "2026-07-28"
            check(cell, c.revision == expected, f"mode={c.mode} should negotiate {expected}", c.revision)
            names = await c.tool_names()
            check(cell, len(names) == TOOL_COUNT, f"tools/list should list {TOOL_COUNT} tools", f"{len(names)}: {names}")

            # 1. register. A sessionless (2026-07-28) client over HTTP has no connection to remember
            # the session by: the server must tell the model to pass session_token, and the model
            # passes it from here on, read from this answer (unless the person configured the header).
            is_error, reg, text = await c.call("session_register", {"name": me, "project": project})
            expect(not is_error and reg.get("session_id"), "session_register should return a session_id", text)
            auth = {}
            if transport != "stdio" and c.revision == "2026-07-28" and not session_header:
                check(cell, "session_token" in c.instructions,
                       "the server's instructions to a 2026-07-28 client over HTTP should say to pass session_token",
                       c.instructions)
                expect(reg.get("session_token"), "session_register over HTTP should return a session_token", text)
                forgot_error, _, forgot = await c.call("message_list", {})
                check(cell, forgot_error and "session_token" in forgot,
                       "a call without session_token should be a tool error telling to pass session_token", forgot)
                auth = {"session_token": reg["session_token"]}

            # 2. the peer holds the file: denied, and told by whom.
            is_error, lock, text = await c.call("lock_acquire", {"file_path": FILE, **auth})
            expect(not is_error and lock.get("granted") is False and lock.get("holder_name") == PEER_NAME,
                   f"lock_acquire should be denied naming holder {PEER_NAME!r}", text)

            # 3. the peer's message arrives (it sends once it sees this session live).
            wanted = f"{PEER_NAME} holds {FILE}; tell me when you need it"
            deadline, inbox, found = time.monotonic() + 20, {}, None
            while found is None and time.monotonic() < deadline:
                is_error, inbox, text = await c.call("message_list", {**auth})
                expect(not is_error, "message_list should work", text)
                found = next((m for m in inbox.get("messages") or [] if m.get("from_name") == PEER_NAME), None)
                if found is None:
                    await asyncio.sleep(0.3)
            expect(found is not None, f"a message from {PEER_NAME} within 20 s", inbox)
            expect(found.get("content") == wanted, "the peer's message text", found)
            check(cell, (inbox.get("unread_messages") or {}).get("count", 0) > 0,
                   "the answer showing an unread message should carry unread_messages.count > 0", inbox)

            # 4. answer; 5. wait for the lock (the peer releases it on our message).
            is_error, sent, text = await c.call("message_send", {"to_session": PEER_NAME,
                                                                 "content": f"done reading; I need {FILE}", **auth})
            expect(not is_error, "message_send to the peer should work", text)
            is_error, lock, text = await c.call("lock_acquire", {"file_path": FILE, "wait_seconds": 30, **auth})
            expect(not is_error and lock.get("granted") is True, "lock_acquire with wait_seconds=30 should be granted", text)

            # 6. release; 7. a bad argument is a tool error that names it.
            is_error, rel, text = await c.call("lock_release", {"file_path": FILE, **auth})
            expect(not is_error and rel.get("released") is True, "lock_release should release", text)
            reported, text = await c.bad_argument("lock_acquire", {"file_path": FILE, "ttl_seconds": -5, **auth})
            check(cell, reported and "ttl_seconds" in text, "ttl_seconds=-5 should be a tool error naming ttl_seconds", text)

            # Over HTTP, another connection must not take this live session's name without its token.
            if intruder is not None:
                async with intruder:
                    is_error, _, text = await intruder.call("session_register", {"name": me, "project": project})
                check(cell, is_error and "session_token" in text,
                      "session_register of a live name from another connection without its token should be "
                      "refused, saying to pass session_token", text)
    except BaseException:
        if peer.returncode is None:  # the walkthrough broke off: the peer's verdict no longer matters
            peer.kill()
            await peer.wait()
        raise
    await finish_peer(peer)


async def run_cell(cls, mode, args, transport, session_header=False, tmp=None):
    name = cls.label + ("+session-header" if session_header else "")
    if session_header:
        transport += "+header"
    cell = {"client": name, "transport": transport, "revision": "?", "failures": []}
    headers = {}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    if session_header:
        headers["Coordinator-Session-Token"] = secrets.token_hex(16)
    db = args.db or os.path.join(tmp, f"{name}-{mode}.db")
    errlog = open(os.path.join(tmp, f"{name}-{mode}.stderr"), "w+")
    CAPTURE.lines.clear()
    started = time.monotonic()
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            client = cls(mode, args.server, db, args.url, headers, errlog)
            intruder = None
            if args.url:  # a second client of the same kind, without any session header
                plain = {k: v for k, v in headers.items() if k != "Coordinator-Session-Token"}
                intruder = cls(mode, args.server, db, args.url, plain, errlog)
            async with asyncio.timeout(CELL_TIMEOUT):
                await walkthrough(client, cell, args.server, db, transport, session_header, intruder)
            # Closing is inside the capture: warnings logged on close (DELETE) count.
        for w in warned:
            CAPTURE.lines.append(f"{w.category.__name__}: {w.message}")
        if CAPTURE.lines:
            raise CellFailed("the client warned: " + " | ".join(dict.fromkeys(CAPTURE.lines)))
    except CellFailed as e:
        cell["failures"].append(str(e))
    except TimeoutError:
        cell["failures"].append(f"no result within {CELL_TIMEOUT} s")
    except BaseException as e:  # the SDKs wrap transport trouble in exception groups
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        cell["failures"].append(describe(e))
    finally:
        # Over stdio the server's stderr is ours to read: a warning it logged is a finding too.
        # (Over HTTP the driver reads the server's log.)
        errlog.seek(0)
        trouble = [line.strip() for line in errlog if re.search(r"\b(WARN|ERROR)\b", line)]
        if trouble:
            cell["failures"].append("the server logged: " + " | ".join(trouble[:3]))
        errlog.close()
    cell["seconds"] = time.monotonic() - started
    return cell


def describe(e):
    """The innermost causes of a (possibly grouped) exception, one line."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(x) for x in e.exceptions)
    if isinstance(e, CellFailed):
        return str(e)
    return f"{type(e).__name__}: {e}"


def matrix_line(cell):
    result = "fail" if cell["failures"] else "pass"
    line = f"MATRIX client={cell['client']} transport={cell['transport']} revision={cell['revision']} result={result}"
    if cell["failures"]:
        note = re.sub(r"\s+", " ", cell["failures"][0]).strip()[:240]
        more = len(cell["failures"]) - 1
        line += f" note={note}" + (f" (+{more} more)" if more else "")
    return line


async def main(args):
    install_capture()
    transport = "stdio" if not args.url else ("http+bearer" if args.token else "http")
    plan = [(SdkClient, "auto", False), (SdkClient, "legacy", False),
            (FastMcpClient, "auto", False), (FastMcpClient, "legacy", False)]
    if args.url:
        plan.append((SdkClient, "auto", True))
    cells = []
    with tempfile.TemporaryDirectory(prefix="matrix-python-") as tmp:
        for cls, mode, header in plan:
            cell = await run_cell(cls, mode, args, transport, header, tmp)
            for failure in cell["failures"]:
                print(f"FAIL {cell['client']} {mode} {cell['transport']}: {failure}", flush=True)
            print(f"# {cell['client']} mode={mode} {cell['transport']}: {cell['seconds']:.1f} s", flush=True)
            cells.append(cell)
    for cell in cells:
        print(matrix_line(cell), flush=True)
    return 1 if any(cell["failures"] for cell in cells) else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True, help="the mcp-session-coordinator binary")
    p.add_argument("--url", help="MCP URL of a running `serve --http` (omit for stdio)")
    p.add_argument("--token", help="bearer token of that server")
    p.add_argument("--db", help="that server's database (required with --url: the peer uses it)")
    a = p.parse_args()
    if a.url and not a.db:
        p.error("--url needs --db (the peer joins the server's database)")
    a.server = os.path.abspath(a.server)
    sys.exit(asyncio.run(main(a)))
