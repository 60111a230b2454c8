//! `init`: wires a repository's AI clients to the coordinator in one command, and
//! `init --remove` takes back exactly what it added.
//!
//! For each client found (or named with `--client`) it merges the MCP server entry and the
//! edit hooks the client supports into the client's own files, installs the git pre-commit
//! guard, and puts a short note for agents in AGENTS.md. Existing files are edited, never
//! rewritten: what is there keeps its order, comments and layout (`json`, `toml`, `notes`),
//! and a file init cannot parse or may not write stops it before anything changed. Running
//! it twice changes nothing. Every file it writes is kept in a manifest (`record`) with its
//! bytes before and after, so `--remove` restores them byte for byte, or, for a file changed
//! by hand since, takes out only our entries.

mod clients;
mod diff;
mod entry;
mod json;
mod notes;
mod record;
mod toml;

use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode};

use self::clients::{Launch, Places, Target};
use self::entry::Entry;
use self::record::Manifest;
use super::CliError;
use super::git::{self, GuardHook};
use crate::config::Database;
use crate::flags::{InitArgs, InitScope};

/// The manifest's name in the repository's git folder.
const RECORD: &str = "mcp-session-coordinator-init.json";

/// Runs `init` (or `init --remove`); the text to print and the exit code.
pub fn run(database: &Database, args: &InitArgs) -> Result<(String, ExitCode), CliError> {
    let repo = Repository::find(args.repo.as_deref())?;
    if args.remove {
        remove(&repo, args.dry_run)
    } else {
        init(database, &repo, args)
    }
}

/// The repository init works on: its top folder and where its manifest goes.
struct Repository {
    top: PathBuf,
    record: PathBuf,
}

impl Repository {
    fn find(given: Option<&Path>) -> Result<Self, CliError> {
        let dir = match given {
            Some(dir) => dir.to_owned(),
            None => std::env::current_dir()
                .map_err(CliError::io("cannot read the current directory"))?,
        };
        if !dir.is_dir() {
            return Err(CliError::Usage(format!(
                "{} is not a folder: init wires one git repository (pass --repo PATH)",
                dir.display()
            )));
        }
        let ask = |what: &str| -> Result<PathBuf, CliError> {
            let output = Process::new("git")
                .arg("-C")
                .arg(&dir)
                .args(["rev-parse", what])
                .output()
                .map_err(CliError::io("cannot run git"))?;
            if !output.status.success() {
                return Err(CliError::Usage(format!(
                    "{} is not in a git repository: init wires one repository and installs its \
                     pre-commit guard (run `git init` first, or pass --repo PATH)",
                    dir.display()
                )));
            }
            Ok(PathBuf::from(
                String::from_utf8_lossy(&output.stdout).trim_end_matches(['\n', '\r']),
            ))
        };
        let top = ask("--show-toplevel")?;
        let record = ask("--absolute-git-dir")?.join(RECORD);
        Ok(Self { top, record })
    }

