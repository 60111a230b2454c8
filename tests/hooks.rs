//! The client hooks (`hook claude-code`, `copilot`, `codex`; `gemini-cli` is run through the
//! commands `init` writes, in `init.rs`) fed the events each client sends (its documented JSON on
//! stdin), with real MCP servers as the other sessions, and their answers checked against each
//! client's documented output; Claude Code's and Codex's is
//! `{"hookSpecificOutput": {"hookEventName", "permissionDecision",
//! "permissionDecisionReason" | "additionalContext"}}` on stdout, exit code 0.

use std::path::Path;

use crate::common::{self, Db, Run};
use serde_json::{Value, json};

/// A Claude Code session, as its hooks see it: its id, and the pid of its process.
struct Claude<'a> {
    db: &'a Db,
    session_id: &'static str,
    client_pid: &'static str,
    repo: &'a Path,
}

impl Claude<'_> {
    fn event(&self, args: &[&str], event: Value) -> Run {
        let mut payload = json!({
            "session_id": self.session_id,
            "transcript_path": format!("/home/me/.claude/projects/repo/{}.jsonl", self.session_id),
            "cwd": self.repo,
            "permission_mode": "default",
        });
        if let (Some(payload), Some(event)) = (payload.as_object_mut(), event.as_object()) {
            payload.extend(event.clone());
        }
        let mut argv = vec!["hook", "claude-code"];
        argv.extend_from_slice(args);
        self.db.run(
            &argv,
            &[("MCP_COORDINATOR_CLIENT_PID", self.client_pid)],
            Some(self.repo),
            &payload.to_string(),
        )
    }

    fn start(&self) -> Value {
        let run = self.event(
            &[],
            json!({"hook_event_name": "SessionStart", "source": "startup", "model": "claude-sonnet-4-6"}),
        );
        assert!(run.ok, "{}", run.stderr);
        let answer = run.json();
        assert_documented(&answer, "SessionStart");
        answer
    }

    fn edit(&self, args: &[&str], tool: &str, file: &str) -> Run {
        let tool_input = match tool {
            "NotebookEdit" => json!({"notebook_path": file, "new_source": "x = 1"}),
            "Write" => json!({"file_path": file, "content": "export {}"}),
            "MultiEdit" => {
                json!({"file_path": file, "edits": [{"old_string": "a", "new_string": "b"}]})
            }
            _ => json!({"file_path": file, "old_string": "a", "new_string": "b"}),
        };
        let run = self.event(
            args,
            json!({"hook_event_name": "PreToolUse", "tool_name": tool,
                   "tool_input": tool_input, "tool_use_id": "toolu_01ABC"}),
        );
        assert!(run.ok, "a hook answers with exit 0: {}", run.stderr);
        run
    }
}

/// The documented shape: one object, `hookSpecificOutput` naming the event, decisions from
/// the documented words.
fn assert_documented(answer: &Value, event: &str) {
    let object = answer.as_object().expect("an object");
    assert_eq!(object.keys().collect::<Vec<_>>(), ["hookSpecificOutput"]);
    let specific = &answer["hookSpecificOutput"];
    assert_eq!(specific["hookEventName"], event);
    if let Some(decision) = specific.get("permissionDecision") {
        assert!(
            ["allow", "deny", "ask"].contains(&decision.as_str().unwrap_or_default()),
            "{decision}"
        );
        assert!(specific["permissionDecisionReason"].is_string());
    }
    for (key, value) in specific.as_object().expect("fields") {
        assert!(
            [
                "hookEventName",
                "permissionDecision",
                "permissionDecisionReason",
                "additionalContext"
            ]
            .contains(&key.as_str()),
            "undocumented field {key}"
        );
        assert!(value.is_string(), "{key} is text");
    }
}

/// Claude Code's PreToolUse event for an Edit of `file` (relative to `repo`), from `session`.
fn edit_event(session: &str, repo: &Path, file: &str) -> String {
    json!({"session_id": session, "cwd": repo, "hook_event_name": "PreToolUse",
           "tool_name": "Edit", "tool_input": {"file_path": repo.join(file)}})
    .to_string()
}

