//! The packages name each other: the MCP registry's `server.json` lists the npm, PyPI and
//! crates.io packages at one version, and each registry proves ownership by a marker of its
//! own (npm's `mcpName`, the `mcp-name:` line the README carries to PyPI and crates.io). A
//! version bump or a rename that misses one of them fails a release halfway through
//! publishing, so it is checked here, where it costs nothing.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn json(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative} is not JSON: {e}"))
}

fn server_json() -> Value {
    json("server.json")
}

fn server_name() -> String {
    server_json()["name"]
        .as_str()
        .expect("server.json has a name")
        .to_owned()
}

#[test]
fn server_json_has_what_the_registry_requires() {
    let server = server_json();
    assert_eq!(
        server["$schema"],
        "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
    );
    // The schema's pattern, and the namespace a GitHub login may publish under.
    let name = server_name();
    let (namespace, server_part) = name.split_once('/').expect("one slash in the name");
    assert!(
        !server_part.contains('/')
            && namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
            && server_part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-'),
        "{name}"
    );
    assert_eq!(
        namespace, "io.github.mcp-session-coordinator",
        "the repository's owner"
    );
    let description = server["description"].as_str().expect("a description");
    assert!(
        (1..=100).contains(&description.chars().count()),
        "the schema allows 1 to 100 characters: {description}"
    );
    assert_eq!(server["version"], VERSION, "server.json's version");
    assert_eq!(
        server["repository"]["url"],
        env!("CARGO_PKG_REPOSITORY"),
        "the repository"
    );
}

#[test]
fn server_json_lists_the_three_packages_at_this_version() {
    let server = server_json();
    let packages = server["packages"].as_array().expect("packages");
    let kinds: BTreeSet<&str> = packages
        .iter()
        .map(|p| p["registryType"].as_str().expect("a registryType"))
        .collect();
    assert_eq!(kinds, BTreeSet::from(["cargo", "npm", "pypi"]));
    for package in packages {
        let kind = &package["registryType"];
        assert_eq!(package["version"], VERSION, "the {kind} package's version");
        assert_eq!(package["transport"]["type"], "stdio", "{kind}");
        assert_eq!(
            package["identifier"],
            env!("CARGO_PKG_NAME"),
            "every registry has the crate's name"
        );
    }
}

#[test]
fn every_registry_finds_its_ownership_marker() {
    let name = server_name();
    let npm = json("npm/mcp-session-coordinator/package.json");
    assert_eq!(npm["mcpName"], name.as_str(), "npm's mcpName");
    assert_eq!(
        npm["name"],
        env!("CARGO_PKG_NAME"),
        "the npm package's name"
    );

    // PyPI and crates.io read it from the README; crates.io drops HTML comments, so it is
    // visible text, and the registry wants a space or a line end right after it.
    let marker = format!("mcp-name: {name}");
    let readme = read("README.md");
    assert!(
        readme
            .lines()
            .any(|line| line.trim_end().ends_with(&marker)),
        "README.md has a line ending with {marker}"
    );

    let pyproject = read("pyproject.toml");
    for line in [
        &format!("name = \"{}\"", env!("CARGO_PKG_NAME")),
        "readme = \"README.md\"",
        // The wheel's version is Cargo.toml's, so it cannot drift from server.json's.
        "dynamic = [\"version\"]",
        "bindings = \"bin\"",
    ] {
        assert!(
            pyproject.lines().any(|l| l == line),
            "pyproject.toml has {line}"
        );
    }
}

#[test]
fn npm_platform_names_are_what_the_launcher_looks_for() {
    // The launcher asks for `@mcp-session-coordinator/${process.platform}-${process.arch}`.
    let platforms = json("npm/platforms.json");
    let platforms = platforms.as_object().expect("an object of platforms");
    assert_eq!(
        platforms.len(),
        5,
        "linux x64/arm64, macOS arm64/x64, Windows x64"
    );
    for (key, platform) in platforms {
        let os = platform["os"].as_str().expect("os");
        let cpu = platform["cpu"].as_str().expect("cpu");
        assert_eq!(key, &format!("{os}-{cpu}"));
        assert!(platform["rust"].is_string(), "{key} names its Rust target");
    }
    let launcher = read("npm/mcp-session-coordinator/bin/mcp-session-coordinator.js");
    assert!(
        launcher.contains("`@mcp-session-coordinator/${platform}`")
            && launcher.contains("`${process.platform}-${process.arch}`"),
        "the launcher's package name"
    );
}
