//! The named items of a source file (functions, methods, classes, types), found with
//! tree-sitter, and which of them an edit touches.
//!
//! Locking a whole file for every edit makes sessions that work on different functions of one
//! large file wait for each other; locking the items an edit touches lets them both proceed.
//! Whenever an edit cannot be pinned to named items (it lies partly outside all of them, the
//! language is unknown, a name is not a valid symbol), the answer is `None`: the caller then
//! locks the whole file, which is never wrong, only coarser.

mod ecma;
mod go;
mod python;
mod rust;
#[cfg(test)]
mod tests;

use std::ops::ControlFlow;
use std::ops::{Range, RangeInclusive};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tree_sitter::{Node, ParseOptions, ParseState, Parser};

/// A language whose items we know how to name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    Rust,
    TypeScript,
    Tsx,
    JavaScript,
    Python,
    Go,
}

impl Language {
    /// The language of a file, by its extension; `None` when we cannot name its items.
    pub fn of(path: &str) -> Option<Language> {
        let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
        let (_, extension) = file.rsplit_once('.')?;
        Some(match extension.to_ascii_lowercase().as_str() {
            "rs" => Language::Rust,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "py" | "pyi" => Language::Python,
            "go" => Language::Go,
            _ => return None,
        })
    }

    fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    fn classify<'t>(self, node: Node<'t>, source: &str) -> Visit<'t> {
        match self {
            Language::Rust => rust::classify(node, source),
            Language::TypeScript | Language::Tsx | Language::JavaScript => {
                ecma::classify(node, source)
            }
            Language::Python => python::classify(node, source),
            Language::Go => go::classify(node, source),
        }
    }

    /// Nodes that belong to the item right below them: comments, doc comments, attributes and
    /// decorators. An edit of a doc comment is an edit of its item, not of the whole file.
    fn leads_item(self, kind: &str) -> bool {
        match self {
            Language::Rust => matches!(kind, "line_comment" | "block_comment" | "attribute_item"),
            Language::TypeScript | Language::Tsx | Language::JavaScript => {
                matches!(kind, "comment" | "decorator")
            }
            Language::Python | Language::Go => kind == "comment",
        }
    }
}

/// A named item of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its dotted path, e.g. `UserService.login`.
    pub name: String,
    /// 1-based, the comments and attributes above it included.
    pub lines: RangeInclusive<usize>,
    pub bytes: Range<usize>,
}

/// What one language says of a syntax node.
enum Visit<'t> {
    /// Not an item; the items inside it belong to the enclosing one.
    Descend,
    /// Items named `names` (several for Go's `var a, b = 1, 2`) spanning `span`, which is the
    /// node or a wrapper around it (`export`, a decorated definition, a one-spec declaration).
    Item { names: Vec<String>, span: Node<'t> },
    /// A region we cannot name (an `impl` of a slice, a computed method name): edits there are
    /// edits of the enclosing item, and nothing inside it is named.
    Skip,
}

/// How long a parse may take before we give up and lock the whole file (the cautious answer).
/// A 5,000-line file parses whole in 10-16 ms on a 2-core machine, and text that no grammar
/// makes sense of can take seconds of error recovery. Large files are parsed only around the
/// edit first (see `stretch`), so whole parses are of small files or rare; the budget only
/// bounds the pathological ones, with room for a debug build's slower parse.
const PARSE_BUDGET: Duration = Duration::from_millis(50);

/// Every named item, outer ones before the ones nested in them.
pub fn items(language: Language, source: &str) -> Vec<Item> {
    items_near(language, source, None)
}

/// The named items, or with `focus` only those that can hold a byte of it and the items around
/// them: the walk then skips the bodies an edit is not in.
fn items_near(language: Language, source: &str, focus: Option<&[Range<usize>]>) -> Vec<Item> {
    items_parsed(language, source, focus, false).unwrap_or_default()
}

