#!/usr/bin/env python3
"""Times what every edit pays for the Claude Code hook: one process started per hook event,
as Claude Code does, reading the event on stdin and answering on stdout.

Usage: bench/hook_latency.py [BINARY] [RUNS]   (default: target/release/mcp-session-coordinator, 200)

Prints p50 and p99 wall time, in milliseconds, for an edit of a free file (allowed, nothing
printed), an edit that renews the session's own lock (--acquire), and an edit of a file another
session holds (denied), on a database that also holds LOCKS other locks. Then the same with
symbol-level locks on a 5,000-line TypeScript file, where every call parses the file to find
the function the edit's old text falls in.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

LOCKS = 1000
BIG_LINES = 5000


def big_typescript() -> str:
    """A 5,000-line TypeScript module: classes of methods, each a few lines with a marker."""
    out, i = ["import { readFile } from \"node:fs\";", ""], 0
    while len(out) < BIG_LINES - 12:
        out.append(f"export class Service{i} {{")
        for m in range(4):
            out += [f"  method{m}(x: number): number {{", f"    const v{i}_{m} = x * {m + 1};",
                    f"    return v{i}_{m} + {i};", "  }"]
        out.append("}")
        i += 1
    return "\n".join(out) + "\n"


def main() -> None:
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/mcp-session-coordinator")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with tempfile.TemporaryDirectory() as tmp:
        repo = os.path.join(tmp, "repo")
        os.makedirs(os.path.join(repo, ".git"))
        with open(os.path.join(repo, ".git", "HEAD"), "w") as head:
            head.write("ref: refs/heads/main\n")
        env = dict(os.environ, MCP_COORDINATOR_DB_PATH=os.path.join(tmp, "c.db"),
                   MCP_COORDINATOR_PROJECT="bench", MCP_COORDINATOR_LOG="warn")

        def hook(client_pid: str, event: dict, *args: str) -> str:
            payload = {"session_id": f"session-{client_pid}", "cwd": repo, **event}
            done = subprocess.run([binary, "hook", "claude-code", *args], input=json.dumps(payload),
                                  capture_output=True, text=True,
                                  env=dict(env, MCP_COORDINATOR_CLIENT_PID=client_pid), check=True)
            return done.stdout

        def edit(client_pid: str, path: str, *args: str, old: str = "") -> str:
            tool_input = {"file_path": os.path.join(repo, path)}
            if old:
                tool_input.update(old_string=old, new_string="x")
            return hook(client_pid, {"hook_event_name": "PreToolUse", "tool_name": "Edit",
                                     "tool_input": tool_input}, *args)

        os.makedirs(os.path.join(repo, "src"), exist_ok=True)
        with open(os.path.join(repo, "src", "big.ts"), "w") as f:
            f.write(big_typescript())
        last = "const v200_3 = x * 4;"     # a method deep in the file
        held = "const v100_1 = x * 2;"

        hook("1001", {"hook_event_name": "SessionStart"})
        hook("1002", {"hook_event_name": "SessionStart"})
        for i in range(LOCKS):
            edit("1001", f"src/held/{i}.ts", "--acquire")
        edit("1002", "src/mine.ts", "--acquire")
        edit("1001", "src/big.ts", "--acquire", old=held)
        edit("1002", "src/big.ts", "--acquire", old=last)

        cases = [
            ("free file, allowed", lambda: edit("1002", "src/free.ts"), ""),
            ("own lock, renewed (--acquire)", lambda: edit("1002", "src/mine.ts", "--acquire"), ""),
            ("held by another, denied", lambda: edit("1002", "src/held/7.ts"), "deny"),
            ("5k-line file, free method", lambda: edit("1002", "src/big.ts", old="const v250_0 = x * 1;"),
             ""),
            ("5k-line file, own method, renewed", lambda: edit("1002", "src/big.ts", "--acquire", old=last),
             ""),
            ("5k-line file, held method, denied", lambda: edit("1002", "src/big.ts", old=held), "deny"),
            # Outside every item: the whole file, which another session's method lock is in.
            ("5k-line file, an import, denied", lambda: edit("1002", "src/big.ts", old="import { readFile }"),
             "deny"),
        ]
        print(f"{runs} runs each, {LOCKS + 1} locks in the database, {binary}")
        for name, call, expect in cases:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                out = call()
                times.append((time.perf_counter() - start) * 1000)
                assert expect in out, f"{name}: unexpected answer {out!r}"
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"  {name:32} p50 {statistics.median(times):5.2f} ms   p99 {p99:5.2f} ms")


if __name__ == "__main__":
    main()
