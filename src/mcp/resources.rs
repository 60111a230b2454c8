//! Two MCP resources, and telling clients when they change.
//!
//! `coordinator://locks` (what this connection's session holds and waits for) and
//! `coordinator://inbox` (its unread messages) exist so a client can be pushed a
//! `notifications/resources/updated` when another process grants its queued lock or writes to
//! it, instead of finding out on its next call. Clients of 2025 revisions ask with
//! `resources/subscribe`; clients of 2026-07-28 with `subscriptions/listen`. Either way the
//! trigger is this process's wake-up bell (`wake.rs`), which the granting or sending process
//! rings; on each ring the subscribed resources are rendered again and only those whose content
//! changed are announced. A change this connection made itself is announced only if a wake-up
//! comes after it (its own queued request rings the bell, for one): it already has its answer.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{
    CacheScope, ErrorData, ListResourcesResult, ReadResourceResult, Resource, ResourceContents,
    ResourceUpdatedNotificationParam, SubscriptionFilter,
};
use rmcp::service::{Peer, RoleServer, SubscriptionContext};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::CoordinatorServer;
use crate::coordinator::InboxQuery;

pub const LOCKS: &str = "coordinator://locks";
pub const INBOX: &str = "coordinator://inbox";

/// How often a watcher looks when this process has no wake socket (other processes cannot
/// ring its bell then).
const LOOK_WITHOUT_WAKEUPS: Duration = Duration::from_secs(2);

/// How many unread messages the inbox resource shows; message_list pages through the rest.
const INBOX_LIMIT: u64 = 50;

/// The resources every connection sees.
pub fn list() -> ListResourcesResult {
    ListResourcesResult::with_all_items(vec![
        Resource::new(LOCKS, "locks")
            .with_description(
                "The locks this session holds and the requests it has queued, with queue positions. \
                 Subscribe to hear when a queued request is granted.",
            )
            .with_mime_type("application/json"),
        Resource::new(INBOX, "inbox")
            .with_description(
                "This session's unread messages, newest first (reading does not mark them read). \
                 Subscribe to hear when one arrives.",
            )
            .with_mime_type("application/json"),
    ])
}

fn is_ours(uri: &str) -> bool {
    uri == LOCKS || uri == INBOX
}

/// `uri`, when it names one of this server's resources.
fn known(uri: &str) -> Result<&str, ErrorData> {
    if is_ours(uri) {
        return Ok(uri);
    }
    Err(ErrorData::resource_not_found(
        format!("no resource {uri}: this server has {LOCKS} and {INBOX}"),
        None,
    ))
}

/// Legacy (`resources/subscribe`) subscriptions of one connection: each URI with the content
/// it had when last looked at, and the task that watches them. The task ends when the bell or
/// the client goes.
#[derive(Default)]
pub struct Subscriptions {
    inner: Mutex<Watched>,
}

#[derive(Default)]
struct Watched {
    last: BTreeMap<String, Option<String>>,
    watcher: Option<JoinHandle<()>>,
}

