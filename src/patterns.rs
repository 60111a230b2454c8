//! What a lock key covers: one file, a directory, or a glob.
//!
//! A key ending in `/` covers everything below that directory (`src/auth/` is `src/auth/**`). A
//! key with `*` or `?` in it is a glob over `/`-separated segments: `*` matches any run of
//! characters within one segment, `?` one character, and a `**` segment any number of segments.
//! Brackets are literal, because file names like `[id].tsx` are common and bracket classes are not.
//!
//! Two keys conflict when some file could be covered by both ([`overlaps`]); the store finds the
//! candidates with index range scans on [`base`] and this module decides.
//!
//! A key starting with [`RESOURCE_PREFIX`] names a shared resource that is not a file (a browser,
//! the test suite, a port): it covers only itself, so no file, directory or glob lock touches it.
//!
//! A file key may name one item in the file after a `#`: `src/api.ts#UserService.login`, a
//! dotted path of named items (see `symbols`). Agents edit different functions of one large file
//! all the time; a symbol key lets them. A key on the file (or a directory or glob covering it)
//! covers all of its symbols, and an item overlaps the items nested in it and those around it,
//! so `api.ts#UserService` and `api.ts#UserService.login` conflict while `...login` and
//! `...logout` do not.

/// The prefix of a named resource's key: `resource:playwright`.
pub const RESOURCE_PREFIX: &str = "resource:";

/// Whether a key names a resource rather than a path.
pub fn is_resource(key: &str) -> bool {
    key.starts_with(RESOURCE_PREFIX)
}

/// Separates a file from the symbol in it: `src/api.ts#UserService.login`.
pub const SYMBOL_SEPARATOR: char = '#';

/// Longest segment of a symbol (one item's name) accepted.
const MAX_SYMBOL_SEGMENT: usize = 128;

/// Longest symbol (all its segments) accepted.
pub const MAX_SYMBOL: usize = 512;

/// A key as the file (or pattern) it is about and the symbol in it, if it names one. Only a
/// file key names a symbol: a `#` in a directory, a glob or a resource is part of its name.
pub fn split_symbol(key: &str) -> (&str, Option<&str>) {
    if is_resource(key) {
        return (key, None);
    }
    match key.split_once(SYMBOL_SEPARATOR) {
        Some((file, symbol)) if !file.is_empty() && !is_path_pattern(file) && is_symbol(symbol) => {
            (file, Some(symbol))
        }
        _ => (key, None),
    }
}

/// The file (or pattern) a key is about, without its symbol.
pub fn file_of(key: &str) -> &str {
    split_symbol(key).0
}

/// Whether `name` can be a symbol: dot-separated segments of ASCII letters, digits, `_`, `$`
/// or `-` (a notebook cell's id), each at most 128 long, at most 512 in all.
pub fn is_symbol(name: &str) -> bool {
    name.len() <= MAX_SYMBOL
        && name.split('.').all(|segment| {
            (1..=MAX_SYMBOL_SEGMENT).contains(&segment.len())
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '-'))
        })
}

/// Whether two symbols of one file overlap: the same item, or one nested in the other.
fn symbols_overlap(a: &str, b: &str) -> bool {
    let nested = |outer: &str, inner: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    };
    nested(a, b) || nested(b, a)
}

/// Whether every file and item `inner` covers is covered by `outer` too: a directory or glob
/// around the file, the file itself, or an item the inner item is nested in.
pub fn covers(outer: &str, inner: &str) -> bool {
    if is_resource(outer) || is_resource(inner) {
        return outer == inner;
    }
    let ((outer_file, outer_item), (inner_file, inner_item)) =
        (split_symbol(outer), split_symbol(inner));
    let file = if is_path_pattern(outer_file) {
        overlaps(outer_file, inner_file)
    } else {
        outer_file == inner_file
    };
    file && match (outer_item, inner_item) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(o), Some(i)) => i
            .strip_prefix(o)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.')),
    }
}

