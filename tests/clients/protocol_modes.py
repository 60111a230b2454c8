#!/usr/bin/env python3
"""Two sessions through the official Python MCP SDK's high-level Client, one per lifecycle it
offers: "auto" (which negotiates the sessionless 2026-07-28 protocol) and "legacy" (the
initialize handshake, 2025-11-25). Both servers share one database, so each must see the other.

Usage:  python3 protocol_modes.py -- COMMAND [ARG ...]
Prints one line per check and 'N passed, N failed'; exits 0 when all pass.
"""
import asyncio
import os
import sys
import tempfile

from mcp import Client, StdioServerParameters

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    passed, failed = (passed + 1, failed) if ok else (passed, failed + 1)
    print(f"{'ok  ' if ok else 'FAIL'}  {name} {'' if ok else detail}")


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent", None) or {}


async def main(command):
    db = os.path.join(tempfile.mkdtemp(prefix="mcp-modes-"), "coordinator.db")
    params = StdioServerParameters(command=command[0], args=command[1:], env={"MCP_COORDINATOR_DB_PATH": db})
    async with Client(params, mode="auto") as modern, Client(params, mode="legacy") as legacy:
        check("auto mode negotiates 2026-07-28", str(modern.protocol_version) == "2026-07-28", modern.protocol_version)
        check("legacy mode negotiates 2025-11-25", str(legacy.protocol_version) == "2025-11-25", legacy.protocol_version)

        a = structured(await modern.call_tool("session_register", {"name": "modern", "project": "app"}))
        b = structured(await legacy.call_tool("session_register", {"name": "legacy", "project": "app"}))
        check("both register", bool(a.get("session_id")) and bool(b.get("session_id")), (a, b))

        granted = structured(await modern.call_tool("lock_acquire", {"file_path": "src/a.ts"}))
        check("the sessionless client locks without repeating its session_id", granted.get("granted") is True, granted)
        denied = structured(await legacy.call_tool("lock_acquire", {"file_path": "src/a.ts"}))
        check("the other client is denied and told by whom",
              denied.get("granted") is False and denied.get("holder_name") == "modern", denied)

        bad = await legacy.call_tool("lock_acquire", {"file_path": "src/a.ts", "lock_type": "bogus"})
        is_error = getattr(bad, "is_error", getattr(bad, "isError", False))
        text = " ".join(getattr(block, "text", "") for block in bad.content)
        check("bad input is a readable tool error", is_error and "exclusive, shared, intent" in text, text)


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
