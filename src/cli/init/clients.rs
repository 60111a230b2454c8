//! The AI clients `init` knows: how to tell one is used here, and which entries it needs in
//! which file, per scope. Each client reads its own files in its own format; the formats
//! themselves are `json`, `toml` and `notes`.

use std::path::{Path, PathBuf};

use super::entry::{Entry, Ordered};
use crate::flags::{InitClient, InitScope};

/// The server's name in every client's configuration, as README shows it.
pub const SERVER: &str = "session-coordinator";

/// Every client, in the order they are reported.
pub const ALL: &[InitClient] = &[
    InitClient::ClaudeCode,
    InitClient::Codex,
    InitClient::GeminiCli,
    InitClient::Copilot,
    InitClient::Cursor,
    InitClient::Vscode,
];

/// One entry for one file, and what it is for (shown to the person).
pub struct Target {
    pub path: PathBuf,
    pub entry: Entry,
    pub what: String,
}

/// Where the files go: the repository, and the home folder for user scope and detection.
pub struct Places<'a> {
    pub repo: &'a Path,
    pub home: Option<&'a Path>,
}

impl Places<'_> {
    fn home_join(&self, path: &str) -> Option<PathBuf> {
        self.home.map(|home| home.join(path))
    }

    fn codex_home(&self) -> Option<PathBuf> {
        std::env::var_os("CODEX_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| self.home_join(".codex"))
    }

    fn vscode_user(&self) -> Option<PathBuf> {
        let folder = if cfg!(target_os = "macos") {
            "Library/Application Support/Code/User"
        } else {
            ".config/Code/User"
        };
        self.home_join(folder)
    }
}

pub fn name(client: InitClient) -> &'static str {
    match client {
        InitClient::ClaudeCode => "claude-code",
        InitClient::Codex => "codex",
        InitClient::GeminiCli => "gemini-cli",
        InitClient::Copilot => "copilot",
        InitClient::Cursor => "cursor",
        InitClient::Vscode => "vscode",
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Whether `client` is used here: its program on PATH, its folder in the home folder, or its
/// files in the repository.
pub fn present(client: InitClient, places: &Places) -> bool {
    let repo = |path: &str| places.repo.join(path).exists();
    let home = |path: &str| places.home_join(path).is_some_and(|p| p.exists());
    match client {
        InitClient::ClaudeCode => {
            on_path("claude")
                || home(".claude")
                || repo(".claude")
                || repo(".mcp.json")
                || repo("CLAUDE.md")
        }
        InitClient::Codex => {
            on_path("codex") || places.codex_home().is_some_and(|p| p.exists()) || repo(".codex")
        }
        InitClient::GeminiCli => {
            on_path("gemini") || home(".gemini") || repo(".gemini") || repo("GEMINI.md")
        }
        InitClient::Copilot => {
            on_path("copilot")
                || home(".copilot")
                || repo(".github/hooks")
                || repo(".github/copilot-instructions.md")
        }
        InitClient::Cursor => {
            on_path("cursor") || on_path("cursor-agent") || home(".cursor") || repo(".cursor")
        }
        InitClient::Vscode => on_path("code") || repo(".vscode"),
    }
}

/// How the clients start the binary: a command and its arguments.
pub struct Launch {
    pub words: Vec<String>,
}

impl Launch {
    fn command(&self) -> String {
        self.words.first().cloned().unwrap_or_default()
    }

    fn args(&self) -> Vec<String> {
        self.words.iter().skip(1).cloned().collect()
    }

    /// The command line a hook runs: these words then `rest`, quoted for the shell.
    fn shell(&self, rest: &str) -> String {
        let mut words: Vec<String> = self.words.iter().map(|w| quote(w)).collect();
        words.push(rest.to_owned());
        words.join(" ")
    }

    fn server(&self) -> Ordered {
        Ordered::map(&[
            ("command", Ordered::str(&self.command())),
            ("args", Ordered::strs(&self.args())),
        ])
    }
}

/// A word as the shell reads it back: as is when plain, else single-quoted.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./:=@%+-,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn json_server(path: PathBuf, container: &str, value: Ordered, what: &str) -> Target {
    Target {
        path,
        entry: Entry::JsonServer {
            container: container.to_owned(),
            name: SERVER.to_owned(),
            value,
        },
        what: what.to_owned(),
    }
}

