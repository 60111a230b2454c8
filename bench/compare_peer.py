#!/usr/bin/env python3
"""Side-by-side latency of mcp-session-coordinator and its most popular peer, mcp-agent-mail.

Both servers are driven by the same client (the official MCP Python SDK, 2.x) over stdio, on the
same machine, in the same run, one after the other, each with a fresh data directory. For each of
four equivalent operations it times N calls (after a few untimed warm-up calls) and reports p50
and p99 in milliseconds, plus the ratio ours/peer (below 1 means we are faster):

  operation  ours                                peer (mcp-agent-mail)
  register   session_register (fresh name)       register_agent (fresh name)
  reserve    lock_acquire (fresh path)           file_reservation_paths (fresh path)
  send       message_send to a second session    send_message to a second agent
  inbox      message_list of that session        fetch_inbox of that agent

Each reservation is undone right after it is timed (lock_release / release_file_reservations,
untimed), so neither server accumulates live locks that later calls must check.

Usage:  compare_peer.py [--iterations N | --quick] [--json PATH] [--server BIN] [--peer-python PY]
If the peer cannot be started or one of its calls fails, the exact error is printed, the peer is
marked unavailable in the table and the JSON, and our side is still reported. Exit status is 0
when our server completed every call, 1 otherwise.
"""
import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

REPO = Path(__file__).resolve().parent.parent
PROJECT = "bench-app"
WARMUP = 5
CALL_TIMEOUT_SECONDS = 60  # generous: the peer imports litellm & co. before it answers initialize
INBOX_LIMIT = 20  # the peer's fetch_inbox default; ours defaults to 50, so both are told 20
OPERATIONS = ("register", "reserve", "send", "inbox")

# mcp-agent-mail 0.1.0 ships no stdio entry point (its CLI serves Streamable HTTP only), but the
# FastMCP server it builds runs on stdio like any other. Benchmarking it over HTTP instead would
# put a different transport on one side of the comparison.
PEER_LAUNCH = (
    "from mcp_agent_mail.app import build_mcp_server; "
    "build_mcp_server().run(transport='stdio', show_banner=False)"
)


class CallFailed(Exception):
    """A tool call that answered with an error instead of doing its job."""


class Ours:
    label = "mcp-session-coordinator"

    def __init__(self, binary):
        self.binary = binary

    def params(self, data_dir):
        return StdioServerParameters(
            command=str(self.binary),
            env={"MCP_COORDINATOR_DB_PATH": str(data_dir / "coordinator.db")},
            cwd=str(data_dir),  # lock paths are relative to the working directory
        )

    async def setup(self, call):
        # Session ids are passed explicitly: each fresh session_register on this connection would
        # otherwise become the connection's default session.
        self.sender = (await call("session_register", {"name": "sender", "project": PROJECT}))["session_id"]
        self.recipient = (await call("session_register", {"name": "recipient", "project": PROJECT}))["session_id"]

    def register(self, i):
        return ("session_register", {"name": f"Agent{i}", "project": PROJECT}), None

    def reserve(self, i):
        args = {"session_id": self.sender, "file_path": f"src/bench/file{i}.rs"}
        return ("lock_acquire", args), ("lock_release", args)

    def send(self, i):
        args = {"from_session": self.sender, "to_session": self.recipient, "content": f"bench message {i}"}
        return ("message_send", args), None

    def inbox(self, i):
        return ("message_list", {"session_id": self.recipient, "limit": INBOX_LIMIT}), None

    @staticmethod
    def failure(tool, payload):
        if tool == "lock_acquire" and payload.get("granted") is not True:
            return f"lock not granted: {payload}"
        return None


