//! The 20 tools, one module per feature. Names, parameters and result fields follow the
//! original product description; descriptions are written for the model that reads them: when
//! to call, what comes back.
//!
//! Each feature module holds its tools' arguments next to their handlers, so a change to a
//! tool is read and reviewed in one file, and brings its own `#[tool_router]`;
//! `CoordinatorServer::tools` adds the routers together. `params` is how all of them read
//! their arguments.

mod conflicts;
mod context;
mod intents;
mod locks;
mod messages;
mod params;
mod sessions;
