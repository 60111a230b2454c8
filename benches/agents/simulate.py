#!/usr/bin/env python3
"""Several AI agents editing one generated repository at once, as Claude Code does, to measure
what the coordinator's hook and git guard cost and save (issue 19, "Measure it").

Each agent is its own process with its own stdio server (the official MCP Python SDK's client),
its own session, and its own checkout (a shared one, or a git worktree per agent). It reads a
file, thinks, asks the PreToolUse hook, applies the edit as Claude Code does (refusing a write
to a file modified since it was read), and commits now and then through the git guard. The
figures are printed and, with --json, written. See benches/agents/README.md for what each means.

Usage: benches/agents/simulate.py [--agents N] [--mode shared|worktrees] [--locks none|file|symbol]
                                  [--bin PATH] [--seed S] [--json PATH] [--smoke] ...
Needs: pip install 'mcp>=2.3,<3', and git.
"""

import argparse
import asyncio
import fcntl
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass

PROJECT = "sim"
FUNCTIONS_PER_FILE = 12
LITERAL = re.compile(r'"((?:init|agent)-[A-Za-z0-9_-]+)"')
# A warning names a key in backticks and, later in the same sentence, a session in quotes:
# "`src/a.rs#foo` has uncommitted changes by 'agent-2' in /path/wt-2 (branch agent-2)".
WARNING = re.compile(r"`([^`\n]+)`[^`\n]*?'([^'\n]+)'")
AGENT_LITERAL = re.compile(r"^agent-(\d+)-edit-\d+$")


# ---------------------------------------------------------------------------------------------
# The generated repository: five languages, each file with 12 functions whose bodies hold one
# unique literal, so an edit is one literal and two edits of one function always conflict.
# ---------------------------------------------------------------------------------------------

@dataclass
class Language:
    name: str
    path: str  # with {i}
    prelude: str
    container_open: str  # with {i}; "" for none
    container_close: str
    function: str  # header with {name}
    method: str  # header with {name}
    close: str
    method_close: str
    literal_line: str  # with {lit}
    rest: tuple  # the body's other lines, with {j}
    indent: str
    qualifier: str  # how a method's symbol names its container, with {i}


LANGUAGES = [
    Language("rust", "src/rust/lib{i}.rs", "", "pub struct Engine{i};\n\nimpl Engine{i} {{", "}",
             "pub fn {name}() -> usize {{", "    pub fn {name}(&self) -> usize {{", "}", "    }",
             'let tag = "{lit}";', ("let n = tag.len();", "n + {j}"), "    ", "Engine{i}"),
    Language("typescript", "src/ts/service{i}.ts", "", "export class Service{i} {{", "}",
             "export function {name}(): number {{", "  {name}(): number {{", "}", "  }",
             'const tag = "{lit}";', ("const n = tag.length;", "return n + {j};"), "  ", "Service{i}"),
    Language("javascript", "src/js/util{i}.js", "'use strict';\n", "class Helper{i} {{", "}",
             "function {name}() {{", "  {name}() {{", "}", "  }",
             'const tag = "{lit}";', ("const n = tag.length;", "return n + {j};"), "  ", "Helper{i}"),
    Language("python", "src/py/mod{i}.py", "", "class Service{i}:", "",
             "def {name}():", "    def {name}(self):", "", "",
             'tag = "{lit}"', ("n = len(tag)", "return n + {j}"), "    ", "Service{i}"),
    Language("go", "src/go/pkg{i}.go", "package sim\n", "type Engine{i} struct{{}}", "",
             "func {name}() int {{", "func (e *Engine{i}) {name}() int {{", "}", "}",
             'tag := "{lit}"', ("n := len(tag)", "return n + {j}"), "\t", "Engine{i}"),
]