class Peer:
    label = "mcp-agent-mail"

    def __init__(self, python):
        self.python = python

    def params(self, data_dir):
        return StdioServerParameters(
            command=str(self.python),
            args=["-c", PEER_LAUNCH],
            env={
                "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'storage.sqlite3'}",
                "STORAGE_ROOT": str(data_dir / "archive"),  # its per-project git repository
                # Its per-tool Rich panels are printed to stdout, which stdio reserves for MCP.
                "TOOLS_LOG_ENABLED": "false",
                # Otherwise importing litellm downloads a model price list at every start.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LLM_ENABLED": "false",
                # FastMCP logs every call at DEBUG to stderr here; ours logs nothing per call.
                "FASTMCP_LOG_LEVEL": "WARNING",
                # Expose file_reservation_paths directly rather than through call_extended_tool.
                "MCP_TOOLS_MODE": "extended",
                # Keep the user's ~/.gitconfig (hooks, signing) out of its git commits.
                "HOME": str(data_dir),
            },
            cwd=str(data_dir),  # it reads a .env from its working directory
        )

    async def setup(self, call):
        await call("ensure_project", {"human_key": PROJECT})
        for name in ("Sender", "Recipient"):
            await call("register_agent", {"project_key": PROJECT, "program": "bench", "model": "none", "name": name})

    def register(self, i):
        args = {"project_key": PROJECT, "program": "bench", "model": "none", "name": f"Agent{i}"}
        return ("register_agent", args), None

    def reserve(self, i):
        args = {"project_key": PROJECT, "agent_name": "Sender", "paths": [f"src/bench/file{i}.rs"]}
        return ("file_reservation_paths", args), ("release_file_reservations", args)

    def send(self, i):
        args = {
            "project_key": PROJECT,
            "sender_name": "Sender",
            "to": ["Recipient"],
            "subject": f"bench {i}",
            "body_md": f"bench message {i}",
        }
        return ("send_message", args), None

    def inbox(self, i):
        # include_bodies: our message_list always returns the message text.
        args = {"project_key": PROJECT, "agent_name": "Recipient", "limit": INBOX_LIMIT, "include_bodies": True}
        return ("fetch_inbox", args), None

    @staticmethod
    def failure(tool, payload):
        # A reservation conflict on send_message comes back as a normal result with an "error" key.
        if isinstance(payload, dict) and "error" in payload:
            return str(payload["error"])
        return None


def text(result):
    return " ".join(getattr(block, "text", "") for block in result.content)


def payload(result):
    """The tool's answer: structuredContent when present, else its text as JSON."""
    if result.structured_content is not None:
        return result.structured_content
    try:
        return json.loads(text(result))
    except json.JSONDecodeError:
        return {"_text": text(result)}


def describe(exc):
    """One line per underlying error: anyio wraps transport failures in exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def stderr_tail(log_path, lines=15):
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def summarize(samples_ms):
    ordered = sorted(samples_ms)
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) > 1 else ordered[0]
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(p99, 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
        "samples": len(ordered),
    }


async def measure(server, iterations):
    """Start one server on a fresh data dir, set it up, and time every operation."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{server.label}-"))
    log_path = data_dir / "server-stderr.log"
    report = {"label": server.label}
    with open(log_path, "w") as log:
        try:
            # Both servers speak the 2025-11-25 initialize handshake; the peer knows nothing newer,
            # so ours is held to the same lifecycle rather than its sessionless 2026-07-28 one.
            transport = stdio_client(server.params(data_dir), errlog=log)
            started = time.perf_counter()
            async with Client(transport, mode="legacy", read_timeout_seconds=CALL_TIMEOUT_SECONDS) as client:
                report["startup_ms"] = round((time.perf_counter() - started) * 1000, 1)
                report["server_info"] = client.server_info.model_dump(exclude_none=True)
                report["protocol_version"] = str(client.protocol_version)

                async def call(tool, args):
                    result = await client.call_tool(tool, args)
                    if result.is_error:
                        raise CallFailed(f"{tool} {json.dumps(args)} -> {text(result)}")
                    answer = payload(result)
                    problem = server.failure(tool, answer)
                    if problem:
                        raise CallFailed(f"{tool} {json.dumps(args)} -> {problem}")
                    return answer

                await server.setup(call)
                report["operations"] = {}
                for op in OPERATIONS:
                    samples = []
                    for i in range(WARMUP + iterations):
                        (tool, args), undo = getattr(server, op)(i)
                        t0 = time.perf_counter()
                        await call(tool, args)
                        elapsed_ms = (time.perf_counter() - t0) * 1000
                        if i >= WARMUP:
                            samples.append(elapsed_ms)
                        if undo:
                            await call(*undo)
                    report["operations"][op] = {"tool": tool, **summarize(samples)}
            report["available"] = True
        except Exception as exc:  # report the failure and keep going: the other side still counts
            report["available"] = False
            report["error"] = describe(exc)
            report["stderr_tail"] = stderr_tail(log_path)
            report["server_stderr"] = str(log_path)  # kept, with the data it wrote, for a look
            return report
    shutil.rmtree(data_dir, ignore_errors=True)  # the peer's git archive alone runs to tens of MB
    return report


