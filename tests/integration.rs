//! The integration tests: each file beside this one is a module of this one test binary, so
//! the shared helpers in `common` are compiled and linked once rather than once per file.
//!
//! Every test here but `layers` and `packaging` (which read the sources and the package
//! manifests) runs the real server binary as separate processes and shares this process
//! only with the tests running beside it, whatever their file: a helper keeps nothing
//! process-wide that one test could change under another.

mod common;

mod cli;
mod clock_skew;
mod concurrency;
mod edit_locks;
mod fuzz;
mod git_guard;
mod hooks;
mod http;
mod init;
mod layers;
mod liveness;
mod locks_under_pressure;
mod metrics;
mod notifications;
mod packaging;
mod postgres;
mod protocol;
mod sqlite;
mod tokens;
mod tool_list;
mod walkthroughs;
