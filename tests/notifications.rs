//! A client that listens is told when another process grants its queued lock or writes to it:
//! `notifications/resources/updated` on `coordinator://locks` and `coordinator://inbox`, both
//! through `resources/subscribe` (2025 revisions) and `subscriptions/listen` (2026-07-28).

use std::time::Duration;

use crate::common::http::HttpServer;
use crate::common::{Db, Lifecycle, Server};
use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, ProtocolVersion, ReadResourceRequestParams,
    ResourceContents, ResourceUpdatedNotificationParam, ServerNotification, SubscribeRequestParams,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RoleClient};
use rmcp::{ClientHandler, ErrorData};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const LOCKS: &str = "coordinator://locks";
const INBOX: &str = "coordinator://inbox";

/// Long enough for a loaded CI machine; a missed notification fails it, a fast one returns at once.
const PATIENCE: Duration = Duration::from_secs(10);

/// A 2025-11-25 client that forwards the resource updates it is sent.
#[derive(Clone)]
struct Listener {
    updates: mpsc::UnboundedSender<String>,
}

impl ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("listening-test", "1"),
        );
        config.protocol_version = ProtocolVersion::V_2025_11_25;
        config
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.updates.send(params.uri);
    }
}

async fn read<H: ClientHandler>(server: &Server<H>, uri: &str) -> Value {
    let result = server
        .client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_or_else(|e| panic!("read {uri}: {e}"));
    match result.contents.as_slice() {
        [ResourceContents::TextResourceContents { text, .. }] => {
            serde_json::from_str(text).expect("the resource is JSON")
        }
        other => panic!("{uri}: one text content expected, got {other:?}"),
    }
}

/// `resources/subscribe` (the 2025 revisions' way) to both resources.
async fn subscribe_to_both<H: ClientHandler>(server: &Server<H>) {
    for uri in [LOCKS, INBOX] {
        #[allow(deprecated)]
        server
            .client
            .subscribe(SubscribeRequestParams::new(uri))
            .await
            .expect("resources/subscribe");
    }
}

async fn next_update(updates: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(PATIENCE, updates.recv())
        .await
        .expect("a notification in time")
        .expect("the client is still running")
}

/// Waits for an update of `uri`; updates of other resources may come in between (the
/// server also announces changes it notices that this client made itself).
async fn update_of(updates: &mut mpsc::UnboundedReceiver<String>, uri: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let next = tokio::time::timeout_at(deadline, updates.recv())
            .await
            .unwrap_or_else(|_| panic!("no update of {uri} in time"))
            .expect("the client is still running");
        if next == uri {
            return;
        }
    }
}

#[tokio::test]
async fn a_subscribed_client_hears_of_its_queued_grant_and_of_new_mail() {
    let db = Db::new();
    let holder = db.server().await;
    holder.register("holder", "app", "main").await;
    let (tx, mut updates) = mpsc::unbounded_channel();
    let waiter = Server::spawn_handler(
        &db.path(),
        Listener { updates: tx },
        Lifecycle::Initialize(ProtocolVersion::V_2025_11_25),
    )
    .await;

    let resources = waiter
        .client
        .list_all_resources()
        .await
        .expect("resources/list");
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, [LOCKS, INBOX]);

    // Before any session the resource still reads (a listed resource must), and says what to do.
    let before = waiter
        .client
        .read_resource(ReadResourceRequestParams::new(LOCKS))
        .await
        .expect("a listed resource reads before any session");
    let before = format!("{before:?}");
    assert!(
        before.contains("session_register") && before.contains("session_id\\\":null"),
        "the reading says what to do: {before}"
    );

    let waiter_id = waiter.register("waiter", "app", "main").await;
    subscribe_to_both(&waiter).await;
    let unknown = waiter
        .client
        .read_resource(ReadResourceRequestParams::new("coordinator://nope"))
        .await
        .expect_err("unknown resource");
    assert!(unknown.to_string().contains(LOCKS), "{unknown}");

    holder
        .call("lock_acquire", json!({"file_path": "src/a.ts"}))
        .await;
    let queued = waiter
        .call(
            "lock_acquire",
            json!({"file_path": "src/a.ts", "queue": true}),
        )
        .await;
    assert_eq!(queued["queued"], true);
    let locks = read(&waiter, LOCKS).await;
    assert_eq!(locks["session_id"], waiter_id.as_str());
    assert_eq!(locks["held"], json!([]));
    assert_eq!(locks["queued"][0]["file_path"], "src/a.ts");
    assert_eq!(locks["queued"][0]["queue_position"], 1);

    // Its own queue entry rang its bell: that change is announced first.
    assert_eq!(next_update(&mut updates).await, LOCKS);

    // Another process releases: only its poke can wake the waiter's process now.
    holder
        .call("lock_release", json!({"file_path": "src/a.ts"}))
        .await;
    let mut heard = [
        next_update(&mut updates).await,
        next_update(&mut updates).await,
    ];
    heard.sort();
    assert_eq!(
        heard,
        [INBOX, LOCKS],
        "the grant and its coordination message"
    );
    let locks = read(&waiter, LOCKS).await;
    assert_eq!(locks["held"][0]["file_path"], "src/a.ts");
    assert_eq!(locks["queued"], json!([]));
    let inbox = read(&waiter, INBOX).await;
    assert_eq!(inbox["messages"][0]["channel"], "coordination");

    // Mail from another process.
    holder
        .call(
            "message_send",
            json!({"to_session": "waiter", "content": "done with a.ts, thanks"}),
        )
        .await;
    update_of(&mut updates, INBOX).await;
    let inbox = read(&waiter, INBOX).await;
    assert_eq!(inbox["messages"][0]["content"], "done with a.ts, thanks");
    assert_eq!(
        inbox["unread_count"], 2,
        "reading the resource marks nothing read"
    );
}