def generate(repo, files_per_language):
    """Writes the repository's files; returns {func_id: function} where func_id is path#name."""
    functions = {}
    for lang in LANGUAGES:
        for i in range(files_per_language):
            path = lang.path.format(i=i)
            stem = f"{lang.name[:2]}{i}"
            lines = [lang.prelude] if lang.prelude else []
            half = FUNCTIONS_PER_FILE // 2
            for j in range(FUNCTIONS_PER_FILE):
                in_container = j >= half
                if j == half:
                    lines.append(lang.container_open.format(i=i))
                name = f"{stem}_{'m' if in_container else 'fn'}{j}"
                header = (lang.method if in_container else lang.function).format(name=name, i=i)
                extra = "" if not in_container or lang.name == "go" else lang.indent
                lit = f"init-{stem}-{j}"
                body = body_lines(lang, extra + lang.indent, lit, j)
                lines.append(header)
                lines.extend(body)
                closing = lang.method_close if in_container else lang.close
                if closing:
                    lines.append(closing)
                lines.append("")
                symbol = f"{lang.qualifier.format(i=i)}.{name}" if in_container else name
                functions[f"{path}#{name}"] = {
                    "path": path, "name": name, "symbol": symbol, "header": header,
                    "indent": extra + lang.indent, "lang": lang.name, "j": j, "initial": lit,
                }
            if lang.container_close:
                lines.append(lang.container_close)
                lines.append("")
            full = os.path.join(repo, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as out:
                out.write("\n".join(lines).rstrip("\n") + "\n")
    return functions


def body_lines(lang, indent, lit, j):
    return [indent + lang.literal_line.format(lit=lit)] + [indent + r.format(j=j) for r in lang.rest]


LANGUAGE_BY_NAME = {lang.name: lang for lang in LANGUAGES}


def new_body(func, lit):
    return "\n".join(body_lines(LANGUAGE_BY_NAME[func["lang"]], func["indent"], lit, func["j"]))


def find_body(content, func):
    """The function's body as it stands in `content`, or None when the file is not whole."""
    lines = content.split("\n")
    try:
        at = lines.index(func["header"])
    except ValueError:
        return None
    body = lines[at + 1:at + 4]
    return "\n".join(body) if len(body) == 3 else None


def literal_of(body):
    found = LITERAL.search(body or "")
    return found.group(1) if found else None


# ---------------------------------------------------------------------------------------------
# Processes: git, the hook, and a lock file standing for "git add -p && git commit" as one step.
# ---------------------------------------------------------------------------------------------

async def run(args, cwd, env, stdin=None):
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def git_sync(cwd, *args, check=True, env=None):
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {done.stderr.strip()}")
    return done


class FileMutex:
    """A lock file held across processes, polled so the agent's event loop keeps running."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    async def __aenter__(self):
        self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                await asyncio.sleep(0.005)

    async def __aexit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# ---------------------------------------------------------------------------------------------
# One agent (its own process).
# ---------------------------------------------------------------------------------------------

def tool_payload(result):
    structured = getattr(result, "structured_content", getattr(result, "structuredContent", None))
    if structured is not None:
        return structured
    for block in result.content:
        if getattr(block, "type", None) == "text":
            try:
                return json.loads(block.text)
            except json.JSONDecodeError:
                return {"_text": block.text}
    return {}


class Agent:
    def __init__(self, cfg, index):
        self.cfg = cfg
        self.k = index
        self.name = f"agent-{index}"
        self.checkout = cfg["checkouts"][index - 1]
        self.functions = cfg["functions"]
        self.rng = random.Random(cfg["seed"] * 1009 + index)
        self.claude_session = str(uuid.UUID(int=random.Random(cfg["seed"] * 7 + index).getrandbits(128)))
        self.env = dict(os.environ, MCP_COORDINATOR_DB_PATH=cfg["db"],
                        MCP_COORDINATOR_PROJECT=PROJECT, MCP_COORDINATOR_LOG="warn",
                        MCP_COORDINATOR_CLIENT_PID=str(os.getpid()))
        self.mutex = os.path.join(cfg["workdir"], f"commit-{os.path.basename(self.checkout)}.lock")
        self.edit_no = 0
        self.own = defaultdict(dict)  # path -> {func_id: literal}, uncommitted
        self.since_commit = 0
        self.r = {"agent": self.name, "applied": [], "refusals": 0, "retries": 0, "commits": [],
                  "commit_refusals": 0, "abandoned": [], "warnings": [], "hook_ms": [],
                  "hook_errors": [], "refusal_reasons": [], "commit_refusal_texts": [],
                  "final_commit": True, "trail": []}

    def log_warnings(self, text, source):
        now = time.time_ns()
        for key, named in WARNING.findall(text or ""):
            if named != self.name and named.startswith("agent-"):
                self.r["warnings"].append({"t": now, "key": key, "named": named,
                                           "source": source})

    async def hook(self, func, old, new):
        event = {
            "hook_event_name": "PreToolUse", "session_id": self.claude_session,
            "cwd": self.checkout, "tool_name": "Edit",
            "tool_input": {"file_path": os.path.join(self.checkout, func["path"]),
                           "old_string": old, "new_string": new},
        }
        start = time.perf_counter()
        code, out, err = await run([self.cfg["bin"], "hook", "claude-code", *self.cfg["hook_flags"]],
                                   self.checkout, self.env, json.dumps(event))
        self.r["hook_ms"].append((time.perf_counter() - start) * 1000)
        if code != 0:
            # Claude Code shows a failed hook and lets the edit through; so does the agent.
            self.r["hook_errors"].append(err.strip()[-300:])
            return True
        specific = {}
        if out.strip():
            try:
                specific = json.loads(out).get("hookSpecificOutput", {}) or {}
            except json.JSONDecodeError:
                self.r["hook_errors"].append("not JSON: " + out.strip()[:300])
        self.r["trail"].append([time.time_ns(), func["path"], specific.get("permissionDecision")
                                or "allow", (specific.get("additionalContext") or "")[:160]])
        if specific.get("permissionDecision") == "deny":
            if len(self.r["refusal_reasons"]) < 3:
                self.r["refusal_reasons"].append(specific.get("permissionDecisionReason", ""))
            return False
        self.log_warnings(specific.get("additionalContext", ""), "hook")
        return True

    def read(self, path):
        with open(os.path.join(self.checkout, path)) as f:
            return f.read()

    def write(self, path, content):
        full = os.path.join(self.checkout, path)
        tmp = f"{full}.{self.name}.tmp"
        with open(tmp, "w") as f:
            f.write(content)
        os.replace(tmp, full)

    async def edit(self, func_id, lit):
        """One planned edit: 'done' or 'refused'."""
        func = self.functions[func_id]
        content = self.read(func["path"])
        old = find_body(content, func)
        lo, hi = self.cfg["think_ms"]
        await asyncio.sleep(self.rng.uniform(lo, hi) / 1000)
        new = new_body(func, lit)
        for _ in range(100_000):
            if old is None:
                # Caught a file mid-write, or another agent's stale write: read it again.
                await asyncio.sleep(0.005)
                content = self.read(func["path"])
                old = find_body(content, func)
                continue
            if self.cfg["hook_flags"] is not None and not await self.hook(func, old, new):
                return "refused"
            current = content if self.cfg["stale_writes"] else self.read(func["path"])
            if current != content:
                # Claude Code's "File has been modified since read": read again, edit again.
                self.r["retries"] += 1
                content = current
                old = find_body(content, func)
                continue
            self.write(func["path"], content.replace(old, new, 1))
            self.r["applied"].append({"func": func_id, "literal": lit, "t": time.time_ns()})
            self.own[func["path"]][func_id] = lit
            return "done"
        raise RuntimeError(f"{self.name}: {func_id} never found whole in {func['path']}")

    async def commit(self):
        """Stages only this agent's own replacements over HEAD and commits; True when done."""
        if not self.own:
            return True
        cwd = self.checkout
        async with FileMutex(self.mutex):
            for attempt in range(200):
                await run(["git", "read-tree", "HEAD"], cwd, self.env)
                staged_ok = True
                for path, funcs in self.own.items():
                    code, head, _ = await run(["git", "show", f"HEAD:{path}"], cwd, self.env)
                    if code != 0:
                        staged_ok = False
                        break
                    for func_id, lit in funcs.items():
                        old = find_body(head, self.functions[func_id])
                        if old is not None:
                            head = head.replace(old, new_body(self.functions[func_id], lit), 1)
                    _, sha, _ = await run(["git", "hash-object", "-w", "--stdin"], cwd, self.env, head)
                    code, _, err = await run(["git", "update-index", "--cacheinfo",
                                              f"100644,{sha.strip()},{path}"], cwd, self.env)
                    if code != 0:
                        staged_ok = False
                        break
                if staged_ok:
                    start = time.time_ns()
                    message = f"{self.name}: {sum(len(f) for f in self.own.values())} edits"
                    code, out, err = await run(["git", "commit", "-q", "-m", message], cwd, self.env)
                    if code == 0:
                        self.log_warnings(out + err, "guard")
                        self.r["commits"].append({
                            "t_start": start, "t": time.time_ns(),
                            "literals": {fid: lit for f in self.own.values() for fid, lit in f.items()}})
                        self.own.clear()
                        self.since_commit = 0
                        return True
                    if "index.lock" not in err:
                        self.log_warnings(out + err, "guard")
                        self.r["commit_refusals"] += 1
                        if len(self.r["commit_refusal_texts"]) < 3:
                            self.r["commit_refusal_texts"].append((out + err).strip()[-600:])
                        await run(["git", "read-tree", "HEAD"], cwd, self.env)
                        return False
                await asyncio.sleep(0.01 + 0.01 * attempt)
            raise RuntimeError(f"{self.name}: git index stayed locked")

    async def work(self):
        plan = deque({"func": f, "refusals": 0} for f in self.cfg["plans"][self.k - 1])
        stuck = 0
        while plan:
            item = plan.popleft()
            if "literal" not in item:
                self.edit_no += 1
                item["literal"] = f"agent-{self.k}-edit-{self.edit_no}"
            outcome = await self.edit(item["func"], item["literal"])
            if outcome == "done":
                stuck = 0
                self.since_commit += 1
                if self.since_commit >= self.cfg["commit_every"]:
                    await self.commit()
                continue
            self.r["refusals"] += 1
            item["refusals"] += 1
            if item["refusals"] >= self.cfg["max_refusals"]:
                self.r["abandoned"].append(item["func"])
                continue
            # Another function first; when every remaining one was refused in a row, commit what
            # is done (a finished piece of work) and wait a little, as an agent would.
            plan.append(item)
            stuck += 1
            if stuck >= len(plan):
                stuck = 0
                await self.commit()
                await asyncio.sleep(self.rng.uniform(0.1, 0.3))
        deadline = time.monotonic() + self.cfg["final_commit_seconds"]
        while not await self.commit():
            if time.monotonic() > deadline:
                self.r["final_commit"] = False
                self.r["uncommitted"] = {p: list(f.values()) for p, f in self.own.items()}
                break
            await asyncio.sleep(self.rng.uniform(0.2, 0.5))

    async def main(self):
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(command=self.cfg["bin"], args=[], env=self.env,
                                       cwd=self.checkout)
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                result = await s.call_tool("session_register", {
                    "name": self.name, "project": PROJECT, "working_directory": self.checkout,
                    "branch": self.cfg["branches"][self.k - 1]})
                session = tool_payload(result).get("session_id")
                if not session:
                    raise RuntimeError(f"session_register answered {tool_payload(result)}")
                self.env["MCP_COORDINATOR_SESSION"] = session
                open(os.path.join(self.cfg["workdir"], f"ready-{self.k}"), "w").close()
                go = os.path.join(self.cfg["workdir"], "go")
                while not os.path.exists(go):
                    await asyncio.sleep(0.01)
                self.r["t_start"] = time.time_ns()
                await self.work()
                self.r["t_end"] = time.time_ns()
                await s.call_tool("session_deregister", {"session_id": session})
        return self.r


def agent_process(config_path, index):
    with open(config_path) as f:
        cfg = json.load(f)
    result = asyncio.run(Agent(cfg, index).main())
    with open(os.path.join(cfg["workdir"], f"result-{index}.json"), "w") as out:
        json.dump(result, out)


# ---------------------------------------------------------------------------------------------
# One run: set up, start the agents, merge, measure.
# ---------------------------------------------------------------------------------------------

def hook_flags(binary, locks):
    """The hook's flags for a lock mode, and a note when the binary lacks some of them."""
    if locks == "none":
        return None, ""
    if locks == "symbol":
        return ["--acquire"], ""
    help_text = subprocess.run([binary, "hook", "claude-code", "--help"], capture_output=True,
                               text=True).stdout
    if "--scope" in help_text and "--hold" in help_text:
        return ["--acquire", "--scope", "file", "--hold", "ttl"], ""
    return ["--acquire"], "this binary's hook has no --scope/--hold: file mode runs --acquire alone"


def make_plans(seed, agents, edits, func_ids):
    rng = random.Random(seed)
    return [[rng.choice(func_ids) for _ in range(edits)] for _ in range(agents)]


def set_up(workdir, opts):
    repo = os.path.join(workdir, "repo")
    os.makedirs(repo)
    git_sync(repo, "init", "-q", "-b", "main")
    for key, value in [("user.name", "sim"), ("user.email", "sim@example.invalid"),
                       ("commit.gpgsign", "false"), ("core.autocrlf", "false"),
                       ("merge.conflictStyle", "merge"), ("rerere.enabled", "false")]:
        git_sync(repo, "config", key, value)
    functions = generate(repo, opts.files_per_language)
    git_sync(repo, "add", "-A")
    git_sync(repo, "commit", "-q", "-m", "generated")
    env = dict(os.environ, MCP_COORDINATOR_DB_PATH=os.path.join(workdir, "coordinator.db"))
    done = subprocess.run([opts.bin, "install-git-hook", "--repo", repo], capture_output=True,
                          text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"install-git-hook failed: {done.stderr.strip()}")
    checkouts, branches = [], []
    for k in range(1, opts.agents + 1):
        if opts.mode == "shared":
            checkouts.append(repo)
            branches.append("main")
        else:
            wt = os.path.join(workdir, f"wt-{k}")
            git_sync(repo, "worktree", "add", "-q", "-b", f"agent-{k}", wt)
            checkouts.append(wt)
            branches.append(f"agent-{k}")
    return repo, functions, checkouts, branches


def start_agents(cfg, opts):
    config_path = os.path.join(cfg["workdir"], "config.json")
    with open(config_path, "w") as f:
        json.dump(cfg, f)
    procs = []
    for k in range(1, opts.agents + 1):
        log = open(os.path.join(cfg["workdir"], f"agent-{k}.log"), "w")
        procs.append((subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--agent-config", config_path,
             "--agent-index", str(k)], stdout=log, stderr=subprocess.STDOUT), log))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(os.path.exists(os.path.join(cfg["workdir"], f"ready-{k}"))
               for k in range(1, opts.agents + 1)):
            break
        if any(p.poll() is not None for p, _ in procs):
            break
        time.sleep(0.02)
    start = time.perf_counter()
    open(os.path.join(cfg["workdir"], "go"), "w").close()
    failures = []
    deadline = time.monotonic() + opts.agent_timeout
    for k, (p, log) in enumerate(procs, 1):
        try:
            code = p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            code = "timeout"
        log.close()
        if code != 0:
            with open(os.path.join(cfg["workdir"], f"agent-{k}.log")) as f:
                text = f.read()
            # The server's own complaint comes first, the client's traceback last.
            shown = text if len(text) <= 3000 else f"{text[:1500]}\n[...]\n{text[-1500:]}"
            failures.append(f"agent-{k} exited {code}: {shown}")
    wall = time.perf_counter() - start
    results = []
    for k in range(1, opts.agents + 1):
        path = os.path.join(cfg["workdir"], f"result-{k}.json")
        if os.path.exists(path):
            with open(path) as f:
                results.append(json.load(f))
        elif not any(x.startswith(f"agent-{k} ") for x in failures):
            failures.append(f"agent-{k} wrote no result")
    return results, wall, failures


