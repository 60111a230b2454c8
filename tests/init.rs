//! `init` as a person runs it: the real binary in temporary git repositories, with a home
//! folder of its own, writing each client's files, merging into files already there without
//! disturbing them, idempotent, `--dry-run`, `--remove` byte for byte, and its refusals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{self, Db, Run, Server};

/// Every client `init` knows, as `--client` takes them.
const EVERY_CLIENT: &[&str] = &[
    "claude-code",
    "codex",
    "gemini-cli",
    "copilot",
    "cursor",
    "vscode",
];

/// A repository (with one commit) and a home folder, both temporary.
struct Place {
    db: Db,
    repo: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Place {
    fn new() -> Self {
        let place = Self {
            db: Db::new(),
            repo: tempfile::tempdir().expect("repository folder"),
            home: tempfile::tempdir().expect("home folder"),
        };
        place.git(&["init", "-q", "-b", "main"]);
        place
    }

    fn repo(&self) -> &Path {
        self.repo.path()
    }

    fn git(&self, args: &[&str]) {
        let repo = self.repo().display().to_string();
        let args: Vec<&str> = ["-C", repo.as_str()].iter().chain(args).copied().collect();
        let run = self.db.run_program(Path::new("git"), &args, &[], None, "");
        assert!(run.ok, "git {args:?}: {}", run.stderr);
    }

    /// `init ARGS` in the repository, with this home folder and no client on PATH but git.
    fn init(&self, args: &[&str]) -> Run {
        self.init_with_path(args, "/usr/local/bin:/usr/bin:/bin")
    }

    fn init_with_path(&self, args: &[&str], path: &str) -> Run {
        let home = self.home.path().display().to_string();
        let all: Vec<&str> = ["init"].iter().chain(args).copied().collect();
        self.db.run(
            &all,
            &[("HOME", home.as_str()), ("PATH", path), ("CODEX_HOME", "")],
            Some(self.repo()),
            "",
        )
    }

    fn ok(&self, args: &[&str]) -> String {
        let run = self.init(args);
        assert!(run.ok, "init {args:?} failed: {}{}", run.stdout, run.stderr);
        run.stdout
    }

    fn write(&self, file: &str, text: &str) {
        let path = self.repo().join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("folder");
        }
        std::fs::write(path, text).expect("write");
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.repo().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    fn json(&self, file: &str) -> Value {
        serde_json::from_str(&self.read(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// Every file of the repository (the git folder's hooks and init's record included, the
    /// rest of the git folder aside) and of the home folder, with its bytes and mode.
    fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                let in_git = path.components().any(|c| c.as_os_str() == ".git");
                if path.is_dir() {
                    if !in_git || name == ".git" || name == "hooks" {
                        walk(&path, out);
                    }
                    out.insert(path, (Vec::new(), mode(entry.path().as_path())));
                } else if !in_git
                    || path.parent().is_some_and(|p| p.ends_with(".git/hooks"))
                    || name.starts_with("mcp-session-coordinator")
                {
                    let bytes = std::fs::read(&path).expect("read");
                    out.insert(path.clone(), (bytes, mode(&path)));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.repo(), &mut out);
        walk(self.home.path(), &mut out);
        out
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or(0, |m| m.permissions().mode())
}

#[cfg(not(unix))]
fn mode(_path: &Path) -> u32 {
    0
}

/// README's Claude Code hook block, the `env` aside (init does not guess a project).
fn readme_claude_hooks() -> Value {
    let hook = |command: &str| json!([{ "hooks": [{ "type": "command", "command": command }] }]);
    json!({
        "SessionStart": hook("mcp-session-coordinator hook claude-code"),
        "PreToolUse": [{
            "matcher": "Edit|Write|MultiEdit|NotebookEdit",
            "hooks": [{ "type": "command", "command": "mcp-session-coordinator hook claude-code --acquire" }]
        }],
        "Stop": hook("mcp-session-coordinator hook claude-code"),
        "SessionEnd": hook("mcp-session-coordinator hook claude-code"),
    })
}

#[test]
fn init_writes_each_clients_files_in_a_fresh_repository() {
    let place = Place::new();
    let mut args = Vec::new();
    for client in EVERY_CLIENT {
        args.extend(["--client", client]);
    }
    let out = place.ok(&args);
    assert!(
        out.starts_with("Wired claude-code, codex, gemini-cli, copilot, cursor, vscode in "),
        "{out}"
    );

    let server = json!({ "command": "mcp-session-coordinator", "args": [] });
    assert_eq!(
        place.json(".mcp.json"),
        json!({ "mcpServers": { "session-coordinator": server } })
    );
    assert_eq!(
        place.json(".claude/settings.json"),
        json!({ "hooks": readme_claude_hooks() })
    );
    assert_eq!(
        place.read(".codex/config.toml"),
        "[mcp_servers.session-coordinator]\ncommand = \"mcp-session-coordinator\"\nargs = []\n"
    );
    let codex = |command: &str| json!([{ "hooks": [{ "type": "command", "command": command }] }]);
    assert_eq!(
        place.json(".codex/hooks.json"),
        json!({ "hooks": {
            "SessionStart": codex("mcp-session-coordinator hook codex"),
            "PreToolUse": [{
                "matcher": "apply_patch",
                "hooks": [{ "type": "command", "command": "mcp-session-coordinator hook codex --acquire" }]
            }],
            "Stop": codex("mcp-session-coordinator hook codex"),
            "SessionEnd": codex("mcp-session-coordinator hook codex"),
        } })
    );
    assert_eq!(
        place.json(".gemini/settings.json")["mcpServers"]["session-coordinator"],
        server
    );
    let gemini = |command: &str| json!([{ "hooks": [{ "type": "command", "command": command }] }]);
    assert_eq!(
        place.json(".gemini/settings.json")["hooks"],
        json!({
            "SessionStart": gemini("mcp-session-coordinator hook gemini-cli"),
            "BeforeTool": [{
                "matcher": "write_file|replace",
                "hooks": [{ "type": "command", "command": "mcp-session-coordinator hook gemini-cli --acquire" }]
            }],
            "AfterAgent": gemini("mcp-session-coordinator hook gemini-cli"),
            "SessionEnd": gemini("mcp-session-coordinator hook gemini-cli"),
        })
    );
    assert_eq!(
        place.json(".cursor/mcp.json")["mcpServers"]["session-coordinator"],
        server
    );
    assert_eq!(
        place.json(".vscode/mcp.json"),
        json!({ "servers": { "session-coordinator": {
            "type": "stdio", "command": "mcp-session-coordinator", "args": [] } } })
    );
    // README's Copilot CLI hook file.
    let copilot = |bash: &str| json!([{ "type": "command", "bash": bash }]);
    assert_eq!(
        place.json(".github/hooks/coordinator.json"),
        json!({ "version": 1, "hooks": {
            "sessionStart": copilot("mcp-session-coordinator hook copilot session-start"),
            "preToolUse": copilot("mcp-session-coordinator hook copilot pre-tool-use --acquire"),
            "agentStop": copilot("mcp-session-coordinator hook copilot agent-stop"),
            "sessionEnd": copilot("mcp-session-coordinator hook copilot session-end"),
        } })
    );
    let agents = place.read("AGENTS.md");
    for tool in [
        "session_register",
        "lock_acquire",
        "lock_release",
        "conflict_check",
        "message_send",
    ] {
        assert!(agents.contains(tool), "AGENTS.md names {tool}: {agents}");
    }
    assert!(
        !place.repo().join("CLAUDE.md").exists(),
        "CLAUDE.md only where it is already"
    );

    // The git guard, as install-git-hook writes it.
    let hook = place.repo().join(".git/hooks/pre-commit");
    // On PostgreSQL the hook carries the database URL, password included: its owner's only.
    let expected = if common::postgres_server().is_some() {
        0o700
    } else {
        0o755
    };
    assert_eq!(mode(&hook) & 0o777, expected, "the guard is executable");
    let other = Place::new();
    // The same database as init's (its path, or on PostgreSQL its URL), another repository.
    let installed = place.db.run(
        &[
            "install-git-hook",
            "--repo",
            &other.repo().display().to_string(),
        ],
        &[],
        None,
        "",
    );
    assert!(installed.ok, "{}", installed.stderr);
    assert_eq!(
        std::fs::read_to_string(&hook).expect("hook"),
        std::fs::read_to_string(other.repo().join(".git/hooks/pre-commit")).expect("hook")
    );
    for note in ["codex:", "cursor:", "vscode:"] {
        assert!(out.contains(&format!("note: {note}")), "{out}");
    }
}

#[test]
fn a_command_given_is_what_the_clients_run() {
    let place = Place::new();
    place.ok(&[
        "--client",
        "claude-code",
        "--client",
        "codex",
        "--command",
        "npx -y mcp-session-coordinator",
    ]);
    assert_eq!(
        place.json(".mcp.json")["mcpServers"]["session-coordinator"],
        json!({ "command": "npx", "args": ["-y", "mcp-session-coordinator"] })
    );
    assert_eq!(
        place.json(".claude/settings.json")["hooks"]["PreToolUse"][0]["hooks"][0]["command"],
        "npx -y mcp-session-coordinator hook claude-code --acquire"
    );
    assert!(
        place
            .read(".codex/config.toml")
            .contains("command = \"npx\"\nargs = [\"-y\", \"mcp-session-coordinator\"]")
    );
}

/// Files of the person's own, with comments, odd layout and their own entries.
fn own_files(place: &Place) {
    place.write(
        ".claude/settings.json",
        "{\n    \"permissions\": { \"allow\": [\"Bash(ls)\"] },\n    \"hooks\": {\n        \"PreToolUse\": [\n            { \"matcher\": \"Bash\", \"hooks\": [ { \"type\": \"command\", \"command\": \"./check.sh\" } ] }\n        ]\n    },\n    \"model\":   \"opus\"\n}",
    );
    place.write(
        ".mcp.json",
        "{\"mcpServers\":{\"zeta\":{\"command\":\"z\"}},\"alpha\":true}\n",
    );
    place.write(
        ".vscode/mcp.json",
        "// VS Code reads JSON with comments\n{\n\t\"servers\": {\n\t\t\"mine\": { \"type\": \"stdio\", \"command\": \"m\" }, // keep me\n\t},\n\t\"inputs\": [],\n}\n",
    );
    place.write(
        ".codex/config.toml",
        "# Codex settings\nmodel = \"o3\"  # fast\n\n[mcp_servers.other]\ncommand = \"o\"\n\n[tui]\nnotifications = true\n",
    );
    place.write("AGENTS.md", "# Agents\n\nRun the tests before you push.");
    place.write("CLAUDE.md", "@AGENTS.md\n");
}

#[test]
fn init_merges_into_files_already_there_keeping_them_and_twice_changes_nothing() {
    let place = Place::new();
    own_files(&place);
    let clients = [
        "--client",
        "claude-code",
        "--client",
        "codex",
        "--client",
        "vscode",
    ];
    place.ok(&clients);

    let settings = place.read(".claude/settings.json");
    assert!(
        settings.starts_with("{\n    \"permissions\": { \"allow\": [\"Bash(ls)\"] },\n    \"hooks\": {\n        \"PreToolUse\": [\n            { \"matcher\": \"Bash\", \"hooks\": [ { \"type\": \"command\", \"command\": \"./check.sh\" } ] },"),
        "their hook first, untouched: {settings}"
    );
    assert!(
        settings.trim_end().ends_with("\"model\":   \"opus\"\n}"),
        "{settings}"
    );
    let value: Value = serde_json::from_str(&settings).expect("still JSON");
    assert_eq!(value["hooks"]["PreToolUse"][0]["matcher"], "Bash");
    assert_eq!(
        value["hooks"]["PreToolUse"][1],
        readme_claude_hooks()["PreToolUse"][0]
    );
    assert_eq!(
        value["hooks"]["SessionEnd"],
        readme_claude_hooks()["SessionEnd"]
    );
    let keys: Vec<&String> = value
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 3);

    let mcp = place.read(".mcp.json");
    assert!(
        mcp.find("zeta") < mcp.find("session-coordinator")
            && mcp.find("session-coordinator") < mcp.find("alpha"),
        "{mcp}"
    );
    let vscode = place.read(".vscode/mcp.json");
    assert!(vscode.starts_with("// VS Code reads JSON with comments\n{\n\t\"servers\": {\n\t\t\"mine\": { \"type\": \"stdio\", \"command\": \"m\" }, // keep me\n"), "{vscode}");
    assert!(vscode.contains("\"session-coordinator\""), "{vscode}");
    let codex = place.read(".codex/config.toml");
    let ours =
        "\n[mcp_servers.session-coordinator]\ncommand = \"mcp-session-coordinator\"\nargs = []\n";
    assert_eq!(
        codex,
        "# Codex settings\nmodel = \"o3\"  # fast\n\n[mcp_servers.other]\ncommand = \"o\"\n"
            .to_owned()
            + ours
            + "\n[tui]\nnotifications = true\n",
        "beside the other server, the rest as it was"
    );
    assert!(place.read("AGENTS.md").starts_with(
        "# Agents\n\nRun the tests before you push.\n\n<!-- mcp-session-coordinator: begin"
    ));
    assert!(
        place
            .read("CLAUDE.md")
            .starts_with("@AGENTS.md\n\n<!-- mcp-session-coordinator: begin"),
        "CLAUDE.md, there already, gets the note"
    );

    let once = place.snapshot();
    let again = place.ok(&clients);
    assert!(again.contains("Nothing to change"), "{again}");
    assert_eq!(place.snapshot(), once, "a second init changes no byte");
}

#[test]
fn remove_restores_every_file_byte_for_byte() {
    let place = Place::new();
    own_files(&place);
    let before = place.snapshot();
    let mut args = Vec::new();
    for client in EVERY_CLIENT {
        args.extend(["--client", client]);
    }
    place.ok(&args);
    place.ok(&args);
    assert_ne!(place.snapshot(), before);
    let out = place.ok(&["--remove"]);
    assert!(out.starts_with("Removed what init added in "), "{out}");
    assert_eq!(
        place.snapshot(),
        before,
        "every file, folder and mode as it was"
    );
    let again = place.ok(&["--remove"]);
    assert!(again.contains("nothing to remove"), "{again}");
}

#[test]
fn remove_after_a_hand_edit_takes_out_only_our_entries() {
    let place = Place::new();
    place.ok(&["--client", "claude-code"]);
    let mut mcp = place.json(".mcp.json");
    mcp["mcpServers"]["theirs"] = json!({ "command": "t" });
    place.write(
        ".mcp.json",
        &serde_json::to_string_pretty(&mcp).expect("json"),
    );
    let out = place.ok(&["--remove"]);
    assert!(
        out.contains(".mcp.json (changed since init: took out only its entries)"),
        "{out}"
    );
    assert_eq!(
        place.json(".mcp.json"),
        json!({ "mcpServers": { "theirs": { "command": "t" } } })
    );
    assert!(
        !place.repo().join(".claude").exists(),
        "created by init, unchanged: gone with its folder"
    );
    assert!(!place.repo().join("AGENTS.md").exists());
    assert!(!place.repo().join(".git/hooks/pre-commit").exists());
}

#[test]
fn dry_run_prints_a_diff_and_writes_nothing() {
    let place = Place::new();
    own_files(&place);
    let before = place.snapshot();
    let out = place.ok(&["--client", "claude-code", "--dry-run"]);
    assert_eq!(place.snapshot(), before, "nothing written");
    assert!(out.contains("--- a/.mcp.json\n+++ b/.mcp.json\n"), "{out}");
    assert!(
        out.contains("--- /dev/null\n+++ b/.git/hooks/pre-commit\n"),
        "{out}"
    );
    assert!(
        out.contains("+<!-- mcp-session-coordinator: begin"),
        "{out}"
    );
    assert!(
        out.lines().any(|line| line.starts_with('+')
            && line[1..].trim()
                == "\"command\": \"mcp-session-coordinator hook claude-code --acquire\""),
        "{out}"
    );

    place.ok(&["--client", "claude-code"]);
    let installed = place.snapshot();
    let out = place.ok(&["--remove", "--dry-run"]);
    assert_eq!(place.snapshot(), installed, "nothing removed");
    assert!(
        out.contains("--- a/.git/hooks/pre-commit\n+++ /dev/null\n"),
        "{out}"
    );
    assert!(
        out.contains("-<!-- mcp-session-coordinator: begin"),
        "{out}"
    );
}

#[test]
fn clients_are_found_on_path_in_the_home_folder_and_in_the_repository() {
    let place = Place::new();
    let bin = tempfile::tempdir().expect("bin");
    let codex = bin.path().join("codex");
    std::fs::write(&codex, "#!/bin/sh\n").expect("fake codex");
    std::fs::create_dir_all(place.home.path().join(".gemini")).expect("~/.gemini");
    place.write(".cursor/rules.md", "rules\n");
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.path().display());
    let run = place.init_with_path(&[], &path);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("Wired codex, gemini-cli, cursor in "),
        "{}",
        run.stdout
    );
    assert!(place.repo().join(".codex/config.toml").exists());
    assert!(
        !place.repo().join(".mcp.json").exists(),
        "no Claude Code here"
    );

    let bare = Place::new();
    let none = bare.init(&[]);
    assert!(!none.ok);
    assert!(
        none.stderr.contains("found no AI client here")
            && none
                .stderr
                .contains("claude-code, codex, gemini-cli, copilot, cursor, vscode"),
        "{}",
        none.stderr
    );
}

#[test]
fn user_scope_writes_the_home_folders_files() {
    let place = Place::new();
    let before = place.snapshot();
    place.ok(&[
        "--scope",
        "user",
        "--client",
        "claude-code",
        "--client",
        "codex",
        "--client",
        "copilot",
    ]);
    let home = place.home.path();
    let read = |file: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(home.join(file)).expect(file)).expect(file)
    };
    assert_eq!(
        read(".claude.json")["mcpServers"]["session-coordinator"]["command"],
        "mcp-session-coordinator"
    );
    assert_eq!(
        read(".claude/settings.json")["hooks"],
        readme_claude_hooks()
    );
    assert_eq!(
        read(".copilot/mcp-config.json")["mcpServers"]["session-coordinator"],
        json!({ "type": "local", "command": "mcp-session-coordinator", "args": [], "tools": ["*"] })
    );
    assert!(
        std::fs::read_to_string(home.join(".codex/config.toml"))
            .expect("codex")
            .contains("[mcp_servers.session-coordinator]")
    );
    assert_eq!(
        read(".codex/hooks.json")["hooks"]["PreToolUse"][0]["matcher"],
        "apply_patch"
    );
    assert!(!place.repo().join(".mcp.json").exists() && !place.repo().join("AGENTS.md").exists());
    assert!(
        place.repo().join(".git/hooks/pre-commit").exists(),
        "the guard is the repository's"
    );
    place.ok(&["--remove"]);
    assert_eq!(place.snapshot(), before);
}

