#!/usr/bin/env python3
"""What one tool call costs over Streamable HTTP, seen from the official Python SDK.

Usage:  .venv/bin/python bench/http_latency.py BINARY [CALLS] [none|shared|person]
Starts `BINARY serve --http 127.0.0.1:0` on a fresh database, connects one client per lifecycle
(legacy = 2025-11-25 with a connection, auto = sessionless 2026-07-28 with session_token), and
times CALLS lock_acquire + lock_release pairs for each. Prints p50 and p99 per call, in ms.
The client's own cost is included: this is what an HTTP MCP client waits, not server time.
The third argument chooses the bearer token: none (default), the shared MCP_COORDINATOR_TOKEN,
or a person's (`token add`), which the server looks up in the database at every request.
"""
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


async def timed(client, name, args):
    start = time.perf_counter()
    await client.call_tool(name, args)
    return (time.perf_counter() - start) * 1000


async def run(url, mode, calls, bearer):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    http = create_mcp_http_client(headers=headers)
    async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        registered = await client.call_tool("session_register", {"name": f"bench-{mode}", "project": "bench"})
        token = (getattr(registered, "structured_content", None) or {}).get("session_token")
        extra = {"session_token": token} if mode == "auto" else {}
        samples = []
        for i in range(calls):
            path = {"file_path": f"src/{mode}/{i % 10}.rs", **extra}
            samples.append(await timed(client, "lock_acquire", path))
            samples.append(await timed(client, "lock_release", path))
        samples.sort()
        p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
        print(f"{mode:7} {len(samples)} calls: p50 {statistics.median(samples):.2f} ms, p99 {p99:.2f} ms")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary, calls = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200
    kind = sys.argv[3] if len(sys.argv) > 3 else "none"
    db = os.path.join(tempfile.mkdtemp(prefix="mcp-http-bench-"), "coordinator.db")
    env, bearer = dict(os.environ), None
    if kind == "shared":
        bearer = env["MCP_COORDINATOR_TOKEN"] = "b" * 40
    elif kind == "person":
        added = subprocess.run([binary, "--db-path", db, "token", "add", "bench"],
                               capture_output=True, text=True, check=True)
        bearer = added.stdout.splitlines()[0].strip()
    elif kind != "none":
        sys.exit(f"unknown token kind {kind!r}: none, shared or person")
    server = subprocess.Popen([binary, "--db-path", db, "serve", "--http", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = server.stdout.readline()
        url = line.split("MCP at ")[1].split(",")[0]
        for mode in ("legacy", "auto"):
            asyncio.run(run(url, mode, calls, bearer))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