def lost_edits(repo, functions, results):
    """Edits whose literal a stale write wiped: not final, and not replaced by a later edit."""
    history = defaultdict(list)
    for r in results:
        for e in r["applied"]:
            history[e["func"]].append(e)
    lost = []
    for func_id, edits in history.items():
        edits.sort(key=lambda e: e["t"])
        with open(os.path.join(repo, functions[func_id]["path"])) as f:
            final = literal_of(find_body(f.read(), functions[func_id]))
        order = {e["literal"]: i for i, e in enumerate(edits)}
        for i, e in enumerate(edits):
            if e["literal"] != final and order.get(final, -1) < i:
                lost.append({"func": func_id, "literal": e["literal"], "final": final})
    return lost


def conflict_hunks(text):
    """(first line, last line, ours, theirs) of each conflict block git left in a file."""
    hunks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        if lines[i].startswith("<<<<<<< "):
            ours, theirs, side, j = [], [], "ours", i + 1
            while j < len(lines) and not lines[j].startswith(">>>>>>> "):
                if lines[j] == "=======":
                    side = "theirs"
                elif side == "ours":
                    ours.append(lines[j])
                else:
                    theirs.append(lines[j])
                j += 1
            hunks.append((i, j, ours, theirs))
            i = j
        i += 1
    return hunks


