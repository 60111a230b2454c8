#!/usr/bin/env python3
"""The Streamable HTTP mode (`serve --http`) through the official Python MCP SDK's high-level Client.

Starts `COMMAND --db-path TEMP serve --http 127.0.0.1:0 --token RANDOM`, reads the URL it prints, and
connects two real clients with the bearer token: "legacy" (initialize handshake, 2025-11-25) as alice
and "auto" (sessionless 2026-07-28, so it passes its session_token on every later call) as bob. Checks
that requests without the token are refused, that a connection cannot act for a session it did not
register unless it shows that session's token, and that messages and tools/list work over HTTP.
The server is stopped with SIGTERM at the end.

Usage:  python3 http_clients.py -- COMMAND [ARG ...]
Prints one line per check and 'N passed, N failed'; exits 0 when all pass.
"""
import asyncio
import os
import re
import secrets
import signal
import string
import subprocess
import sys
import tempfile
import threading

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

passed = failed = 0
URL_LINE = re.compile(r"MCP at (http://\S+/mcp)")


def check(name, ok, detail=""):
    global passed, failed
    passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
    print(f"{'ok  ' if ok else 'FAIL'}  {name} {'' if ok else detail}")


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent", None) or {}


def is_error(result):
    return bool(getattr(result, "is_error", getattr(result, "isError", False)))


def text(result):
    return " ".join(getattr(block, "text", "") for block in result.content)


def start_server(command, db, token):
    """Start the server on a free port; return (process, MCP URL, stderr lines)."""
    proc = subprocess.Popen(
        [*command, "--db-path", db, "serve", "--http", "127.0.0.1:0", "--token", token],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    stderr = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    found, ready = [], threading.Event()

    def read_url():
        for line in proc.stdout:
            if not found and (m := URL_LINE.search(line)):
                found.append(m.group(1))
                ready.set()
        ready.set()  # stdout closed: the server exited

    threading.Thread(target=read_url, daemon=True).start()
    ready.wait(timeout=30)
    if not found:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"server printed no MCP URL (exit {proc.returncode}): {''.join(stderr)[-2000:]}")
    return proc, found[0], stderr


