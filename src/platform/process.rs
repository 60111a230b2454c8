//! The process table the client lookup walks: Linux's `/proc`, read one process at a time;
//! elsewhere one listing of every process, read once: `ps` on Unix (macOS, and Linux without
//! `/proc`), the Toolhelp snapshot on Windows, through `sysinfo`, which wraps its unsafe calls.

use std::collections::HashMap;
use std::path::Path;

/// What the table says about one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub ppid: u32,
    /// Its name as the system keeps it (a script's own name on Linux, not its interpreter's).
    pub name: String,
    /// The file name of the program it runs (the interpreter, for a script); empty if unknown.
    pub program: String,
}

/// Where processes are looked up.
pub enum Processes {
    /// Linux's `/proc`: a walk up a short chain reads a few files, not the whole table.
    Proc,
    /// Every process, by pid, from one listing (empty when the listing failed).
    Listed(HashMap<u32, Process>),
}

impl Processes {
    pub fn read() -> Self {
        if cfg!(target_os = "linux") && Path::new("/proc/self/stat").exists() {
            Self::Proc
        } else {
            Self::Listed(list())
        }
    }

    pub fn get(&self, pid: u32) -> Option<Process> {
        match self {
            Self::Proc => from_proc(pid),
            Self::Listed(all) => all.get(&pid).cloned(),
        }
    }
}

fn from_proc(pid: u32) -> Option<Process> {
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

/// `/proc/PID/stat` is `pid (name) state ppid ...`; the name may hold spaces and parentheses,
/// so it ends at the last `)`.
fn parse_stat(stat: &str) -> Option<(u32, String)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((ppid, name))
}

/// A program's own name from what a listing shows: the last part of a path (macOS's `ps`
/// shows the whole path), without a login shell's leading `-` (`-zsh`) or Windows's `.exe`,
/// so one list of launcher names serves every platform.
fn short_name(shown: &str) -> String {
    let file = shown.trim().rsplit(['/', '\\']).next().unwrap_or_default();
    let file = file.strip_prefix('-').unwrap_or(file);
    match file.rsplit_once('.') {
        Some((stem, extension)) if extension.eq_ignore_ascii_case("exe") => stem.to_owned(),
        _ => file.to_owned(),
    }
}

/// `ps` lists every process at once: one program started per lookup, not one per ancestor.
/// Each field has its own `-o`, since POSIX reads everything after a `=` as a header.
#[cfg(unix)]
fn list() -> HashMap<u32, Process> {
    std::process::Command::new("ps")
        .args(["-A", "-o", "pid=", "-o", "ppid=", "-o", "comm="])
        .stderr(std::process::Stdio::null())
        .output()
        .map(|out| parse_ps(&String::from_utf8_lossy(&out.stdout)))
        .unwrap_or_default()
}

/// Lines of `pid ppid command`; the command (a path on macOS) may hold spaces, so it is the
/// rest of the line.
#[cfg(unix)]
fn parse_ps(text: &str) -> HashMap<u32, Process> {
    text.lines()
        .filter_map(|line| {
            let (pid, rest) = line.trim_start().split_once(char::is_whitespace)?;
            let (ppid, command) = rest.trim_start().split_once(char::is_whitespace)?;
            let name = short_name(command);
            let process = Process {
                ppid: ppid.parse().ok()?,
                program: name.clone(),
                name,
            };
            Some((pid.parse().ok()?, process))
        })
        .collect()
}

#[cfg(windows)]
fn list() -> HashMap<u32, Process> {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let mut system = System::new();
    system.refresh_processes_specifics(ProcessesToUpdate::All, true, ProcessRefreshKind::nothing());
    system
        .processes()
        .iter()
        .map(|(pid, process)| {
            let name = short_name(&process.name().to_string_lossy());
            let ppid = process.parent().map_or(0, |parent| parent.as_u32());
            let process = Process {
                ppid,
                program: name.clone(),
                name,
            };
            (pid.as_u32(), process)
        })
        .collect()
}

#[cfg(not(any(unix, windows)))]
fn list() -> HashMap<u32, Process> {
    HashMap::new()
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
    fn listed_names_are_programs_own_names_on_every_platform() {
        assert_eq!(short_name("/bin/zsh"), "zsh");
        assert_eq!(short_name("-zsh"), "zsh", "a login shell on macOS");
        assert_eq!(
            short_name("/Applications/Visual Studio Code.app/Contents/MacOS/Electron"),
            "Electron"
        );
        assert_eq!(short_name("powershell.exe"), "powershell");
        assert_eq!(short_name("C:\\Program Files\\Git\\bin\\BASH.EXE"), "BASH");
        assert_eq!(short_name("claude"), "claude");
        assert_eq!(short_name(".exe"), "");
        assert_eq!(short_name("é.exé"), "é.exé");
    }

    #[cfg(unix)]
    #[test]
    fn ps_listings_are_read_past_spaces_in_paths() {
        let listed = parse_ps(
            "    1     0 /sbin/launchd\n  501     1 /Applications/Visual Studio Code.app/Contents/MacOS/Electron\n  777   501 -zsh\nnot a line\n",
        );
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[&1].name, "launchd");
        assert_eq!(listed[&501].ppid, 1);
        assert_eq!(listed[&501].name, "Electron");
        assert_eq!(listed[&777].program, "zsh");
    }

    /// Where both exist, the listing agrees with `/proc` about this process's parent.
    #[cfg(unix)]
    #[test]
    fn the_listing_and_proc_agree_on_this_process() {
        let me = std::process::id();
        let all = list();
        if all.is_empty() && cfg!(target_os = "linux") {
            // A slim container without procps: Linux reads /proc instead.
            return;
        }
        let listed = Processes::Listed(all)
            .get(me)
            .expect("ps lists this process");
        if let Some(proc) = from_proc(me) {
            assert_eq!(listed.ppid, proc.ppid);
        }
        let parent = Processes::read()
            .get(me)
            .expect("this process is in the table");
        assert_eq!(parent.ppid, listed.ppid);
    }
}