def merge_all(repo, opts, functions, literal_func):
    """Merges agent-1..N into main, taking theirs on conflict; the conflicted functions."""
    env = dict(os.environ, MCP_COORDINATOR_DB_PATH=os.path.join(opts.workdir_run, "coordinator.db"))
    header_func = {(f["path"], f["header"]): fid for fid, f in functions.items()}
    conflicts = []
    for k in range(1, opts.agents + 1):
        done = git_sync(repo, "merge", "--no-edit", "-q", f"agent-{k}", check=False, env=env)
        if done.returncode == 0:
            continue
        files = git_sync(repo, "diff", "--name-only", "--diff-filter=U").stdout.split()
        if not files:
            raise RuntimeError(f"merge of agent-{k} failed: {done.stderr.strip()}")
        for path in files:
            full = os.path.join(repo, path)
            with open(full) as f:
                lines = f.read().split("\n")
            resolved, last = [], 0
            for start, end, ours, theirs in conflict_hunks("\n".join(lines)):
                by_func = defaultdict(lambda: [None, None])
                for side, part in ((0, ours), (1, theirs)):
                    for lit in LITERAL.findall("\n".join(part)):
                        fid = literal_func.get(lit)
                        if fid:
                            by_func[fid][side] = lit
                if not by_func:
                    # No literal: the function whose header stands above the markers.
                    for back in range(start, -1, -1):
                        fid = header_func.get((path, lines[back]))
                        if fid:
                            by_func[fid] = [None, None]
                            break
                for fid, (lo, lt) in by_func.items():
                    if lo == lt and lo is not None:
                        continue  # a function merely inside a block coalesced around others
                    conflicts.append({"func": fid, "ours": lo, "theirs": lt,
                                      "ours_agent": agent_of(lo), "theirs_agent": agent_of(lt),
                                      "merging": f"agent-{k}"})
                resolved.extend(lines[last:start])
                resolved.extend(theirs)
                last = end + 1
            resolved.extend(lines[last:])
            with open(full, "w") as f:
                f.write("\n".join(resolved))
            git_sync(repo, "add", path)
        git_sync(repo, "commit", "-q", "--no-edit", "--no-verify", env=env)
    return conflicts


