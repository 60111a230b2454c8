#!/usr/bin/env python3
"""`mcp-session-coordinator init` in a fresh repository, then the real clients use what it wrote.

  .venv/bin/python tests/clients/matrix/init.py --server BIN [--clients claude-code,gemini-cli,codex] [--keep]
  scripts/client-matrix init.py        # this scenario alone

Each client gets a fresh HOME and a fresh git repository. The binary is on PATH as
`mcp-session-coordinator` (as an install puts it), and so are the clients, so `init` finds them
there itself, with no --client. Nothing else configures our server: each client reads the files
`init` wrote.
  - claude-code: `claude mcp list` shows the server Connected; then `claude -p` runs the
    walkthrough (standin.py) with a peer (peer.py) holding a file, and the PreToolUse hook init
    installed refuses Claude's Edit of that file, naming the peer;
  - gemini-cli: `gemini mcp list` shows it Connected; then `gemini -p`, its model asking for a
    `replace` of the file the peer holds, is refused by the BeforeTool hook init installed;
  - codex: its app-server (`mcpServerStatus/list`) reports it connected with our 20 tools;
  - copilot: `copilot mcp list` / `mcp get` list it as a workspace server, enabled, with every
    tool (Copilot CLI needs a GitHub sign-in and GitHub's model to go further, so its hooks are
    checked by tests/hooks.rs with its documented payloads);
and in every cell: `init` again changes nothing, and `init --remove` leaves every file of the
repository and HOME as it was before `init` (bytes and modes).
Offline answers a person gives once are written as the person would: Gemini CLI's API-key login
and folder trust, Codex's project trust, Copilot CLI's folder trust, Claude Code's approval of
the project's .mcp.json.

Prints ok/FAIL per check and one line per cell:
  MATRIX client=init-NAME transport=stdio revision=R result=pass|fail note=...
Exits 1 if any cell failed. Other arguments a driver passes (--url, --db, --token) are ignored.
"""
import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import agents  # noqa: E402
import standin  # noqa: E402

NAME = "session-coordinator"  # what init names the server
BIN = os.path.join(HERE, "node_modules", ".bin")
CODEX_JS = os.path.join(HERE, "node_modules", "@openai", "codex", "bin", "codex.js")


def snapshot(*roots):
    """Every file and folder under roots (a repository's .git aside, but its hooks and init's
    record kept), with bytes and mode."""
    out = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            rel = os.path.relpath(folder, root)
            parts = rel.split(os.sep)
            if ".git" in parts and parts[-1] not in (".git", "hooks"):
                dirs[:] = []
                continue
            out[folder] = ("dir", os.stat(folder).st_mode)
            for f in files:
                path = os.path.join(folder, f)
                if ".git" in parts and parts[-1] == ".git" and not f.startswith("mcp-session-coordinator"):
                    continue
                with open(path, "rb") as handle:
                    out[path] = (handle.read(), os.stat(path).st_mode)
    return out


def differences(a, b):
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