/// Whether a key covers more than the one file it names.
pub fn is_pattern(key: &str) -> bool {
    !is_resource(key) && is_path_pattern(file_of(key))
}

fn is_path_pattern(path: &str) -> bool {
    path.ends_with('/') || path.contains(['*', '?'])
}

/// The directory every path a pattern covers lies in, with its trailing `/` (`""` for the
/// project root): `src/auth/**` → `src/auth/`, `migrations/*.sql` → `migrations/`.
/// `None` for a plain file key.
pub fn base(key: &str) -> Option<&str> {
    if !is_pattern(key) {
        return None;
    }
    let literal = key.find(['*', '?']).map_or(key, |at| &key[..at]);
    Some(literal.rfind('/').map_or("", |slash| &key[..=slash]))
}

/// The directories a file or a pattern's base lies in, shallowest first, each with its trailing
/// `/`, including `""` for the root: `a/b/c.ts` → `["", "a/", "a/b/"]`. For a key ending in `/`
/// the key itself is included.
pub fn ancestors(key: &str) -> Vec<&str> {
    std::iter::once("")
        .chain(key.match_indices('/').map(|(at, _)| &key[..=at]))
        .collect()
}

/// Whether some file path (or some item in it) is covered by both keys.
pub fn overlaps(a: &str, b: &str) -> bool {
    if is_resource(a) || is_resource(b) {
        return a == b;
    }
    let ((a, in_a), (b, in_b)) = (split_symbol(a), split_symbol(b));
    if let (Some(x), Some(y)) = (in_a, in_b)
        && !symbols_overlap(x, y)
    {
        return false;
    }
    if !is_pattern(a) && !is_pattern(b) {
        return a == b;
    }
    let (a, b) = (segments(a), segments(b));
    let mut memo = Memo::new(a.len(), b.len());
    common(&a, &b, 0, 0, &mut memo, &|x: &&str| *x == "**", &|x, y| {
        segment_overlaps(x, y)
    })
}

/// A key as its segments; a trailing `/` stands for a final `**`.
fn segments(key: &str) -> Vec<&str> {
    match key.strip_suffix('/') {
        Some(directory) => directory.split('/').chain(["**"]).collect(),
        None => key.split('/').collect(),
    }
}

/// Whether two single-segment globs (`*`, `?`, literals) match a common name.
fn segment_overlaps(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut memo = Memo::new(a.len(), b.len());
    common(&a, &b, 0, 0, &mut memo, &|c: &char| *c == '*', &|x, y| {
        *x == '?' || *y == '?' || x == y
    })
}

/// Whether the sequences `a[i..]` and `b[j..]` can produce a common string, where a wildcard
/// item produces any run of items (segments or characters) and two ordinary items must be
/// compatible. Each step moves `i` or `j` forward, and the memo keeps patterns full of stars
/// polynomial.
fn common<T>(
    a: &[T],
    b: &[T],
    i: usize,
    j: usize,
    memo: &mut Memo,
    wildcard: &dyn Fn(&T) -> bool,
    compatible: &dyn Fn(&T, &T) -> bool,
) -> bool {
    if let Some(known) = memo.get(i, j) {
        return known;
    }
    let next = |i, j, memo: &mut Memo| common(a, b, i, j, memo, wildcard, compatible);
    let answer = match (a.get(i), b.get(j)) {
        (None, None) => true,
        // A wildcard either ends here or also covers the other side's next item.
        (Some(x), other) if wildcard(x) => {
            next(i + 1, j, memo) || (other.is_some() && next(i, j + 1, memo))
        }
        (other, Some(y)) if wildcard(y) => {
            next(i, j + 1, memo) || (other.is_some() && next(i + 1, j, memo))
        }
        (Some(x), Some(y)) => compatible(x, y) && next(i + 1, j + 1, memo),
        _ => false,
    };
    memo.put(i, j, answer)
}

struct Memo {
    width: usize,
    seen: Vec<Option<bool>>,
}

