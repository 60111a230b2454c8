#!/usr/bin/env python3
"""A scripted stand-in for the model APIs of Claude Code and Gemini CLI (Python stdlib only).

Real agent clients only call MCP tools when their model asks for them. To run Claude Code and
Gemini CLI offline, this local HTTP server answers their model API requests and plays the matrix
walkthrough the way a model would: every turn it reads the tool results it was sent (the whole
conversation comes with each request), runs the walkthrough script up to the first call that has
no result yet, and answers with that call. So the client itself calls our tools, over its own MCP
connection, and each answer is checked where the model reads it.

Endpoints:
  Anthropic  POST /v1/messages (streamed SSE or JSON), POST /v1/messages/count_tokens
  Gemini     POST /v1beta/models/MODEL:generateContent | :streamGenerateContent | :countTokens

Requests that do not offer our tools (titles, summaries, classifiers) get a short text answer.

Used from agents.py (Walkthrough + serve()); standalone for debugging:
  python3 standin.py --project P --target T --peer PEER --file F [--edit PATH] [--no-token-arg]
"""
import argparse
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The 20 tools every client must offer its model (README "Tools").
TOOLS = {
    "session_register", "session_heartbeat", "session_list", "session_get", "session_deregister",
    "lock_acquire", "lock_release", "lock_list", "lock_check",
    "intent_announce", "intent_update", "intent_list", "intent_clear",
    "message_send", "message_list", "message_mark_read",
    "conflict_check",
    "context_share", "context_query", "context_delete",
}
DONE = "Walkthrough finished."


class Call:
    """One tool call the model makes. `ours` tools get the client's MCP prefix; the rest
    (Read, Edit) are the client's built-in tools. `delay` is how long the model 'thinks' before
    asking, used to pace retries."""

    def __init__(self, tool, ours=True, delay=0.0, **args):
        self.tool, self.ours, self.delay, self.args = tool, ours, delay, args


class Result:
    """A tool result as the model reads it: its text, that text as JSON when it is JSON, and
    whether the client marked it as an error."""

    def __init__(self, text, is_error):
        self.text, self.is_error = text, is_error
        self.data = {}
        match = re.search(r"\{.*\}", text, re.S)  # Gemini wraps errors in prose; take the JSON
        for candidate in (text, match.group(0) if match else ""):
            try:
                value = json.loads(candidate)
            except (json.JSONDecodeError, TypeError):
                continue
            if isinstance(value, dict):
                self.data = value
                break


