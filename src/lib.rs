//! mcp-session-coordinator: lets several AI coding sessions work on one codebase at once.
//!
//! Every AI session starts its own server process (or reaches one shared `serve` process over
//! HTTP); all of them share one database: a SQLite file on one machine, or PostgreSQL across
//! several. The crate is layered so that each adapter (MCP over stdio, the command line, the
//! web server) stays thin:
//!
//! - [`model`]: the nouns (sessions, locks, intents, messages, context) as callers see them;
//! - [`store`]: every SQL statement, behind read and write transactions;
//! - [`coordinator`]: the rules (lock matrix, conflict severities, liveness), over the store;
//! - `mcp`: the MCP tools, which parse arguments, call the coordinator and shape answers;
//! - `cli`: the commands for people, the client hooks and the git guard, over the same calls;
//! - `web`: MCP over Streamable HTTP, the dashboard and its API, and who may use them;
//! - `webhooks`: delivering the coordinator's events to webhook endpoints;
//! - `metrics`: what a shared server shows at `/metrics` for Prometheus;
//! - `clients`: which AI client process we run under, so hooks know their own sessions;
//! - `checkout`: the git checkout a session works in, whose top folder its paths are relative to;
//! - `diffs`: what a checkout has changed, as lock keys (`path`, `path#Symbol`);
//! - `liveness`: the background heartbeat and stale-session sweep every process runs;
//! - [`patterns`]: what directory and glob lock keys cover; `wake`: waking queued waiters;
//! - [`symbols`]: the named items of a source file an edit touches, for symbol-level locks;
//! - [`flags`]: every command-line flag; `config` turns them into a database and a
//!   coordinator, and [`modes`] runs what the command line asks for.
//!
//! Public are only the binary's entry points and what the benchmarks and integration tests
//! reach into; see `ARCHITECTURE.md` for the codemap and the invariants.

mod checkout;
mod cli;
mod clients;
pub mod clock;
mod config;
pub mod coordinator;
mod diffs;
mod error;
pub mod flags;
mod ids;
mod liveness;
mod mcp;
mod metrics;
pub mod model;
pub mod modes;
mod paths;
pub mod patterns;
mod platform;
pub mod store;
pub mod symbols;
mod wake;
mod web;
mod webhooks;

pub use coordinator::Coordinator;
pub use error::{Error, Result};
