//! `guard pre-commit` and `install-git-hook`: git itself refuses a commit that would break
//! another session's work, whoever runs it (an AI that never called conflict_check, or a
//! person). `git commit --no-verify` stays the escape hatch, as for every pre-commit hook.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use super::table::{ago, clock, countdown};
use super::workspace;
use super::{CliError, Purpose, existing};
use crate::checkout::Checkout;
use crate::config::Database;
use crate::coordinator::CommitCheck;
use crate::flags::InstallArgs;
use crate::store::Location;

/// The line that marks a pre-commit hook as ours, so installing again replaces only ours.
const MARKER: &str = "# Installed by mcp-session-coordinator install-git-hook.";

/// `guard pre-commit`'s exit code for a refused commit. Any other failure (1) means it could
/// not check, which the installed hook reports without blocking the commit: a broken or
/// missing coordinator must not stop people from committing.
pub const REFUSED: u8 = 3;

/// Runs git in `dir`; its standard output, or why it failed.
fn git(dir: Option<&Path>, args: &[&str]) -> Result<Vec<u8>, CliError> {
    let mut command = Process::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    let output = command
        .args(args)
        .output()
        .map_err(CliError::io("cannot run git"))?;
    if !output.status.success() {
        return Err(CliError::Usage(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

/// Checks the commit being made in the current repository: the text to print, and whether
/// the commit may go on.
pub fn pre_commit(database: &Database) -> Result<(String, bool), CliError> {
    let root = String::from_utf8_lossy(&git(None, &["rev-parse", "--show-toplevel"])?)
        .trim()
        .to_owned();
    // Renames as a deletion and an addition, so a locked file moved away is seen too.
    let staged: Vec<String> = git(
        None,
        &["diff", "--cached", "--name-only", "--no-renames", "-z"],
    )?
    .split(|b| *b == 0)
    .filter(|name| !name.is_empty())
    .map(|name| String::from_utf8_lossy(name).into_owned())
    .collect();
    // No database: no session has ever run here, so nothing can be in the way. The check
    // only reads, so a read-only database is still checked.
    let Some(coordinator) = existing(database, Purpose::Read)? else {
        return Ok((String::new(), true));
    };
    let checkout = Checkout::around(Path::new(&root));
    let me = workspace::identify(&coordinator, &checkout, None)?;
    // No variable names a project and no session works in this repository.
    if me.guessed {
        return Ok((String::new(), true));
    }
    let check = coordinator.commit_blockers(&me.project, &me.own_ids(), &staged)?;
    if check.is_clear() {
        return Ok((String::new(), true));
    }
    Ok((refusal(&me.project, &check, coordinator.now()), false))
}

fn refusal(project: &str, check: &CommitCheck, now: crate::clock::Timestamp) -> String {
    let mut text = format!("Commit refused by mcp-session-coordinator (project {project}):\n");
    for lock in &check.locked {
        let _ = writeln!(
            text,
            "  - {} is locked exclusively by '{}' ({}) until {} ({}): they are editing it",
            lock.file_path,
            lock.holder_name,
            lock.session_id,
            clock(lock.expires_at),
            countdown(now, lock.expires_at)
        );
    }
    for intent in &check.rewriting {
        let verb = match intent.intent_type {
            crate::model::IntentType::GitMerge => "merging",
            _ => "rebasing",
        };
        let target = intent
            .target
            .as_deref()
            .map(|t| format!(" {t}"))
            .unwrap_or_default();
        let why = intent
            .description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        let _ = writeln!(
            text,
            "  - '{}' ({}) is {verb}{target}{why} ({}, {} {})",
            intent.session_name,
            intent.session_id,
            intent.intent_type,
            intent.status,
            ago(now, intent.created_at)
        );
    }
    let who = check
        .locked
        .first()
        .map(|l| l.holder_name.as_str())
        .or_else(|| check.rewriting.first().map(|i| i.session_name.as_str()))
        .unwrap_or_default();
    let _ = writeln!(
        text,
        "Wait for them to finish, or ask them: mcp-session-coordinator send --project {project} --to {who} \"...\"\n\
         To commit anyway: git commit --no-verify"
    );
    text
}

/// The guard as a pre-commit hook of one repository: where it goes and what it says.
pub(super) struct GuardHook {
    pub hooks: PathBuf,
    pub hook: PathBuf,
    pub script: String,
    /// The script names a PostgreSQL URL, which may hold a password: only its owner reads it.
    pub private: bool,
    pub exe: PathBuf,
    pub location: Location,
}

impl GuardHook {
    /// Whether `text` is a pre-commit hook this program wrote.
    pub fn is_ours(text: &str) -> bool {
        text.contains(MARKER)
    }
}

/// The pre-commit hook that runs `guard pre-commit` with this binary and database, for `repo`.
pub(super) fn guard_hook(database: &Database, repo: &Path) -> Result<GuardHook, CliError> {
    let hooks = PathBuf::from(
        String::from_utf8_lossy(&git(Some(repo), &["rev-parse", "--git-path", "hooks"])?).trim(),
    );
    let hooks = if hooks.is_absolute() {
        hooks
    } else {
        repo.join(hooks)
    };
    let exe = std::env::current_exe().map_err(CliError::io("cannot find this program's path"))?;
    let location = database.location()?;
    // The hook runs from git, outside the AI client's environment: it names the database.
    let (variable, db) = match &location {
        Location::File(path) => ("MCP_COORDINATOR_DB_PATH", path.display().to_string()),
        Location::Url(url) => ("MCP_COORDINATOR_DB_URL", url.clone()),
    };
    let script = format!(
        "#!/bin/sh\n\
         {MARKER}\n\
         # Refuses a commit of files another live AI session holds exclusively, or one made\n\
         # while another session of the project rebases or merges. Skip it: git commit --no-verify\n\
         exe={exe}\n\
         db={db}\n\
         if [ -x \"$exe\" ]; then\n\
         \x20   {variable}=\"${{{variable}:-$db}}\" \"$exe\" guard pre-commit\n\
         \x20   status=$?\n\
         \x20   [ \"$status\" -eq {REFUSED} ] && exit 1\n\
         \x20   [ \"$status\" -ne 0 ] && echo \"mcp-session-coordinator: could not check this commit (exit $status); committing anyway\" >&2\n\
         else\n\
         \x20   echo \"mcp-session-coordinator: $exe is gone; this commit is not checked (run install-git-hook again)\" >&2\n\
         fi\n\
         local_hook=\"$(dirname \"$0\")/pre-commit.local\"\n\
         if [ -x \"$local_hook\" ]; then exec \"$local_hook\" \"$@\"; fi\n",
        exe = shell_quote(&exe.display().to_string()),
        db = shell_quote(&db),
    );
    Ok(GuardHook {
        hook: hooks.join("pre-commit"),
        hooks,
        script,
        private: matches!(location, Location::Url(_)),
        exe,
        location,
    })
}

/// Writes the pre-commit hook that runs `guard pre-commit` with this binary and database.
pub fn install(database: &Database, args: &InstallArgs) -> Result<String, CliError> {
    let repo = match &args.repo {
        Some(repo) => repo.clone(),
        None => {
            std::env::current_dir().map_err(CliError::io("cannot read the current directory"))?
        }
    };
    let GuardHook {
        hooks,
        hook,
        script,
        private,
        exe,
        location,
    } = guard_hook(database, &repo)?;
    std::fs::create_dir_all(&hooks)
        .map_err(CliError::io(format!("cannot create {}", hooks.display())))?;
    let local = hooks.join("pre-commit.local");
    let mut kept = String::new();
    let foreign = std::fs::read_to_string(&hook).is_ok_and(|current| !GuardHook::is_ours(&current));
    if foreign {
        if !args.force {
            return Err(CliError::Usage(format!(
                "{} already holds a pre-commit hook that is not ours; pass --force to keep it \
                 as pre-commit.local, which the guard runs after its own check",
                hook.display()
            )));
        }
        if local.exists() {
            return Err(CliError::Usage(format!(
                "{} exists too: move one of the two hooks away first",
                local.display()
            )));
        }
        kept = format!(" Your previous hook runs after it, as {}.", local.display());
    }
    // Written aside first, so a failure leaves the previous hook where it was.
    let fresh = hooks.join("pre-commit.new");
    std::fs::write(&fresh, script)
        .map_err(CliError::io(format!("cannot write {}", fresh.display())))?;
    make_executable(&fresh, private)?;
    if foreign {
        std::fs::rename(&hook, &local)
            .map_err(CliError::io(format!("cannot move {}", hook.display())))?;
    }
    std::fs::rename(&fresh, &hook)
        .map_err(CliError::io(format!("cannot write {}", hook.display())))?;
    Ok(format!(
        "Installed the pre-commit guard at {} (it runs {} on {}).{kept} \
         `git commit --no-verify` skips it.\n",
        hook.display(),
        exe.display(),
        location
    ))
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(unix)]
/// Makes the hook executable; `private` keeps it to its owner (it holds a database password).
pub(super) fn make_executable(path: &Path, private: bool) -> Result<(), CliError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if private { 0o700 } else { 0o755 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(CliError::io(
        format!("cannot make {} executable", path.display()),
    ))
}

#[cfg(not(unix))]
pub(super) fn make_executable(_path: &Path, _private: bool) -> Result<(), CliError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/opt/my tools/x"), "'/opt/my tools/x'");
        assert_eq!(shell_quote("/it's"), r"'/it'\''s'");
    }
}
