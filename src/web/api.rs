//! The dashboard: its page, the JSON read API it draws from, the event stream that keeps it
//! live, and the operator actions. Every handler is one coordinator call on the blocking
//! pool; people act as people (invariant 15), never as a session.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;
use tokio_util::sync::CancellationToken;

use crate::clock::Timestamp;
use crate::coordinator::{
    Contested, ContextList, Coordinator, Deregistered, ForceReleased, Outgoing, Queued, Sender,
    Sent, SessionState,
};
use crate::error::Error;
use crate::mcp::TokenHolder;
use crate::metrics::{self, Metrics};
use crate::model::{Channel, Intent, Lock, Message, Priority};

/// How often an open dashboard looks for changes. Other processes write the database without
/// telling this one, so it looks; a look costs a few milliseconds.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Messages a snapshot carries, newest first.
const RECENT_MESSAGES: u64 = 50;

/// What the handlers share.
#[derive(Clone)]
pub struct Dashboard {
    pub coordinator: Arc<Coordinator>,
    /// What the page reads goes through here: for SQLite a second connection, so a snapshot
    /// never waits for a tool call's transaction nor holds one up.
    pub reader: Arc<Coordinator>,
    /// Counts the requests that failed on the database; `/metrics` shows it.
    pub metrics: Arc<Metrics>,
    /// Ends the event streams when the server shuts down.
    pub shutdown: CancellationToken,
    /// The snapshots every open event stream shares.
    pub feeds: Arc<Feeds>,
}

/// Everything the page shows, at one instant.
#[derive(Debug, Serialize, PartialEq)]
pub struct Snapshot {
    pub now: Timestamp,
    pub session_timeout_seconds: u64,
    /// Every project with sessions, locks or intents, for the selector.
    pub projects: Vec<String>,
    pub sessions: Vec<SessionState>,
    pub locks: Vec<Lock>,
    pub queue: Vec<Queued>,
    pub intents: Vec<Intent>,
    pub messages: Vec<Message>,
    pub conflicts: Vec<Contested>,
}

impl Snapshot {
    fn read(coordinator: &Coordinator, project: Option<&str>) -> Result<Self, Error> {
        let mut overview = coordinator.overview(None)?;
        let mut projects: Vec<String> = overview
            .sessions
            .iter()
            .map(|s| s.activity.session.project.clone())
            .chain(overview.locks.iter().map(|l| l.project.clone()))
            .chain(overview.intents.iter().map(|i| i.project.clone()))
            .collect();
        projects.sort();
        projects.dedup();
        if let Some(project) = project {
            overview
                .sessions
                .retain(|s| s.activity.session.project == project);
            overview.locks.retain(|l| l.project == project);
            overview.queue.retain(|q| q.project == project);
            overview.intents.retain(|i| i.project == project);
        }
        let conflicts = overview.contested();
        Ok(Snapshot {
            now: overview.now,
            session_timeout_seconds: overview.session_timeout_seconds,
            projects,
            sessions: overview.sessions,
            locks: overview.locks,
            queue: overview.queue,
            intents: overview.intents,
            messages: coordinator.project_messages(project, None, Some(RECENT_MESSAGES))?,
            conflicts,
        })
    }
}

/// An error as the page shows it.
pub struct ApiError(StatusCode, String);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let status = match &error {
            Error::InvalidArgument { .. } => StatusCode::BAD_REQUEST,
            Error::UnknownSession { .. } | Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::NotPermitted(_) => StatusCode::CONFLICT,
            Error::Store(store) => {
                tracing::error!(error = %store, "store failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        ApiError(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

/// Runs a coordinator call on the blocking pool (a write may wait for another process).
async fn call<T: Send + 'static>(
    dashboard: &Dashboard,
    work: impl FnOnce(&Coordinator) -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    run(dashboard, dashboard.coordinator.clone(), work).await
}

/// A look on the dashboard's own database connection, beside the one tool calls write through.
async fn look<T: Send + 'static>(
    dashboard: &Dashboard,
    work: impl FnOnce(&Coordinator) -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    run(dashboard, dashboard.reader.clone(), work).await
}

async fn run<T: Send + 'static>(
    dashboard: &Dashboard,
    coordinator: Arc<Coordinator>,
    work: impl FnOnce(&Coordinator) -> Result<T, Error> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || work(&coordinator))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {e}"),
            )
        })?
        .map_err(|error| {
            if matches!(error, Error::Store(_)) {
                dashboard.metrics.database_failed();
            }
            ApiError::from(error)
        })
}