/// Hook groups in Claude Code's layout, which Gemini CLI and Codex share: `hooks.<event>` lists of
/// `{matcher, hooks: [{type, command}]}`; the edit event runs with `--acquire`.
fn hook_groups(
    path: &Path,
    launch: &Launch,
    client: &str,
    events: &[(&str, Option<&str>)],
) -> Vec<Target> {
    events
        .iter()
        .map(|(event, matcher)| {
            let rest = match matcher {
                Some(_) => format!("hook {client} --acquire"),
                None => format!("hook {client}"),
            };
            let hook = Ordered::map(&[
                ("type", Ordered::str("command")),
                ("command", Ordered::str(&launch.shell(&rest))),
            ]);
            let mut fields = Vec::new();
            if let Some(matcher) = matcher {
                fields.push(("matcher", Ordered::str(matcher)));
            }
            fields.push(("hooks", Ordered::List(vec![hook])));
            Target {
                path: path.to_owned(),
                entry: Entry::JsonHook {
                    event: (*event).to_owned(),
                    group: Ordered::map(&fields),
                },
                what: format!("{client}: hooks"),
            }
        })
        .collect()
}

/// Copilot CLI's hook file, as README shows it: one command per event.
fn copilot_hooks(path: &Path, launch: &Launch) -> Vec<Target> {
    let mut targets = vec![Target {
        path: path.to_owned(),
        entry: Entry::JsonField {
            name: "version".to_owned(),
            value: Ordered::Num(1),
        },
        what: "copilot: hooks".to_owned(),
    }];
    for (event, argument) in [
        ("sessionStart", "session-start"),
        ("preToolUse", "pre-tool-use --acquire"),
        ("agentStop", "agent-stop"),
        ("sessionEnd", "session-end"),
    ] {
        let group = Ordered::map(&[
            ("type", Ordered::str("command")),
            (
                "bash",
                Ordered::str(&launch.shell(&format!("hook copilot {argument}"))),
            ),
        ]);
        targets.push(Target {
            path: path.to_owned(),
            entry: Entry::JsonHook {
                event: event.to_owned(),
                group,
            },
            what: "copilot: hooks".to_owned(),
        });
    }
    targets
}