    /// `path` as the person reads it: relative to the repository, or under `~`.
    fn show(&self, path: &Path, home: Option<&Path>) -> String {
        if let Ok(inside) = path.strip_prefix(&self.top) {
            return inside.display().to_string();
        }
        match home.and_then(|home| path.strip_prefix(home).ok()) {
            Some(inside) => format!("~/{}", inside.display()),
            None => path.display().to_string(),
        }
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// A file's text; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<String>, CliError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map(Some).map_err(|_| {
            CliError::Usage(format!(
                "{} is not UTF-8 text; init leaves it as it is",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::Io {
            context: format!("cannot read {}", path.display()),
            error: e,
        }),
    }
}

/// The file with `entries` in it; all of one file's entries share its format.
fn merged(path: &Path, before: Option<&str>, entries: &[&Entry]) -> Result<String, CliError> {
    let text = before.unwrap_or("");
    match entries.first() {
        Some(Entry::TomlServer { .. }) => toml::apply(path, text, entries),
        Some(Entry::Section { text: section }) => Ok(notes::apply(text, section)),
        Some(Entry::Script { text: script, .. }) => Ok(script.clone()),
        Some(_) => json::apply(path, text, entries),
        None => Ok(text.to_owned()),
    }
}

/// The file without `entries`; `None` when nothing of anyone else's is left.
fn unmerged(path: &Path, text: &str, entries: &[&Entry]) -> Result<Option<String>, CliError> {
    match entries.first() {
        Some(Entry::TomlServer { .. }) => toml::remove(path, text, entries),
        Some(Entry::Section { .. }) => Ok(notes::remove(text)),
        Some(Entry::Script { .. }) => Ok((!GuardHook::is_ours(text)).then(|| text.to_owned())),
        Some(_) => json::remove(path, text, entries),
        None => Ok(Some(text.to_owned())),
    }
}

/// One file init changes: before, after (`None`: deleted), and why.
struct Change {
    path: PathBuf,
    before: Option<String>,
    after: Option<String>,
    why: String,
    entries: Vec<Entry>,
    private: bool,
}

/// What `--dry-run` shows: each change as a unified diff, paths as the person knows them.
fn diffs(repo: &Repository, home: Option<&Path>, changes: &[Change]) -> String {
    changes
        .iter()
        .map(|change| {
            let shown = repo.show(&change.path, home);
            diff::unified(&shown, change.before.as_deref(), change.after.as_deref())
        })
        .collect()
}

/// Refuses, before anything is written, a file (or the folder a new one goes in) whose mode
/// says read-only: the mode bits decide, as for the database, since root would write anyway.
fn writable(change: &Change) -> Result<(), CliError> {
    let mut at = change.path.as_path();
    loop {
        if let Ok(meta) = std::fs::metadata(at) {
            if meta.permissions().readonly() {
                return Err(CliError::Usage(format!(
                    "{} is read-only; init changed nothing: make it writable, or leave its \
                     client out with --client",
                    at.display()
                )));
            }
            return Ok(());
        }
        match at.parent() {
            Some(parent) => at = parent,
            None => return Ok(()),
        }
    }
}

fn init(
    database: &Database,
    repo: &Repository,
    args: &InitArgs,
) -> Result<(String, ExitCode), CliError> {
    let home = home();
    let places = Places {
        repo: &repo.top,
        home: home.as_deref(),
    };
    if args.scope == InitScope::User && home.is_none() {
        return Err(CliError::Usage(
            "--scope user writes into your home folder, and HOME is not set".into(),
        ));
    }
    let launch = Launch {
        words: args.command.split_whitespace().map(str::to_owned).collect(),
    };
    if launch.words.is_empty() {
        return Err(CliError::Usage(
            "--command is empty: give the command that starts mcp-session-coordinator".into(),
        ));
    }
    let chosen: Vec<_> = if args.clients.is_empty() {
        clients::ALL
            .iter()
            .copied()
            .filter(|c| clients::present(*c, &places))
            .collect()
    } else {
        clients::ALL
            .iter()
            .copied()
            .filter(|c| args.clients.contains(c))
            .collect()
    };
    if chosen.is_empty() {
        let names: Vec<&str> = clients::ALL.iter().map(|c| clients::name(*c)).collect();
        return Err(CliError::Usage(format!(
            "found no AI client here (their programs on PATH, their folders in your home folder \
             or in the repository); name them with --client, one of: {}",
            names.join(", ")
        )));
    }
    let mut targets = Vec::new();
    let mut remarks = Vec::new();
    for client in &chosen {
        let (found, said) = clients::targets(*client, args.scope, &places, &launch);
        targets.extend(found);
        remarks.extend(said);
    }
    for guard in git::guard_hooks(database, &repo.top)? {
        match read(&guard.hook)? {
            Some(text) if !GuardHook::is_ours(&text) => remarks.push(format!(
                "git: kept the {} hook already at {}; `install-git-hook --force` runs the \
                 guard before it",
                guard.name,
                repo.show(&guard.hook, home.as_deref())
            )),
            _ => targets.push(Target {
                path: guard.hook,
                entry: Entry::Script {
                    text: guard.script,
                    private: guard.private,
                },
                what: format!("git: {} guard", guard.name),
            }),
        }
    }
    if args.scope == InitScope::Project {
        for file in ["AGENTS.md", "CLAUDE.md", "GEMINI.md"] {
            let path = repo.top.join(file);
            if file == "AGENTS.md" || path.exists() {
                targets.push(Target {
                    path,
                    entry: notes::section(),
                    what: "a note for agents".into(),
                });
            }
        }
    }

    let mut changes = Vec::new();
    let mut unchanged = Vec::new();
    for (path, entries, whats) in by_file(targets) {
        let before = read(&path)?;
        let refs: Vec<&Entry> = entries.iter().collect();
        let after = merged(&path, before.as_deref(), &refs)?;
        let why = whats.join(", ");
        if before.as_deref() == Some(after.as_str()) {
            unchanged.push(format!("{} ({why})", repo.show(&path, home.as_deref())));
            continue;
        }
        let private = entries
            .iter()
            .any(|e| matches!(e, Entry::Script { private: true, .. }));
        changes.push(Change {
            path,
            before,
            after: Some(after),
            why,
            entries,
            private,
        });
    }
    for change in &changes {
        writable(change)?;
    }
    let names: Vec<&str> = chosen.iter().map(|c| clients::name(*c)).collect();
    let mut text = String::new();
    if args.dry_run {
        text.push_str(&format!(
            "init --dry-run for {} in {}: {} file(s) would change, nothing was written\n",
            names.join(", "),
            repo.top.display(),
            changes.len()
        ));
        text.push_str(&diffs(repo, home.as_deref(), &changes));
    } else {
        let mut manifest = Manifest::load(&repo.record)?.unwrap_or_default();
        // The record follows each file, so a failure half-way leaves it able to undo what
        // was written.
        for change in &changes {
            write(change, &mut manifest)?;
            manifest.save(&repo.record)?;
        }
        text.push_str(&format!(
            "Wired {} in {} ({} scope):\n",
            names.join(", "),
            repo.top.display(),
            if args.scope == InitScope::Project {
                "project"
            } else {
                "user"
            }
        ));
        for change in &changes {
            let verb = if change.before.is_some() {
                "updated"
            } else {
                "created"
            };
            text.push_str(&format!(
                "  {verb} {} ({})\n",
                repo.show(&change.path, home.as_deref()),
                change.why
            ));
        }
        for line in &unchanged {
            text.push_str(&format!("  unchanged {line}\n"));
        }
        if changes.is_empty() {
            text.push_str("Nothing to change: init has run here already.\n");
        } else {
            text.push_str("`mcp-session-coordinator init --remove` undoes this.\n");
        }
    }
    for remark in remarks {
        text.push_str(&format!("note: {remark}\n"));
    }
    Ok((text, ExitCode::SUCCESS))
}

/// Targets grouped by file, in the order first named; an entry two clients share (Claude
/// Code's and Copilot CLI's `.mcp.json`) once.
fn by_file(targets: Vec<Target>) -> Vec<(PathBuf, Vec<Entry>, Vec<String>)> {
    let mut files: Vec<(PathBuf, Vec<Entry>, Vec<String>)> = Vec::new();
    for target in targets {
        let index = match files.iter().position(|(path, ..)| *path == target.path) {
            Some(index) => index,
            None => {
                files.push((target.path.clone(), Vec::new(), Vec::new()));
                files.len() - 1
            }
        };
        let (_, entries, whats) = &mut files[index];
        if !entries.contains(&target.entry) {
            entries.push(target.entry);
        }
        if !whats.contains(&target.what) {
            whats.push(target.what);
        }
    }
    files
}

/// Writes one change and notes it in the manifest: new folders, the file, its mode.
fn write(change: &Change, manifest: &mut Manifest) -> Result<(), CliError> {
    let Some(after) = &change.after else {
        return Ok(());
    };
    if let Some(parent) = change.path.parent() {
        let mut missing = Vec::new();
        let mut at = parent;
        while !at.exists() {
            missing.push(at.to_owned());
            match at.parent() {
                Some(up) => at = up,
                None => break,
            }
        }
        std::fs::create_dir_all(parent)
            .map_err(CliError::io(format!("cannot create {}", parent.display())))?;
        for folder in missing.into_iter().rev() {
            if !manifest.folders.contains(&folder) {
                manifest.folders.push(folder);
            }
        }
    }
    std::fs::write(&change.path, after).map_err(CliError::io(format!(
        "cannot write {}",
        change.path.display()
    )))?;
    if change.before.is_none()
        && change
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Script { .. }))
    {
        git::make_executable(&change.path, change.private)?;
    }
    let refs: Vec<&Entry> = change.entries.iter().collect();
    manifest.wrote(&change.path, change.before.as_deref(), after, &refs);
    Ok(())
}