/// [`items_near`]; with `clean`, `None` when the source does not parse without an error.
fn items_parsed(
    language: Language,
    source: &str,
    focus: Option<&[Range<usize>]>,
    clean: bool,
) -> Option<Vec<Item>> {
    let mut parser = Parser::new();
    if parser.set_language(&language.grammar()).is_err() {
        return Some(Vec::new());
    }
    let started = Instant::now();
    let mut over_budget = |_: &ParseState| {
        if started.elapsed() > PARSE_BUDGET {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    let bytes = source.as_bytes();
    let Some(tree) = parser.parse_with_options(
        &mut |at, _| bytes.get(at..).unwrap_or_default(),
        None,
        Some(ParseOptions::new().progress_callback(&mut over_budget)),
    ) else {
        return (!clean).then(Vec::new);
    };
    if clean && tree.root_node().has_error() {
        return None;
    }
    let mut walk = Walk {
        language,
        source,
        scopes: Vec::new(),
        found: Vec::new(),
        leads: Vec::new(),
    };
    let near = |node: Node| {
        let mut span = node.byte_range();
        // Its items may start at the comments above it (`/** doc */ export class`).
        let mut above = node.prev_named_sibling();
        while let Some(lead) = above.filter(|n| language.leads_item(n.kind())) {
            span.start = lead.start_byte();
            above = lead.prev_named_sibling();
        }
        focus.is_none_or(|focus| {
            focus
                .iter()
                .any(|r| span.start < r.end.max(r.start + 1) && r.start < span.end)
        })
    };
    let mut cursor = tree.walk();
    let mut depth = 0;
    loop {
        let node = cursor.node();
        if walk.enter(node, depth) && near(node) && cursor.goto_first_child() {
            depth += 1;
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break;
            }
            depth -= 1;
            walk.leave(depth);
        }
        if depth == 0 {
            break;
        }
        walk.leave(depth);
    }
    let lines = LineIndex::new(source);
    let Walk { found, leads, .. } = walk;
    Some(
        found
            .into_iter()
            .map(|mut item| {
                item.bytes.start = lead_start(source, &leads, item.bytes.start);
                let last = item.bytes.end.max(item.bytes.start + 1) - 1;
                item.lines = lines.line(item.bytes.start)..=lines.line(last);
                item
            })
            .collect(),
    )
}

/// A walk over a syntax tree, collecting items.
struct Walk<'s> {
    language: Language,
    source: &'s str,
    /// The items enclosing the node looked at, with the depth of each.
    scopes: Vec<(usize, Rc<str>)>,
    found: Vec<Item>,
    /// What leads an item (comments, attributes, decorators), in the source's order.
    leads: Vec<Range<usize>>,
}

impl Walk<'_> {
    /// Looks at one node: records it when it is an item or leads one, and says whether the
    /// items inside it are worth looking for.
    fn enter(&mut self, node: Node, depth: usize) -> bool {
        if !node.is_named() {
            return false;
        }
        if self.language.leads_item(node.kind()) {
            self.leads.push(node.byte_range());
            return false;
        }
        // Identifiers, literals: no item is a leaf.
        if node.child_count() == 0 {
            return false;
        }
        let (names, span) = match self.language.classify(node, self.source) {
            Visit::Descend => return true,
            Visit::Skip => return false,
            Visit::Item { names, span } => (names, span),
        };
        let full: Vec<String> = names
            .iter()
            .map(|name| match self.scopes.last() {
                Some((_, outer)) => format!("{outer}.{name}"),
                None => name.clone(),
            })
            .collect();
        if full.is_empty() || !full.iter().all(|n| is_symbol(n)) {
            return false;
        }
        self.found.extend(full.iter().map(|name| Item {
            name: name.clone(),
            lines: 0..=0,
            bytes: span.byte_range(),
        }));
        match full.as_slice() {
            [only] => {
                self.scopes.push((depth, Rc::from(only.as_str())));
                true
            }
            // Nothing nests in a declaration of several names.
            _ => false,
        }
    }

    /// Back at `depth`: the items at or below it are closed.
    fn leave(&mut self, depth: usize) {
        while self.scopes.last().is_some_and(|(at, _)| *at >= depth) {
            self.scopes.pop();
        }
    }
}

/// Where an item starts once the comments, attributes and decorators directly above it (no
/// blank line between) are counted in. `leads` is sorted: they do not nest.
fn lead_start(source: &str, leads: &[Range<usize>], mut start: usize) -> usize {
    let bytes = source.as_bytes();
    let mut before = leads.partition_point(|lead| lead.end <= start);
    while before > 0 {
        let lead = &leads[before - 1];
        let Some(gap) = bytes.get(lead.end..start) else {
            break;
        };
        let newlines = gap.iter().filter(|b| **b == b'\n').count();
        if newlines > 1 || !gap.iter().all(u8::is_ascii_whitespace) {
            break;
        }
        // A comment after code on its line belongs to that code, unless the item follows on
        // the same line (`@Input() name`).
        let line_start = bytes[..lead.start]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |n| n + 1);
        if newlines == 1
            && !bytes[line_start..lead.start]
                .iter()
                .all(u8::is_ascii_whitespace)
        {
            break;
        }
        start = lead.start;
        before -= 1;
    }
    start
}

