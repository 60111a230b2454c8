//! `guard pre-commit` and `install-git-hook`: git itself refuses a commit that would break
//! another session's work, whoever runs it (an AI that never called conflict_check, or a
//! person). `git commit --no-verify` stays the escape hatch, as for every pre-commit hook.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use super::hook::words;
use super::table::ago;
use super::workspace::{self, Me};
use super::{CliError, Purpose, existing};
use crate::checkout::Checkout;
use crate::config::Database;
use crate::coordinator::{CommitCheck, Coordinator};
use crate::diffs;
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

/// The top folder of the repository git runs in.
fn top() -> Result<String, CliError> {
    Ok(
        String::from_utf8_lossy(&git(None, &["rev-parse", "--show-toplevel"])?)
            .trim()
            .to_owned(),
    )
}

/// Checks the commit being made in the current repository: the text to print, and whether
/// the commit may go on.
pub fn pre_commit(database: &Database) -> Result<(String, bool), CliError> {
    let root = top()?;
    // Each staged file as the items its change touches (renames as a deletion and an addition,
    // so a locked file moved away is seen too); a file whose change cannot be placed, whole.
    let staged: Vec<String> = diffs::staged_touches(Path::new(&root))
        .map_err(|e| CliError::Usage(e.to_string()))?
        .iter()
        .flat_map(|(file, touch)| touch.keys(file))
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
    let root = checkout.root_text();
    let check = coordinator.commit_blockers(&me.project, &me.own_ids(), &staged, Some(&root))?;
    let warnings = overlaps(&coordinator, &me, &checkout, &staged)?;
    if check.is_clear() {
        return Ok((warnings, true));
    }
    Ok((
        format!(
            "{}{warnings}",
            refusal(&me.project, &check, coordinator.now())
        ),
        false,
    ))
}

