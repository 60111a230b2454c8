//! Which AI client a process runs under, read off the process tree.
//!
//! An AI client (Claude Code, an editor) starts the coordinator's stdio server, runs its hooks,
//! and runs the shell commands of its agent (`git commit`), all as its descendants. Each of them
//! finds the same client: its nearest ancestor that is not a launcher (a shell, `git` running a
//! hook, `cargo run`, a package runner such as `npx`). The stdio server records that pid on the
//! sessions it registers, and a hook or git guard treats the sessions recorded with its own
//! client as its own: their locks do not stand in its way.
//!
//! Only the nearest client counts, never one further up: an AI that runs another AI (`claude -p`
//! from its shell) must not share its sessions with it. A wrapper the launcher rules do not
//! know (a Python script around the server) therefore becomes the recorded client; then
//! `MCP_COORDINATOR_CLIENT_PID`, or `MCP_COORDINATOR_SESSION` for hooks, says what the tree
//! cannot.
//!
//! Process ids mean something on one machine only, and a PostgreSQL database is shared by
//! several: `platform::machine` names this one, and the binary hands it to the coordinator,
//! which has it recorded beside each process id so another machine's pid is never taken for
//! ours.
//!
//! The tree is read from the platform's process table (`platform::Processes`), whose names
//! are programs' own names everywhere (`zsh`, not `-zsh` or `zsh.exe`), so the rules below
//! are the same on every platform.

use crate::platform::{Process, Processes};

/// The variable that names the client explicitly: its pid, or `0` for none.
pub const CLIENT_PID_VAR: &str = "MCP_COORDINATOR_CLIENT_PID";

/// The variable a launcher of ours sets for the binary it starts: its own pid. The npm
/// package's launcher is a `node` process, a program that AI clients run as too, so no name
/// rule can tell it apart; it says what it is instead.
pub const LAUNCHER_PID_VAR: &str = "MCP_COORDINATOR_LAUNCHER_PID";

/// Programs that only start another: shells (also as the interpreter of a script; Windows's
/// too), `git` running a hook, build tools running a binary.
const LAUNCHERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "mksh",
    "tcsh",
    "csh",
    "busybox",
    "env",
    "nice",
    "nohup",
    "setsid",
    "timeout",
    "time",
    "cargo",
    "rustup",
    "git",
    "cmd",
    "powershell",
    "pwsh",
];

/// Package runners that fetch a program and start it (`npx some-mcp-server`); `uvx` is `uv
/// tool run`, and may show as `uv`.
const RUNNERS: &[&str] = &["npx", "npm", "pnpm", "yarn", "bunx", "uvx", "uv", "pipx"];

/// What runs as pid 1 on a machine or in a container when no client does.
const INITS: &[&str] = &[
    "init",
    "systemd",
    "launchd",
    "tini",
    "dumb-init",
    "catatonit",
    "docker-init",
    "s6-svscan",
    "runit",
];

/// How far up the tree to look; real chains are a handful of processes deep.
const MAX_DEPTH: usize = 64;

/// The AI client this process runs under: the one [`CLIENT_PID_VAR`] names, else its nearest
/// ancestor that is not a launcher (pid 1 too, when it is not an init: a client alone in a
/// container). Worked out once per process: a hook asks several times per edit.
pub fn client_pid() -> Option<u32> {
    static CLIENT: std::sync::OnceLock<Option<u32>> = std::sync::OnceLock::new();
    *CLIENT.get_or_init(|| {
        if let Some(pid) = std::env::var(CLIENT_PID_VAR)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
        {
            return (pid > 0).then_some(pid);
        }
        let ours = std::env::var(LAUNCHER_PID_VAR)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        nearest_client(&Processes::read(), std::process::id(), ours)
    })
}

/// The nearest ancestor of `pid` that is neither a launcher nor `our_launcher`.
fn nearest_client(table: &Processes, pid: u32, our_launcher: Option<u32>) -> Option<u32> {
    let mut ppid = table.get(pid)?.ppid;
    for _ in 0..MAX_DEPTH {
        if ppid == 0 {
            return None;
        }
        let parent = table.get(ppid)?;
        if ppid == 1 && INITS.contains(&parent.name.as_str()) {
            return None;
        }
        if !parent.is_launcher() && Some(ppid) != our_launcher {
            return Some(ppid);
        }
        ppid = parent.ppid;
    }
    None
}

impl Process {
    fn is_launcher(&self) -> bool {
        let first_word = self.name.split(' ').next().unwrap_or_default();
        LAUNCHERS.contains(&self.name.as_str())
            || LAUNCHERS.contains(&self.program.as_str())
            || RUNNERS.contains(&first_word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_scripts_and_package_runners_are_launchers_and_clients_are_not() {
        let named = |name: &str, program: &str| Process {
            ppid: 2,
            name: name.to_owned(),
            program: program.to_owned(),
        };
        assert!(named("bash", "bash").is_launcher());
        assert!(named("run-server.sh", "dash").is_launcher(), "a script");
        assert!(named("npm exec @acme", "node").is_launcher(), "npx");
        assert!(named("uvx", "uvx").is_launcher());
        assert!(named("uv", "uv").is_launcher(), "uv tool run, uv run");
        assert!(named("pwsh", "pwsh").is_launcher(), "a shell on Windows");
        assert!(named("cmd", "cmd").is_launcher(), "npx.cmd on Windows");
        assert!(!named("claude", "node").is_launcher());
        assert!(!named("code", "code").is_launcher());
    }

    #[test]
    fn our_own_launcher_is_seen_through_though_it_is_named_like_a_client() {
        // Claude Code runs `npx -y mcp-session-coordinator`: npm's runner, a shell, the npm
        // package's node launcher, then this binary.
        let chain = [
            (100, 1, "claude", "claude"),
            (200, 100, "npm exec mcp-session-coordinator", "node"),
            (300, 200, "sh", "dash"),
            (400, 300, "node", "node"),
            (
                500,
                400,
                "mcp-session-coordinator",
                "mcp-session-coordinator",
            ),
        ];
        let table = Processes::Listed(
            chain
                .iter()
                .map(|&(pid, ppid, name, program)| {
                    let process = Process {
                        ppid,
                        name: name.to_owned(),
                        program: program.to_owned(),
                    };
                    (pid, process)
                })
                .collect(),
        );
        assert_eq!(nearest_client(&table, 500, None), Some(400), "unmarked");
        assert_eq!(nearest_client(&table, 500, Some(400)), Some(100));
    }

    #[test]
    fn the_client_is_an_ancestor_and_no_launcher() {
        if std::env::var_os(CLIENT_PID_VAR).is_some() {
            return;
        }
        let table = Processes::read();
        let mut chain = Vec::new();
        let mut pid = std::process::id();
        // Bounded: on Windows a dead parent's pid may be reused by a descendant.
        while let Some(p) = table
            .get(pid)
            .filter(|p| p.ppid > 0 && chain.len() < MAX_DEPTH)
        {
            chain.push(p.ppid);
            pid = p.ppid;
        }
        if let Some(client) = client_pid() {
            assert!(chain.contains(&client));
            let launcher = table.get(client).is_some_and(|p| p.is_launcher());
            assert!(!launcher, "{client} is a launcher");
        }
    }
}