#[tokio::test]
async fn a_2026_client_listens_for_its_queued_grant() {
    let db = Db::new();
    let holder = db.server().await;
    holder.register("holder", "app", "main").await;
    let waiter = Server::spawn(&db.path(), &[], Lifecycle::Discover).await;
    waiter.register("waiter", "app", "main").await;

    let mut subscription = waiter
        .client
        .listen(
            SubscriptionFilter::builder()
                .resource_subscription(LOCKS)
                .resource_subscription("coordinator://elsewhere")
                .tools_list_changed()
                .build(),
        )
        .await
        .expect("subscriptions/listen");
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec![LOCKS.to_owned()]),
        "only what the server serves is acknowledged"
    );

    holder
        .call("lock_acquire", json!({"file_path": "src/b.ts"}))
        .await;
    let queued = waiter
        .call(
            "lock_acquire",
            json!({"file_path": "src/b.ts", "queue": true}),
        )
        .await;
    assert_eq!(queued["queued"], true);
    let mut next = async || {
        let next = tokio::time::timeout(PATIENCE, subscription.next())
            .await
            .expect("a notification in time")
            .expect("a well-formed stream")
            .expect("the subscription is open");
        let ServerNotification::ResourceUpdatedNotification(update) = next else {
            panic!("only resource updates were accepted: {next:?}");
        };
        update.params.uri
    };
    // Its own queue entry rang its bell: that change is announced first.
    assert_eq!(next().await, LOCKS);
    assert_eq!(
        read(&waiter, LOCKS).await["queued"][0]["file_path"],
        "src/b.ts"
    );
    // Then only the other process's poke can announce the grant.
    holder
        .call("lock_release", json!({"file_path": "src/b.ts"}))
        .await;
    assert_eq!(next().await, LOCKS);
    assert_eq!(
        read(&waiter, LOCKS).await["held"][0]["file_path"],
        "src/b.ts"
    );
    subscription
        .cancel()
        .await
        .expect("cancel the subscription");
    let again = waiter
        .call("lock_check", json!({"file_path": "src/b.ts"}))
        .await;
    assert_eq!(
        again["holder_name"], "waiter",
        "the server still serves after cancel"
    );
}

#[tokio::test]
async fn unknown_resources_cannot_be_subscribed() {
    let db = Db::new();
    let (tx, _updates) = mpsc::unbounded_channel();
    let client = Server::spawn_handler(
        &db.path(),
        Listener { updates: tx },
        Lifecycle::Initialize(ProtocolVersion::V_2025_11_25),
    )
    .await;
    #[allow(deprecated)]
    let refused = client
        .client
        .subscribe(SubscribeRequestParams::new("file:///etc/passwd"))
        .await
        .expect_err("not a resource of ours");
    let rmcp::ServiceError::McpError(ErrorData { code, message, .. }) = refused else {
        panic!("a JSON-RPC error expected: {refused}");
    };
    assert_eq!(code, rmcp::model::ErrorCode::RESOURCE_NOT_FOUND);
    assert!(message.contains(INBOX), "{message}");
}

#[tokio::test]
async fn over_http_the_sse_stream_carries_grants_and_urgent_mail() {
    let db = Db::new();
    let server = HttpServer::start(&db.path(), &[], &[]);
    let legacy = Lifecycle::Initialize(ProtocolVersion::V_2025_11_25);
    let holder = server.client(legacy.clone(), None).await;
    let (tx, mut updates) = mpsc::unbounded_channel();
    let waiter = server
        .client_with(Listener { updates: tx }, legacy, None)
        .await;
    holder.register("holder", "app", "main").await;
    waiter.register("waiter", "app", "main").await;
    holder
        .call("lock_acquire", json!({"file_path": "src/a.rs"}))
        .await;
    subscribe_to_both(&waiter).await;
    let queued = waiter
        .call(
            "lock_acquire",
            json!({"file_path": "src/a.rs", "queue": true}),
        )
        .await;
    assert_eq!(queued["queued"], true);
    while tokio::time::timeout(Duration::from_millis(300), updates.recv())
        .await
        .is_ok()
    {}

    holder
        .call("lock_release", json!({"file_path": "src/a.rs"}))
        .await;
    update_of(&mut updates, LOCKS).await;
    let locks = read(&waiter, LOCKS).await;
    assert_eq!(locks["held"][0]["file_path"], "src/a.rs", "{locks}");

    holder
        .call(
            "message_send",
            json!({"to_session": "waiter", "content": "stop the build", "priority": "urgent"}),
        )
        .await;
    update_of(&mut updates, INBOX).await;
}