class Setup:
    """A fresh HOME and repository; the binary and the clients on PATH."""

    def __init__(self, a, client, tmp):
        self.home, self.work = os.path.join(tmp, "home"), os.path.join(tmp, "work")
        os.makedirs(self.home)
        os.makedirs(os.path.join(self.work, "src"))
        bindir = os.path.join(tmp, "bin")
        os.makedirs(bindir)
        os.symlink(a.server, os.path.join(bindir, "mcp-session-coordinator"))
        for program in ("claude", "gemini", "codex", "copilot"):
            os.symlink(os.path.join(BIN, program), os.path.join(bindir, program))
        path = os.pathsep.join([bindir, agents.NODE_BIN, os.environ.get("PATH", "")])
        self.env = agents.base_env(self.home, {"PATH": path, "GIT_CONFIG_GLOBAL": "/dev/null",
                                               "GIT_CONFIG_NOSYSTEM": "1"})
        self.db = os.path.join(self.home, ".mcp-session-coordinator", "coordinator.db")
        subprocess.run(["git", "init", "-q", "-b", "main", self.work], check=True, env=self.env)
        self.target = os.path.join(self.work, agents.FILE)
        with open(self.target, "w") as f:
            f.write("the peer's text\n")
        self.client = client

    def init(self, *args):
        p = subprocess.run(["mcp-session-coordinator", "init", *args], cwd=self.work, env=self.env,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr


def claude_cell(a, cell, s, tmp):
    target = s.target
    # The person's one answer: yes, use the servers of this project's .mcp.json.
    with open(os.path.join(s.home, ".claude.json"), "w") as f:
        json.dump({"projects": {s.work: {"enabledMcpjsonServers": [NAME], "hasTrustDialogAccepted": True}}}, f)
    env = dict(s.env, DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
               ENABLE_TOOL_SEARCH="false")
    rc, out, err = agents.run(["claude", "mcp", "list"], env, s.work)
    line = next((l for l in out.splitlines() if l.startswith(f"{NAME}:")), out + err)
    cell.check("claude mcp list: the server init wrote is Connected", rc == 0 and "Connected" in line, line)

    project = f"matrix-init-{os.getpid()}"
    model = standin.Walkthrough(project, "agent", "peer", agents.FILE, edit_path=target,
                                token_arg=True, prefix=f"mcp__{NAME}__")
    with agents.walkthrough(cell, model, a, s.db, project, s.work, tmp) as base:
        env["ANTHROPIC_BASE_URL"], env["ANTHROPIC_API_KEY"] = base, "sk-ant-standin"
        rc, out, err = agents.run(["claude", "-p", agents.PROMPT, "--allowedTools", f"mcp__{NAME}__*", "Read",
                                   "Edit", "--output-format", "json"], env, s.work)
        agents.keep_output(tmp, "claude-p", out, err)
        try:
            result = json.loads(out)
        except json.JSONDecodeError:
            result = {"unparsed stdout": out[-600:]}
        cell.check("claude -p ends with the model's final answer",
                   rc == 0 and result.get("subtype") == "success" and result.get("result") == standin.DONE,
                   f"exit {rc}: {json.dumps(result)[:600]} {err[-300:]}")
    cell.revision = "-"


def gemini_cell(a, cell, s, tmp):
    gemini = os.path.join(s.home, ".gemini")
    os.makedirs(gemini, exist_ok=True)
    with open(os.path.join(gemini, "settings.json"), "w") as f:
        json.dump({"security": {"auth": {"selectedType": "gemini-api-key"}},
                   "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
                   "privacy": {"usageStatisticsEnabled": False}, "telemetry": {"enabled": False}}, f)
    with open(os.path.join(gemini, "trustedFolders.json"), "w") as f:
        json.dump({s.work: "TRUST_FOLDER"}, f)
    rc, out, err = agents.run(["gemini", "mcp", "list"], s.env, s.work)
    line = next((l for l in out.splitlines() if f"{NAME}:" in l), out + err)
    cell.check("gemini mcp list: the server init wrote is Connected",
               rc == 0 and "Connected" in line and "✓" in line, line)

    # The BeforeTool hook init wrote refuses Gemini's `replace` of the file the peer holds.
    project = f"matrix-init-gemini-{os.getpid()}"
    model = GeminiEdit(project, "agent", "peer", agents.FILE, edit_path=s.target, prefix=f"mcp_{NAME}_")
    httpd, base = standin.serve(model, os.path.join(tmp, "model-requests.jsonl") if a.keep else None)
    peer = agents.Peer(a.server, s.db, project, "peer", "agent", s.work)
    try:
        cell.check("peer ready", peer.wait_for("ready", 20), "peer did not print ready")
        env = dict(s.env, GOOGLE_GEMINI_BASE_URL=base, GEMINI_API_KEY="standin")
        rc, out, err = agents.run(["gemini", "-p", "Edit src/shared.txt.", "--approval-mode", "yolo",
                                   "--output-format", "json"], env, s.work)
        agents.keep_output(tmp, "gemini-p", out, err)
        report = model.report()
        for check in report["checks"]:
            cell.check(check["name"], check["ok"], check["detail"])
        cell.check("gemini -p ran the edit to its end", report["finished"],
                   f"exit {rc}: {out[-400:]} {err[-400:]} requests: {report['requests'][:4]}")
    finally:
        httpd.shutdown()
        peer.finish(0)
    cell.revision = "-"


class GeminiEdit(standin.Walkthrough):
    """A model that only edits the peer's file with Gemini CLI's `replace` tool."""

    def script(self):
        r = yield standin.Call("replace", ours=False, file_path=self.edit_path, old_string=self.original.strip(),
                               new_string="edited by the client under test", instruction="edit the file")
        self.check(f"hook: Gemini's replace of the file {self.peer} holds is refused naming {self.peer}",
                   r.is_error and f"'{self.peer}'" in r.text and "locked" in r.text, r.text)
        now = open(self.edit_path).read()
        self.check("hook: the locked file is unchanged", now == self.original, now)
        return standin.DONE


def codex_cell(a, cell, s, tmp):
    codex_home = os.path.join(s.home, ".codex")
    os.makedirs(codex_home, exist_ok=True)
    # The person's one answer: trust this project, so Codex reads its .codex/config.toml.
    with open(os.path.join(codex_home, "config.toml"), "w") as f:
        f.write(f'[projects.{json.dumps(s.work)}]\ntrust_level = "trusted"\n')
    env = dict(s.env, CODEX_HOME=codex_home)
    child = subprocess.Popen([os.path.join(agents.NODE_BIN, "node"), CODEX_JS, "app-server"], cwd=s.work, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=agents.lines_reader, args=(child.stdout, lines), daemon=True).start()
    notes, ids = [], iter(range(1, 1000))

    def request(method, params, timeout=60):
        rid = next(ids)
        child.stdin.write(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}) + "\n")
        child.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            msg = json.loads(line)
            if msg.get("id") == rid:
                if "error" in msg:
                    raise RuntimeError(f"codex {method}: {msg['error']}")
                return msg.get("result")
            notes.append(msg)
        raise RuntimeError(f"codex {method}: no answer in {timeout} s")

    try:
        request("initialize", {"clientInfo": {"name": "matrix-init", "version": "1.0.0"}})
        child.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "initialized"}) + "\n")
        child.stdin.flush()
        thread = request("thread/start", {})["thread"]["id"]
        status = None
        for _ in range(40):
            found = request("mcpServerStatus/list", {"threadId": thread, "detail": "full"})
            status = next((x for x in found.get("data", []) if x.get("name") == NAME), None)
            if status and status.get("runtimeStatus") == "connected":
                break
            time.sleep(0.5)
        cell.check("codex app-server: the server init wrote is connected with our 20 tools",
                   status and status.get("runtimeStatus") == "connected" and len(status.get("tools") or {}) == 20,
                   json.dumps(status)[:600] if status else f"not listed; notes: {json.dumps(notes)[-600:]}")
    finally:
        child.stdin.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
    cell.revision = "-"


