//! Lock keys: file paths made comparable across sessions.
//!
//! Two sessions must agree on the key for one file whatever spelling each uses: `./a/../b.ts`,
//! `b.ts`, `.\b.ts` and `/home/me/repo/b.ts` (inside the session's working directory) are the same
//! key, `b.ts`. Keys are relative to the project root, so sessions in different checkouts of one
//! project (git worktrees) still collide on the same file. Nothing here touches the filesystem:
//! the server may not see the session's files at all.

/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("is empty; name a file inside the project, like src/auth.ts")]
    Empty,
    #[error("names the project root itself; name a file or directory inside it, like src/auth.ts")]
    Root,
    #[error("'{0}' climbs out of the project root with '..'; name a path inside the project")]
    EscapesRoot(String),
    #[error(
        "'{path}' is outside this session's working_directory '{root}'; pass a path relative to the project root"
    )]
    OutsideRoot { path: String, root: String },
    #[error(
        "'{0}' is absolute but the session has no working_directory to resolve it against; pass a path relative to the project root"
    )]
    AbsoluteWithoutRoot(String),
    #[error("is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("contains a control character (newline, tab, NUL, ...)")]
    ControlCharacter,
}

/// Turns a path as a session wrote it into the project-relative key used for locks and intents.
///
/// A trailing `/` is kept: it marks a directory key. `working_directory` is the session's checkout
/// root, needed only for absolute paths.
pub fn normalize(raw: &str, working_directory: Option<&str>) -> Result<String, PathError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(PathError::Empty);
    }
    if text.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if text.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    let text = text.replace('\\', "/");
    let is_directory = text.ends_with('/');

    let relative = if let Some((prefix, rest)) = split_absolute(&text) {
        let root_text = working_directory
            .map(|wd| wd.trim().replace('\\', "/"))
            .filter(|wd| !wd.is_empty())
            .ok_or_else(|| PathError::AbsoluteWithoutRoot(text.clone()))?;
        let Some((root_prefix, root_rest)) = split_absolute(&root_text) else {
            return Err(PathError::AbsoluteWithoutRoot(text.clone()));
        };
        let path = resolve_absolute(rest);
        let root = resolve_absolute(root_rest);
        if prefix != root_prefix || !path.starts_with(&root) {
            return Err(PathError::OutsideRoot {
                path: text.clone(),
                root: root_text,
            });
        }
        path[root.len()..].to_vec()
    } else {
        resolve_relative(&text).ok_or_else(|| PathError::EscapesRoot(text.clone()))?
    };

    if relative.is_empty() {
        return Err(PathError::Root);
    }
    let mut key = relative.join("/");
    if is_directory {
        key.push('/');
    }
    Ok(key)
}

/// Splits an absolute path into its root (`/`, or a lower-cased drive like `c:`) and the rest.
fn split_absolute(path: &str) -> Option<(String, &str)> {
    if let Some(rest) = path.strip_prefix('/') {
        return Some(("/".to_owned(), rest));
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        let rest = &path[2..];
        if rest.is_empty() || rest.starts_with('/') {
            return Some((path[..2].to_ascii_lowercase(), rest.trim_start_matches('/')));
        }
    }
    None
}

/// Resolves `.` and `..` below an absolute root; `..` at the root stays there, as on POSIX.
fn resolve_absolute(rest: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts
}

/// Resolves `.` and `..` in a relative path; `None` when it climbs above its start.
fn resolve_relative(path: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> Result<String, PathError> {
        normalize(raw, Some("/home/me/repo"))
    }

    #[test]
    fn spellings_of_one_file_share_a_key() {
        for spelling in [
            "b.ts",
            "./b.ts",
            "./a/../b.ts",
            "a/./../b.ts",
            ".\\b.ts",
            "/home/me/repo/b.ts",
            "/home/me/repo/./x/../b.ts",
            "  b.ts  ",
            "b.ts//",
        ] {
            let expected = if spelling.ends_with("//") {
                "b.ts/"
            } else {
                "b.ts"
            };
            assert_eq!(key(spelling).as_deref(), Ok(expected), "{spelling}");
        }
        assert_eq!(
            key("src\\models\\user.ts").as_deref(),
            Ok("src/models/user.ts")
        );
    }

    #[test]
    fn directory_keys_keep_their_slash() {
        assert_eq!(key("src/auth/").as_deref(), Ok("src/auth/"));
        assert_eq!(key("./src/auth/../auth/").as_deref(), Ok("src/auth/"));
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        assert!(matches!(key("../x"), Err(PathError::EscapesRoot(_))));
        assert!(matches!(key("a/../../x"), Err(PathError::EscapesRoot(_))));
        assert!(matches!(
            key("/etc/passwd"),
            Err(PathError::OutsideRoot { .. })
        ));
        assert!(matches!(
            key("/home/me/repository/x"),
            Err(PathError::OutsideRoot { .. })
        ));
        assert!(matches!(
            key("/home/me/repo/../other/x"),
            Err(PathError::OutsideRoot { .. })
        ));
        assert!(matches!(
            normalize("/abs/x", None),
            Err(PathError::AbsoluteWithoutRoot(_))
        ));
    }

    #[test]
    fn degenerate_paths_are_refused() {
        assert_eq!(key(""), Err(PathError::Empty));
        assert_eq!(key("   "), Err(PathError::Empty));
        assert_eq!(key("."), Err(PathError::Root));
        assert_eq!(key("a/.."), Err(PathError::Root));
        assert_eq!(key("/home/me/repo"), Err(PathError::Root));
        assert_eq!(key("a\0b"), Err(PathError::ControlCharacter));
        assert_eq!(key("a\nb"), Err(PathError::ControlCharacter));
        assert_eq!(key(&"a".repeat(MAX_PATH_LEN + 1)), Err(PathError::TooLong));
    }

    #[test]
    fn windows_paths_resolve_against_a_windows_root() {
        let root = Some("C:\\Users\\me\\repo");
        assert_eq!(
            normalize("c:\\Users\\me\\repo\\src\\a.ts", root).as_deref(),
            Ok("src/a.ts")
        );
        assert!(matches!(
            normalize("D:\\repo\\a.ts", root),
            Err(PathError::OutsideRoot { .. })
        ));
    }
}
