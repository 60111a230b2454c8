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
//! several: [`machine`] names this one, and the binary hands it to the coordinator, which has
//! it recorded beside each process id so another machine's pid is never taken for ours.

/// The variable that names the client explicitly: its pid, or `0` for none.
pub const CLIENT_PID_VAR: &str = "MCP_COORDINATOR_CLIENT_PID";

/// Programs that only start another: shells (also as the interpreter of a script), `git`
/// running a hook, build tools running a binary.
const LAUNCHERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "fish", "ksh", "mksh", "tcsh", "csh", "busybox", "env", "nice",
    "nohup", "setsid", "timeout", "time", "cargo", "rustup", "git",
];

/// Package runners that fetch a program and start it (`npx some-mcp-server`).
const RUNNERS: &[&str] = &["npx", "npm", "pnpm", "yarn", "bunx", "uvx", "pipx"];

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

/// This machine, for telling one machine's process ids from another's in a database that
/// several share: the host name with the systemd machine id (containers and VMs cloned from
/// one image often share the id, rarely the name too).
pub fn machine() -> &'static str {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE.get_or_init(|| {
        let parts: Vec<String> = ["/proc/sys/kernel/hostname", "/etc/machine-id"]
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|text| text.trim().to_owned())
            .filter(|part| !part.is_empty())
            .collect();
        if parts.is_empty() {
            "unknown".to_owned()
        } else {
            parts.join("/")
        }
    })
}

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
        let mut ppid = process(std::process::id())?.ppid;
        for _ in 0..MAX_DEPTH {
            if ppid == 0 {
                return None;
            }
            let parent = process(ppid)?;
            if ppid == 1 && INITS.contains(&parent.name.as_str()) {
                return None;
            }
            if !parent.is_launcher() {
                return Some(ppid);
            }
            ppid = parent.ppid;
        }
        None
    })
}

/// What the tree says about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Process {
    ppid: u32,
    /// Its name as the kernel keeps it (a script's own name, not its interpreter's).
    name: String,
    /// The file name of the program it runs (the interpreter, for a script); empty if unknown.
    program: String,
}

impl Process {
    fn is_launcher(&self) -> bool {
        let first_word = self.name.split(' ').next().unwrap_or_default();
        LAUNCHERS.contains(&self.name.as_str())
            || LAUNCHERS.contains(&self.program.as_str())
            || RUNNERS.contains(&first_word)
    }
}

#[cfg(target_os = "linux")]
fn process(pid: u32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (ppid, name) = parse_stat(&stat)?;
    let program = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    Some(Process {
        ppid,
        name,
        program,
    })
}

/// From `ps` where there is no `/proc`.
#[cfg(all(unix, not(target_os = "linux")))]
fn process(pid: u32) -> Option<Process> {
    let out = std::process::Command::new("ps")
        .args(["-o", "ppid=", "-o", "comm=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (ppid, comm) = text.trim().split_once(char::is_whitespace)?;
    let name = comm
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    Some(Process {
        ppid: ppid.trim().parse().ok()?,
        program: name.clone(),
        name,
    })
}

#[cfg(not(unix))]
fn process(_pid: u32) -> Option<Process> {
    None
}

/// `/proc/PID/stat` is `pid (name) state ppid ...`; the name may hold spaces and parentheses,
/// so it ends at the last `)`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_stat(stat: &str) -> Option<(u32, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_read_past_odd_program_names() {
        assert_eq!(
            parse_stat("4242 (tmux: server) S 1 4242 4242 0 -1"),
            Some((1, "tmux: server".to_owned()))
        );
        assert_eq!(
            parse_stat("77 (a) b)) R 12 77"),
            Some((12, "a) b)".to_owned()))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

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
        assert!(!named("claude", "node").is_launcher());
        assert!(!named("code", "code").is_launcher());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_client_is_an_ancestor_and_no_launcher() {
        if std::env::var_os(CLIENT_PID_VAR).is_some() {
            return;
        }
        let mut chain = Vec::new();
        let mut pid = std::process::id();
        while let Some(p) = process(pid).filter(|p| p.ppid > 0) {
            chain.push(p.ppid);
            pid = p.ppid;
        }
        if let Some(client) = client_pid() {
            assert!(chain.contains(&client));
            let launcher = process(client).is_some_and(|p| p.is_launcher());
            assert!(!launcher, "{client} is a launcher");
        }
    }
}
