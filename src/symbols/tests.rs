//! What the hook relies on: exact names per language, edits mapped to the items they touch,
//! whole-file answers where an edit cannot be placed, and no panic on any input.

mod languages;

use proptest::prelude::*;

use super::*;
use languages::{GO, JAVASCRIPT, PYTHON, TYPESCRIPT};

fn names(language: Language, source: &str) -> Vec<String> {
    items(language, source)
        .into_iter()
        .map(|i| i.name)
        .collect()
}

/// What an edit replacing the one occurrence of `old` touches.
fn edit(language: Language, source: &str, old: &str) -> Option<Vec<String>> {
    let ranges = find(source, old, false).expect("the edited text is in the file");
    touched(language, source, &ranges)
}

fn list(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|n| (*n).to_owned()).collect())
}

const RUST: &str = r#"//! Crate doc.
use std::fmt;

/// A wrapper.
#[derive(Debug)]
pub struct Wrapper<T>(T);

impl<T: fmt::Debug> fmt::Display for Wrapper<T> {
    /// Formats it.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<T> Wrapper<T> {
    pub const ZERO: usize = 0;

    pub fn new(t: T) -> Self {
        fn helper() {}
        Self(t)
    }

    pub fn get(&self) -> &T {
        &self.0
    }
}

pub trait Greet {
    type Out;
    fn hello(&self) -> String;
    fn bye(&self) {}
}

enum Color {
    Red,
    Green,
}
union Bits {
    a: u32,
    b: f32,
}
static COUNT: u32 = 0;
type Alias = Vec<u8>;
macro_rules! twice {
    ($e:expr) => {
        $e;
        $e
    };
}

mod inner {
    fn f() {}
    impl crate::Wrapper<u8> {
        fn r#type() {}
    }
}

impl<T> Greet for [T] {
    type Out = ();
    fn hello(&self) -> String {
        String::new()
    }
}
"#;

#[test]
fn rust_items_are_named_by_their_path() {
    assert_eq!(
        names(Language::Rust, RUST),
        [
            "Wrapper",
            "Wrapper",
            "Wrapper.fmt",
            "Wrapper",
            "Wrapper.ZERO",
            "Wrapper.new",
            "Wrapper.new.helper",
            "Wrapper.get",
            "Greet",
            "Greet.Out",
            "Greet.hello",
            "Greet.bye",
            "Color",
            "Bits",
            "COUNT",
            "Alias",
            "twice",
            "inner",
            "inner.f",
            "inner.Wrapper",
            "inner.Wrapper.type",
        ]
    );
}

#[test]
fn rust_item_spans_take_in_doc_comments_and_attributes() {
    let all = items(Language::Rust, RUST);
    let wrapper = &all[0];
    assert_eq!(wrapper.lines, 4..=6);
    assert!(RUST[wrapper.bytes.clone()].starts_with("/// A wrapper."));
    let fmt = all.iter().find(|i| i.name == "Wrapper.fmt").expect("fmt");
    assert_eq!(fmt.lines, 9..=12);
}

#[test]
fn an_edit_inside_one_function_touches_it_alone() {
    assert_eq!(
        edit(Language::Rust, RUST, "Self(t)"),
        list(&["Wrapper.new"])
    );
    // As Claude Code sends it: whole lines with their indentation and line break.
    assert_eq!(
        edit(
            Language::Rust,
            RUST,
            "    pub fn get(&self) -> &T {\n        &self.0\n"
        ),
        list(&["Wrapper.get"])
    );
    assert_eq!(
        edit(Language::Rust, RUST, "fn helper() {}"),
        list(&["Wrapper.new.helper"])
    );
}

#[test]
fn an_edit_across_two_functions_touches_both() {
    assert_eq!(
        edit(Language::Rust, RUST, "Self(t)\n    }\n\n    pub fn get"),
        list(&["Wrapper.get", "Wrapper.new"])
    );
}

#[test]
fn an_edit_between_items_of_a_block_touches_the_block() {
    assert_eq!(
        edit(Language::Rust, RUST, "Debug> fmt::Display for"),
        list(&["Wrapper"])
    );
}

#[test]
fn an_edit_outside_every_item_is_an_edit_of_the_whole_file() {
    assert_eq!(edit(Language::Rust, RUST, "use std::fmt;"), None);
    assert_eq!(edit(Language::Rust, RUST, "//! Crate doc."), None);
    // Partly outside: from the imports into the first item.
    assert_eq!(edit(Language::Rust, RUST, "fmt;\n\n/// A wrapper."), None);
    // Inside an item we cannot name (an impl for a slice).
    assert_eq!(edit(Language::Rust, RUST, "String::new()"), None);
}

