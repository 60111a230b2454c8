#!/usr/bin/env python3
"""The other side of the client-matrix walkthrough: a peer session that holds a file a client wants.

  .venv/bin/python tests/clients/matrix/peer.py --server BIN --db DB --project P --name PEER \
      --file F --target T [--symbol PATH#FUNCTION] [--timeout 60]

Starts its own stdio server (`BIN --db-path DB`) through the official Python SDK, so it shares the
database with whatever the client under test uses (its own stdio server, or an HTTP server on DB).
Then, in project P: registers PEER, takes an exclusive lock on F and prints `ready`; waits for a
live session named T; sends T "PEER holds F; tell me when you need it"; waits for a message from T;
releases F, prints `released` and exits 0. On timeout (or any failure) it says why on stderr and
exits 1. stdout carries only those two lines, flushed at once, so a driver can wait for them.
"""
import argparse
import asyncio
import signal
import sys
import time

from mcp import Client, StdioServerParameters

POLL = 0.25  # seconds between looks at the database while waiting


class PeerError(Exception):
    """A reason to give up, worded for the person reading the driver's log."""


def say(line):
    print(line, flush=True)


def fail(reason):
    print(f"peer: {reason}", file=sys.stderr, flush=True)


def structured(result):
    return getattr(result, "structured_content", None) or getattr(result, "structuredContent", None) or {}


def text(result):
    return " ".join(getattr(block, "text", "") for block in result.content)


async def call(client, tool, args):
    """Call a tool; a tool error is a reason to stop (the peer's own calls must all work)."""
    result = await client.call_tool(tool, args)
    if getattr(result, "is_error", getattr(result, "isError", False)):
        raise PeerError(f"{tool}({args}) failed: {text(result)}")
    return structured(result)


async def wait_for(what, deadline, probe):
    """Poll probe() until it returns something truthy; PeerError naming `what` at the deadline."""
    last = None
    while True:
        found, last = await probe()
        if found:
            return found
        if time.monotonic() >= deadline:
            raise PeerError(f"timed out waiting for {what}; last saw: {last}")
        await asyncio.sleep(POLL)


async def run(args):
    deadline = time.monotonic() + args.timeout
    # --log warn: the peer's stderr should carry its own reason and real server trouble, not info lines.
    params = StdioServerParameters(command=args.server, args=["--db-path", args.db, "--log", "warn"])
    # legacy: one initialize handshake, then the stdio connection itself identifies PEER.
    async with Client(params, mode="legacy") as client:
        me = await call(client, "session_register", {"name": args.name, "project": args.project})
        if not me.get("session_id"):
            raise PeerError(f"session_register returned no session_id: {me}")
        lock = await call(client, "lock_acquire", {"file_path": args.file, "lock_type": "exclusive"})
        if lock.get("granted") is not True:
            raise PeerError(f"could not lock {args.file}: {lock}")
        if args.symbol:
            held = await call(client, "lock_acquire", {"file_path": args.symbol})
            if held.get("granted") is not True:
                raise PeerError(f"could not lock {args.symbol}: {held}")
        say("ready")

        async def target_session():
            listed = await call(client, "session_list", {"project": args.project})
            sessions = listed.get("sessions") or []
            match = next((s for s in sessions if s.get("name") == args.target), None)
            return match, [s.get("name") for s in sessions]

        target = await wait_for(f"a live session named {args.target!r} in project {args.project!r}",
                                deadline, target_session)
        await call(client, "message_send", {"to_session": target["session_id"],
                                            "content": f"{args.name} holds {args.file}; tell me when you need it"})

        async def message_from_target():
            inbox = await call(client, "message_list", {})
            messages = inbox.get("messages") or []
            match = next((m for m in messages if m.get("from_name") == args.target), None)
            return match, [(m.get("from_name"), m.get("content")) for m in messages]

        await wait_for(f"a message from {args.target!r}", deadline, message_from_target)
        released = await call(client, "lock_release", {"file_path": args.file})
        if released.get("released") is not True:
            raise PeerError(f"lock_release({args.file}) did not release: {released}")
        say("released")


async def main(args):
    # A driver that gives up sends SIGTERM: cancel so the stdio server is closed (and PEER ends).
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        try:
            # The hard limit: a stuck server or SDK call must not hang the peer past its timeout.
            async with asyncio.timeout(args.timeout + 10):
                await run(args)
        except BaseExceptionGroup as group:  # the SDK's task groups wrap the real cause
            raise leaves(group)[0] from None
        return 0
    except PeerError as e:
        fail(str(e))
    except TimeoutError:
        fail(f"no progress within {args.timeout + 10} s (server or SDK call hung)")
    except asyncio.CancelledError:
        fail("stopped by a signal")
    except Exception as e:
        fail(f"{type(e).__name__}: {e}" + (f" ({args.server})" if isinstance(e, OSError) else ""))
    return 1


def leaves(group):
    """The innermost exceptions of an exception group, PeerErrors first (they carry the reason)."""
    flat = [leaf for e in group.exceptions for leaf in (leaves(e) if isinstance(e, BaseExceptionGroup) else [e])]
    return sorted(flat, key=lambda e: not isinstance(e, PeerError))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", required=True, help="the mcp-session-coordinator binary")
    p.add_argument("--db", required=True, help="the database the client under test uses")
    p.add_argument("--project", required=True)
    p.add_argument("--name", required=True, help="this peer's session name")
    p.add_argument("--file", required=True, help="the file the peer locks")
    p.add_argument("--symbol", help="also lock this symbol key (path#Function) for the whole run")
    p.add_argument("--target", required=True, help="the session name of the client under test")
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for the client (default 60)")
    sys.exit(asyncio.run(main(p.parse_args())))