/// The name of the person's token a request came with (see `access`).
fn who(holder: Option<Extension<TokenHolder>>) -> Option<String> {
    holder.map(|Extension(TokenHolder(name))| name)
}

/// `/metrics`: what the database holds now, read at each scrape, and what this server did.
pub async fn metrics(State(dashboard): State<Dashboard>) -> Result<Response, ApiError> {
    let urls = dashboard.metrics.webhook_urls();
    let tally = look(&dashboard, move |c| c.tally(&urls)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        dashboard.metrics.render(&tally),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct ProjectQuery {
    #[serde(default)]
    project: Option<String>,
}

impl ProjectQuery {
    fn project(self) -> Option<String> {
        self.project
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
    }
}

pub async fn snapshot(
    State(dashboard): State<Dashboard>,
    Query(query): Query<ProjectQuery>,
) -> Result<Json<Snapshot>, ApiError> {
    let project = query.project();
    Ok(Json(
        look(&dashboard, move |c| Snapshot::read(c, project.as_deref())).await?,
    ))
}

/// Server-sent events: a `snapshot` event on connect and each time the state changes.
pub async fn events(
    State(dashboard): State<Dashboard>,
    Query(query): Query<ProjectQuery>,
) -> Response {
    let latest = Feeds::subscribe(&dashboard, query.project());
    // Every stream sends the same encoded bytes (shared, never copied), and a comment line when
    // nothing changed for a while, so proxies keep the connection.
    let quiet = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let events = WatchStream::new(latest)
        .filter_map(|snapshot| snapshot)
        .timeout_repeating(quiet)
        .map(|event| Ok::<_, Infallible>(event.unwrap_or_else(|_| Bytes::from_static(b":\n\n"))));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(events),
    )
        .into_response()
}

/// How long a quiet event stream waits before a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One snapshot producer per project, whatever the number of open event streams: it looks for
/// changes every [`LOOK_EVERY`] while anyone watches, and encodes each new snapshot once. A
/// stream holds only the latest snapshot, so a reader that falls behind skips to it, and one
/// that never reads costs nothing more.
#[derive(Default)]
pub struct Feeds {
    by_project: Mutex<HashMap<Option<String>, Arc<Feed>>>,
}

/// The latest snapshot of one project, as an encoded `snapshot` event.
type Feed = watch::Sender<Option<Bytes>>;

impl Feeds {
    fn feeds(&self) -> std::sync::MutexGuard<'_, HashMap<Option<String>, Arc<Feed>>> {
        self.by_project
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The project's feed among the dashboard's, started when it is the first watcher.
    fn subscribe(dashboard: &Dashboard, project: Option<String>) -> watch::Receiver<Option<Bytes>> {
        let mut feeds = dashboard.feeds.feeds();
        if let Some(feed) = feeds.get(&project) {
            return feed.subscribe();
        }
        let feed = Arc::new(watch::Sender::new(None));
        let watcher = feed.subscribe();
        feeds.insert(project.clone(), feed.clone());
        tokio::spawn(Self::produce(dashboard.clone(), project, feed));
        watcher
    }

    /// Reads the project's snapshot while anyone watches, and publishes it when it changed.
    async fn produce(dashboard: Dashboard, project: Option<String>, feed: Arc<Feed>) {
        let mut last: Option<Snapshot> = None;
        let mut ticks = tokio::time::interval(LOOK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = dashboard.shutdown.cancelled() => break,
            }
            {
                // Checked under the lock that subscribing takes, so no watcher joins a feed
                // that is about to end.
                let mut feeds = dashboard.feeds.feeds();
                if feed.receiver_count() == 0 {
                    feeds.remove(&project);
                    return;
                }
            }
            let wanted = project.clone();
            let snapshot =
                match look(&dashboard, move |c| Snapshot::read(c, wanted.as_deref())).await {
                    Ok(snapshot) => snapshot,
                    Err(ApiError(_, error)) => {
                        tracing::warn!(%error, "dashboard snapshot failed; will retry");
                        continue;
                    }
                };
            // Published again only when something besides the clock changed.
            if let Some(last) = &mut last {
                last.now = snapshot.now;
                if *last == snapshot {
                    continue;
                }
            }
            match serde_json::to_string(&snapshot) {
                Ok(json) => {
                    feed.send_replace(Some(Bytes::from(format!(
                        "event: snapshot\ndata: {json}\n\n"
                    ))));
                }
                Err(error) => tracing::error!(%error, "cannot encode a dashboard snapshot"),
            }
            last = Some(snapshot);
        }
        // Shutting down: dropping the feed ends every stream of it.
        dashboard.feeds.feeds().remove(&project);
    }
}