def agent_of(literal):
    found = AGENT_LITERAL.match(literal or "")
    return f"agent-{found.group(1)}" if found else None


def key_covers(key, func):
    path, _, symbol = key.partition("#")
    path = path[2:] if path.startswith("./") else path
    if not (path == func["path"] or path.endswith("/" + func["path"])):
        return False
    return not symbol or re.split(r"[.:]+", symbol)[-1] == func["name"]


def warning_figures(results, functions, conflicts):
    """Recall over the merge conflicts and precision over the distinct warnings."""
    by_agent = {r["agent"]: r for r in results}

    def commit_time(agent, literal):
        for c in by_agent.get(agent, {}).get("commits", []):
            if literal in c["literals"].values():
                return c["t"]
        return None

    def warned(agent, other, fid, literal):
        t = commit_time(agent, literal)
        return t is not None and any(
            w["named"] == other and w["t"] <= t and key_covers(w["key"], functions[fid])
            for w in by_agent.get(agent, {}).get("warnings", []))

    warned_count = 0
    for c in conflicts:
        x, y = c["ours_agent"], c["theirs_agent"]
        c["warned"] = bool(x and y and (warned(x, y, c["func"], c["ours"])
                                        or warned(y, x, c["func"], c["theirs"])))
        warned_count += c["warned"]
    # The pairs whose branches really conflict: both committed a change of the function.
    changed = defaultdict(set)
    for r in results:
        for c in r["commits"]:
            for fid in c["literals"]:
                changed[fid].add(r["agent"])
    distinct = {(r["agent"], w["key"], w["named"]) for r in results for w in r["warnings"]}
    real = 0
    for agent, key, named in distinct:
        if any(key_covers(key, functions[fid]) and agent in agents and named in agents
               for fid, agents in changed.items()):
            real += 1
    return warned_count, len(distinct), real