/// Warnings about a commit, merge or push of `keys` from `checkout`: other sessions' unmerged
/// changes to the same code in other worktrees, and the target branch's changes to it since
/// this branch forked from it (a stale base). Changes whose commit the target branch has by
/// now are forgotten on the way. Empty when there is nothing to say.
pub(super) fn overlaps(
    coordinator: &Coordinator,
    me: &Me,
    checkout: &Checkout,
    keys: &[String],
) -> Result<String, CliError> {
    let root = Path::new(&checkout.root);
    let target = diffs::target_branch(root);
    let elsewhere =
        coordinator.changes_elsewhere(&me.project, &me.own_ids(), keys, &checkout.root_text())?;
    let (merged, unmerged): (Vec<_>, Vec<_>) =
        elsewhere
            .into_iter()
            .partition(|change| match (&change.commit, &target) {
                (Some(commit), Some(target)) => {
                    git(Some(root), &["merge-base", "--is-ancestor", commit, target]).is_ok()
                }
                _ => false,
            });
    if !merged.is_empty() {
        // A read-only database still answers the check; forgetting can wait for a writer.
        let _ = coordinator.forget_merged(&merged);
    }
    let mut text = String::new();
    for change in &unmerged {
        let _ = writeln!(
            text,
            "mcp-session-coordinator: warning: {}",
            words::elsewhere(change)
        );
    }
    if let Some(target) = &target
        && let Ok(Some(divergence)) = diffs::divergence(root, target)
    {
        let stale = divergence.overlapping();
        if !stale.is_empty() {
            let _ = writeln!(
                text,
                "mcp-session-coordinator: warning: stale base: {target} has {} commit(s) \
                 this branch lacks, which changed what you changed too: {}. Merge or \
                 rebase onto {target} before you push, or expect conflicts.",
                divergence.behind,
                stale
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(text)
}

/// After a commit in the current repository: releases the committer's edit locks on what it
/// carried (and marks their changes as committed, to be warned about until merged). The text
/// says what was released.
pub fn post_commit(database: &Database) -> Result<String, CliError> {
    let root = top()?;
    let Some(coordinator) = existing(database, Purpose::Write)? else {
        return Ok(String::new());
    };
    let checkout = Checkout::around(Path::new(&root));
    let me = workspace::identify(&coordinator, &checkout, None)?;
    if me.guessed {
        return Ok(String::new());
    }
    let root = Path::new(&checkout.root);
    let files = diffs::committed_files(root).map_err(|e| CliError::Usage(e.to_string()))?;
    // What the working tree still changes in those files: hunks left out of the commit.
    let mut still = Vec::new();
    for file in &files {
        if let Ok(touch) = diffs::worktree_touch(root, file) {
            still.extend(touch.keys(file));
        }
    }
    let head = String::from_utf8_lossy(&git(Some(root), &["rev-parse", "HEAD"])?)
        .trim()
        .to_owned();
    let released = coordinator.commit_done(&me.project, &me.own_ids(), &head, &files, &still)?;
    if released.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        "mcp-session-coordinator: the commit carried your changes: released your edit locks on {}\n",
        released.join(", ")
    ))
}

fn refusal(project: &str, check: &CommitCheck, now: crate::clock::Timestamp) -> String {
    let mut text = format!("Commit refused by mcp-session-coordinator (project {project}):\n");
    for lock in &check.locked {
        let until = words::until(lock, now);
        let _ = writeln!(
            text,
            "  - {} is locked exclusively by '{}' ({}) {until}: they are editing it",
            lock.file_path, lock.holder_name, lock.session_id,
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

/// One of the guard's git hooks in one repository: where it goes and what it says.
pub(super) struct GuardHook {
    /// `pre-commit` or `post-commit`.
    pub name: &'static str,
    pub hooks: PathBuf,
    pub hook: PathBuf,
    pub script: String,
    /// The script names a PostgreSQL URL, which may hold a password: only its owner reads it.
    pub private: bool,
    pub exe: PathBuf,
    pub location: Location,
}

impl GuardHook {
    /// Whether `text` is a hook this program wrote.
    pub fn is_ours(text: &str) -> bool {
        text.contains(MARKER)
    }
}

/// The guard's hooks for `repo`, with this binary and database: `pre-commit` refuses a commit
/// that would break another session's work, `post-commit` releases the edit locks the commit
/// made needless.
pub(super) fn guard_hooks(database: &Database, repo: &Path) -> Result<[GuardHook; 2], CliError> {
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
    let (quoted_exe, quoted_db) = (shell_quote(&exe.display().to_string()), shell_quote(&db));
    let pre = format!(
        "#!/bin/sh\n\
         {MARKER}\n\
         # Refuses a commit of files (or functions) another live AI session holds exclusively,\n\
         # or one made while another session of the project rebases or merges; warns of other\n\
         # worktrees' unmerged changes to the same code. Skip it: git commit --no-verify\n\
         exe={quoted_exe}\n\
         db={quoted_db}\n\
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
    );
    let post = format!(
        "#!/bin/sh\n\
         {MARKER}\n\
         # Releases the committer's edit locks on what the commit carried.\n\
         exe={quoted_exe}\n\
         db={quoted_db}\n\
         if [ -x \"$exe\" ]; then\n\
         \x20   {variable}=\"${{{variable}:-$db}}\" \"$exe\" guard post-commit >&2 || echo \"mcp-session-coordinator: could not release this commit's edit locks (exit $?)\" >&2\n\
         fi\n\
         local_hook=\"$(dirname \"$0\")/post-commit.local\"\n\
         if [ -x \"$local_hook\" ]; then exec \"$local_hook\" \"$@\"; fi\n",
    );
    let hook = |name: &'static str, script: String| GuardHook {
        name,
        hook: hooks.join(name),
        hooks: hooks.clone(),
        script,
        private: matches!(location, Location::Url(_)),
        exe: exe.clone(),
        location: location.clone(),
    };
    Ok([hook("pre-commit", pre), hook("post-commit", post)])
}

/// Writes the guard's git hooks, with this binary and database.
pub fn install(database: &Database, args: &InstallArgs) -> Result<String, CliError> {
    let repo = match &args.repo {
        Some(repo) => repo.clone(),
        None => {
            std::env::current_dir().map_err(CliError::io("cannot read the current directory"))?
        }
    };
    let hooks = guard_hooks(database, &repo)?;
    // Every hook is checked before any is written, so a refusal leaves the repository as it was.
    let mut foreign = Vec::new();
    for hook in &hooks {
        let theirs =
            std::fs::read_to_string(&hook.hook).is_ok_and(|current| !GuardHook::is_ours(&current));
        let local = hook.hooks.join(format!("{}.local", hook.name));
        if theirs && !args.force {
            return Err(CliError::Usage(format!(
                "{} already holds a {} hook that is not ours; pass --force to keep it \
                 as {}.local, which the guard runs after its own",
                hook.hook.display(),
                hook.name,
                hook.name
            )));
        }
        if theirs && local.exists() {
            return Err(CliError::Usage(format!(
                "{} exists too: move one of the two hooks away first",
                local.display()
            )));
        }
        foreign.push(theirs.then_some(local));
    }
    let mut kept = String::new();
    for (hook, local) in hooks.iter().zip(&foreign) {
        std::fs::create_dir_all(&hook.hooks).map_err(CliError::io(format!(
            "cannot create {}",
            hook.hooks.display()
        )))?;
        // Written aside first, so a failure leaves the previous hook where it was.
        let fresh = hook.hooks.join(format!("{}.new", hook.name));
        std::fs::write(&fresh, &hook.script)
            .map_err(CliError::io(format!("cannot write {}", fresh.display())))?;
        make_executable(&fresh, hook.private)?;
        if let Some(local) = local {
            std::fs::rename(&hook.hook, local)
                .map_err(CliError::io(format!("cannot move {}", hook.hook.display())))?;
            let _ = write!(
                kept,
                " Your previous {} hook runs after it, as {}.",
                hook.name,
                local.display()
            );
        }
        std::fs::rename(&fresh, &hook.hook).map_err(CliError::io(format!(
            "cannot write {}",
            hook.hook.display()
        )))?;
    }
    let [pre, post] = &hooks;
    Ok(format!(
        "Installed the pre-commit guard at {} and its post-commit partner at {} (they run {} on \
         {}).{kept} `git commit --no-verify` skips the check.\n",
        pre.hook.display(),
        post.hook.display(),
        pre.exe.display(),
        pre.location
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
