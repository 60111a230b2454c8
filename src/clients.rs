//! Which AI client a process runs under, read off the process tree.
//!
//! An AI client (Claude Code, an editor) starts the coordinator's stdio server, runs its hooks,
//! and runs the shell commands of its agent (`git commit`), all as its descendants. The stdio
//! server records the client's pid on the sessions it registers; a hook or git guard walks up
//! its own ancestors, and the sessions whose client is among them are its own: their locks do
//! not stand in its way. Launchers between the client and us (`sh -c`, `cargo run`, `env`,
//! `git` running a hook) are skipped, so the client is the first ancestor that is none of them.
//! A wrapper the launcher list does not know (`npx`, a script) may stand between the client and
//! a server; then the server's recorded "client" is the wrapper, and the hook finds its own
//! client among the wrapper's ancestors instead.
//!
//! `MCP_COORDINATOR_CLIENT_PID` replaces the detection where the tree misleads (a container,
//! a daemon in between): the pid of the client to act for, or `0` for none.
//!
//! Process ids mean something on one machine only; the SQLite store is one machine's.

/// The variable that names the client explicitly.
pub const CLIENT_PID_VAR: &str = "MCP_COORDINATOR_CLIENT_PID";

/// Programs that only launch another: a shell running a command, a build tool running a binary.
const LAUNCHERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "fish", "ksh", "mksh", "tcsh", "csh", "busybox", "env", "nice",
    "nohup", "setsid", "timeout", "time", "cargo", "rustup", "git",
];

/// How far up the tree to look; real chains are a handful of processes deep.
const MAX_DEPTH: usize = 64;

/// The client named by [`CLIENT_PID_VAR`]: `Some(None)` for `0`, `None` when unset.
fn named_client() -> Option<Option<u32>> {
    let text = std::env::var(CLIENT_PID_VAR).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    Some((pid > 1).then_some(pid))
}

/// `pid` and its ancestors, nearest first, without the init process (pid 1).
fn lineage(pid: u32) -> Vec<u32> {
    let mut chain = vec![pid];
    let mut at = pid;
    while chain.len() < MAX_DEPTH {
        match parent(at) {
            Some((ppid, _)) if ppid > 1 => {
                chain.push(ppid);
                at = ppid;
            }
            _ => break,
        }
    }
    chain
}

/// The AI client this process runs under: the named one, else its nearest ancestor that is not
/// a launcher.
pub fn client_pid() -> Option<u32> {
    if let Some(named) = named_client() {
        return named;
    }
    let mut pid = std::process::id();
    for _ in 0..MAX_DEPTH {
        let (ppid, _) = parent(pid)?;
        if ppid <= 1 {
            return None;
        }
        let name = parent(ppid).map(|(_, name)| name).unwrap_or_default();
        if !LAUNCHERS.contains(&name.as_str()) {
            return Some(ppid);
        }
        pid = ppid;
    }
    None
}

/// Where this process sits in the tree, to tell which sessions' clients are its own.
#[derive(Debug, Clone)]
pub struct Family {
    ancestors: Vec<u32>,
    client: Option<u32>,
}

impl Family {
    /// This process's: the named client alone, else its ancestors and its client.
    pub fn of_this_process() -> Self {
        match named_client() {
            Some(named) => Self {
                ancestors: named.into_iter().collect(),
                client: named,
            },
            None => Self {
                ancestors: lineage(std::process::id()).split_off(1),
                client: client_pid(),
            },
        }
    }

    /// Whether a session recorded with client `session_client` is ours: that client is one
    /// of our ancestors, or our client is among its ancestors (a wrapper in between).
    pub fn owns(&self, session_client: u32) -> bool {
        self.ancestors.contains(&session_client)
            || self
                .client
                .is_some_and(|ours| lineage(session_client).contains(&ours))
    }
}

/// A process's parent pid and its own program name.
#[cfg(target_os = "linux")]
fn parent(pid: u32) -> Option<(u32, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// A process's parent pid and its own program name, from `ps` where there is no `/proc`.
#[cfg(all(unix, not(target_os = "linux")))]
fn parent(pid: u32) -> Option<(u32, String)> {
    let out = std::process::Command::new("ps")
        .args(["-o", "ppid=", "-o", "comm=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (ppid, comm) = text.trim().split_once(char::is_whitespace)?;
    let name = comm.trim().rsplit('/').next().unwrap_or_default();
    Some((ppid.trim().parse().ok()?, name.to_owned()))
}

#[cfg(not(unix))]
fn parent(_pid: u32) -> Option<(u32, String)> {
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

    #[cfg(target_os = "linux")]
    #[test]
    fn our_family_owns_sessions_of_our_ancestors_and_of_wrappers_under_our_client() {
        let chain = lineage(std::process::id());
        let parent = std::os::unix::process::parent_id();
        assert_eq!(chain.get(1), Some(&parent));
        assert!(!chain.contains(&1));
        let family = Family::of_this_process();
        assert!(family.owns(parent), "a session our parent started");
        assert!(!family.owns(std::process::id() + 1_000_000), "a stranger");
        if let Some(client) = client_pid() {
            assert!(chain.contains(&client));
            let name = super::parent(client).map(|(_, n)| n).unwrap_or_default();
            assert!(!LAUNCHERS.contains(&name.as_str()), "{name} is a launcher");
            // A wrapper started by our client (here: this very process, a child of it).
            assert!(family.owns(std::process::id()));
        }
    }
}
