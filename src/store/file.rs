//! The SQLite file before SQLite sees it: private to its owner, reached by a path nobody else
//! could have planted, and writable.
//!
//! The database holds every message and context entry of every project, so its folder is
//! created 0700 and the file 0600 (SQLite gives the `-wal` and `-shm` files it creates the
//! database's mode). Modes are set explicitly after creation, whatever the process's umask.
//!
//! A path through a folder every user can write (`/tmp`) could lead anywhere another user
//! chose: a symlink planted there would turn one of our files into a database, and a file
//! planted there would be theirs to read. Such a symlink, and a file another user owns, are
//! refused unless the person says they trust it (`--allow-unsafe-db-path`).
//!
//! A read-only file is found here rather than by the first write that fails: a server would
//! otherwise start and then fail every call. Root writes whatever the mode says, so the mode
//! bits decide too, not only whether the kernel would let us write: a file its owner made
//! read-only is refused alike whoever runs the server (and CI runs as root).

use std::path::{Path, PathBuf};

use super::StoreError;

/// How strictly the database file is checked before it is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileAccess {
    /// Open through a symlink in a folder every user can write, and a file another user owns.
    pub allow_unsafe_path: bool,
    /// Open a file that cannot be written read-only instead of refusing it: for commands that
    /// only read, which a read-only database does not stop.
    pub read_only_fallback: bool,
    /// The folder is this program's own (the default, under home): an existing one is made
    /// private too. A folder someone chose with `--db-path` is theirs, and left as it is.
    pub own_folder: bool,
}

/// What the checks found: how SQLite must open the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prepared {
    /// The file cannot be written, and the caller accepts reading it.
    pub read_only: bool,
}

#[cfg(not(unix))]
pub fn prepare(path: &Path, _access: FileAccess) -> Result<Prepared, StoreError> {
    // Modes, owners and world-writable folders are Unix notions; elsewhere only the folder is
    // created, as before.
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| StoreError::CreateFolder {
            path: folder.to_path_buf(),
            source,
        })?;
    }
    Ok(Prepared { read_only: false })
}

/// Creates the folder (0700) and the file (0600) when missing, refuses what is unsafe or
/// read-only, and makes existing files of ours private.
#[cfg(unix)]
pub fn prepare(path: &Path, access: FileAccess) -> Result<Prepared, StoreError> {
    unix::prepare(path, access)
}

#[cfg(unix)]
mod unix {
    use std::fs::{Metadata, OpenOptions, Permissions};
    use std::io::ErrorKind;
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

    use super::*;

    const PRIVATE_FOLDER: u32 = 0o700;
    const PRIVATE_FILE: u32 = 0o600;
    const WORLD_WRITABLE: u32 = 0o002;
    const STICKY: u32 = 0o1000;
    const OWNER_WRITE: u32 = 0o200;
    const ANY_WRITE: u32 = 0o222;
    const OWNER_ONLY: u32 = 0o700;

    /// SQLite's files beside the database, which it creates with the database's mode.
    const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