def one_run(opts, mode, locks, agents, edits, files):
    opts = argparse.Namespace(**{**vars(opts), "mode": mode, "locks": locks, "agents": agents,
                                 "edits_per_agent": edits, "files_per_language": files})
    workdir = tempfile.mkdtemp(prefix=f"{mode}-{locks}-{agents}-", dir=opts.workdir)
    opts.workdir_run = workdir
    try:
        repo, functions, checkouts, branches = set_up(workdir, opts)
        flags, note = hook_flags(opts.bin, locks)
        plans = make_plans(opts.seed, agents, edits, sorted(functions))
        cfg = {"bin": opts.bin, "db": os.path.join(workdir, "coordinator.db"), "workdir": workdir,
               "checkouts": checkouts, "branches": branches, "functions": functions,
               "plans": plans, "seed": opts.seed, "hook_flags": flags,
               "think_ms": [opts.think_ms_min, opts.think_ms_max],
               "commit_every": opts.commit_every, "max_refusals": opts.max_refusals,
               "final_commit_seconds": opts.final_commit_seconds,
               "stale_writes": opts.stale_writes}
        results, wall, failures = start_agents(cfg, opts)
        literal_func = {f["initial"]: fid for fid, f in functions.items()}
        for r in results:
            for e in r["applied"]:
                literal_func[e["literal"]] = e["func"]
        planned = agents * edits
        done = sum(len(r["applied"]) for r in results)
        refusals = sum(r["refusals"] for r in results)
        hook_ms = sorted(ms for r in results for ms in r["hook_ms"])
        figures = {
            "agents": agents, "mode": mode, "locks": locks, "hook_flags": flags,
            "stale_writes": opts.stale_writes,
            "seed": opts.seed, "files": files * len(LANGUAGES), "functions": len(functions),
            "planned_edits": planned, "edits_done": done,
            "edits_abandoned": sum(len(r["abandoned"]) for r in results),
            "refusals": refusals, "refusals_per_edit": round(refusals / done, 3) if done else None,
            "retries": sum(r["retries"] for r in results),
            "commits": sum(len(r["commits"]) for r in results),
            "commit_refusals": sum(r["commit_refusals"] for r in results),
            "final_commit_failed": [r["agent"] for r in results if not r["final_commit"]],
            "hook_calls": len(hook_ms),
            "hook_ms_p50": round(statistics.median(hook_ms), 1) if hook_ms else None,
            "hook_ms_p99": round(hook_ms[min(len(hook_ms) - 1, int(len(hook_ms) * 0.99))], 1)
            if hook_ms else None,
            "hook_errors": sum(len(r["hook_errors"]) for r in results),
            "warnings_total": sum(len(r["warnings"]) for r in results),
            "wall_seconds": round(wall, 2),
        }
        if note:
            figures["note"] = note
        if mode == "shared":
            lost = lost_edits(repo, functions, results)
            figures["edits_lost"] = len(lost)
            figures["lost"] = lost
        else:
            conflicts = merge_all(repo, opts, functions, literal_func) if not failures else []
            warned, distinct, real = warning_figures(results, functions, conflicts)
            figures.update({
                "merge_resolution": "theirs (the branch being merged)",
                "merge_conflicts": len(conflicts), "warned": warned,
                "warnings_distinct": distinct, "warnings_real": real,
                "precision": round(real / distinct, 3) if distinct else None,
                "conflicts": conflicts,
            })
        samples = {"refusal_reasons": [], "commit_refusal_texts": [], "hook_errors": []}
        for r in results:
            for key in samples:
                samples[key].extend(r[key][:1])
        figures["samples"] = samples
        figures["per_agent"] = [{
            "agent": r["agent"], "edits_done": len(r["applied"]), "refusals": r["refusals"],
            "abandoned": len(r["abandoned"]), "retries": r["retries"],
            "commits": len(r["commits"]), "commit_refusals": r["commit_refusals"],
            "warnings": len(r["warnings"])} for r in results]
        figures["failures"] = failures
        return figures
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)


