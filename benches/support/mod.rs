//! What only the benchmarks need beside the integration tests' helpers (`tests/common`): a
//! database seeded straight through the store, and the report written as JSON.

pub mod seed;

use std::path::Path;

use serde_json::Value;

/// Writes a benchmark's report as pretty JSON, making its folder first.
pub fn write_json(path: &Path, report: &Value) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the report folder");
    }
    let text = serde_json::to_string_pretty(report).expect("json");
    std::fs::write(path, text).expect("write the report");
}