def peer_package_version(python):
    """The installed mcp-agent-mail version (its serverInfo carries FastMCP's version instead)."""
    try:
        out = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('mcp-agent-mail'))"],
            capture_output=True, text=True, timeout=30,
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def ratios(ours, peer):
    if not (ours.get("available") and peer.get("available")):
        return None
    return {
        op: {
            stat: round(ours["operations"][op][f"{stat}_ms"] / peer["operations"][op][f"{stat}_ms"], 4)
            for stat in ("p50", "p99")
        }
        for op in OPERATIONS
    }


def print_table(results):
    ours, peer, ratio = results["ours"], results["peer"], results["ratios"]

    def cell(side, op, stat):
        return f"{side['operations'][op][f'{stat}_ms']:.3f}" if side.get("available") else "n/a"

    def tools(op):
        names = [side["operations"][op]["tool"] for side in (ours, peer) if side.get("available")]
        return " / ".join(names) or "n/a"

    header = ("operation", "tool (ours / peer)", "ours p50", "ours p99", "peer p50", "peer p99", "p50 ratio", "p99 ratio")
    rows = [header]
    for op in OPERATIONS:
        rows.append((
            op,
            tools(op),
            cell(ours, op, "p50"),
            cell(ours, op, "p99"),
            cell(peer, op, "p50"),
            cell(peer, op, "p99"),
            f"{ratio[op]['p50']:.4f}" if ratio else "n/a",
            f"{ratio[op]['p99']:.4f}" if ratio else "n/a",
        ))
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    print(f"\n{results['iterations']} timed calls per operation after {WARMUP} warm-up calls; "
          f"milliseconds; ratio = ours/peer (below 1: ours is faster)")
    for n, row in enumerate(rows):
        cells = [value.ljust(w) if c < 2 else value.rjust(w) for c, (value, w) in enumerate(zip(row, widths, strict=True))]
        print("  ".join(cells))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for key, side in (("ours", ours), ("peer", peer)):
        if side.get("available"):
            print(f"{key}: {side['label']} {side.get('version') or side['server_info'].get('version', '')}, "
                  f"protocol {side['protocol_version']}, started in {side['startup_ms']} ms")
        else:
            print(f"{key}: {side['label']} UNAVAILABLE: {side['error']}")
            if side.get("stderr_tail"):
                print(f"  last lines of its stderr ({side['server_stderr']}):")
                print("\n".join("    " + line for line in side["stderr_tail"].splitlines()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--iterations", type=int, default=200, help="timed calls per operation (default 200)")
    size.add_argument("--quick", action="store_true", help="20 timed calls per operation")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "peer.json",
                        help="where to write the results (default bench/results/peer.json)")
    parser.add_argument("--server", type=Path, default=REPO / "target" / "release" / "mcp-session-coordinator",
                        help="our server binary (default target/release/mcp-session-coordinator)")
    parser.add_argument("--peer-python", type=Path, default=REPO / "bench" / ".peer-venv" / "bin" / "python",
                        help="a Python with mcp-agent-mail installed (default bench/.peer-venv/bin/python)")
    args = parser.parse_args()
    iterations = 20 if args.quick else args.iterations
    if iterations < 1:
        parser.error("--iterations must be at least 1")

    peer = Peer(args.peer_python)
    results = {
        "iterations": iterations,
        "warmup": WARMUP,
        "inbox_limit": INBOX_LIMIT,
        "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
    }
    for key, server in (("ours", Ours(args.server)), ("peer", peer)):
        print(f"==> {server.label}: {iterations} x {len(OPERATIONS)} operations", flush=True)
        results[key] = asyncio.run(measure(server, iterations))
        if not results[key]["available"]:
            print(f"    failed: {results[key]['error']}", flush=True)
    results["peer"]["version"] = peer_package_version(args.peer_python)
    results["ratios"] = ratios(results["ours"], results["peer"])

    print_table(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0 if results["ours"]["available"] else 1


if __name__ == "__main__":
    sys.exit(main())