fn remove(repo: &Repository, dry_run: bool) -> Result<(String, ExitCode), CliError> {
    let home = home();
    let Some(manifest) = Manifest::load(&repo.record)? else {
        return Ok((
            format!(
                "init has not run in {} (no record at {}): nothing to remove\n",
                repo.top.display(),
                repo.record.display()
            ),
            ExitCode::SUCCESS,
        ));
    };
    let mut changes = Vec::new();
    for (path, record) in &manifest.files {
        let Some(current) = read(path)? else {
            continue;
        };
        let entries: Vec<&Entry> = record.entries.iter().collect();
        let (after, why) = if record.restorable && current == record.written {
            let why = match record.original {
                Some(_) => "restored as it was",
                None => "deleted: init created it",
            };
            (record.original.clone(), why.to_owned())
        } else {
            let after = unmerged(path, &current, &entries)?;
            let mut why = "changed since init: took out only its entries".to_owned();
            if after.is_none() {
                why.push_str("; nothing else was in it, so it is deleted");
            }
            (after, why)
        };
        if after.as_deref() == Some(current.as_str()) {
            continue;
        }
        changes.push(Change {
            path: path.clone(),
            before: Some(current),
            after,
            why,
            entries: Vec::new(),
            private: false,
        });
    }
    for change in &changes {
        writable(change)?;
    }
    let mut text = String::new();
    if dry_run {
        text.push_str(&format!(
            "init --remove --dry-run in {}: {} file(s) would change, nothing was written\n",
            repo.top.display(),
            changes.len()
        ));
        text.push_str(&diffs(repo, home.as_deref(), &changes));
        return Ok((text, ExitCode::SUCCESS));
    }
    text.push_str(&format!(
        "Removed what init added in {}:\n",
        repo.top.display()
    ));
    for change in &changes {
        match &change.after {
            Some(after) => std::fs::write(&change.path, after),
            None => std::fs::remove_file(&change.path),
        }
        .map_err(CliError::io(format!(
            "cannot write {}",
            change.path.display()
        )))?;
        text.push_str(&format!(
            "  {} ({})\n",
            repo.show(&change.path, home.as_deref()),
            change.why
        ));
    }
    // Folders init created, deepest first; one that holds anything else stays.
    for folder in manifest.folders.iter().rev() {
        let _ = std::fs::remove_dir(folder);
    }
    std::fs::remove_file(&repo.record).map_err(CliError::io(format!(
        "cannot remove {}",
        repo.record.display()
    )))?;
    if changes.is_empty() {
        text.push_str("  nothing left to take out\n");
    }
    Ok((text, ExitCode::SUCCESS))
}