def copilot_cell(a, cell, s, tmp):
    # The person's one answer: trust this folder (Copilot CLI reads a workspace's .mcp.json only
    # then). Copilot CLI needs a GitHub sign-in and GitHub's model for anything more, so offline
    # it is checked as far as its configuration: it sees the server init wrote, and would start it.
    os.makedirs(os.path.join(s.home, ".copilot"), exist_ok=True)
    with open(os.path.join(s.home, ".copilot", "config.json"), "w") as f:
        json.dump({"trusted_folders": [s.work]}, f)
    rc, out, err = agents.run(["copilot", "mcp", "list"], s.env, s.work)
    cell.check("copilot mcp list: the server init wrote is a workspace server",
               rc == 0 and "Workspace servers:" in out and f"{NAME} (local)" in out, out + err)
    rc, out, err = agents.run(["copilot", "mcp", "get", NAME], s.env, s.work)
    cell.check("copilot mcp get: enabled, running mcp-session-coordinator with every tool",
               rc == 0 and "Status: Enabled" in out and "Command: mcp-session-coordinator" in out
               and "Tools: * (all)" in out, out + err)
    hooks = os.path.join(s.work, ".github", "hooks", "coordinator.json")
    cell.check("init wrote Copilot CLI's hook file", os.path.exists(hooks), hooks)
    cell.revision = "-"


CELLS = {"claude-code": claude_cell, "gemini-cli": gemini_cell, "codex": codex_cell, "copilot": copilot_cell}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", required=True)
    ap.add_argument("--clients", default="claude-code,gemini-cli,codex,copilot")
    ap.add_argument("--keep", action="store_true")
    a, _driver_args = ap.parse_known_args()
    a.server = os.path.abspath(a.server)
    results = []
    for client in a.clients.split(","):
        print(f"== init for {client}", flush=True)
        cell = agents.Cell(f"init-{client}", "stdio")
        tmp = tempfile.mkdtemp(prefix=f"matrix-init-{client}-")
        try:
            s = Setup(a, client, tmp)
            before = snapshot(s.work, s.home)
            rc, out, err = s.init()
            cell.check("init finds the clients on PATH and wires them",
                       rc == 0 and "claude-code" in out and "codex" in out and "gemini-cli" in out, out + err)
            wired = snapshot(s.work, s.home)
            CELLS[client](a, cell, s, tmp)
            after = snapshot(s.work, s.home)
            # What the client itself wrote (Claude Code's .claude/settings.local.json) is its own:
            # init --remove must leave it, and the folder holding it.
            client_made = [p for p in after if p not in wired]
            rc, out, err = s.init()
            cell.check("init again changes nothing", rc == 0 and "Nothing to change" in out, out + err)
            cell.check("... not a byte", not differences(after, snapshot(s.work, s.home)),
                       differences(after, snapshot(s.work, s.home))[:5])
            rc, out, err = s.init("--remove")
            now = snapshot(s.work, s.home)
            changed = [p for p in differences(before, now) if p.startswith(s.work + os.sep)
                       and p not in client_made and not any(c.startswith(p + os.sep) for c in client_made)]
            cell.check("init --remove restores the repository byte for byte", rc == 0 and not changed,
                       f"{out}{err} changed: {changed[:5]}")
        except Exception as e:  # a broken set-up is this cell's failure
            cell.check("cell set-up", False, f"{type(e).__name__}: {e}")
        line = cell.matrix_line()
        print(line, flush=True)
        results.append(line)
        if a.keep:
            print(f"  kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(results))
    sys.exit(1 if any("result=fail" in r for r in results) else 0)


if __name__ == "__main__":
    main()
