//! mcp-session-coordinator: lets several AI coding sessions work on one codebase at once.
//!
//! Every AI session starts its own server process; all of them share one SQLite database. The
//! crate is layered so that each adapter (MCP over stdio, the command line, HTTP) stays thin:
//!
//! - [`model`]: the nouns (sessions, locks, intents, messages, context) as callers see them;
//! - [`store`]: every SQL statement, behind read and write transactions;
//! - [`coordinator`]: the rules (lock matrix, conflict severities, liveness), over the store;
//! - [`mcp`]: the MCP tools, which parse arguments, call the coordinator and shape answers;
//! - [`cli`]: the commands for people, the client hooks and the git guard, over the same calls;
//! - [`web`]: MCP over Streamable HTTP, the dashboard and its API, and who may use them;
//! - [`webhooks`]: delivering the coordinator's events to webhook endpoints;
//! - [`clients`]: which AI client process we run under, so hooks know their own sessions;
//! - [`checkout`]: the git checkout a session works in, whose top folder its paths are relative to;
//! - [`liveness`]: the background heartbeat and stale-session sweep every process runs;
//! - [`patterns`]: what directory and glob lock keys cover; [`wake`]: waking queued waiters.
//!
//! See `ARCHITECTURE.md` for the codemap and the invariants.

pub mod checkout;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod coordinator;
pub mod error;
pub mod flags;
pub mod web;
pub mod ids;
pub mod liveness;
pub mod mcp;
pub mod model;
pub mod modes;
pub mod paths;
pub mod patterns;
pub mod store;
pub mod wake;
pub mod webhooks;

pub use coordinator::Coordinator;
pub use error::{Error, Result};