#[test]
fn a_file_init_cannot_parse_or_write_stops_it_before_anything_changes() {
    let place = Place::new();
    place.write(".mcp.json", "{ \"mcpServers\": { \"a\": 1 \"b\": 2 } }\n");
    let before = place.snapshot();
    let run = place.init(&["--client", "claude-code"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("cannot parse") && run.stderr.contains(".mcp.json"),
        "{}",
        run.stderr
    );
    assert_eq!(
        place.snapshot(),
        before,
        "nothing written, the broken file least of all"
    );

    let place = Place::new();
    place.write(".cursor/mcp.json", "{}\n");
    set_mode(&place.repo().join(".cursor/mcp.json"), 0o444);
    let before = place.snapshot();
    let run = place.init(&["--client", "cursor"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("mcp.json is read-only"),
        "{}",
        run.stderr
    );
    assert_eq!(place.snapshot(), before);

    let folder = tempfile::tempdir().expect("folder");
    let run = Place::new().db.run(
        &[
            "init",
            "--client",
            "codex",
            "--repo",
            &folder.path().display().to_string(),
        ],
        &[("HOME", &folder.path().display().to_string())],
        None,
        "",
    );
    assert!(!run.ok);
    assert!(
        run.stderr.contains("is not in a git repository"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_dir(folder.path()).map(|d| d.count()).ok(),
        Some(0)
    );

    let run = Place::new().init(&["--remove", "--client", "codex"]);
    assert!(
        !run.ok,
        "--remove undoes everything init recorded, whichever client"
    );
    let run = Place::new().init(&["--client", "emacs"]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("claude-code") && run.stderr.contains("vscode"),
        "the allowed values: {}",
        run.stderr
    );
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) {}

/// Another client's session, in the repository, holding `src/api.ts`.
async fn holding_api_ts(place: &Place, client_pid: &str) -> Server {
    let other = place
        .db
        .server_of_client(client_pid, Some(place.repo()))
        .await;
    other.register("api", "shop", "main").await;
    other
        .call("lock_acquire", json!({"file_path": "src/api.ts"}))
        .await;
    other
}

/// Runs the command init wrote for `event` in `hooks` (a client's hook file), as that client
/// would from its process `client_pid`, with `input` and the event's own `fields` on stdin.
fn run_hook(
    place: &Place,
    hooks: &Value,
    client_pid: &str,
    event: &str,
    mut input: Value,
    fields: Value,
) -> Run {
    let command = hooks[event][0]["hooks"][0]["command"]
        .as_str()
        .unwrap_or_default();
    let args: Vec<&str> = command.split(' ').skip(1).collect();
    assert_eq!(command.split(' ').next(), Some("mcp-session-coordinator"));
    if let (Some(input), Some(fields)) = (input.as_object_mut(), fields.as_object()) {
        input.extend(fields.clone());
    }
    place.db.run(
        &args,
        &[("MCP_COORDINATOR_CLIENT_PID", client_pid)],
        Some(place.repo()),
        &input.to_string(),
    )
}

#[tokio::test]
async fn the_gemini_cli_hooks_init_writes_deny_an_edit_of_a_file_another_session_holds() {
    let place = Place::new();
    place.ok(&["--client", "gemini-cli"]);
    let hooks = place.json(".gemini/settings.json")["hooks"].clone();
    let other = holding_api_ts(&place, "525301").await;
    let root = place.repo().display().to_string();
    // Each event runs the command init wrote for it, as Gemini CLI would, with its input.
    let run = |event: &str, fields: Value| {
        let input = json!({"session_id": "g-1", "transcript_path": "/tmp/g-1.json",
                           "cwd": root, "hook_event_name": event,
                           "timestamp": "2026-12-02T18:00:00Z"});
        run_hook(&place, &hooks, "525302", event, input, fields)
    };
    let start = run("SessionStart", json!({"source": "startup"}));
    assert!(start.ok, "{}", start.stderr);
    let context = start.json()["hookSpecificOutput"]["additionalContext"].clone();
    assert!(
        context.as_str().is_some_and(|c| c.contains("session_id")),
        "{context}"
    );

    let edit = |tool: &str, file: &str| json!({"tool_name": tool, "tool_input": {"file_path": format!("{root}/{file}"), "content": "x"}});
    let denied = run("BeforeTool", edit("replace", "src/api.ts"));
    assert!(denied.ok, "{}", denied.stderr);
    let answer = denied.json();
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("src/api.ts is locked exclusively by 'api'")),
        "{answer}"
    );
    let free = run("BeforeTool", edit("write_file", "src/ui.ts"));
    assert!(
        free.ok && free.stdout.is_empty(),
        "{}{}",
        free.stdout,
        free.stderr
    );
    let check = other
        .call("lock_check", json!({"file_path": "src/ui.ts"}))
        .await;
    assert_eq!(
        check["holder_name"], "gemini-g-1",
        "the hook's session took it"
    );
    let shell = run(
        "BeforeTool",
        json!({"tool_name": "run_shell_command", "tool_input": {"command": "ls"}}),
    );
    assert!(shell.ok && shell.stdout.is_empty());

    let alive = run(
        "AfterAgent",
        json!({"prompt": "p", "prompt_response": "r", "stop_hook_active": false}),
    );
    assert!(alive.ok && alive.stdout.is_empty(), "{}", alive.stderr);
    let end = run("SessionEnd", json!({"reason": "exit"}));
    assert!(end.ok, "{}", end.stderr);
    let check = other
        .call("lock_check", json!({"file_path": "src/ui.ts"}))
        .await;
    assert_eq!(check["locked"], false, "the session ended with its lock");
}

#[tokio::test]
async fn the_codex_hooks_init_writes_deny_a_patch_of_a_file_another_session_holds() {
    let place = Place::new();
    place.ok(&["--client", "codex"]);
    let hooks = place.json(".codex/hooks.json")["hooks"].clone();
    let other = holding_api_ts(&place, "525401").await;
    let root = place.repo().display().to_string();
    // Each event runs the command init wrote for it, as Codex would, with its input.
    let run = |event: &str, fields: Value| {
        let input = json!({"session_id": "c0dex-1", "transcript_path": null, "cwd": root,
                           "hook_event_name": event, "model": "gpt-5.5-codex"});
        run_hook(&place, &hooks, "525402", event, input, fields)
    };
    let start = run("SessionStart", json!({"source": "startup"}));
    assert!(start.ok, "{}", start.stderr);
    let context = start.json()["hookSpecificOutput"]["additionalContext"].clone();
    assert!(
        context.as_str().is_some_and(|c| c.contains("session_id")),
        "{context}"
    );

    let patch = |file: &str| {
        json!({"tool_name": "apply_patch", "tool_use_id": "call_1", "turn_id": "t-1",
               "permission_mode": "default",
               "tool_input": {"command": format!(
                   "*** Begin Patch\n*** Update File: {file}\n@@\n-a\n+b\n*** End Patch\n")}})
    };
    let denied = run("PreToolUse", patch("src/api.ts"));
    assert!(denied.ok, "{}", denied.stderr);
    let answer = denied.json();
    assert_eq!(
        answer["hookSpecificOutput"]["permissionDecision"], "deny",
        "{answer}"
    );
    assert!(
        answer["hookSpecificOutput"]["permissionDecisionReason"]
            .as_str()
            .is_some_and(|r| r.starts_with("src/api.ts is locked exclusively by 'api'")),
        "{answer}"
    );
    let free = run("PreToolUse", patch("src/ui.ts"));
    assert!(free.ok, "{}", free.stderr);
    assert!(
        free.json()["hookSpecificOutput"]
            .get("permissionDecision")
            .is_none()
    );
    let check = other
        .call("lock_check", json!({"file_path": "src/ui.ts"}))
        .await;
    assert_eq!(
        check["holder_name"], "codex-c0dex-1",
        "the hook's session took it"
    );

    let alive = run("Stop", json!({"turn_id": "t-1", "stop_hook_active": false}));
    assert!(alive.ok && alive.stdout.is_empty(), "{}", alive.stderr);
    let end = run("SessionEnd", json!({"reason": "exit"}));
    assert!(end.ok, "{}", end.stderr);
    let check = other
        .call("lock_check", json!({"file_path": "src/ui.ts"}))
        .await;
    assert_eq!(check["locked"], false, "the session ended with its lock");

    place.ok(&["--remove"]);
    assert!(
        !place.repo().join(".codex/hooks.json").exists(),
        "--remove takes it out"
    );
}