fn denial(run: &Run) -> String {
    let answer = run.json();
    assert_documented(&answer, "PreToolUse");
    assert_eq!(answer["hookSpecificOutput"]["permissionDecision"], "deny");
    answer["hookSpecificOutput"]["permissionDecisionReason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::create_dir_all(dir.path().join(".git")).expect(".git");
    std::fs::write(dir.path().join(".git/HEAD"), "ref: refs/heads/main\n").expect("HEAD");
    dir
}

#[tokio::test]
async fn session_start_registers_and_session_end_deregisters() {
    let db = Db::new();
    let dir = repo();
    let claude = Claude {
        db: &db,
        session_id: "0b1c2d3e-aaaa-bbbb-cccc-000000000001",
        client_pid: "424201",
        repo: dir.path(),
    };
    let started = claude.start();
    let context = started["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap_or_default();
    let status = db.cli(&["status", "--json"]).json();
    let session = &status["sessions"][0];
    assert_eq!(session["name"], "claude-0b1c2d3e");
    assert_eq!(session["branch"], "main");
    let id = session["session_id"].as_str().unwrap_or_default();
    assert!(
        context.contains(&format!("session_id {id}")) && context.contains("pass session_id="),
        "{context}"
    );
    let project = dir
        .path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert_eq!(
        session["project"],
        project.as_str(),
        "the checkout's folder"
    );

    assert_eq!(
        claude.start()["hookSpecificOutput"]["additionalContext"],
        started["hookSpecificOutput"]["additionalContext"],
        "a second start (a resume) continues the same session"
    );
    let stop = claude.event(
        &[],
        json!({"hook_event_name": "Stop", "stop_hook_active": false}),
    );
    assert!(
        stop.ok && stop.stdout.is_empty(),
        "Stop only keeps it alive"
    );
    assert_eq!(
        db.cli(&["status", "--json"]).json()["sessions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let locked = claude.edit(
        &["--acquire"],
        "Edit",
        &format!("{}/src/a.ts", dir.path().display()),
    );
    assert!(
        locked.stdout.contains("now locked exclusively for you"),
        "{}",
        locked.stdout
    );
    assert_eq!(
        db.cli(&["locks", "--json"]).json()["locks"][0]["holder_name"],
        "claude-0b1c2d3e"
    );
    let end = claude.event(
        &[],
        json!({"hook_event_name": "SessionEnd", "reason": "prompt_input_exit"}),
    );
    assert!(end.ok && end.stdout.is_empty());
    let status = db.cli(&["status", "--json"]).json();
    assert_eq!(status["sessions"], json!([]));
    assert_eq!(status["locks"], json!([]), "its lock went with it");
}

#[tokio::test]
async fn an_edit_of_a_file_another_session_holds_is_denied_with_what_to_do() {
    let db = Db::new();
    let dir = repo();
    let other = db.server_of_client("424211", Some(dir.path())).await;
    other
        .register("auth-implementation", "shop", "feature/auth")
        .await;
    other
        .call("lock_acquire", json!({"file_path": "src/auth.ts"}))
        .await;
    other
        .call(
            "lock_acquire",
            json!({"file_path": "docs/", "lock_type": "shared"}),
        )
        .await;
    other
        .call(
            "lock_acquire",
            json!({"file_path": "notes.md", "lock_type": "intent"}),
        )
        .await;

    let claude = Claude {
        db: &db,
        session_id: "11111111-0000-0000-0000-000000000002",
        client_pid: "424212",
        repo: dir.path(),
    };
    let started = claude.start();
    assert!(
        started["hookSpecificOutput"]["additionalContext"]
            .as_str()
            .is_some_and(|c| c.contains("in project 'shop'")
                && c.contains("auth-implementation (on feature/auth)")),
        "the project comes from the sessions working in this checkout: {started}"
    );
    let root = dir.path().display().to_string();
    for tool in ["Edit", "Write", "MultiEdit"] {
        let reason = denial(&claude.edit(&[], tool, &format!("{root}/src/auth.ts")));
        assert!(
            reason.starts_with("src/auth.ts is locked exclusively by 'auth-implementation' until "),
            "{reason}"
        );
        assert!(
            reason.contains("message_send to_session='auth-implementation'")
                && reason.contains("lock_acquire(file_path='src/auth.ts', queue=true)"),
            "{reason}"
        );
    }
    let reason = denial(&claude.edit(&[], "NotebookEdit", &format!("{root}/docs/intro.ipynb")));
    assert!(
        reason.starts_with(
            "docs/ (which covers docs/intro.ipynb) is locked shared by 'auth-implementation'"
        ),
        "{reason}"
    );

    for free in [
        claude.edit(&[], "Edit", &format!("{root}/notes.md")),
        claude.edit(&[], "Edit", &format!("{root}/src/other.ts")),
        claude.edit(&[], "Edit", "/somewhere/else/src/auth.ts"),
    ] {
        assert_eq!(
            free.stdout, "",
            "allowed: no output, the normal permission flow goes on"
        );
    }
    let bash = claude.event(
        &[],
        json!({"hook_event_name": "PreToolUse", "tool_name": "Bash",
               "tool_input": {"command": "rm src/auth.ts"}}),
    );
    assert!(
        bash.ok && bash.stdout.is_empty(),
        "only editing tools are checked"
    );

    other
        .call("lock_release", json!({"file_path": "src/auth.ts"}))
        .await;
    assert_eq!(
        claude
            .edit(&[], "Edit", &format!("{root}/src/auth.ts"))
            .stdout,
        "",
        "released: the edit goes through"
    );
}

#[tokio::test]
async fn acquire_locks_the_file_for_the_editing_session_and_blocks_the_next() {
    let db = Db::new();
    let dir = repo();
    let root = dir.path().display().to_string();
    let first = Claude {
        db: &db,
        session_id: "22222222-0000-0000-0000-000000000001",
        client_pid: "424221",
        repo: dir.path(),
    };
    let second = Claude {
        session_id: "22222222-0000-0000-0000-000000000002",
        client_pid: "424222",
        ..first
    };
    // The first Claude Code's AI registered through its own MCP server (same client process).
    let mcp = db.server_of_client("424221", Some(dir.path())).await;
    let own = mcp.register("cart", "shop", "main").await;
    first.start();
    second.start();

    let run = first.edit(
        &["--acquire", "--hold", "ttl", "--ttl", "600"],
        "Write",
        &format!("{root}/src/cart.ts"),
    );
    let answer = run.json();
    assert_documented(&answer, "PreToolUse");
    let context = answer["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap_or_default();
    assert!(
        context.starts_with("Session coordinator: src/cart.ts is now locked exclusively for you (fencing token 1, until "),
        "{context}"
    );
    assert!(
        answer["hookSpecificOutput"]
            .get("permissionDecision")
            .is_none(),
        "no override of the person's permission rules"
    );
    let check = mcp
        .call("lock_check", json!({"file_path": "src/cart.ts"}))
        .await;
    assert_eq!(
        check["held_by"],
        own.as_str(),
        "held by the AI's own MCP session"
    );
    assert_eq!(
        first
            .edit(&["--acquire"], "Edit", &format!("{root}/src/cart.ts"))
            .stdout,
        "",
        "editing again renews quietly"
    );

    let reason = denial(&second.edit(&["--acquire"], "Edit", &format!("{root}/src/cart.ts")));
    assert!(
        reason.starts_with("src/cart.ts is locked exclusively by 'cart'"),
        "{reason}"
    );

    mcp.call("lock_acquire", json!({"file_path": "src/pay.ts"}))
        .await;
    assert_eq!(
        first
            .edit(&["--acquire"], "Edit", &format!("{root}/src/pay.ts"))
            .stdout,
        "",
        "a lock the AI took itself does not stand in its own way"
    );
    let run = second.edit(&["--acquire"], "Edit", &format!("{root}/src/new.ts"));
    assert!(run.stdout.contains("now locked exclusively for you"));
    let status = db.cli(&["locks", "--json"]).json();
    let holders: Vec<_> = status["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| {
            (
                l["file_path"].as_str().unwrap_or_default(),
                l["holder_name"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        holders,
        [
            ("src/cart.ts", "cart"),
            ("src/new.ts", "claude-22222222"),
            ("src/pay.ts", "cart")
        ]
    );
}

#[tokio::test]
async fn the_ai_client_is_found_from_the_process_tree() {
    // This test process stands for the AI client: it starts the MCP server and runs the hook,
    // so the hook finds the server's session among its own without any variable.
    let db = Db::new();
    let dir = repo();
    let server = db.server().await;
    server.register("mine", "shop", "main").await;
    server
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    let payload = edit_event(
        "33333333-0000-0000-0000-000000000001",
        dir.path(),
        "src/a.ts",
    );
    let run = db.run(&["hook", "claude-code"], &[], Some(dir.path()), &payload);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "", "its own session's lock: allowed");

    let stranger = db.run(
        &["hook", "claude-code"],
        &[
            ("MCP_COORDINATOR_CLIENT_PID", "424299"),
            ("MCP_COORDINATOR_PROJECT", "shop"),
        ],
        Some(dir.path()),
        &payload,
    );
    assert!(denial(&stranger).contains("locked exclusively by 'mine'"));
}

#[tokio::test]
async fn a_broken_input_fails_open_with_a_reason() {
    let db = Db::new();
    let dir = repo();
    let run = db.run(&["hook", "claude-code"], &[], Some(dir.path()), "not json");
    assert_eq!(
        run.code,
        Some(1),
        "a non-zero exit other than 2 (which would block): reported, the edit goes on"
    );
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr
            .contains("the hook reads the client's hook event as JSON on stdin"),
        "{}",
        run.stderr
    );
    let named = db.run(
        &["hook", "claude-code"],
        &[("MCP_COORDINATOR_SESSION", "nobody")],
        Some(dir.path()),
        &edit_event("bbbbbbbb-0000", dir.path(), "a.ts"),
    );
    assert_eq!(named.code, Some(1));
    assert!(
        named
            .stderr
            .contains("MCP_COORDINATOR_SESSION='nobody': unknown session `nobody`"),
        "{}",
        named.stderr
    );
}

#[tokio::test]
async fn copilot_cli_edits_are_checked_the_same_way() {
    let db = Db::new();
    let dir = repo();
    let root = dir.path().display().to_string();
    let other = db.server_of_client("424231", Some(dir.path())).await;
    other.register("api", "shop", "main").await;
    other
        .call("lock_acquire", json!({"file_path": "src/api.ts"}))
        .await;
    let copilot = |event: &str, args: &[&str], input: Value| {
        let mut argv = vec!["hook", "copilot", event];
        argv.extend_from_slice(args);
        db.run(
            &argv,
            &[("MCP_COORDINATOR_CLIENT_PID", "424232")],
            Some(dir.path()),
            &input.to_string(),
        )
    };
    let start = copilot(
        "session-start",
        &[],
        json!({"timestamp": 1_704_614_400_000_u64, "cwd": root, "source": "new"}),
    );
    assert!(
        start.ok && start.stdout.is_empty(),
        "Copilot ignores sessionStart output"
    );
    // As Copilot CLI sends it: toolArgs is JSON inside a string.
    let edit = |file: &str| {
        json!({"timestamp": 1_704_614_600_000_u64, "cwd": root, "toolName": "edit",
               "toolArgs": json!({"path": file, "old_str": "a", "new_str": "b"}).to_string()})
    };
    let denied = copilot("pre-tool-use", &[], edit(&format!("{root}/src/api.ts")));
    assert!(denied.ok, "{}", denied.stderr);
    let answer = denied.json();
    assert_eq!(answer["permissionDecision"], "deny");
    assert!(
        answer["permissionDecisionReason"]
            .as_str()
            .is_some_and(|r| r.starts_with("src/api.ts is locked exclusively by 'api'")),
        "{answer}"
    );
    assert_eq!(
        answer.as_object().map(|o| o.len()),
        Some(2),
        "only the documented fields"
    );

    let locked = copilot(
        "pre-tool-use",
        &["--acquire"],
        edit(&format!("{root}/src/ui.ts")),
    );
    assert!(locked.ok && locked.stdout.is_empty(), "{}", locked.stderr);
    let check = other
        .call("lock_check", json!({"file_path": "src/ui.ts"}))
        .await;
    assert_eq!(
        check["holder_name"], "copilot-424232",
        "the hook's own session holds it"
    );
    let bash = copilot(
        "pre-tool-use",
        &[],
        json!({"cwd": root, "toolName": "bash", "toolArgs": "{\"command\":\"ls\"}"}),
    );
    assert!(bash.ok && bash.stdout.is_empty());

    let end = copilot(
        "session-end",
        &[],
        json!({"cwd": root, "reason": "complete"}),
    );
    assert!(end.ok, "{}", end.stderr);
    let check = other
        .call("lock_check", json!({"file_path": "src/ui.ts"}))
        .await;
    assert_eq!(check["locked"], false, "the session ended with its lock");
}

/// Codex CLI's PreToolUse input for an `apply_patch` call (codex-rs/hooks/schema/generated/
/// pre-tool-use.command.input.schema.json): the patch text is `tool_input.command`.
fn codex_patch(root: &str, patch: &str) -> Value {
    json!({"session_id": "019a2b3c-4d5e-7f00-8a9b-0c1d2e3f4a5b", "turn_id": "019a2b3c-turn",
           "transcript_path": null, "cwd": root, "hook_event_name": "PreToolUse",
           "model": "gpt-5.5-codex", "permission_mode": "default", "tool_name": "apply_patch",
           "tool_use_id": "call_01ABC", "tool_input": {"command": patch}})
}

#[tokio::test]
async fn codex_patches_are_checked_for_every_file_they_write() {
    let db = Db::new();
    let dir = repo();
    let root = dir.path().display().to_string();
    let other = db.server_of_client("424241", Some(dir.path())).await;
    other.register("api", "shop", "main").await;
    other
        .call("lock_acquire", json!({"file_path": "src/api.ts"}))
        .await;
    let codex = |args: &[&str], input: Value| {
        let mut argv = vec!["hook", "codex"];
        argv.extend_from_slice(args);
        let run = db.run(
            &argv,
            &[("MCP_COORDINATOR_CLIENT_PID", "424242")],
            Some(dir.path()),
            &input.to_string(),
        );
        assert!(run.ok, "a hook answers with exit 0: {}", run.stderr);
        run
    };

    // One free file and one held one: the whole patch is refused, and nothing is locked.
    let held = "*** Begin Patch\n*** Add File: src/new.ts\n+export {}\n\
                *** Update File: src/api.ts\n@@\n-a\n+b\n*** End Patch\n";
    let denied = codex(&["--acquire"], codex_patch(&root, held));
    let reason = denial(&denied);
    assert!(
        reason.starts_with("src/api.ts is locked exclusively by 'api' until "),
        "{reason}"
    );
    let check = other
        .call("lock_check", json!({"file_path": "src/new.ts"}))
        .await;
    assert_eq!(
        check["locked"], false,
        "a refused patch locks none of its files"
    );
    // A rename onto a held file is refused too.
    let onto = "*** Begin Patch\n*** Update File: src/old.ts\n*** Move to: src/api.ts\n\
                @@\n-a\n+b\n*** End Patch\n";
    assert!(denial(&codex(&[], codex_patch(&root, onto))).contains("'api'"));

    let free = "*** Begin Patch\n*** Add File: src/new.ts\n+export {}\n\
                *** Update File: src/ui.ts\n*** Move to: src/view.ts\n@@\n-a\n+b\n\
                *** Delete File: src/gone.ts\n*** End Patch\n";
    assert_eq!(
        codex(&[], codex_patch(&root, free)).stdout,
        "",
        "allowed: no output"
    );
    let locked = codex(&["--acquire"], codex_patch(&root, free)).json();
    assert_documented(&locked, "PreToolUse");
    assert!(
        locked["hookSpecificOutput"]
            .get("permissionDecision")
            .is_none()
    );
    for file in ["src/new.ts", "src/ui.ts", "src/view.ts", "src/gone.ts"] {
        let check = other.call("lock_check", json!({"file_path": file})).await;
        assert_eq!(check["holder_name"], "codex-019a2b3c", "{file}: {check}");
    }

    let mut bash = codex_patch(&root, "");
    bash["tool_name"] = json!("Bash");
    bash["tool_input"] = json!({"command": "rm src/api.ts"});
    assert_eq!(codex(&[], bash).stdout, "", "only apply_patch is checked");
}

#[tokio::test]
async fn a_server_started_in_a_subfolder_keys_paths_from_the_checkout_top() {
    let db = Db::new();
    let dir = repo();
    let web = dir.path().join("packages/web");
    std::fs::create_dir_all(&web).expect("subfolder");
    let other = db.server_of_client("424241", Some(&web)).await;
    other.register("web", "shop", "main").await;
    let granted = other
        .call(
            "lock_acquire",
            json!({"file_path": format!("{}/src/app.ts", web.display())}),
        )
        .await;
    assert_eq!(granted["file_path"], "packages/web/src/app.ts");
    let claude = Claude {
        db: &db,
        session_id: "44444444-0000-0000-0000-000000000001",
        client_pid: "424242",
        repo: dir.path(),
    };
    let reason = denial(&claude.edit(&[], "Edit", &format!("{}/src/app.ts", web.display())));
    assert!(
        reason.starts_with("packages/web/src/app.ts is locked exclusively by 'web'"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_lock_the_hook_took_does_not_refuse_the_ai_once_it_registers() {
    let db = Db::new();
    let dir = repo();
    let root = dir.path().display().to_string();
    let claude = Claude {
        db: &db,
        session_id: "55555555-0000-0000-0000-000000000001",
        client_pid: "424251",
        repo: dir.path(),
    };
    claude.start();
    let first = claude.edit(&["--acquire"], "Edit", &format!("{root}/src/a.ts"));
    assert!(first.stdout.contains("now locked exclusively for you"));
    // Later the AI registers through its own MCP server, in the project the hook named, and
    // locks a directory itself.
    let project = db.cli(&["status", "--json"]).json()["sessions"][0]["project"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mcp = db.server_of_client("424251", Some(dir.path())).await;
    mcp.register("feature", &project, "main").await;
    mcp.call("lock_acquire", json!({"file_path": "lib/"})).await;
    for file in ["src/a.ts", "lib/b.ts"] {
        let again = claude.edit(&["--acquire"], "Edit", &format!("{root}/{file}"));
        assert_eq!(
            again.stdout, "",
            "{file}: its own locks, renewed or covering"
        );
    }
    let locks = db.cli(&["locks", "--json"]).json();
    let held: Vec<_> = locks["locks"]
        .as_array()
        .expect("locks")
        .iter()
        .map(|l| l["holder_name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(held, ["feature", "claude-55555555"], "no lock taken twice");
}

#[tokio::test]
async fn parallel_hooks_of_one_session_register_it_once() {
    let db = Db::new();
    let dir = repo();
    let payload = json!({"session_id": "66666666-0000-0000-0000-000000000001",
                         "cwd": dir.path(), "hook_event_name": "SessionStart",
                         "source": "startup"})
    .to_string();
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    db.run(
                        &["hook", "claude-code"],
                        &[("MCP_COORDINATOR_CLIENT_PID", "424261")],
                        Some(dir.path()),
                        &payload,
                    )
                })
            })
            .collect();
        for run in runs {
            let run = run.join().expect("hook thread");
            assert!(run.ok, "{}", run.stderr);
        }
    });
    let status = db.cli(&["status", "--json"]).json();
    assert_eq!(status["sessions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_copilot_hook_without_a_client_registers_nothing() {
    let db = Db::new();
    let dir = repo();
    let run = db.run(
        &["hook", "copilot", "session-start"],
        &[("MCP_COORDINATOR_CLIENT_PID", "0")],
        Some(dir.path()),
        &json!({"cwd": dir.path(), "source": "new"}).to_string(),
    );
    assert!(run.ok && run.stdout.is_empty(), "{}", run.stderr);
    let status = db.cli(&["status", "--json"]).json();
    assert_eq!(status["sessions"], json!([]));
}

/// Writes an executable `#!/bin/sh` script at `path` that runs `body`.
fn script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

#[tokio::test]
async fn a_server_behind_a_wrapper_script_still_belongs_to_its_client() {
    // This test process is the AI client; its MCP server runs through a script (as with a
    // launcher script in a client's settings), which is not the client.
    let db = Db::new();
    let dir = repo();
    let wrapper = dir.path().join("run-server.sh");
    script(&wrapper, &format!("'{}' \"$@\"", common::BIN));
    let server = db.server_through(&wrapper, Some(dir.path())).await;
    server.register("mine", "shop", "main").await;
    server
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    let payload = edit_event(
        "77777777-0000-0000-0000-000000000001",
        dir.path(),
        "src/a.ts",
    );
    let run = db.run(&["hook", "claude-code"], &[], Some(dir.path()), &payload);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "", "its own session's lock: allowed");
}

#[tokio::test]
async fn an_ai_run_by_another_ai_does_not_share_its_sessions() {
    // This test process is the outer AI client, with its MCP server; an inner client (here a
    // Python process standing for `claude -p` run from the outer one's shell) runs the hook.
    let db = Db::new();
    let dir = repo();
    let outer = db.server().await;
    outer.register("outer", "shop", "main").await;
    outer
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    let payload = edit_event(
        "88888888-0000-0000-0000-000000000001",
        dir.path(),
        "src/a.ts",
    );
    let inner = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)";
    let run = db.run(
        &["hook", "claude-code"],
        &[("MCP_COORDINATOR_PROJECT", "shop")],
        Some(dir.path()),
        &payload,
    );
    assert_eq!(
        run.stdout, "",
        "run by the outer client itself: its own lock"
    );
    let answer = db
        .run_program(
            Path::new("python3"),
            &["-c", inner, common::BIN, "hook", "claude-code"],
            &[("MCP_COORDINATOR_PROJECT", "shop")],
            None,
            &payload,
        )
        .json();
    assert_eq!(
        answer["hookSpecificOutput"]["permissionDecision"], "deny",
        "the inner client is another session: {answer}"
    );
}

#[tokio::test]
async fn edits_outside_coordinated_projects_and_long_locks_are_left_alone() {
    let db = Db::new();
    let dir = repo();
    let sibling = repo();
    let root = dir.path().display().to_string();
    let mcp = db.server_of_client("424271", Some(dir.path())).await;
    mcp.register("feature", "shop", "main").await;
    let long = mcp
        .call(
            "lock_acquire",
            json!({"file_path": "src/long.ts", "ttl_seconds": 7200}),
        )
        .await;
    let claude = Claude {
        db: &db,
        session_id: "99999999-0000-0000-0000-000000000001",
        client_pid: "424271",
        repo: dir.path(),
    };
    let edit = claude.edit(
        &["--acquire"],
        "Write",
        &format!("{}/package.json", sibling.path().display()),
    );
    assert_eq!(edit.stdout, "", "a repository no session works in");
    let home = claude.edit(&["--acquire"], "Write", "/home/me/.claude/CLAUDE.md");
    assert_eq!(home.stdout, "");
    assert_eq!(
        db.cli(&["locks", "--json"]).json()["count"],
        1,
        "nothing locked outside the project"
    );

    let renewed = claude.edit(&["--acquire"], "Edit", &format!("{root}/src/long.ts"));
    assert_eq!(renewed.stdout, "");
    let check = mcp
        .call("lock_check", json!({"file_path": "src/long.ts"}))
        .await;
    assert_eq!(
        check["expires_at"], long["expires_at"],
        "a two-hour lock is not cut to the hook's 15 minutes"
    );
}

#[tokio::test]
async fn a_silent_holder_does_not_refuse_an_acquiring_edit() {
    let db = Db::new();
    let dir = repo();
    let holder = db
        .server_with(&[
            ("MCP_COORDINATOR_CLIENT_PID", "424281"),
            ("MCP_SESSION_TIMEOUT_SEC", "1"),
            ("MCP_CLEANUP_INTERVAL_SEC", "3600"),
        ])
        .await;
    holder.register("sleepy", "shop", "main").await;
    holder
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    db.stop(&holder).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let run = db.run(
        &["hook", "claude-code", "--acquire", "--session-timeout", "1"],
        &[
            ("MCP_COORDINATOR_CLIENT_PID", "424282"),
            ("MCP_COORDINATOR_PROJECT", "shop"),
        ],
        Some(dir.path()),
        &edit_event("aaaaaaaa-0000", dir.path(), "src/a.ts"),
    );
    holder.signal("CONT");
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.stdout, "",
        "allowed; its lock is not swept yet, so none is taken"
    );
}
