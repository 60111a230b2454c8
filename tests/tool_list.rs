//! What `tools/list` costs a model, and what the profiles list.
//!
//! Every tool definition a client lists is sent to the model with every request, so the list
//! has a budget. Tokens are estimated as bytes / 3.5 (English prose with JSON punctuation runs
//! 3.5–4 bytes per token in current tokenizers; the lower figure errs high). The budgets:
//! - everything: 6,000 tokens, about 3% of a 200k context window (one peer measured ~25k);
//! - the core profile: 2,500 tokens.

use crate::common::{self, Db, Lifecycle, Server};
use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};

const BYTES_PER_TOKEN: f64 = 3.5;
const BUDGET_ALL: usize = 6_000;
const BUDGET_CORE: usize = 2_500;

/// A server's tool list and its size; the database is returned to outlive the server.
async fn listed(env: &[(&str, &str)]) -> (Db, Server, Vec<rmcp::model::Tool>, usize) {
    let db = Db::new();
    let server = Server::spawn(
        &db.path(),
        env,
        Lifecycle::Initialize(ProtocolVersion::V_2025_11_25),
    )
    .await;
    let tools = server.client.list_all_tools().await.expect("tools/list");
    let bytes = serde_json::to_vec(&json!({ "tools": tools }))
        .expect("serialize")
        .len();
    (db, server, tools, bytes)
}

fn tokens(bytes: usize) -> usize {
    (bytes as f64 / BYTES_PER_TOKEN).ceil() as usize
}

#[tokio::test]
async fn the_whole_list_stays_within_its_budget_and_describes_every_parameter() {
    let (_db, _server, tools, bytes) = listed(&[]).await;
    println!(
        "all tools: {} tools, {bytes} bytes, ~{} tokens",
        tools.len(),
        tokens(bytes)
    );
    assert_eq!(tools.len(), 20);
    assert!(
        tokens(bytes) <= BUDGET_ALL,
        "tools/list grew to {bytes} bytes (~{} tokens; budget {BUDGET_ALL})",
        tokens(bytes)
    );
    for tool in &tools {
        let name = tool.name.to_string();
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(
            description.len() >= 60,
            "{name} says when to use it: {description}"
        );
        let input = Value::Object((*tool.input_schema).clone());
        for (parameter, schema) in input["properties"].as_object().into_iter().flatten() {
            let text = schema["description"].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{name}.{parameter} has a description");
        }
        assert!(
            tool.output_schema.is_none(),
            "{name}: output schemas are opt-in"
        );
        assert!(input.get("$schema").is_none(), "{name}: no dialect line");
    }
}

#[tokio::test]
async fn the_core_profile_lists_less_and_every_tool_still_answers() {
    let (_db, server, tools, bytes) = listed(&[("MCP_COORDINATOR_TOOLS", "core")]).await;
    println!(
        "core tools: {} tools, {bytes} bytes, ~{} tokens",
        tools.len(),
        tokens(bytes)
    );
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, common::CORE_TOOLS);
    assert!(
        tokens(bytes) <= BUDGET_CORE,
        "core grew to ~{} tokens",
        tokens(bytes)
    );
    let instructions = server
        .client
        .peer_info()
        .and_then(|info| info.instructions.clone())
        .unwrap_or_default();
    assert!(
        instructions.contains("intent_announce") && instructions.contains("context_query"),
        "the model is told which tools are callable though unlisted: {instructions}"
    );

    // Unlisted tools of the original product answer by name.
    server.register("core-user", "app", "main").await;
    let announced = server
        .call("intent_announce", json!({"intent_type": "build"}))
        .await;
    assert!(announced["intent_id"].is_string(), "{announced}");
    let shared = server
        .call(
            "context_share",
            json!({"context_type": "decision", "content": "core still shares"}),
        )
        .await;
    assert!(shared["context_id"].is_string(), "{shared}");
    let sessions = server.call("session_list", json!({})).await;
    assert_eq!(sessions["count"], 1);

    // Every name of the original product routes: an answer from the tool, never "not found".
    let (_db, _, all, _) = listed(&[]).await;
    for tool in all {
        let result = server.raw(&tool.name, json!({"session_id": 7})).await;
        assert_eq!(
            result.is_error,
            Some(true),
            "{}: bad session_id refused",
            tool.name
        );
        let text = common::text(&result);
        assert!(
            text.contains("session_id") || text.contains("missing field"),
            "{}: the tool itself answered: {text}",
            tool.name
        );
    }
}

#[tokio::test]
async fn output_schemas_are_listed_on_request_and_results_stay_structured() {
    let (_db, _server, tools, bytes) = listed(&[("MCP_COORDINATOR_OUTPUT_SCHEMAS", "true")]).await;
    println!(
        "with output schemas: {bytes} bytes, ~{} tokens",
        tokens(bytes)
    );
    for tool in &tools {
        let output = tool
            .output_schema
            .as_ref()
            .map(|schema| Value::Object((**schema).clone()))
            .unwrap_or_else(|| panic!("{} has an output schema", tool.name));
        assert_eq!(output["type"], "object", "{}", tool.name);
        assert!(
            output["properties"]["unread_messages"].is_object(),
            "{} can carry unread mail",
            tool.name
        );
    }
    // Without schemas (the default), answers still carry structuredContent: Server::call checks.
    let (_db, plain, _, _) = listed(&[]).await;
    let registered = plain.register("plain", "app", "main").await;
    assert!(registered.starts_with("ses-"));
}

#[tokio::test]
async fn over_http_the_list_adds_session_token_and_stays_within_its_budget() {
    let db = Db::new();
    let server = common::http::HttpServer::start(&db.path(), &[], &[]);
    let client = server
        .client(Lifecycle::Initialize(ProtocolVersion::V_2025_11_25), None)
        .await;
    let tools = client.client.list_all_tools().await.expect("tools/list");
    let bytes = serde_json::to_vec(&json!({ "tools": tools }))
        .expect("serialize")
        .len();
    println!(
        "all tools over HTTP: {} tools, {bytes} bytes, ~{} tokens",
        tools.len(),
        tokens(bytes)
    );
    assert!(
        tokens(bytes) <= BUDGET_ALL,
        "~{} tokens; budget {BUDGET_ALL}",
        tokens(bytes)
    );
    let with_token: Vec<&str> = tools
        .iter()
        .filter(|t| {
            t.input_schema
                .get("properties")
                .and_then(|p| p.get("session_token"))
                .is_some()
        })
        .map(|t| t.name.as_ref())
        .collect();
    assert_eq!(
        with_token.len(),
        15,
        "every tool that acts for (or continues) a session: {with_token:?}"
    );

    let (_db, _stdio, stdio_tools, _) = listed(&[]).await;
    assert!(
        stdio_tools.iter().all(|t| t
            .input_schema
            .get("properties")
            .and_then(|p| p.get("session_token"))
            .is_none()),
        "a stdio client's model does not pay for it"
    );
}