SUMMARY = ["agents", "mode", "locks", "planned_edits", "edits_done", "edits_abandoned",
           "edits_lost", "refusals", "refusals_per_edit", "retries", "commits", "commit_refusals",
           "merge_conflicts", "warned", "warnings_total", "warnings_distinct", "precision",
           "hook_ms_p50", "hook_ms_p99", "hook_errors", "wall_seconds"]


def print_run(f):
    print(f"== {f['agents']} agents, {f['mode']}, locks {f['locks']} "
          f"(hook flags: {' '.join(f['hook_flags']) if f['hook_flags'] else 'no hook'})")
    for key in SUMMARY[3:]:
        if key in f:
            print(f"   {key:20} {f[key]}")
    if f.get("note"):
        print(f"   note: {f['note']}")
    if f.get("final_commit_failed"):
        print(f"   final commit refused for: {', '.join(f['final_commit_failed'])}")
    for failure in f["failures"]:
        print(f"   FAILED: {failure}")
    sys.stdout.flush()


def find_binary(root):
    for profile in ("release", "debug"):
        path = os.path.join(root, "target", profile, "mcp-session-coordinator")
        if os.path.exists(path):
            return path
    return os.path.join(root, "target", "debug", "mcp-session-coordinator")


def parse_args(argv):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agents", type=int, nargs="+", default=[4],
                   help="number of agents; several values run each (default 4)")
    p.add_argument("--mode", choices=["shared", "worktrees", "both"], default="shared")
    p.add_argument("--locks", choices=["none", "file", "symbol", "all"], default="symbol")
    p.add_argument("--bin", default=None, help="the server binary (default: target/release, "
                   "else target/debug)")
    p.add_argument("--seed", type=int, default=None, help="plans' seed (default: random, printed)")
    p.add_argument("--edits-per-agent", type=int, default=12)
    p.add_argument("--files-per-language", type=int, default=2)
    p.add_argument("--think-ms-min", type=float, default=20)
    p.add_argument("--think-ms-max", type=float, default=80)
    p.add_argument("--commit-every", type=int, default=2)
    p.add_argument("--max-refusals", type=int, default=40,
                   help="refusals after which an agent abandons one planned edit")
    p.add_argument("--final-commit-seconds", type=float, default=30,
                   help="how long an agent keeps retrying its last commit")
    p.add_argument("--stale-writes", action="store_true", help="write the file as read plus "
                   "the edit, without Claude Code's modified-since-read check (the plain "
                   "read-modify-write of issue 19's first measurement)")
    p.add_argument("--agent-timeout", type=float, default=600,
                   help="seconds all agents of one run may take together")
    p.add_argument("--workdir", default=None, help="where the runs' folders go (default: a "
                   "fresh temporary folder)")
    p.add_argument("--keep", action="store_true", help="keep the runs' folders")
    p.add_argument("--json", default=None, help="also write every run's figures here")
    p.add_argument("--smoke", action="store_true", help="2 agents, 3 edits, 1 file per "
                   "language, both modes, every lock mode: for CI")
    p.add_argument("--agent-config", help=argparse.SUPPRESS)
    p.add_argument("--agent-index", type=int, help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    opts.bin = os.path.abspath(opts.bin or find_binary(root))
    if opts.seed is None:
        opts.seed = random.SystemRandom().randrange(1, 1_000_000)
    return opts


def main(argv):
    opts = parse_args(argv)
    if opts.agent_config:
        agent_process(opts.agent_config, opts.agent_index)
        return 0
    if not os.path.exists(opts.bin):
        sys.exit(f"no server binary at {opts.bin}: build it (cargo build) or pass --bin")
    made_workdir = opts.workdir is None
    opts.workdir = opts.workdir or tempfile.mkdtemp(prefix="agents-sim-")
    os.makedirs(opts.workdir, exist_ok=True)
    if opts.smoke:
        agents, edits, files = [2], 3, 1
        modes, lock_modes = ["shared", "worktrees"], ["none", "file", "symbol"]
    else:
        agents, edits, files = opts.agents, opts.edits_per_agent, opts.files_per_language
        modes = ["shared", "worktrees"] if opts.mode == "both" else [opts.mode]
        lock_modes = ["none", "file", "symbol"] if opts.locks == "all" else [opts.locks]
    print(f"seed {opts.seed}, binary {opts.bin}, workdir {opts.workdir}")
    runs, broken = [], False
    for n in agents:
        for mode in modes:
            for locks in lock_modes:
                figures = one_run(opts, mode, locks, n, edits, files)
                print_run(figures)
                runs.append(figures)
                broken |= bool(figures["failures"])
    if opts.json:
        with open(opts.json, "w") as out:
            json.dump({"seed": opts.seed, "binary": opts.bin, "runs": runs}, out, indent=1)
    if made_workdir and not opts.keep:
        shutil.rmtree(opts.workdir, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