class Walkthrough:
    """The model: the brief's walkthrough as a script, replayed over the conversation.

    Stateless on purpose: a model only knows the conversation, so every request replays the
    script against the results in it and answers with the first call without a result. Retries
    and repeated requests therefore behave as they would with a model. Checks are recorded by
    name, so replaying the same result records the same verdict again."""

    def __init__(self, project, target, peer, file, edit_path=None, token_arg=True, prefix=None,
                 symbol_path=None, symbol=None):
        self.project, self.target, self.peer, self.file = project, target, peer, file
        # Claude Code: a Python file one of whose functions (`symbol`) the peer holds.
        self.symbol_path, self.symbol = symbol_path, symbol
        self.prefix = prefix                # how the client names our server's tools
        self.edit_path = edit_path          # Claude Code: an Edit of this file must hit our hook
        # Read once: the script is replayed on every request, after any edit that got through.
        self.original = open(edit_path).read() if edit_path else None
        self.full_names = {}                # our tool name -> the client's name for it
        self.token_arg = token_arg          # False: the person configured the token header
        self.lock = threading.Lock()
        self.checks = {}                    # name -> (ok, detail), in first-seen order
        self.results = []                   # every tool result, in conversation order
        self.requests = []                  # (seconds, API, summary) of every model request
        self.t0 = time.time()
        self.tools_offered = None           # names of our tools in the last request offering any
        self.schemas = {}                   # our tool name -> input schema as the model sees it
        self.finished = False

    # -- verdicts -------------------------------------------------------------------------
    def check(self, name, ok, detail=""):
        with self.lock:
            self.checks[name] = (bool(ok), "" if ok else str(detail)[:600])

    def failures(self):
        return [(n, d) for n, (ok, d) in self.checks.items() if not ok]

    # -- the script -------------------------------------------------------------------------
    def script(self):
        """Yields Calls, receives Results; returns the final text."""
        p, f, peer = self.project, self.file, self.peer
        r = yield Call("session_register", name=self.target, project=p)
        self.check("1 session_register answers a session_id",
                   not r.is_error and str(r.data.get("session_id", "")).startswith("ses-"), r.text)
        # Pass session_token only where the server asks for it: the tool schemas the client
        # offers list it (HTTP), and no header carries it for us.
        tok = {}
        asked = self.schemas.get("lock_acquire", {}).get("properties", {}).get("session_token")
        if self.token_arg and asked:
            self.check("1 the schemas tell the model to pass session_token",
                       "pass" in str(asked.get("description", "")), asked)
            token = r.data.get("session_token")
            self.check("1 session_register answers the session_token the schemas ask for", token, r.text)
            tok = {"session_token": token} if token else {}

        r = yield Call("lock_acquire", file_path=f, **tok)
        self.check(f"2 lock_acquire refused, naming the holder {peer}",
                   not r.is_error and r.data.get("granted") is False and r.data.get("holder_name") == peer,
                   r.text)

        if self.edit_path:
            # Claude Code's Edit wants the file read first; then our PreToolUse hook must refuse
            # the edit because the peer holds it, and say who holds it.
            r = yield Call("Read", ours=False, file_path=self.edit_path)
            self.check("hook: Read of the locked file is allowed", not r.is_error, r.text)
            r = yield Call("Edit", ours=False, file_path=self.edit_path,
                           old_string=self.original.strip(), new_string="edited by the client under test")
            self.check(f"hook: Edit of the file {peer} holds is refused naming {peer}",
                       r.is_error and f"'{peer}'" in r.text and "locked" in r.text, r.text)
            now = open(self.edit_path).read()
            self.check("hook: the locked file is unchanged", now == self.original, now)

        if self.symbol_path:
            # The peer holds one function of this file: an Edit of the other one goes through,
            # an Edit of the held one is refused naming the peer and the function.
            r = yield Call("Read", ours=False, file_path=self.symbol_path)
            self.check("hook: Read of the file with a held function is allowed", not r.is_error, r.text)
            r = yield Call("Edit", ours=False, file_path=self.symbol_path,
                           old_string="    return -total\n", new_string="    return -total - 1\n")
            now = open(self.symbol_path).read()
            self.check("hook: Edit of the function no one holds goes through",
                       not r.is_error and "return -total - 1" in now, r.text)
            r = yield Call("Edit", ours=False, file_path=self.symbol_path,
                           old_string="def charge(amount):\n    total = amount * 100\n",
                           new_string="def charge(amount):\n    total = amount * 101\n")
            self.check(f"hook: Edit of the function {peer} holds is refused naming {peer} and {self.symbol}",
                       r.is_error and f"'{peer}'" in r.text and self.symbol in r.text, r.text)
            now = open(self.symbol_path).read()
            self.check("hook: the held function is unchanged", "amount * 100\n    return total\n" in now, now)

        # 3. The peer writes once it sees us; poll the inbox for up to ~20 s as a model would.
        cue = False
        for attempt in range(40):
            r = yield Call("message_list", delay=0 if attempt == 0 else 0.5, **tok)
            mine = [m for m in r.data.get("messages", []) if m.get("from_name") == peer]
            cue = cue or (r.data.get("unread_messages") or {}).get("count", 0) > 0
            if mine or r.is_error:
                break
        self.check(f"3 message_list shows {peer}'s message naming {f}",
                   not r.is_error and mine and f in mine[0].get("content", ""), r.text)
        self.check("3 the message arrives unread (unread_messages > 0, read false)",
                   cue and mine and mine[0].get("read") is False, r.text)

        r = yield Call("message_send", to_session=peer, content=f"done reading; I need {f}", **tok)
        self.check("4 message_send delivered", not r.is_error and r.data.get("status") == "sent", r.text)

        r = yield Call("lock_acquire", file_path=f, wait_seconds=30, **tok)
        self.check("5 lock_acquire(wait_seconds=30) granted once the peer releases",
                   not r.is_error and r.data.get("granted") is True, r.text)

        r = yield Call("lock_release", file_path=f, **tok)
        self.check("6 lock_release released", not r.is_error and r.data.get("released") is True, r.text)

        r = yield Call("lock_acquire", file_path=f, ttl_seconds=-5, **tok)
        self.check("7 ttl_seconds=-5 is a tool error naming ttl_seconds",
                   r.is_error and "ttl_seconds" in r.text, r.text)
        # A client that validates arguments against the schema (Gemini CLI) stops -5 itself, so
        # also send one only the server can refuse (the schema has no maximum): its range shows
        # the answer came from the server.
        r = yield Call("lock_acquire", file_path=f, ttl_seconds=100000, **tok)
        self.check("7 ttl_seconds=100000 is the server's tool error naming ttl_seconds and its range",
                   r.is_error and "ttl_seconds" in r.text and "86400" in r.text, r.text)
        return DONE

    def next_turn(self, history):
        """history: [(tool, args, Result)] in order. Returns a Call, or the final text."""
        script = self.script()
        try:
            step = next(script)
            for i, (tool, _args, result) in enumerate(history):
                want = self.name_for(step)
                if tool != want:
                    self.check(f"conversation: call {i + 1} is {want}", False, f"the client sent a result for {tool}")
                with self.lock:
                    self.results[i:i + 1] = [(tool, result.is_error, result.text)]
                step = script.send(result)
            return step
        except StopIteration as stop:
            self.finished = True
            return stop.value

    # -- naming: the client decides how our tools are called --------------------------------
    def offer(self, names_to_schemas):
        """Records the tools of a request that come from our server: those named with the
        client's prefix for it (Claude Code mcp__NAME__, Gemini CLI mcp_NAME_), else those
        ending in one of our 20 names. Returns whether there were any."""
        ours = {}
        for name, schema in names_to_schemas.items():
            if self.prefix:
                base = name[len(self.prefix):] if name.startswith(self.prefix) else None
            else:
                base = next((t for t in TOOLS if name.endswith(t) and name[:-len(t)][-1:] in ("_", "")), None)
            if base:
                ours[base] = (name, schema)
        if ours:
            with self.lock:
                self.tools_offered = sorted(ours)
                self.full_names = {base: name for base, (name, _s) in ours.items()}
                self.schemas = {base: schema or {} for base, (_n, schema) in ours.items()}
        return bool(ours)

    def name_for(self, call):
        return self.full_names.get(call.tool, call.tool) if call.ours else call.tool

    def report(self):
        with self.lock:
            return {"tools_offered": self.tools_offered, "finished": self.finished,
                    "checks": [{"name": n, "ok": ok, "detail": d} for n, (ok, d) in self.checks.items()],
                    "results": [{"tool": t, "is_error": e, "text": x[:400]} for t, e, x in self.results],
                    "requests": list(self.requests)}