#[test]
fn a_doc_comment_edit_touches_its_item() {
    assert_eq!(
        edit(Language::Rust, RUST, "/// A wrapper."),
        list(&["Wrapper"])
    );
    assert_eq!(
        edit(Language::Rust, RUST, "/// Formats it."),
        list(&["Wrapper.fmt"])
    );
    assert_eq!(
        edit(Language::Rust, RUST, "#[derive(Debug)]"),
        list(&["Wrapper"])
    );
}

#[test]
fn a_parse_with_errors_keeps_the_items_it_recovered() {
    let source = "fn good() {}\n\nfn broken( {\n\nfn also_good() -> u8 { 1 }\n";
    let found = names(Language::Rust, source);
    assert!(found.contains(&"good".to_owned()), "{found:?}");
    let source = "def ok():\n    return 1\n\ndef bad(:\n    pass\n\nclass Fine:\n    pass\n";
    let found = names(Language::Python, source);
    assert!(found.contains(&"ok".to_owned()), "{found:?}");
    assert!(found.contains(&"Fine".to_owned()), "{found:?}");
}

#[test]
fn line_ranges_touch_what_their_lines_hold() {
    let rust = Language::Rust;
    // Line 20 is `Self(t)`, line 19 `fn helper() {}`.
    assert_eq!(
        touched_lines(rust, RUST, &[20..=20]),
        list(&["Wrapper.new"])
    );
    assert_eq!(
        touched_lines(rust, RUST, &[19..=19]),
        list(&["Wrapper.new.helper"])
    );
    // Lines 21-25 close `new`, a blank line, and open `get`: both, not the impl.
    assert_eq!(
        touched_lines(rust, RUST, &[21..=25]),
        list(&["Wrapper.get", "Wrapper.new"])
    );
    assert_eq!(touched_lines(rust, RUST, &[2..=2]), None);
    // A blank line inside an impl counts where it stands.
    assert_eq!(touched_lines(rust, RUST, &[17..=17]), list(&["Wrapper"]));
    // Past the end of the file, nothing can be placed.
    assert_eq!(touched_lines(rust, RUST, &[10_000..=10_001]), None);
    assert_eq!(touched_lines(rust, RUST, &[]), list(&[]));
}

#[test]
fn find_places_one_or_every_occurrence() {
    let source = "ab ab ab";
    let first: Range<usize> = 0..2;
    assert_eq!(find(source, "ab", false), Some(vec![first]));
    assert_eq!(find(source, "ab", true), Some(vec![0..2, 3..5, 6..8]));
    assert_eq!(find(source, "b a", true), Some(vec![1..4, 4..7]));
    assert_eq!(find(source, "zz", true), None);
    assert_eq!(find(source, "", true), None);
}

#[test]
fn symbols_are_dotted_names_of_a_safe_alphabet() {
    for good in [
        "f",
        "UserService.login",
        "$store",
        "a-b_c.D9",
        &"x".repeat(128),
    ] {
        assert!(is_symbol(good), "{good}");
    }
    let long = vec!["y".repeat(100); 6].join(".");
    for bad in [
        "",
        ".",
        "a.",
        ".a",
        "a..b",
        "a b",
        "a#b",
        "src/x",
        "a*",
        "café",
        &"x".repeat(129),
        &long,
    ] {
        assert!(!is_symbol(bad), "{bad}");
    }
}

#[test]
fn languages_come_from_extensions() {
    for (path, language) in [
        ("src/lib.rs", Some(Language::Rust)),
        ("a/b.ts", Some(Language::TypeScript)),
        ("x.mts", Some(Language::TypeScript)),
        ("x.cts", Some(Language::TypeScript)),
        ("App.tsx", Some(Language::Tsx)),
        ("x.js", Some(Language::JavaScript)),
        ("x.mjs", Some(Language::JavaScript)),
        ("x.cjs", Some(Language::JavaScript)),
        ("x.jsx", Some(Language::JavaScript)),
        ("x.py", Some(Language::Python)),
        ("x.pyi", Some(Language::Python)),
        ("cmd/main.go", Some(Language::Go)),
        ("README.md", None),
        ("Makefile", None),
        ("dir.rs/file", None),
    ] {
        assert_eq!(Language::of(path), language, "{path}");
    }
}

const LANGUAGES: [Language; 6] = [
    Language::Rust,
    Language::TypeScript,
    Language::Tsx,
    Language::JavaScript,
    Language::Python,
    Language::Go,
];

