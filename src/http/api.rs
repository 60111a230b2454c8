//! The dashboard: its page, the JSON read API it draws from, the event stream that keeps it
//! live, and the operator actions. Every handler is one coordinator call on the blocking
//! pool; people act as people (invariant 15), never as a session.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::clock::Timestamp;
use crate::coordinator::{
    Contested, ContextList, Coordinator, Deregistered, ForceReleased, Outgoing, Queued, Sender,
    Sent, SessionState,
};
use crate::error::Error;
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
    /// Ends the event streams when the server shuts down.
    pub shutdown: CancellationToken,
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
    let coordinator = dashboard.coordinator.clone();
    tokio::task::spawn_blocking(move || work(&coordinator))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {e}"),
            )
        })?
        .map_err(ApiError::from)
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
        call(&dashboard, move |c| Snapshot::read(c, project.as_deref())).await?,
    ))
}

/// Server-sent events: a `snapshot` event on connect and each time the state changes.
pub async fn events(
    State(dashboard): State<Dashboard>,
    Query(query): Query<ProjectQuery>,
) -> Sse<impl tokio_stream::Stream<Item = Result<Event, Infallible>>> {
    let project = query.project();
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut last: Option<Snapshot> = None;
        let mut ticks = tokio::time::interval(LOOK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = dashboard.shutdown.cancelled() => break,
                _ = sender.closed() => break,
            }
            let project = project.clone();
            let snapshot =
                match call(&dashboard, move |c| Snapshot::read(c, project.as_deref())).await {
                    Ok(snapshot) => snapshot,
                    Err(ApiError(_, error)) => {
                        tracing::warn!(%error, "dashboard snapshot failed; will retry");
                        continue;
                    }
                };
            // Sent again only when something besides the clock changed.
            if let Some(last) = &mut last {
                last.now = snapshot.now;
                if *last == snapshot {
                    continue;
                }
            }
            let event = match Event::default().event("snapshot").json_data(&snapshot) {
                Ok(event) => event,
                Err(error) => {
                    tracing::error!(%error, "cannot encode a dashboard snapshot");
                    continue;
                }
            };
            if sender.send(Ok(event)).await.is_err() {
                break;
            }
            last = Some(snapshot);
        }
    });
    Sse::new(ReceiverStream::new(receiver)).keep_alive(KeepAlive::default())
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
    let list = call(&dashboard, move |c| {
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
    Json(body): Json<ForceRelease>,
) -> Result<Json<ForceReleased>, ApiError> {
    let by = match body
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        Some(reason) => format!("the dashboard ({reason})"),
        None => "the dashboard".to_owned(),
    };
    let released = call(&dashboard, move |c| {
        c.force_release(&body.project, &body.file_path, None, &by)
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

pub async fn broadcast(
    State(dashboard): State<Dashboard>,
    Json(body): Json<Broadcast>,
) -> Result<Json<Sent>, ApiError> {
    let priority = match body.priority.as_deref() {
        None | Some("") => Priority::Normal,
        Some(word) => word
            .parse()
            .map_err(|why: String| ApiError::from(Error::invalid("priority", why)))?,
    };
    let name = body
        .from
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "dashboard".to_owned());
    let sent = call(&dashboard, move |c| {
        c.send_message(Outgoing {
            from: Sender::Person {
                name,
                project: body.project,
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