# -- Anthropic Messages API ----------------------------------------------------------------------
def anthropic_text(content):
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text")


def anthropic_history(messages):
    """Pairs each tool_use with its tool_result, in conversation order."""
    uses, order = {}, []
    results = {}
    for message in messages:
        if not isinstance(message.get("content"), list):
            continue
        for block in message["content"]:
            if block.get("type") == "tool_use":
                uses[block["id"]] = (block["name"], block.get("input") or {})
                order.append(block["id"])
            elif block.get("type") == "tool_result":
                results[block["tool_use_id"]] = Result(anthropic_text(block.get("content")),
                                                      bool(block.get("is_error")))
    return [(uses[i][0], uses[i][1], results[i]) for i in order if i in results]


def anthropic_reply(model, turn, name_for, counter):
    """The events of one streamed answer: text, or one tool_use block."""
    msg_id = f"msg_standin_{counter}"
    usage = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    events = [("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}})]
    if isinstance(turn, Call):
        block = {"type": "tool_use", "id": f"toolu_standin_{counter}", "name": name_for(turn), "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(turn.args)}
        stop = "tool_use"
        final_block = dict(block, input=turn.args)
    else:
        block = {"type": "text", "text": ""}
        delta = {"type": "text_delta", "text": turn}
        stop = "end_turn"
        final_block = {"type": "text", "text": turn}
    events += [
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                           "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    whole = {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [final_block],
             "stop_reason": stop, "stop_sequence": None, "usage": usage}
    return events, whole


# -- Gemini API ----------------------------------------------------------------------------------
def gemini_history(contents):
    calls, responses = [], []
    for content in contents:
        for part in content.get("parts") or []:
            if "functionCall" in part:
                calls.append(part["functionCall"])
            elif "functionResponse" in part:
                responses.append(part["functionResponse"])
    history = []
    for call, response in zip(calls, responses):
        body = response.get("response") or {}
        text = gemini_text(body)
        is_error = "error" in body or "reported tool error" in text
        history.append((call.get("name"), call.get("args") or {}, Result(text, is_error)))
    return history


def gemini_text(body):
    """What the model reads of a function response: its text parts, else the whole JSON."""
    texts = []

    def walk(value):
        if isinstance(value, dict):
            for k, v in value.items():
                if k == "text" and isinstance(v, str):
                    texts.append(v)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str):
            texts.append(value)

    walk(body)
    return "\n".join(texts) if texts else json.dumps(body)


def gemini_candidate(parts):
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120}}