/// What holds of any source: names are symbols, spans lie inside the source and agree with
/// their lines, and no edit panics.
fn check_any(source: &str, ranges: &[Range<usize>]) {
    let line_count = source.split('\n').count();
    for language in LANGUAGES {
        for item in items(language, source) {
            assert!(is_symbol(&item.name), "{}", item.name);
            assert!(item.bytes.start <= item.bytes.end && item.bytes.end <= source.len());
            assert!(item.lines.start() <= item.lines.end() && *item.lines.end() <= line_count);
        }
        assert_eq!(
            touched(language, source, ranges),
            touched_in(&items(language, source), source, ranges),
            "the walk that skips bodies away from the edit answers as the full one"
        );
        let lines: Vec<RangeInclusive<usize>> = ranges.iter().map(|r| r.start..=r.end).collect();
        let _ = touched_lines(language, source, &lines);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        ranges in proptest::collection::vec((0usize..700, 0usize..700), 0..4),
    ) {
        let source = String::from_utf8_lossy(&bytes);
        let ranges: Vec<Range<usize>> = ranges.into_iter().map(|(a, b)| a..b).collect();
        check_any(&source, &ranges);
    }

    #[test]
    fn cut_and_spliced_sources_never_panic(
        which in 0usize..5,
        cut in (0usize..2000, 0usize..2000),
        insert in "[{}()\\[\\]:;\"'`#/*\n a-z=<>@.]{0,12}",
    ) {
        // ASCII sources: every cut is at a character boundary.
        let base = [RUST, TYPESCRIPT, JAVASCRIPT, PYTHON, GO][which];
        let (from, to) = (cut.0.min(cut.1).min(base.len()), cut.0.max(cut.1).min(base.len()));
        let source = format!("{}{insert}{}", &base[..from], &base[to..]);
        check_any(&source, &[from..from + insert.len(), 0..source.len()]);
    }
}

/// Every edit of a span of one to four lines of every sample: its language, the source, the
/// byte range, the answer a walk over every item gives, and a label for failures.
fn every_span(mut check: impl FnMut(Language, &str, &[Range<usize>], Option<Vec<String>>, &str)) {
    let samples = [
        (Language::Rust, RUST),
        (Language::TypeScript, TYPESCRIPT),
        (Language::JavaScript, JAVASCRIPT),
        (Language::Python, PYTHON),
        (Language::Go, GO),
    ];
    for (language, source) in samples {
        let all = items(language, source);
        let index = LineIndex::new(source);
        let lines = source.lines().count();
        for first in 1..=lines {
            for last in first..=(first + 3).min(lines) {
                let ranges = [index.bytes(&(first..=last))];
                let whole = touched_in(&all, source, &ranges);
                check(
                    language,
                    source,
                    &ranges,
                    whole,
                    &format!("{language:?} lines {first}..={last}"),
                );
            }
        }
    }
}

/// `touched` walks only the parts of the tree near an edit; it must answer exactly as a walk
/// over every item does.
#[test]
fn the_focused_walk_agrees_with_the_full_one() {
    every_span(|language, source, ranges, whole, label| {
        assert_eq!(touched(language, source, ranges), whole, "{label}");
    });
}

/// Parsed alone, the stretch of top-level items around an edit names what the whole file
/// does, whenever it is trusted; and it is trusted for most edits inside items.
#[test]
fn the_stretch_around_an_edit_names_what_the_whole_file_does() {
    let mut counts: std::collections::HashMap<String, (usize, usize)> = Default::default();
    every_span(|language, source, ranges, whole, label| {
        let count = counts.entry(format!("{language:?}")).or_default();
        if whole.as_ref().is_some_and(|names| !names.is_empty()) {
            count.0 += 1;
        }
        if let Some(answer) = touched_in_window(language, source, ranges) {
            count.1 += 1;
            assert_eq!(answer, whole, "{label}");
        }
    });
    for (language, (asked, trusted)) in counts {
        assert!(
            trusted * 2 > asked,
            "{language}: the stretch answered {trusted} of {asked} edits inside items"
        );
    }
}

/// A large file takes the stretch, and answers as the whole file does.
#[test]
fn a_large_file_is_placed_from_the_stretch_around_the_edit() {
    let mut source = String::from("import { x } from \"./x\";\n\n");
    for i in 0..400 {
        source.push_str(&format!(
            "/** Service {i}. */\nexport class Service{i} {{\n  run(x: number): number {{\n    \
             const v{i} = x * 2;\n    return v{i};\n  }}\n}}\n\n"
        ));
    }
    assert!(source.len() > WINDOW_FROM);
    let old = "const v321 = x * 2;";
    let ranges = find(&source, old, false).expect("found");
    assert_eq!(
        touched_in_window(Language::TypeScript, &source, &ranges),
        Some(Some(vec!["Service321.run".to_owned()]))
    );
    assert_eq!(
        touched(Language::TypeScript, &source, &ranges),
        touched_in(&items(Language::TypeScript, &source), &source, &ranges)
    );
    let imports = find(&source, "import { x }", false).expect("found");
    assert_eq!(
        touched_in_window(Language::TypeScript, &source, &imports),
        Some(None),
        "outside every item: the whole file, from the stretch alone"
    );
}
