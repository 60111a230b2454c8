//! What mapping one edit to the symbols it touches costs the hook: parsing a 5,000-line file
//! with tree-sitter, naming its items, and placing the edit (`symbols::find` + `touched`).
//!
//!     cargo bench --bench symbols              # 200 edits per language
//!     cargo bench --bench symbols -- --quick   # a smoke run, 5 per language
//!
//! The hook's budget is 15 ms p99 per call, this included. The last row is the same size of
//! text that no grammar makes sense of (a worst case of tree-sitter's error recovery).

use std::time::{Duration, Instant};

use mcp_session_coordinator::symbols::{self, Language};

const LINES: usize = 5_000;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 5 } else { 200 };
    println!(
        "{:<12} {:>6} {:>8} {:>6} {:>9} {:>9} {:>9}",
        "language", "lines", "bytes", "items", "p50 ms", "p99 ms", "max ms"
    );
    for (name, language, source) in [
        ("rust", Language::Rust, rust()),
        ("typescript", Language::TypeScript, typescript()),
        ("tsx", Language::Tsx, typescript()),
        ("javascript", Language::JavaScript, javascript()),
        ("python", Language::Python, python()),
        ("go", Language::Go, go()),
        ("garbage", Language::TypeScript, garbage()),
    ] {
        let items = symbols::items(language, &source).len();
        let middle = format!("value_{}", LINES / 20);
        let mut times: Vec<Duration> = (0..runs)
            .map(|_| {
                let started = Instant::now();
                let ranges = symbols::find(&source, &middle, false).unwrap_or_default();
                std::hint::black_box(symbols::touched(language, &source, &ranges));
                started.elapsed()
            })
            .collect();
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{name:<12} {:>6} {:>8} {items:>6} {:>9.2} {:>9.2} {:>9.2}",
            source.lines().count(),
            source.len(),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0)),
        );
    }
}

/// `LINES` lines made of `unit(i)` blocks, each `per` lines long, numbered so every block is
/// distinct and `value_N` names a line in the N-th.
fn repeat(per: usize, header: &str, mut unit: impl FnMut(usize) -> String) -> String {
    let mut out = String::from(header);
    for i in 0..(LINES - header.lines().count()) / per {
        out.push_str(&unit(i));
    }
    out
}

fn rust() -> String {
    repeat(10, "use std::collections::HashMap;\n\n", |i| {
        format!(
            "/// Item {i}.\n#[derive(Debug)]\npub struct Item{i} {{ count: usize }}\n\
                 impl Item{i} {{\n    pub fn bump(&mut self, by: usize) -> usize {{\n        \
                 let value_{i} = self.count + by;\n        self.count = value_{i};\n        \
                 self.count\n    }}\n}}\n"
        )
    })
}

fn typescript() -> String {
    repeat(10, "import { db } from \"./db\";\n\n", |i| {
        format!(
            "/** Service {i}. */\nexport class Service{i} {{\n  private count = 0;\n  \
             async load(id: string): Promise<number> {{\n    const value_{i} = await db.get(id);\n    \
             this.count += value_{i};\n    return this.count;\n  }}\n}}\n\n"
        )
    })
}

fn javascript() -> String {
    repeat(10, "const db = require(\"./db\");\n\n", |i| {
        format!(
            "/** Service {i}. */\nclass Service{i} {{\n  count = 0;\n  \
             async load(id) {{\n    const value_{i} = await db.get(id);\n    \
             this.count += value_{i};\n    return this.count;\n  }}\n}}\n\n"
        )
    })
}

fn python() -> String {
    repeat(10, "import os\n\n", |i| {
        format!(
            "# Service {i}.\nclass Service{i}:\n    count = 0\n\n    \
             def load(self, key):\n        value_{i} = os.environ.get(key)\n        \
             self.count += 1\n        return value_{i}\n\n\n"
        )
    })
}

fn go() -> String {
    repeat(10, "package main\n\nimport \"os\"\n\n", |i| {
        format!(
            "// Service{i} counts.\ntype Service{i} struct{{ count int }}\n\n\
             // Load loads.\nfunc (s *Service{i}) Load(key string) string {{\n\t\
             value_{i} := os.Getenv(key)\n\ts.count++\n\treturn value_{i}\n}}\n\n"
        )
    })
}

/// Brackets, quotes and operators in no grammar's order, `value_N` markers among them.
fn garbage() -> String {
    let tokens = [
        "{", ")", "\"", "=>", "(", "]", "<", ":", "'", "/*", "`", "@", "#", ";", ".",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    repeat(1, "", |i| {
        let mut line = format!("value_{i} ");
        for _ in 0..12 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            line.push_str(tokens[(state % tokens.len() as u64) as usize]);
            line.push_str(" x ");
        }
        line.push('\n');
        line
    })
}
