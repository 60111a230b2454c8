//! The commands for people, run as the real binary against a database that real MCP servers
//! write: tables checked as snapshots (ids and times masked), `--json` parsed, and the
//! operator's actions seen from the sessions' side.

use crate::common::{self, Db, Server};
use serde_json::json;

/// Masks what changes from run to run (session ids, relative times) and collapses column
/// padding, whose width follows them; `assert_aligned` checks the padding on the raw output.
fn masked(text: &str) -> String {
    // "12s", "14m05s", "2h05m", "1m", "3d": digits and unit letters, ending in a unit.
    let is_time = |word: &str| {
        word.starts_with(|c: char| c.is_ascii_digit())
            && word.ends_with(['s', 'm', 'h', 'd'])
            && word
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, 's' | 'm' | 'h' | 'd'))
    };
    text.lines()
        .map(|line| {
            line.split("  ")
                .filter(|cell| !cell.is_empty())
                .map(|cell| {
                    cell.trim()
                        .split(' ')
                        .map(|word| {
                            if word.starts_with("ses-") && word.len() == 16 {
                                "ses-ID"
                            } else if is_time(word) {
                                "T"
                            } else {
                                word
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Every line of a table starts its columns where the header's do.
fn assert_aligned(table: &str) {
    let mut lines = table.lines();
    let header = lines.next().expect("a header");
    let starts: Vec<usize> = header
        .match_indices("  ")
        .map(|(at, _)| at)
        .filter_map(|at| header[at..].find(|c: char| c != ' ').map(|n| at + n))
        .collect();
    for line in lines {
        for start in &starts {
            if *start < line.len() {
                let before = &line[..*start];
                assert!(
                    before.ends_with("  ") && !line[*start..].starts_with(' '),
                    "column at {start} misaligned in\n{table}"
                );
            }
        }
    }
}

async fn two_sessions(db: &Db) -> (Server, String, Server, String) {
    let (a, b) = (db.server().await, db.server().await);
    let auth = a
        .call(
            "session_register",
            json!({"name": "auth-implementation", "project": "my-app",
                   "branch": "feature/auth", "group": "backend"}),
        )
        .await["session_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let profile = b
        .register("profile-page", "my-app", "feature/profile")
        .await;
    (a, auth, b, profile)
}

#[tokio::test]
async fn status_shows_sessions_locks_queues_and_intents_as_tables() {
    let db = Db::new();
    let (a, _, b, _) = two_sessions(&db).await;
    a.call("lock_acquire", json!({"file_path": "src/models/user.ts"}))
        .await;
    b.call(
        "lock_acquire",
        json!({"file_path": "src/models/user.ts", "queue": true}),
    )
    .await;
    a.call(
        "intent_announce",
        json!({"intent_type": "git_rebase", "description": "onto main"}),
    )
    .await;
    b.call(
        "message_send",
        json!({"to_session": "auth-implementation", "content": "need a bio field"}),
    )
    .await;

    let status = db.cli(&["status"]).stdout;
    assert_eq!(
        masked(&status),
        "\
SESSIONS
NAME | ID | PROJECT | GROUP | BRANCH | SEEN | STATE | LOCKS | INTENTS | UNREAD
auth-implementation | ses-ID | my-app | backend | feature/auth | T ago | active | 1 | 1 | 1
profile-page | ses-ID | my-app | - | feature/profile | T ago | active | 0 | 0 | 0

LOCKS
PATH | PROJECT | TYPE | HOLDER | EXPIRES | TOKEN
src/models/user.ts | my-app | exclusive | auth-implementation | in T | 1

QUEUE
PATH | PROJECT | WANTS | SESSION | PLACE | QUEUED
src/models/user.ts | my-app | exclusive | profile-page | 1 | T ago

INTENTS
ID | PROJECT | TYPE | SESSION | STATUS | ON
int-1 | my-app | git_rebase | auth-implementation | announced | feature/auth
"
    );
    for table in status.split("\n\n") {
        assert_aligned(table.split_once('\n').map_or("", |(_, t)| t));
    }
    assert!(
        !status.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );

    let json = db.cli(&["status", "--json"]).json();
    assert_eq!(json["queue"][0]["project"], "my-app");
    assert_eq!(json["queue"][0]["position"], 1);
    assert_eq!(json["sessions"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["sessions"][0]["unread"], 1);
    assert_eq!(json["sessions"][0]["state"], "active");
    assert_eq!(json["sessions"][0]["group"], "backend");
    assert_eq!(json["locks"][0]["fencing_token"], 1);
    assert_eq!(json["queue"][0]["session_name"], "profile-page");
    assert_eq!(json["intents"][0]["intent_type"], "git_rebase");

    let other = db.cli(&["status", "--project", "elsewhere"]).stdout;
    assert_eq!(
        other, "SESSIONS: none\n\nLOCKS: none\n\nINTENTS: none\n",
        "a project filter"
    );
}

#[tokio::test]
async fn locks_filter_and_json() {
    let db = Db::new();
    let (a, _, b, _) = two_sessions(&db).await;
    a.call("lock_acquire", json!({"file_path": "src/api/"}))
        .await;
    b.call(
        "lock_acquire",
        json!({"file_path": "web/page.tsx", "lock_type": "shared"}),
    )
    .await;
    let all = db.cli(&["locks", "--json"]).json();
    assert_eq!(all["count"], 2);
    let backend = db.cli(&["locks", "--group", "backend"]).stdout;
    assert_eq!(
        masked(&backend),
        "\
LOCKS
PATH | PROJECT | TYPE | HOLDER | EXPIRES | TOKEN
src/api/ | my-app | exclusive | auth-implementation | in T | 1
"
    );
    assert_aligned(backend.split_once('\n').map_or("", |(_, t)| t));
    let covering = db
        .cli(&[
            "locks",
            "--project",
            "my-app",
            "--path",
            "src/api/users.rs",
            "--json",
        ])
        .json();
    assert_eq!(covering["locks"][0]["file_path"], "src/api/");
    assert_eq!(
        db.cli(&["locks", "--project", "nothing-here"]).stdout,
        "LOCKS: none\n"
    );
}

#[tokio::test]
async fn a_forced_release_grants_the_queue_and_tells_the_holder() {
    let db = Db::new();
    let (a, _, b, profile) = two_sessions(&db).await;
    a.call("lock_acquire", json!({"file_path": "src/models/user.ts"}))
        .await;
    b.call(
        "lock_acquire",
        json!({"file_path": "src/models/user.ts", "queue": true}),
    )
    .await;

    let refused = db.run(
        &["release", "src/models/user.ts", "--project", "my-app"],
        &[],
        None,
        "",
    );
    assert!(!refused.ok);
    assert!(refused.stderr.contains("add --force"), "{}", refused.stderr);

    let released = db
        .cli(&[
            "release",
            "./src/models/user.ts",
            "--project",
            "my-app",
            "--force",
            "--by",
            "dana",
            "--json",
        ])
        .json();
    assert_eq!(
        released["released"][0]["holder_name"],
        "auth-implementation"
    );

    let check = b
        .call("lock_check", json!({"file_path": "src/models/user.ts"}))
        .await;
    assert_eq!(check["held_by"], profile.as_str(), "the queue was granted");
    let inbox = a.call("message_list", json!({})).await;
    let notice = inbox["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(
        notice.contains("dana (a person) force-released your exclusive lock on src/models/user.ts"),
        "{notice}"
    );
    assert_eq!(inbox["messages"][0]["channel"], "alerts");

    let nothing = db.run(
        &[
            "release",
            "src/nothing.ts",
            "--project",
            "my-app",
            "--force",
        ],
        &[],
        None,
        "",
    );
    assert!(!nothing.ok);
    assert!(
        nothing
            .stderr
            .contains("invalid argument `file_path`: no live lock on src/nothing.ts"),
        "{}",
        nothing.stderr
    );
}

#[tokio::test]
async fn people_send_read_messages_end_sessions_and_browse_context() {
    let db = Db::new();
    let (a, auth, b, _) = two_sessions(&db).await;
    let sent = db
        .run(
            &[
                "send",
                "--project",
                "my-app",
                "--group",
                "backend",
                "--priority",
                "urgent",
                "--from",
                "dana",
                "main",
                "is",
                "red",
            ],
            &[],
            None,
            "",
        )
        .stdout;
    assert!(
        sent.starts_with("Sent msg-1 to 1 session: auth-implementation"),
        "{sent}"
    );
    let answer = a.call("session_heartbeat", json!({})).await;
    assert_eq!(
        answer["unread_messages"],
        json!({"count": 1, "urgent": 1}),
        "the AI notices a person's urgent message"
    );
    let listed = db.cli(&["messages", "--project", "my-app"]).stdout;
    assert!(
        listed.contains(
            "#general  urgent  dana (person) -> group backend  (unread)\n    main is red"
        ),
        "{listed}"
    );

    b.call(
        "context_share",
        json!({"context_type": "decision", "content": "Sessions use RS256 tokens", "tags": ["auth"]}),
    )
    .await;
    let found = db.cli(&["context", "--project", "my-app", "token"]).stdout;
    assert!(
        found.contains("decision  my-app") && found.contains("by profile-page  [auth]"),
        "{found}"
    );
    assert!(found.contains("    Sessions use RS256 tokens"), "{found}");

    let bad = db.run(
        &["send", "-p", "my-app", "--priority", "asap", "x"],
        &[],
        None,
        "",
    );
    assert!(!bad.ok);
    assert!(
        bad.stderr
            .contains("unknown value 'asap'; allowed values: low, normal, high, urgent"),
        "{}",
        bad.stderr
    );

    a.call("lock_acquire", json!({"file_path": "x.ts"})).await;
    let ended = db
        .cli(&["end-session", "auth-implementation", "--json"])
        .json();
    assert_eq!(ended["session_id"], auth.as_str());
    assert_eq!(ended["locks_released"], 1);
    let list = b.call("session_list", json!({})).await;
    assert_eq!(list["count"], 1, "only profile-page is left");
    let unknown = db.run(&["end-session", "nobody"], &[], None, "");
    assert!(!unknown.ok && unknown.stderr.contains("unknown session `nobody`"));
}

#[tokio::test]
async fn doctor_checks_the_database() {
    let db = Db::new();
    let postgres = common::postgres_server().is_some();
    // A PostgreSQL database exists before any server ran (the test created it).
    if !postgres {
        let missing = db.run(&["doctor"], &[], None, "");
        assert!(!missing.ok, "no database is a failure");
        assert!(
            missing.stdout.starts_with("No database at "),
            "{}",
            missing.stdout
        );
        assert!(!db.path().exists(), "doctor does not create one");
        let nothing = db.run(&["status"], &[], None, "");
        assert!(!nothing.ok && nothing.stderr.contains("no database at"));
        assert!(!db.path().exists(), "nor does status");
    }

    let server = db
        .server_with(&[
            ("MCP_SESSION_TIMEOUT_SEC", "1"),
            ("MCP_CLEANUP_INTERVAL_SEC", "3600"),
        ])
        .await;
    server.register("sleepy", "my-app", "main").await;
    let report = db.cli(&["doctor", "--json"]).json();
    if postgres {
        assert_eq!(report["backend"], "postgresql");
        assert!(report.get("journal_mode").is_none());
    } else {
        assert_eq!(report["backend"], "sqlite");
        assert_eq!(report["journal_mode"], "wal");
    }
    assert_eq!(report["integrity"], json!(["ok"]));
    assert_eq!(report["schema_version"], report["schema_expected"]);
    assert_eq!(report["sessions"], 1);

    db.stop(&server).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let text = db
        .run(&["doctor", "--session-timeout", "1"], &[], None, "")
        .stdout;
    server.signal("CONT");
    assert!(postgres || text.contains("journal mode  wal"), "{text}");
    assert!(text.contains("integrity     ok"), "{text}");
    assert!(text.contains("sessions      1 (1 stale)"), "{text}");
    assert!(text.contains("stale: 'sleepy'"), "{text}");
}

/// The long flags a command's `--help` lists: the first word of a line, after a short form.
fn listed_flags(db: &Db, command: &[&str]) -> Vec<String> {
    let args: Vec<&str> = command.iter().copied().chain(["--help"]).collect();
    let help = db.cli(&args).stdout;
    help.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let first = words.next()?;
            let flag = if first.len() == 3 && first.ends_with(',') {
                words.next()?
            } else {
                first
            };
            flag.strip_prefix("--").map(str::to_owned)
        })
        .collect()
}

#[test]
fn each_help_lists_the_flags_that_have_an_effect_there() {
    let db = Db::new();
    let stdio = listed_flags(&db, &[]);
    for flag in [
        "db-path",
        "allow-unsafe-db-path",
        "db-url",
        "session-timeout",
        "log",
        "tools",
        "output-schemas",
        "cleanup-interval",
        "webhook",
    ] {
        assert!(stdio.iter().any(|f| f == flag), "--help lacks --{flag}");
    }
    assert!(
        !stdio.iter().any(|f| f == "token"),
        "the stdio server takes no token"
    );
    let serve = listed_flags(&db, &["serve"]);
    for flag in [
        "tools",
        "output-schemas",
        "cleanup-interval",
        "webhook",
        "token",
    ] {
        assert!(
            serve.iter().any(|f| f == flag),
            "serve --help lacks --{flag}"
        );
    }
    let dashboard = listed_flags(&db, &["dashboard"]);
    assert!(dashboard.iter().any(|f| f == "webhook"), "{dashboard:?}");
    for (command, absent) in [
        (
            &["dashboard"][..],
            &["tools", "output-schemas", "cleanup-interval"][..],
        ),
        (
            &["status"],
            &[
                "tools",
                "output-schemas",
                "cleanup-interval",
                "webhook",
                "token",
            ],
        ),
        (
            &["hook", "claude-code"],
            &["tools", "output-schemas", "cleanup-interval", "webhook"],
        ),
        (&["locks"], &["session-timeout", "tools"]),
        (
            &["install-git-hook"],
            &["allow-unsafe-db-path", "session-timeout"],
        ),
    ] {
        let listed = listed_flags(&db, command);
        assert!(
            listed.iter().any(|f| f == "db-path"),
            "{command:?}: {listed:?}"
        );
        for flag in absent {
            assert!(
                !listed.iter().any(|f| f == flag),
                "{command:?} --help lists --{flag}"
            );
        }
    }
}

#[test]
fn a_flag_with_no_effect_on_a_command_is_refused_before_or_after_its_name() {
    let db = Db::new();
    for (args, flag) in [
        (&["status", "--tools", "core"][..], "--tools"),
        (&["--tools", "core", "status"], "--tools"),
        (
            &["--cleanup-interval", "5", "dashboard"],
            "--cleanup-interval",
        ),
    ] {
        let run = db.run(args, &[], None, "");
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        let refusal = format!("error: unexpected argument '{flag}' found");
        assert!(run.stderr.starts_with(&refusal), "{args:?}: {}", run.stderr);
    }
    // A variable is another matter: a hook inherits the environment its client's servers got.
    let status = db.run(&["status"], &[("MCP_COORDINATOR_TOOLS", "core")], None, "");
    assert!(
        !status.stderr.contains("unexpected argument"),
        "{}",
        status.stderr
    );
}

#[tokio::test]
async fn serve_takes_the_listing_flags_after_its_name() {
    let db = Db::new();
    let server =
        common::http::HttpServer::start(&db.path(), &["--tools", "core", "--output-schemas"], &[]);
    let client = server
        .client(
            common::Lifecycle::Initialize(rmcp::model::ProtocolVersion::V_2025_11_25),
            None,
        )
        .await;
    let tools = client.client.list_all_tools().await.expect("tools/list");
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, common::CORE_TOOLS);
    assert!(
        tools.iter().all(|t| t.output_schema.is_some()),
        "--output-schemas lists every schema"
    );
}

/// A person who starts the server by hand (a terminal on stdin) is told what it waits for;
/// an AI client's pipe gets nothing but JSON-RPC on stdout and the usual log on stderr.
#[test]
fn a_server_started_from_a_terminal_says_it_waits_for_an_mcp_client() {
    let db = Db::new();
    let server = format!("{} --db-path {}", common::BIN, db.path().display());
    // util-linux's `script` gives the server a terminal; its own stdin (empty) ends the run.
    let terminal = std::process::Command::new("script")
        .args(["-qec", &server, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the server under script(1), from util-linux");
    let shown = String::from_utf8_lossy(&terminal.stdout);
    assert!(
        shown.contains("waiting for an MCP client on stdin"),
        "{shown}"
    );
    let piped = db.run(&[], &[], None, "");
    assert!(
        !piped.stderr.contains("waiting for an MCP client") && piped.stdout.is_empty(),
        "{}",
        piped.stderr
    );
}
