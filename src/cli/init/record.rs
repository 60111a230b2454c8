//! The manifest: what `init` created or changed, with each file's bytes before and after, so
//! `init --remove` can put every file back exactly as it was. It lives in the repository's git
//! folder, where it is never committed and goes away with the clone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::entry::Entry;
use crate::cli::CliError;

/// One file init wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileRecord {
    /// The file before the first `init` that changed it; `None`: init created it.
    pub original: Option<String>,
    /// What the last `init` left in it. While the file still holds exactly this, `--remove`
    /// restores `original`; otherwise someone changed it since, and only our entries go.
    pub written: String,
    /// What init put in it, to take out of a file changed since.
    pub entries: Vec<Entry>,
    /// False once someone changed the file between two runs of init: `original` would then
    /// undo their change too, so only our entries go.
    pub restorable: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub files: BTreeMap<PathBuf, FileRecord>,
    /// Folders init created (deepest last), removed again when empty.
    pub folders: Vec<PathBuf>,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Option<Self>, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
                CliError::Usage(format!(
                    "cannot read init's record {} ({e}): remove the entries by hand",
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

    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .map_err(CliError::io(format!("cannot write {}", path.display())))
    }

    /// Notes that init left `path` holding `after`, which held `before`.
    pub fn wrote(&mut self, path: &Path, before: Option<&str>, after: &str, entries: &[&Entry]) {
        let record = self
            .files
            .entry(path.to_owned())
            .and_modify(|record| {
                if before != Some(record.written.as_str()) {
                    record.restorable = false;
                }
            })
            .or_insert_with(|| FileRecord {
                original: before.map(str::to_owned),
                written: String::new(),
                entries: Vec::new(),
                restorable: true,
            });
        record.written = after.to_owned();
        for entry in entries {
            if !record.entries.contains(entry) {
                record.entries.push((*entry).clone());
            }
        }
    }
}