def gemini_json_answer(schema):
    """A minimal value for the client's own structured calls (routers, next-speaker checks)."""
    t = (schema or {}).get("type", "object")
    t = t.lower() if isinstance(t, str) else "object"
    if t == "object":
        props = (schema or {}).get("properties") or {}
        out = {}
        for k, s in props.items():
            if k in ("next_speaker",):
                out[k] = "user"
            elif k == "model_choice":
                out[k] = "flash"
            else:
                out[k] = gemini_json_answer(s)
        return out
    if t == "array":
        return []
    if t == "boolean":
        return False
    if t in ("number", "integer"):
        return (schema or {}).get("minimum", 1)
    enum = (schema or {}).get("enum")
    return enum[0] if enum else "ok"


# -- the HTTP server ----------------------------------------------------------------------------
def make_handler(model, log=None):
    counter = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def send(self, status, body, ctype="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.send(404, {"error": {"type": "not_found_error", "message": self.path}})

        def do_HEAD(self):
            self.send(200, b"")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                body = {}
            if log:
                with open(log, "a") as out:
                    out.write(json.dumps({"path": self.path, "body": body}) + "\n")
            counter[0] += 1
            path = self.path.split("?")[0]
            if path.endswith("/count_tokens"):
                return self.send(200, {"input_tokens": 100})
            if path.endswith("/v1/messages"):
                return self.anthropic(body)
            if ":countTokens" in path:
                return self.send(200, {"totalTokens": 100})
            if ":generateContent" in path or ":streamGenerateContent" in path:
                return self.gemini(body, stream=":streamGenerateContent" in path)
            self.send(404, {"error": {"message": f"stand-in has no {self.path}"}})

        def anthropic(self, body):
            tools = {t.get("name"): t.get("input_schema") for t in body.get("tools") or [] if t.get("name")}
            if model.offer(tools):
                history = anthropic_history(body.get("messages") or [])
                turn = model.next_turn(history)
                model.requests.append((round(time.time() - model.t0, 2), "anthropic", f"{len(tools)} tools, {len(history)} results"))
            else:
                turn = "OK"  # a title, a summary: not the walkthrough
                model.requests.append((round(time.time() - model.t0, 2), "anthropic", f"aux, {len(tools)} tools"))
            if isinstance(turn, Call) and turn.delay:
                time.sleep(turn.delay)
            events, whole = anthropic_reply(body.get("model", "claude-standin"), turn, model.name_for, counter[0])
            if not body.get("stream"):
                return self.send(200, whole)
            sse = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)
            self.send(200, sse.encode(), "text/event-stream")

        def gemini(self, body, stream):
            declared = {}
            for group in body.get("tools") or []:
                for fd in group.get("functionDeclarations") or group.get("function_declarations") or []:
                    declared[fd.get("name")] = fd.get("parametersJsonSchema") or fd.get("parameters") or {}
            config = body.get("generationConfig") or {}
            if model.offer(declared):
                history = gemini_history(body.get("contents") or [])
                turn = model.next_turn(history)
                model.requests.append((round(time.time() - model.t0, 2), "gemini", f"{len(declared)} tools, {len(history)} results"))
                if isinstance(turn, Call):
                    if turn.delay:
                        time.sleep(turn.delay)
                    parts = [{"functionCall": {"name": model.name_for(turn), "args": turn.args}}]
                else:
                    parts = [{"text": turn}]
            elif config.get("responseMimeType") == "application/json":
                schema = config.get("responseJsonSchema") or config.get("responseSchema")
                parts = [{"text": json.dumps(gemini_json_answer(schema))}]
                model.requests.append((round(time.time() - model.t0, 2), "gemini", "aux json"))
            else:
                parts = [{"text": "OK"}]
                model.requests.append((round(time.time() - model.t0, 2), "gemini", f"aux, {len(declared)} tools"))
            answer = gemini_candidate(parts)
            if not stream:
                return self.send(200, answer)
            self.send(200, f"data: {json.dumps(answer)}\r\n\r\n".encode(), "text/event-stream")

    return Handler


def serve(model, log=None):
    """Starts the stand-in on a free loopback port in a thread; returns (server, base_url)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(model, log))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k in ("project", "target", "peer", "file"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--edit")
    ap.add_argument("--no-token-arg", action="store_true")
    ap.add_argument("--log")
    a = ap.parse_args()
    m = Walkthrough(a.project, a.target, a.peer, a.file, a.edit, not a.no_token_arg)
    srv, url = serve(m, a.log)
    print(url, flush=True)
    try:
        while not m.finished:
            time.sleep(0.5)
        time.sleep(1)
    except KeyboardInterrupt:
        pass
    print(json.dumps(m.report(), indent=1))
    sys.exit(1 if m.failures() else 0)
