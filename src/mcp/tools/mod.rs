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

#[cfg(test)]
mod tests {
    use crate::mcp::CoordinatorServer;

    /// Adding routers silently replaces a tool of the same name, and a tool is found by its
    /// name's feature: each name must come from exactly one module, the one its prefix says.
    #[test]
    fn each_tool_comes_from_the_feature_its_name_says() {
        let features = [
            ("session_", CoordinatorServer::session_tools()),
            ("lock_", CoordinatorServer::lock_tools()),
            ("intent_", CoordinatorServer::intent_tools()),
            ("message_", CoordinatorServer::message_tools()),
            ("conflict_", CoordinatorServer::conflict_tools()),
            ("context_", CoordinatorServer::context_tools()),
        ];
        let mut count = 0;
        for (prefix, router) in &features {
            for tool in router.list_all() {
                assert!(tool.name.starts_with(prefix), "{} in {prefix}", tool.name);
                count += 1;
            }
        }
        assert_eq!(count, 20);
        assert_eq!(CoordinatorServer::tools().list_all().len(), count);
    }
}