impl Subscriptions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CoordinatorServer {
    pub(super) async fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let uri = known(uri)?;
        let text = match self.default_session() {
            Some(session) => self
                .render(uri, session)
                .await
                .map_err(|error| ErrorData::internal_error(error, None))?,
            // A valid, empty answer: the resource exists, this connection has nothing in it yet.
            None => serde_json::json!({
                "session_id": null,
                "note": "this connection has no session yet: call session_register first",
            })
            .to_string(),
        };
        Ok(
            ReadResourceResult::new(vec![ResourceContents::TextResourceContents {
                uri: uri.to_owned(),
                mime_type: Some("application/json".into()),
                text,
                meta: None,
            }])
            // Live state of one session: never reuse it, never share it.
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private),
        )
    }

    /// The resource's JSON for `session`, read on the blocking pool.
    async fn render(&self, uri: &str, session: String) -> Result<String, String> {
        let coordinator = self.coordinator.clone();
        let locks = uri == LOCKS;
        tokio::task::spawn_blocking(move || {
            if locks {
                json(coordinator.session_locks(&session))
            } else {
                json(coordinator.list_messages(InboxQuery {
                    session_id: session,
                    channel: None,
                    unread_only: true,
                    since: None,
                    limit: Some(INBOX_LIMIT),
                    mark_read: false,
                }))
            }
        })
        .await
        .map_err(|error| format!("internal error: {error}"))?
    }

    /// What a watcher compares: the content, or `None` while there is no session to show.
    async fn snapshot(&self, uri: &str) -> Option<String> {
        let session = self.default_session()?;
        match self.render(uri, session).await {
            Ok(text) => Some(text),
            Err(error) => {
                tracing::warn!(%error, uri, "could not read a subscribed resource");
                None
            }
        }
    }

    pub(super) async fn subscribe_legacy(
        &self,
        uri: &str,
        peer: Peer<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = known(uri)?;
        // Listen before taking the baseline, so a change right after it is not missed.
        let bell = self.wakeup.subscribe();
        let baseline = self.snapshot(uri).await;
        let mut watched = self.subscriptions.lock();
        watched.last.insert(uri.to_owned(), baseline);
        if watched.watcher.is_none() {
            // The watcher must not keep the connection's sessions alive after it closed.
            let server = Self {
                farewell: None,
                ..self.clone()
            };
            watched.watcher = Some(tokio::spawn(async move {
                server.watch_legacy(bell, peer).await;
            }));
        }
        Ok(())
    }

    pub(super) fn unsubscribe_legacy(&self, uri: &str) {
        self.subscriptions.lock().last.remove(uri);
    }

    async fn watch_legacy(
        &self,
        mut bell: tokio::sync::watch::Receiver<u64>,
        peer: Peer<RoleServer>,
    ) {
        let polling = self.wakeup.address().is_none();
        loop {
            tokio::select! {
                rang = bell.changed() => if rang.is_err() { return },
                () = tokio::time::sleep(LOOK_WITHOUT_WAKEUPS), if polling => {}
            }
            if peer.is_transport_closed() {
                return;
            }
            let uris: Vec<String> = self.subscriptions.lock().last.keys().cloned().collect();
            for uri in uris {
                let now = self.snapshot(&uri).await;
                let changed = {
                    let mut watched = self.subscriptions.lock();
                    match watched.last.get_mut(&uri) {
                        Some(last) if *last != now => {
                            *last = now;
                            true
                        }
                        // Unchanged, or unsubscribed meanwhile.
                        _ => false,
                    }
                };
                if changed
                    && peer
                        .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                        .await
                        .is_err()
                {
                    return; // the client is gone
                }
            }
        }
    }

    /// Serves one `subscriptions/listen` stream until the client cancels it.
    pub(super) async fn listen_modern(
        &self,
        context: SubscriptionContext,
    ) -> Result<(), ErrorData> {
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        if uris.is_empty() {
            context.cancelled().await;
            return Ok(());
        }
        let mut bell = self.wakeup.subscribe();
        let mut last = BTreeMap::new();
        for uri in &uris {
            last.insert(uri.clone(), self.snapshot(uri).await);
        }
        let polling = self.wakeup.address().is_none();
        loop {
            tokio::select! {
                () = context.cancelled() => return Ok(()),
                rang = bell.changed() => if rang.is_err() { return Ok(()) },
                () = tokio::time::sleep(LOOK_WITHOUT_WAKEUPS), if polling => {}
            }
            for uri in &uris {
                let now = self.snapshot(uri).await;
                if last.get(uri) != Some(&now) {
                    last.insert(uri.clone(), now);
                    if let Err(error) = context.sink().notify_resource_updated(uri.clone()).await {
                        tracing::debug!(%error, "subscription ended");
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The part of a `subscriptions/listen` request this server can serve: updates of its resources.
pub fn accepted(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let ours = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|uri| is_ours(uri));
    let filter = SubscriptionFilter::builder();
    if ours.clone().next().is_none() {
        return filter.build();
    }
    filter.resource_subscriptions(ours.cloned()).build()
}

fn json<T: Serialize>(value: crate::Result<T>) -> Result<String, String> {
    match value {
        Ok(value) => serde_json::to_string_pretty(&value).map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    }
}