    pub fn prepare(path: &Path, access: FileAccess) -> Result<Prepared, StoreError> {
        let euid = rustix::process::geteuid().as_raw();
        let path = std::path::absolute(path).map_err(|source| StoreError::File {
            path: path.to_path_buf(),
            source,
        })?;
        if !access.allow_unsafe_path {
            refuse_planted_links(&path, euid)?;
        }
        let folder = path
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let created_folder = create_folders(&folder)?;
        let created = create_file(&path)?;

        // The file SQLite will open, and its folder, where it puts the -wal and -shm files:
        // through a symlink (one we trust, by now), they may be elsewhere.
        let real = std::fs::canonicalize(&path).map_err(|source| StoreError::File {
            path: path.clone(),
            source,
        })?;
        let real_folder = real
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let file = metadata(&real)?;
        let folder_meta = metadata(&real_folder)?;
        if !access.allow_unsafe_path {
            if let Some(reason) = foreign(&file, euid) {
                return Err(unsafe_path(&path, reason));
            }
            for companion in companions(&real) {
                match std::fs::symlink_metadata(&companion) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        if let Some(reason) = planted(&companion, &meta, &folder_meta, euid) {
                            return Err(unsafe_path(&companion, reason));
                        }
                    }
                    Ok(meta) => {
                        if let Some(reason) = foreign(&meta, euid) {
                            return Err(unsafe_path(&companion, reason));
                        }
                    }
                    Err(_) => {}
                }
            }
        }

        let unwritable = read_only(&real, &file, euid, "file", "")
            .or_else(|| read_only(&real_folder, &folder_meta, euid, "folder", FOLDER_NEED));
        if let Some((what, at, reason)) = unwritable {
            if access.read_only_fallback {
                return Ok(Prepared { read_only: true });
            }
            return Err(StoreError::ReadOnly {
                what,
                path: at,
                reason,
            });
        }

        // What others may do is taken away; what the owner may do is left as it was, except
        // on SQLite's own files, which must be writable.
        let mut tightened = Vec::new();
        let owner_only = |was: u32| was & OWNER_ONLY;
        if !created_folder && access.own_folder {
            tighten(&folder, owner_only, euid, &mut tightened);
        }
        if !created {
            tighten(&real, owner_only, euid, &mut tightened);
        }
        for companion in companions(&real) {
            // Only regular files: a symlink got here because the person trusts it, and its
            // target's mode is not ours to change.
            if std::fs::symlink_metadata(&companion).is_ok_and(|m| m.file_type().is_file()) {
                tighten(&companion, |_| PRIVATE_FILE, euid, &mut tightened);
            }
        }
        if !tightened.is_empty() {
            tracing::info!(
                "made the database private to its owner: {}",
                tightened.join(", ")
            );
        }
        Ok(Prepared { read_only: false })
    }

    const FOLDER_NEED: &str = ", and SQLite creates its -wal and -shm files beside the database";

    fn metadata(path: &Path) -> Result<Metadata, StoreError> {
        std::fs::metadata(path).map_err(|source| StoreError::File {
            path: path.to_path_buf(),
            source,
        })
    }

    fn companions(real: &Path) -> impl Iterator<Item = PathBuf> + '_ {
        COMPANIONS.iter().map(|suffix| {
            let mut name = real.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
    }

    fn unsafe_path(path: &Path, reason: String) -> StoreError {
        StoreError::UnsafePath {
            path: path.to_path_buf(),
            reason,
        }
    }

    /// Refuses the first symlink along `path` (itself included) that another user could have
    /// put there. Stops at the first component that does not exist yet: we create the rest.
    fn refuse_planted_links(path: &Path, euid: u32) -> Result<(), StoreError> {
        let mut prefix = PathBuf::new();
        for component in path.components() {
            prefix.push(component);
            let Ok(meta) = std::fs::symlink_metadata(&prefix) else {
                return Ok(());
            };
            if !meta.file_type().is_symlink() {
                continue;
            }
            let Some(dir) = prefix.parent() else {
                continue;
            };
            // The folder the link sits in, as the kernel resolves it.
            let dir_meta = metadata(dir)?;
            if let Some(reason) = planted(&prefix, &meta, &dir_meta, euid) {
                return Err(unsafe_path(&prefix, reason));
            }
        }
        Ok(())
    }

    /// Why the symlink `link` in a folder with `dir` metadata may have been planted by
    /// another user; `None` when it cannot have been.
    fn planted(link: &Path, meta: &Metadata, dir: &Metadata, euid: u32) -> Option<String> {
        if !link_planted(dir.mode(), dir.uid(), meta.uid(), euid) {
            return None;
        }
        let folder = link.parent().unwrap_or(link).display();
        Some(format!(
            "it is a symlink in {folder}, a folder every user can write (mode {:04o}), so \
             another user could have planted it to turn a file of theirs choosing into the \
             database",
            dir.mode() & 0o7777
        ))
    }

    /// The rule behind [`planted`]: a symlink in a world-writable folder is untrusted unless
    /// the folder is sticky (only an entry's owner may replace it) and the link is ours or the
    /// folder owner's, as Linux's `protected_symlinks` judges `/tmp`.
    pub(super) fn link_planted(dir_mode: u32, dir_uid: u32, link_uid: u32, euid: u32) -> bool {
        let world_writable = dir_mode & WORLD_WRITABLE != 0;
        let sticky = dir_mode & STICKY != 0;
        world_writable && !(sticky && (link_uid == euid || link_uid == dir_uid))
    }

    /// Why a file with `meta` is not ours to use; `None` when it is.
    fn foreign(meta: &Metadata, euid: u32) -> Option<String> {
        (meta.uid() != euid).then(|| {
            format!(
                "it is owned by another user (uid {}, and this process runs as uid {euid}), who \
                 can read and change everything in it",
                meta.uid()
            )
        })
    }

    /// Why `path` (a "file" or "folder") cannot be written, if it cannot.
    fn read_only(
        path: &Path,
        meta: &Metadata,
        euid: u32,
        what: &'static str,
        need: &str,
    ) -> Option<(&'static str, PathBuf, String)> {
        let mode = meta.mode() & 0o7777;
        let reason = if !writable_by_mode(mode, meta.uid(), euid) {
            format!("it is read-only (mode {mode:04o}){need}")
        } else {
            match rustix::fs::access(path, rustix::fs::Access::WRITE_OK) {
                Ok(()) => return None,
                Err(rustix::io::Errno::ROFS) => {
                    format!("it is on a read-only filesystem{need}")
                }
                Err(error) => format!(
                    "this user (uid {euid}) may not write it (mode {mode:04o}, owner uid {}: {error}){need}",
                    meta.uid()
                ),
            }
        };
        Some((what, path.to_path_buf(), reason))
    }

    /// Whether the mode lets us write: the owner's bit for our own file (root included, which
    /// the kernel would let write anyway), any write bit for someone else's (the kernel then
    /// decides by group and ACLs).
    pub(super) fn writable_by_mode(mode: u32, owner: u32, euid: u32) -> bool {
        if owner == euid {
            mode & OWNER_WRITE != 0
        } else {
            mode & ANY_WRITE != 0
        }
    }

    /// Creates the missing folders of `folder`, each 0700; whether `folder` itself was created.
    fn create_folders(folder: &Path) -> Result<bool, StoreError> {
        let missing: Vec<&Path> = folder
            .ancestors()
            .take_while(|dir| std::fs::symlink_metadata(dir).is_err())
            .collect();
        for dir in missing.iter().rev() {
            let made = std::fs::DirBuilder::new().mode(PRIVATE_FOLDER).create(dir);
            match made {
                // The umask may have taken bits away; 0700 whatever it is.
                Ok(()) => std::fs::set_permissions(dir, Permissions::from_mode(PRIVATE_FOLDER)),
                // Another process starting at the same moment made it.
                Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
                Err(error) => Err(error),
            }
            .map_err(|source| StoreError::CreateFolder {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        Ok(!missing.is_empty())
    }

    /// Creates the database file 0600 when it does not exist; whether it was created. Never
    /// through a symlink: `O_CREAT | O_EXCL` fails on one, planted between check and create.
    fn create_file(path: &Path) -> Result<bool, StoreError> {
        let create = |exclusive: bool| {
            let mut options = OpenOptions::new();
            options.write(true).mode(PRIVATE_FILE);
            if exclusive {
                options.create_new(true);
            } else {
                options.create(true);
            }
            options.open(path).and_then(|file| {
                // The umask may have taken bits away; 0600 whatever it is.
                file.set_permissions(Permissions::from_mode(PRIVATE_FILE))
            })
        };
        let created = match create(true) {
            Ok(()) => Ok(true),
            // A symlink whose target does not exist yet: trusted by now (or allowed), so its
            // target is created, as SQLite would have.
            Err(error)
                if error.kind() == ErrorKind::AlreadyExists
                    && std::fs::metadata(path).is_err_and(|e| e.kind() == ErrorKind::NotFound) =>
            {
                create(false).map(|()| true)
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(error),
        };
        created.map_err(|source| StoreError::File {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Sets `path` to `mode(its mode)` when it is ours and that differs, noting it in
    /// `tightened`. A failure (a filesystem without Unix modes) is logged, not fatal: the
    /// database still works, and the person is told.
    fn tighten(path: &Path, mode: impl Fn(u32) -> u32, euid: u32, tightened: &mut Vec<String>) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        let was = meta.mode() & 0o7777;
        let mode = mode(was);
        if meta.uid() != euid || was == mode {
            return;
        }
        match std::fs::set_permissions(path, Permissions::from_mode(mode)) {
            Ok(()) => tightened.push(format!(
                "{} (was {was:04o}, now {mode:04o})",
                path.display()
            )),
            Err(error) => tracing::warn!(
                "cannot make {} private (mode {was:04o}): {error}",
                path.display()
            ),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::unix::{link_planted, writable_by_mode};
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn a_symlink_is_trusted_unless_another_user_could_have_put_it_there() {
        let (me, other, root) = (1000, 1001, 0);
        assert!(
            !link_planted(0o755, me, other, me),
            "a folder only its owner writes"
        );
        assert!(
            !link_planted(0o775, me, other, me),
            "group-writable is not every user"
        );
        assert!(
            link_planted(0o777, me, me, me),
            "anyone may replace it, even ours"
        );
        assert!(
            link_planted(0o1777, root, other, me),
            "planted in /tmp by another user"
        );
        assert!(
            !link_planted(0o1777, root, me, me),
            "ours in /tmp: only we may replace it"
        );
        assert!(!link_planted(0o1777, root, root, me), "the folder owner's");
    }

    #[test]
    fn the_mode_decides_for_our_own_files_even_for_root() {
        assert!(writable_by_mode(0o600, 0, 0));
        assert!(
            !writable_by_mode(0o444, 0, 0),
            "root could, but the owner said no"
        );
        assert!(!writable_by_mode(0o500, 1000, 1000));
        assert!(
            writable_by_mode(0o664, 1000, 1001),
            "the kernel decides by group"
        );
        assert!(!writable_by_mode(0o644 & !0o222, 1000, 1001));
    }

    #[test]
    fn new_folders_and_files_are_private_whatever_the_umask() {
        let dir = tempfile::tempdir().expect("tempdir");
        chmod(dir.path(), 0o755);
        let path = dir.path().join("a/b/coordinator.db");
        let prepared = prepare(&path, FileAccess::default()).expect("prepare");
        assert!(!prepared.read_only);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&dir.path().join("a/b")), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            mode(dir.path()),
            0o755,
            "a folder we did not create is left alone"
        );
    }

    #[test]
    fn existing_files_of_ours_are_tightened_and_a_chosen_folder_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("chosen");
        std::fs::create_dir(&folder).expect("folder");
        chmod(&folder, 0o755);
        let path = folder.join("coordinator.db");
        for file in ["coordinator.db", "coordinator.db-wal", "coordinator.db-shm"] {
            std::fs::write(folder.join(file), b"").expect("file");
            chmod(&folder.join(file), 0o644);
        }
        prepare(&path, FileAccess::default()).expect("prepare");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&folder.join("coordinator.db-wal")), 0o600);
        assert_eq!(mode(&folder.join("coordinator.db-shm")), 0o600);
        assert_eq!(mode(&folder), 0o755);

        let own = FileAccess {
            own_folder: true,
            ..FileAccess::default()
        };
        prepare(&path, own).expect("prepare our own folder");
        assert_eq!(
            mode(&folder),
            0o700,
            "the default folder is ours to tighten"
        );

        chmod(&folder, 0o555);
        chmod(&path, 0o444);
        let reading = FileAccess {
            read_only_fallback: true,
            ..own
        };
        assert_eq!(
            prepare(&path, reading).ok(),
            Some(Prepared { read_only: true })
        );
        assert_eq!(
            (mode(&folder), mode(&path)),
            (0o555, 0o444),
            "tightening never makes anything writable"
        );
        chmod(&folder, 0o700);
    }

    #[test]
    fn a_read_only_file_is_refused_or_opened_for_reading() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("coordinator.db");
        std::fs::write(&path, b"").expect("file");
        chmod(&path, 0o444);
        let refused = prepare(&path, FileAccess::default())
            .err()
            .map(|e| e.to_string());
        let expected = format!(
            "cannot write the database file {}: it is read-only (mode 0444); fix its \
             permissions or point --db-path elsewhere",
            path.display()
        );
        assert_eq!(refused, Some(expected));
        let reading = FileAccess {
            read_only_fallback: true,
            ..FileAccess::default()
        };
        assert_eq!(
            prepare(&path, reading).ok(),
            Some(Prepared { read_only: true })
        );
        assert_eq!(mode(&path), 0o444, "a read-only file is not touched");

        chmod(&path, 0o600);
        chmod(dir.path(), 0o500);
        let refused = prepare(&path, FileAccess::default())
            .err()
            .map(|e| e.to_string());
        chmod(dir.path(), 0o700);
        assert!(
            refused
                .as_deref()
                .is_some_and(|e| e.contains("database folder")
                    && e.contains("read-only (mode 0500), and SQLite creates its -wal")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_symlink_in_a_world_writable_folder_is_refused_unless_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = dir.path().join("open");
        std::fs::create_dir(&open).expect("folder");
        chmod(&open, 0o777);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"").expect("victim");
        let link = open.join("coordinator.db");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");

        let refused = prepare(&link, FileAccess::default())
            .err()
            .map(|e| e.to_string());
        assert!(
            refused.as_deref().is_some_and(|e| e.starts_with(&format!(
                "refusing the database path {}: it is a symlink in {}, a folder every user can \
                 write (mode 0777)",
                link.display(),
                open.display()
            )) && e.contains("--allow-unsafe-db-path")),
            "{refused:?}"
        );
        let through = open.join("sub");
        std::os::unix::fs::symlink(dir.path(), &through).expect("folder symlink");
        let refused = prepare(&through.join("c.db"), FileAccess::default()).err();
        assert!(
            refused.is_some_and(|e| e.to_string().contains("it is a symlink in")),
            "a symlinked folder on the way counts too"
        );
        assert!(
            !dir.path().join("c.db").exists(),
            "nothing created through it"
        );

        let trusting = FileAccess {
            allow_unsafe_path: true,
            ..FileAccess::default()
        };
        assert!(prepare(&link, trusting).is_ok());
    }
}
