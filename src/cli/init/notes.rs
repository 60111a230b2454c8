//! The note for agents in AGENTS.md (and CLAUDE.md, GEMINI.md): a marked section, so init
//! finds it again to leave it, bring it up to date or take it out, and touches nothing else.

use super::entry::Entry;

const BEGIN: &str =
    "<!-- mcp-session-coordinator: begin (written by `mcp-session-coordinator init`) -->";
const END: &str = "<!-- mcp-session-coordinator: end -->";

/// What agents are told: the habit the tools need, in the words of their names.
pub fn section() -> Entry {
    Entry::Section {
        text: format!(
            "{BEGIN}\n\
             ## Coordinating with other sessions\n\
             \n\
             Other AI sessions may be editing this repository now. The `session-coordinator` MCP server \
             keeps you out of each other's way:\n\
             \n\
             - Start with `session_register` (a short name for your task); read `message_list` when an \
             answer shows `unread_messages`.\n\
             - Before editing a file, `lock_acquire` it (a `dir/` or a glob for many); `lock_release` \
             when done. A refusal names the holder: `message_send` them, or queue with \
             `lock_acquire(queue=true)`.\n\
             - Before a commit, push, rebase or long build, `conflict_check`, then `intent_announce` \
             and `intent_clear` afterwards.\n\
             - Share what others should know with `context_share`; look with `context_query`.\n\
             \n\
             Hooks and a git pre-commit guard refuse edits and commits of files another session holds.\n\
             {END}\n"
        ),
    }
}

/// `text` (empty for a new file) with the section in it: replaced where it is, else appended
/// after a blank line.
pub fn apply(text: &str, section: &str) -> String {
    if let Some((start, end)) = find(text) {
        return format!("{}{section}{}", &text[..start], &text[end..]);
    }
    if text.is_empty() {
        return section.to_owned();
    }
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("{text}{newline}\n{section}")
}

/// `text` without the section (and the blank line put before it); `None` when nothing else
/// is left.
pub fn remove(text: &str) -> Option<String> {
    let Some((start, end)) = find(text) else {
        return Some(text.to_owned());
    };
    let before = &text[..start];
    let before = if before.ends_with("\n\n") {
        &before[..before.len() - 1]
    } else {
        before
    };
    let out = format!("{before}{}", &text[end..]);
    (!out.trim().is_empty()).then_some(out)
}

/// Where the section is: from its first marker to the end of the line of its last.
fn find(text: &str) -> Option<(usize, usize)> {
    let start = text.find(BEGIN)?;
    let end_marker = start + text[start..].find(END)?;
    let after = end_marker + END.len();
    let end = if text[after..].starts_with('\n') {
        after + 1
    } else {
        after
    };
    Some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> String {
        match section() {
            Entry::Section { text } => text,
            _ => String::new(),
        }
    }

    #[test]
    fn the_section_is_appended_found_again_and_taken_out() {
        let mine = "# Agents\n\nBe kind.";
        let added = apply(mine, &text());
        assert!(added.starts_with("# Agents\n\nBe kind.\n\n<!-- mcp-session-coordinator: begin"));
        assert_eq!(apply(&added, &text()), added, "idempotent");
        assert_eq!(remove(&added).as_deref(), Some("# Agents\n\nBe kind.\n"));
        let ended = "# Agents\n";
        assert_eq!(remove(&apply(ended, &text())).as_deref(), Some(ended));
        assert_eq!(remove(&apply("", &text())), None);
        let old = added.replace("Start with", "Begin with");
        assert_eq!(
            apply(&old, &text()),
            added,
            "an older section is brought up to date"
        );
    }
}