impl Memo {
    fn new(a: usize, b: usize) -> Self {
        Self {
            width: b + 1,
            seen: vec![None; (a + 1) * (b + 1)],
        }
    }

    fn get(&self, i: usize, j: usize) -> Option<bool> {
        self.seen.get(i * self.width + j).copied().flatten()
    }

    fn put(&mut self, i: usize, j: usize, answer: bool) -> bool {
        if let Some(slot) = self.seen.get_mut(i * self.width + j) {
            *slot = Some(answer);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn resources_overlap_only_themselves() {
        assert!(overlaps("resource:gpu", "resource:gpu"));
        assert!(!overlaps("resource:gpu", "resource:port-3000"));
        for path in ["**", "*", "resource:*", "src/", "resource:gpu/"] {
            assert!(!overlaps("resource:gpu", path), "{path}");
            assert!(!overlaps(path, "resource:gpu"), "{path}");
        }
        assert!(!is_pattern("resource:gpu"));
        assert_eq!(base("resource:gpu"), None);
    }

    #[test]
    fn bases_and_ancestors() {
        assert_eq!(base("src/a.ts"), None);
        assert_eq!(base("src/auth/"), Some("src/auth/"));
        assert_eq!(base("src/auth/**"), Some("src/auth/"));
        assert_eq!(base("migrations/*.sql"), Some("migrations/"));
        assert_eq!(base("*.sql"), Some(""));
        assert_eq!(base("src/a?/x.ts"), Some("src/"));
        assert_eq!(ancestors("a/b/c.ts"), ["", "a/", "a/b/"]);
        assert_eq!(ancestors("a/"), ["", "a/"]);
        assert_eq!(ancestors("c.ts"), [""]);
    }

    #[test]
    fn directory_and_glob_keys_cover_what_they_name() {
        for (a, b, expected) in [
            ("src/auth/", "src/auth/jwt.ts", true),
            ("src/auth/**", "src/auth/deep/er/x.ts", true),
            ("src/auth/", "src/authz/x.ts", false),
            ("migrations/*.sql", "migrations/001.sql", true),
            ("migrations/*.sql", "migrations/old/001.sql", false),
            ("migrations/*.sql", "migrations/*.md", false),
            ("migrations/*.sql", "migrations/0*", true),
            ("src/**/test.ts", "src/test.ts", true),
            ("src/**/test.ts", "src/a/b/test.ts", true),
            ("src/**/test.ts", "src/a/b/other.ts", false),
            ("src/", "src/auth/", true),
            ("src/auth/", "lib/", false),
            ("**", "anything/at/all.rs", true),
            ("a?.ts", "ab.ts", true),
            ("a?.ts", "a.ts", false),
            ("pages/[id].tsx", "pages/[id].tsx", true),
            ("pages/[id].tsx", "pages/i.tsx", false),
            ("x.ts", "x.ts", true),
            ("x.ts", "y.ts", false),
        ] {
            assert_eq!(overlaps(a, b), expected, "{a} vs {b}");
            assert_eq!(overlaps(b, a), expected, "{b} vs {a}");
        }
    }

    #[test]
    fn a_file_covers_its_symbols_and_items_cover_the_ones_nested_in_them() {
        for (a, b, expected) in [
            ("src/api.ts", "src/api.ts#UserService.login", true),
            (
                "src/api.ts#UserService",
                "src/api.ts#UserService.login",
                true,
            ),
            (
                "src/api.ts#UserService.login",
                "src/api.ts#UserService.login",
                true,
            ),
            (
                "src/api.ts#UserService.login",
                "src/api.ts#UserService.logout",
                false,
            ),
            ("src/api.ts#User", "src/api.ts#UserService", false),
            ("src/api.ts#login", "src/other.ts#login", false),
            ("src/", "src/api.ts#login", true),
            ("src/*.ts", "src/api.ts#login", true),
            ("src/*.rs", "src/api.ts#login", false),
            ("**", "src/api.ts#login", true),
            ("resource:api.ts", "api.ts#x", false),
        ] {
            assert_eq!(overlaps(a, b), expected, "{a} vs {b}");
            assert_eq!(overlaps(b, a), expected, "{b} vs {a}");
        }
    }

    #[test]
    fn a_file_covers_its_items_and_an_item_those_nested_in_it() {
        assert!(covers("a.ts", "a.ts#X.y"));
        assert!(covers("a.ts#X", "a.ts#X.y"));
        assert!(covers("src/", "src/a.ts#X"));
        assert!(!covers("a.ts#X.y", "a.ts#X"));
        assert!(!covers("a.ts#X", "a.ts"));
        assert!(!covers("a.ts#X", "a.ts#Xy"));
        assert!(!covers("b.ts", "a.ts#X"));
    }

    #[test]
    fn only_a_file_key_with_a_valid_symbol_names_one() {
        assert_eq!(split_symbol("a.ts#X.y"), ("a.ts", Some("X.y")));
        assert_eq!(
            split_symbol("nb.ipynb#cell-3f2a"),
            ("nb.ipynb", Some("cell-3f2a"))
        );
        assert_eq!(split_symbol("a.ts"), ("a.ts", None));
        // A `#` that does not start a symbol is part of the file's name.
        assert_eq!(split_symbol("#notes#"), ("#notes#", None));
        assert_eq!(split_symbol("a.ts#"), ("a.ts#", None));
        assert_eq!(split_symbol("a.ts#x..y"), ("a.ts#x..y", None));
        assert_eq!(split_symbol("a.ts#x y"), ("a.ts#x y", None));
        assert_eq!(split_symbol("src/#x"), ("src/#x", None));
        assert_eq!(split_symbol("src/*.ts#x"), ("src/*.ts#x", None));
        assert!(!is_pattern("a.ts#x"));
        assert_eq!(base("a.ts#x"), None);
        assert!(is_symbol(&"a".repeat(128)));
        assert!(!is_symbol(&"a".repeat(129)));
        assert!(!is_symbol(&["a"; 300].join(".")));
    }

    #[test]
    fn many_stars_stay_fast() {
        let a = "*a".repeat(200);
        let b = "*b".repeat(200);
        assert!(!overlaps(&a, &b));
        assert!(overlaps(&format!("{a}*"), &format!("*{b}")));
    }

    /// Every file name over a tiny alphabet, as the ground truth for single segments.
    fn names(max_len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..max_len {
            frontier = frontier
                .iter()
                .flat_map(|n| ['a', 'b'].map(|c| format!("{n}{c}")))
                .collect();
            all.extend(frontier.iter().cloned());
        }
        all
    }

    fn matches(glob: &[char], name: &[char]) -> bool {
        match (glob.first(), name.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                matches(&glob[1..], name) || (!name.is_empty() && matches(glob, &name[1..]))
            }
            (Some('?'), Some(_)) => matches(&glob[1..], &name[1..]),
            (Some(g), Some(n)) => g == n && matches(&glob[1..], &name[1..]),
            _ => false,
        }
    }

    proptest! {
        /// Two segment globs overlap exactly when some short name matches both (short names
        /// suffice: a common match can always be shrunk to at most the patterns' literal length).
        #[test]
        fn segment_overlap_agrees_with_brute_force(a in "[ab*?]{0,4}", b in "[ab*?]{0,4}") {
            let (ga, gb): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
            let brute = names(8).iter().any(|n| {
                let n: Vec<char> = n.chars().collect();
                matches(&ga, &n) && matches(&gb, &n)
            });
            prop_assert_eq!(segment_overlaps(&a, &b), brute, "{} vs {}", a, b);
        }

        #[test]
        fn overlap_is_symmetric(a in "[ab*/]{1,8}", b in "[ab*/]{1,8}") {
            prop_assert_eq!(overlaps(&a, &b), overlaps(&b, &a));
        }
    }
}