/// The names of the innermost named items the byte ranges touch (a range across two items
/// touches both); None when some range lies (partly) outside every named item: the edit is
/// then an edit of the whole file. Sorted, deduplicated.
///
/// Only the non-blank bytes of a range count, so that an edit spanning the blank lines between
/// two functions, or starting with a method's indentation, touches the functions alone; a
/// range of nothing but whitespace counts as the point where it starts.
pub fn touched(language: Language, source: &str, ranges: &[Range<usize>]) -> Option<Vec<String>> {
    // Inside the source and in order, as `touched_in` reads them, so that the walk focuses on
    // the same bytes that are then looked up.
    let ranges: &[Range<usize>] = &ranges
        .iter()
        .map(|r| {
            let end = r.end.min(source.len());
            r.start.min(end)..end
        })
        .collect::<Vec<_>>();
    // A stretch over half the file would save less than a failed try costs.
    if source.len() > WINDOW_FROM
        && stretch(source, ranges).is_some_and(|s| s.len() <= source.len() / 2)
        && let Some(answer) = touched_in_window(language, source, ranges)
    {
        return answer;
    }
    let items = items_near(language, source, Some(ranges));
    touched_in(&items, source, ranges)
}

/// Sources longer than this are first parsed only around the edit: a 5,000-line file takes
/// 10-16 ms to parse whole, more than a hook call may spend on it.
const WINDOW_FROM: usize = 32 * 1024;

/// What [`touched`] answers, from a parse of only the [`stretch`] of `source` around the edit;
/// `None` when the stretch cannot be trusted, and the whole file must be parsed. Items nest by
/// indentation in every language here, so the stretch holds the whole top-level item the edit
/// is in, and names it as the whole file would. A line that only looks like a start (inside a
/// string, or an unindented block) cuts the stretch where a parse fails, so the stretch is
/// trusted only when it parses without an error. An edit it finds outside every item is then
/// answered as one of the whole file: that is the cautious answer anyway.
fn touched_in_window(
    language: Language,
    source: &str,
    ranges: &[Range<usize>],
) -> Option<Option<Vec<String>>> {
    let Range { start, end } = stretch(source, ranges)?;
    // Both ends follow a '\n' (or are the ends of the source): character boundaries.
    let window = source.get(start..end)?;
    let shifted: Vec<Range<usize>> = ranges
        .iter()
        .map(|r| r.start.clamp(start, end) - start..r.end.clamp(start, end) - start)
        .collect();
    let items = items_parsed(language, window, Some(&shifted), true)?;
    Some(touched_in(&items, window, &shifted))
}

/// The top-level stretch of `source` around `ranges`: from the nearest line at or before them
/// that starts a top-level item (in column 0, with a letter, `_`, `$`, `@`, `#` or `/`: a
/// keyword, a name, a decorator, an attribute, a comment) to the next line after them that
/// starts one with a keyword or a name.
fn stretch(source: &str, ranges: &[Range<usize>]) -> Option<Range<usize>> {
    let bytes = source.as_bytes();
    let from = ranges.iter().map(|r| r.start).min()?.min(bytes.len());
    let to = ranges.iter().map(|r| r.end).max()?.clamp(from, bytes.len());
    let starts_item = |line: usize| {
        bytes.get(line).is_some_and(|b| {
            b.is_ascii_alphabetic() || matches!(b, b'_' | b'$' | b'@' | b'#' | b'/')
        })
    };
    let line_of = |at: usize| {
        bytes[..at]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |n| n + 1)
    };
    let next_line = |at: usize| {
        bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |n| at + n + 1)
    };
    let mut start = line_of(from);
    while start > 0 && !starts_item(start) {
        start = line_of(start - 1);
    }
    // Comments, attributes and decorators lead the item below them: the stretch ends at a line
    // that starts an item itself, and past the item whose leading lines the edit is in.
    let leads = |line: usize| {
        bytes
            .get(line)
            .is_some_and(|b| matches!(b, b'@' | b'#' | b'/'))
    };
    let next_item = |mut line: usize| {
        while line < bytes.len() && (!starts_item(line) || leads(line)) {
            line = next_line(line);
        }
        line
    };
    let last = line_of(to.max(from + 1).min(bytes.len()).saturating_sub(1));
    let mut end = next_item(next_line(last));
    let mut line = last;
    while line < end {
        if leads(line) {
            end = next_item(next_line(end.min(bytes.len().saturating_sub(1))));
            break;
        }
        line = next_line(line);
    }
    Some(start..end)
}