#[derive(Debug, Deserialize)]
pub struct ContextSearch {
    #[serde(default)]
    project: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
}

pub async fn context(
    State(dashboard): State<Dashboard>,
    Query(query): Query<ContextSearch>,
) -> Result<Json<ContextList>, ApiError> {
    let list = look(&dashboard, move |c| {
        c.query_context(
            None,
            query.project.as_deref().filter(|p| !p.trim().is_empty()),
            None,
            query.q.as_deref(),
            query.limit,
        )
    })
    .await?;
    Ok(Json(list))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceRelease {
    project: String,
    file_path: String,
    #[serde(default)]
    reason: Option<String>,
}

pub async fn release(
    State(dashboard): State<Dashboard>,
    holder: Option<Extension<TokenHolder>>,
    Json(body): Json<ForceRelease>,
) -> Result<Json<ForceReleased>, ApiError> {
    let who = who(holder);
    let on_dashboard = match &who {
        Some(name) => format!("{name} on the dashboard"),
        None => "the dashboard".to_owned(),
    };
    let by = match body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        Some(reason) => format!("{on_dashboard} ({reason})"),
        None => on_dashboard,
    };
    let released = call(&dashboard, move |c| {
        c.force_release(&body.project, &body.file_path, None, &by, who.as_deref())
    })
    .await?;
    Ok(Json(released))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndSession {
    session_id: String,
}

pub async fn end_session(
    State(dashboard): State<Dashboard>,
    Json(body): Json<EndSession>,
) -> Result<Json<Deregistered>, ApiError> {
    let ended = call(&dashboard, move |c| c.end_session(&body.session_id, None)).await?;
    Ok(Json(ended))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Broadcast {
    project: String,
    content: String,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    from: Option<String>,
}

/// Whose token the dashboard is open with: the page signs broadcasts with it.
#[derive(Debug, Serialize)]
pub struct Viewer {
    who: Option<String>,
}

pub async fn viewer(holder: Option<Extension<TokenHolder>>) -> Json<Viewer> {
    Json(Viewer { who: who(holder) })
}

/// A broadcast from the dashboard. With a person's token it is signed with their name,
/// whatever `from` says: the name is what the token proves.
pub async fn broadcast(
    State(dashboard): State<Dashboard>,
    holder: Option<Extension<TokenHolder>>,
    Json(body): Json<Broadcast>,
) -> Result<Json<Sent>, ApiError> {
    let priority = match body.priority.as_deref() {
        None | Some("") => Priority::Normal,
        Some(word) => word
            .parse()
            .map_err(|why: String| ApiError::from(Error::invalid("priority", why)))?,
    };
    let who = who(holder);
    let name = match &who {
        Some(name) => name.clone(),
        None => body
            .from
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "dashboard".to_owned()),
    };
    let sent = call(&dashboard, move |c| {
        c.send_message(Outgoing {
            from: Sender::Person {
                name,
                project: body.project,
                who,
            },
            to_session: None,
            to_group: None,
            channel: Channel::General,
            priority,
            content: body.content,
        })
    })
    .await?;
    Ok(Json(sent))
}

/// The page and its two files, compiled into the binary so it works offline.
pub async fn page() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("dashboard/index.html"),
    )
}

pub async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    )
}

pub async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("dashboard/style.css"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            // Only this server's own files run; no inline script, no other site framing it.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}