def stop_server(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def authed_client(url, token, mode):
    """A Client over Streamable HTTP whose every request carries the bearer token."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return http, Client(streamable_http_client(url, http_client=http), mode=mode)


async def unauthenticated(url):
    # The raw request: a JSON-RPC POST without (and with a wrong) Authorization header.
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    # One connection each: after a 401 the server may close the connection without saying so
    # (no `Connection: close`), so a second request on it can fail before reaching the server.
    async with httpx2.AsyncClient(timeout=10) as http:
        bare = await http.post(url, json=body, headers=headers)
    async with httpx2.AsyncClient(timeout=10) as http:
        wrong = await http.post(url, json=body, headers={**headers, "Authorization": "Bearer " + "x" * 40})
    check("a POST without the bearer token gets 401", bare.status_code == 401, (bare.status_code, bare.text[:200]))
    check("a POST with a wrong bearer token gets 401", wrong.status_code == 401, (wrong.status_code, wrong.text[:200]))

    # The SDK, with no token, must fail to connect (the error, not a session, is the result).
    for mode in ("legacy", "auto"):
        try:
            async with asyncio.timeout(20):
                async with Client(url, mode=mode) as client:
                    tools = await client.list_tools()
            check(f"the SDK ({mode}) without a token is refused", False, f"connected and listed {len(tools.tools)} tools")
        except Exception as e:  # the SDK raises MCPError (or an exception group around it)
            check(f"the SDK ({mode}) without a token is refused", True, repr(e))


async def main(command):
    db = os.path.join(tempfile.mkdtemp(prefix="mcp-http-"), "coordinator.db")
    token = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))
    proc, url, stderr = start_server(command, db, token)
    try:
        await scenario(url, token)
    finally:
        code = stop_server(proc)
        check("the server stops cleanly on SIGTERM", code == 0, f"exit {code}: {''.join(stderr)[-2000:]}")


async def scenario(url, token):
    await unauthenticated(url)

    http_a, legacy = authed_client(url, token, "legacy")
    http_b, modern = authed_client(url, token, "auto")
    async with http_a, http_b, legacy as alice_c, modern as bob_c:
        check("legacy mode negotiates 2025-11-25", str(alice_c.protocol_version) == "2025-11-25", alice_c.protocol_version)
        check("auto mode negotiates 2026-07-28", str(bob_c.protocol_version) == "2026-07-28", bob_c.protocol_version)

        alice = structured(await alice_c.call_tool("session_register", {"name": "alice", "project": "web"}))
        bob = structured(await bob_c.call_tool("session_register", {"name": "bob", "project": "web"}))
        check("both register and get a session_id and session_token",
              all(s.get("session_id") and s.get("session_token") for s in (alice, bob)), (alice, bob))
        bob_token = {"session_token": bob.get("session_token")}

        granted = structured(await alice_c.call_tool("lock_acquire", {"file_path": "src/app.py"}))
        check("alice (legacy, by connection) locks src/app.py", granted.get("granted") is True, granted)

        denied = await bob_c.call_tool("lock_acquire", {"file_path": "src/app.py", **bob_token})
        d = structured(denied)
        check("bob (sessionless, by session_token) is denied the lock and told alice holds it",
              not is_error(denied) and d.get("granted") is False and d.get("holder_name") == "alice",
              (text(denied), d))

        # Acting for a session this connection did not register, without its token, is a tool error.
        stolen = await bob_c.call_tool("lock_release", {"file_path": "src/app.py", "session_id": alice["session_id"]})
        check("bob releasing alice's lock by her session_id alone is a tool error",
              is_error(stolen) and "pass `session_token`" in text(stolen), (is_error(stolen), text(stolen)))
        held = await bob_c.call_tool("lock_check", {"file_path": "src/app.py", "project": "web"})
        h = structured(held)
        check("alice still holds the lock", not is_error(held) and h.get("locked") is True
              and alice["session_id"] in str(h), (text(held), h))

        # With alice's session_token, another connection may act for her.
        released = await bob_c.call_tool("lock_release", {"file_path": "src/app.py", "session_id": alice["session_id"],
                                                          "session_token": alice["session_token"]})
        r = structured(released)
        check("with alice's session_token bob releases her lock", not is_error(released) and r.get("released") is True,
              (text(released), r))
        after = structured(await alice_c.call_tool("lock_check", {"file_path": "src/app.py", "project": "web"}))
        check("the lock is gone", after.get("locked") is False, after)

        sent = await alice_c.call_tool("message_send", {"to_session": "bob", "content": "app.py is yours"})
        check("alice sends bob a message", not is_error(sent), (text(sent), structured(sent)))
        inbox = await bob_c.call_tool("message_list", bob_token)
        messages = structured(inbox).get("messages") or []
        check("bob's message_list (by session_token) shows it",
              not is_error(inbox) and any(m.get("content") == "app.py is yours" for m in messages),
              (text(inbox), structured(inbox)))

        tools = {tool.name: tool for tool in (await bob_c.list_tools()).tools}
        schema = getattr(tools.get("lock_acquire"), "input_schema", None) or getattr(tools.get("lock_acquire"), "inputSchema", {}) or {}
        check("tools/list over HTTP shows session_token in lock_acquire's input schema",
              "session_token" in (schema.get("properties") or {}), schema)
        check("tools/list over HTTP lists all 20 tools", len(tools) == 20, sorted(tools))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    try:
        asyncio.run(main(args))
    except Exception as e:  # a crash of the server or the transport is a failure, not a traceback
        check("client sessions completed", False, repr(e))
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and passed > 0 else 1)