/// The same for 1-based line ranges (what `git diff -U0` gives).
pub fn touched_lines(
    language: Language,
    source: &str,
    lines: &[RangeInclusive<usize>],
) -> Option<Vec<String>> {
    let index = LineIndex::new(source);
    let ranges: Vec<Range<usize>> = lines.iter().map(|r| index.bytes(r)).collect();
    touched(language, source, &ranges)
}

fn touched_in(items: &[Item], source: &str, ranges: &[Range<usize>]) -> Option<Vec<String>> {
    let bytes = source.as_bytes();
    let mut names: Vec<String> = Vec::new();
    for range in ranges {
        let end = range.end.min(bytes.len());
        let start = range.start.min(end);
        let Some(first) = (start..end).find(|i| !bytes[*i].is_ascii_whitespace()) else {
            names.extend(innermost(items, start, start + 1)?);
            continue;
        };
        let last = (first..end)
            .rev()
            .find(|i| !bytes[*i].is_ascii_whitespace())
            .map_or(first + 1, |i| i + 1);
        let near: Vec<Item> = items
            .iter()
            .filter(|item| item.bytes.start < last && first < item.bytes.end)
            .cloned()
            .collect();
        let mut cuts: Vec<usize> = near
            .iter()
            .flat_map(|item| [item.bytes.start, item.bytes.end])
            .filter(|cut| first < *cut && *cut < last)
            .chain([first, last])
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        for piece in cuts.windows(2) {
            let (from, to) = (piece[0], piece[1]);
            if bytes[from..to].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            names.extend(innermost(&near, from, to)?);
        }
    }
    names.sort_unstable();
    names.dedup();
    Some(names)
}

/// The names of the innermost item holding all of `from..to`: the one that starts last (where
/// comments make two items overlap, the later one owns the overlap), the nested one on a tie,
/// with those sharing its span (Go's `var a, b = 1, 2`).
fn innermost(items: &[Item], from: usize, to: usize) -> Option<Vec<String>> {
    let holding = || {
        items
            .iter()
            .enumerate()
            .filter(move |(_, item)| item.bytes.start <= from && to <= item.bytes.end)
    };
    let (_, inner) = holding().max_by_key(|(order, item)| (item.bytes.start, *order))?;
    Some(
        holding()
            .filter(|(_, item)| item.bytes == inner.bytes)
            .map(|(_, item)| item.name.clone())
            .collect(),
    )
}

/// Where an edit that replaces `old` (every occurrence with `all`) falls in `source`; None
/// when `old` is empty or not found (the edit cannot be placed: whole file).
pub fn find(source: &str, old: &str, all: bool) -> Option<Vec<Range<usize>>> {
    if old.is_empty() {
        return None;
    }
    let found: Vec<Range<usize>> = source
        .match_indices(old)
        .take(if all { usize::MAX } else { 1 })
        .map(|(at, text)| at..at + text.len())
        .collect();
    (!found.is_empty()).then_some(found)
}

/// Whether `name` is a valid symbol: dot-separated segments of 1..=128 chars each of
/// ASCII alphanumerics, '_', '$' or '-', at most 512 chars in all.
///
/// The alphabet keeps `#` (between path and symbol in a lock key), `/`, `*` and spaces out, so
/// a key always splits one way and never reads as a directory or a glob.
pub fn is_symbol(name: &str) -> bool {
    name.len() <= 512
        && name.split('.').all(|segment| {
            (1..=128).contains(&segment.len())
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'-'))
        })
}

/// The text of a node, `None` when it is not valid text of the source.
fn text<'s>(node: Node, source: &'s str) -> Option<&'s str> {
    source.get(node.byte_range())
}

/// An item named `name` spanning `span`; without a name, a region we cannot name.
fn named<'t>(span: Node<'t>, name: Option<&str>) -> Visit<'t> {
    match name {
        Some(name) => Visit::Item {
            names: vec![name.to_owned()],
            span,
        },
        None => Visit::Skip,
    }
}

/// Line starts, to turn byte offsets into lines and back.
struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    fn new(source: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(at, _)| at + 1))
            .collect();
        Self {
            starts,
            len: source.len(),
        }
    }

    /// The 1-based line of a byte.
    fn line(&self, byte: usize) -> usize {
        self.starts.partition_point(|start| *start <= byte).max(1)
    }

    /// The bytes of 1-based lines, their line breaks aside; past the end, the empty end.
    fn bytes(&self, lines: &RangeInclusive<usize>) -> Range<usize> {
        let at = |line: usize| {
            self.starts
                .get(line.saturating_sub(1))
                .copied()
                .unwrap_or(self.len)
        };
        let start = at(*lines.start());
        // The last line's break comes along; callers look at non-blank bytes only.
        start..at(lines.end().saturating_add(1)).max(start)
    }
}
