//! `init --dry-run` shows what would change as a unified diff, the form people and `patch`
//! read. The files are small configuration files, so a plain longest-common-subsequence
//! table over their lines is enough.

use std::fmt::Write as _;

/// Lines of context around each change.
const CONTEXT: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Same(usize, usize),
    Removed(usize),
    Added(usize),
}

fn ops(old: &[&str], new: &[&str]) -> Vec<Op> {
    let (n, m) = (old.len(), new.len());
    // lcs[i][j]: the longest common subsequence of old[i..] and new[j..].
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i] == new[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && old[i] == new[j] {
            out.push(Op::Same(i, j));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(Op::Removed(i));
            i += 1;
        } else {
            out.push(Op::Added(j));
            j += 1;
        }
    }
    out
}

/// Lines of `text`, each with its end of line, so a missing last newline shows.
fn lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// The unified diff from `old` to `new` (`None`: the file does not exist), labelled `name`.
pub fn unified(name: &str, old: Option<&str>, new: Option<&str>) -> String {
    let (a, b) = (lines(old.unwrap_or("")), lines(new.unwrap_or("")));
    let ops = ops(&a, &b);
    let mut out = format!(
        "--- {}\n+++ {}\n",
        old.map_or("/dev/null".to_owned(), |_| format!("a/{name}")),
        new.map_or("/dev/null".to_owned(), |_| format!("b/{name}"))
    );
    let changed: Vec<usize> = ops
        .iter()
        .enumerate()
        .filter(|(_, op)| !matches!(op, Op::Same(..)))
        .map(|(k, _)| k)
        .collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut last = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        let end = (last + CONTEXT + 1).min(ops.len());
        let hunk = &ops[start..end];
        let first_old = hunk.iter().find_map(|op| match op {
            Op::Same(i, _) | Op::Removed(i) => Some(*i),
            Op::Added(_) => None,
        });
        let first_new = hunk.iter().find_map(|op| match op {
            Op::Same(_, j) | Op::Added(j) => Some(*j),
            Op::Removed(_) => None,
        });
        let old_len = hunk.iter().filter(|op| !matches!(op, Op::Added(_))).count();
        let new_len = hunk
            .iter()
            .filter(|op| !matches!(op, Op::Removed(_)))
            .count();
        // A side with no line in the hunk is numbered 0, as diff does for an empty file.
        let at = |first: Option<usize>| first.map_or(0, |line| line + 1);
        let _ = writeln!(
            out,
            "@@ -{},{old_len} +{},{new_len} @@",
            at(first_old),
            at(first_new)
        );
        for op in hunk {
            let (sign, line) = match *op {
                Op::Same(i, _) => (' ', a[i]),
                Op::Removed(i) => ('-', a[i]),
                Op::Added(j) => ('+', b[j]),
            };
            out.push(sign);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_shows_as_a_hunk_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified("x", Some(old), Some(new)),
            "--- a/x\n+++ b/x\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(
            unified("x", None, Some("new\n")),
            "--- /dev/null\n+++ b/x\n@@ -0,0 +1,1 @@\n+new\n"
        );
        assert_eq!(
            unified("x", Some("old"), None),
            "--- a/x\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-old\n\\ No newline at end of file\n"
        );
    }
}