/// What `client` needs, and notes on what it cannot have. A user-scope file is left out when
/// there is no home folder to put it in.
pub fn targets(
    client: InitClient,
    scope: InitScope,
    places: &Places,
    launch: &Launch,
) -> (Vec<Target>, Vec<String>) {
    let project = scope == InitScope::Project;
    let at = |repo_path: &str, user_path: Option<PathBuf>| -> Option<PathBuf> {
        if project {
            Some(places.repo.join(repo_path))
        } else {
            user_path
        }
    };
    let mut targets = Vec::new();
    let mut notes = Vec::new();
    let server = launch.server();
    match client {
        InitClient::ClaudeCode => {
            if let Some(path) = at(".mcp.json", places.home_join(".claude.json")) {
                targets.push(json_server(
                    path,
                    "mcpServers",
                    server,
                    "claude-code: MCP server",
                ));
            }
            if let Some(path) = at(
                ".claude/settings.json",
                places.home_join(".claude/settings.json"),
            ) {
                let events = [
                    ("SessionStart", None),
                    ("PreToolUse", Some("Edit|Write|MultiEdit|NotebookEdit")),
                    ("Stop", None),
                    ("SessionEnd", None),
                ];
                targets.extend(hook_groups(&path, launch, "claude-code", &events));
            }
        }
        InitClient::Codex => {
            let user = places.codex_home().map(|h| h.join("config.toml"));
            if let Some(path) = at(".codex/config.toml", user) {
                targets.push(Target {
                    path,
                    entry: Entry::TomlServer {
                        table: "mcp_servers".to_owned(),
                        name: SERVER.to_owned(),
                        command: launch.command(),
                        args: launch.args(),
                    },
                    what: "codex: MCP server".to_owned(),
                });
            }
            if project {
                notes.push(
                    "codex: Codex reads a project's .codex/config.toml once you trust the \
                     project (it asks on first start)"
                        .to_owned(),
                );
            }
            if let Some(path) = at(
                ".codex/hooks.json",
                places.codex_home().map(|h| h.join("hooks.json")),
            ) {
                let events = [
                    ("SessionStart", None),
                    ("PreToolUse", Some("apply_patch")),
                    ("Stop", None),
                    ("SessionEnd", None),
                ];
                targets.extend(hook_groups(&path, launch, "codex", &events));
            }
            notes.push(
                "codex: Codex runs a new or changed hook only once you review and trust it \
                 (it asks on start)"
                    .to_owned(),
            );
        }
        InitClient::GeminiCli => {
            if let Some(path) = at(
                ".gemini/settings.json",
                places.home_join(".gemini/settings.json"),
            ) {
                targets.push(json_server(
                    path.clone(),
                    "mcpServers",
                    server,
                    "gemini-cli: MCP server",
                ));
                let events = [
                    ("SessionStart", None),
                    ("BeforeTool", Some("write_file|replace")),
                    ("AfterAgent", None),
                    ("SessionEnd", None),
                ];
                targets.extend(hook_groups(&path, launch, "gemini-cli", &events));
            }
        }
        InitClient::Copilot => {
            let copilot = Ordered::map(&[
                ("type", Ordered::str("local")),
                ("command", Ordered::str(&launch.command())),
                ("args", Ordered::strs(&launch.args())),
                ("tools", Ordered::List(vec![Ordered::str("*")])),
            ]);
            if let Some(path) = at(".mcp.json", places.home_join(".copilot/mcp-config.json")) {
                let value = if project { server } else { copilot };
                targets.push(json_server(
                    path,
                    "mcpServers",
                    value,
                    "copilot: MCP server",
                ));
            }
            if project {
                targets.extend(copilot_hooks(
                    &places.repo.join(".github/hooks/coordinator.json"),
                    launch,
                ));
            } else {
                notes.push(
                    "copilot: hooks are per repository (.github/hooks): run init without \
                     --scope user for them"
                        .to_owned(),
                );
            }
        }
        InitClient::Cursor => {
            if let Some(path) = at(".cursor/mcp.json", places.home_join(".cursor/mcp.json")) {
                targets.push(json_server(
                    path,
                    "mcpServers",
                    server,
                    "cursor: MCP server",
                ));
            }
            notes.push(
                "cursor: has no hook before an edit; the git guard covers its commits".to_owned(),
            );
        }
        InitClient::Vscode => {
            let value = Ordered::map(&[
                ("type", Ordered::str("stdio")),
                ("command", Ordered::str(&launch.command())),
                ("args", Ordered::strs(&launch.args())),
            ]);
            let user = places.vscode_user().map(|d| d.join("mcp.json"));
            if let Some(path) = at(".vscode/mcp.json", user) {
                targets.push(json_server(path, "servers", value, "vscode: MCP server"));
            }
            notes.push(
                "vscode: has no hook before an edit; the git guard covers its commits".to_owned(),
            );
        }
    }
    (targets, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_commands_quote_what_the_shell_would_split() {
        let launch = Launch {
            words: vec!["/opt/my tools/mcp".into(), "-y".into()],
        };
        assert_eq!(
            launch.shell("hook claude-code"),
            "'/opt/my tools/mcp' -y hook claude-code"
        );
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
