//! Locks: take one (waiting or queueing for it when it is taken), give it back, list them,
//! check a path.

use std::time::Duration;

use rmcp::{Json, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::time::Instant;

use super::params::{Parameters, lenient};
use crate::coordinator::{self, LockListQuery, LockOutcome, LockRequest, LockStatus, Released};
use crate::mcp::{Answer, CoordinatorServer, ToolError};
use crate::model::LockType;

/// How often a waiting call looks at its queue entry when no wake-up came: only matters when a
/// wake-up was lost (see `wake.rs`).
const WAIT_FALLBACK: Duration = Duration::from_secs(2);

/// Arguments of `lock_acquire`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockAcquire {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// File to lock, relative to the project root (or absolute inside your working directory). src/api.ts#Class.method one function or class, src/auth/ a directory, src/**/*.test.ts a glob, resource:NAME something that is not a file (resource:playwright).
    pub file_path: String,
    /// exclusive (default): you edit it, no one else may lock it; shared: you read it, blocks exclusive locks; intent: advisory, never blocks, others get warned.
    #[serde(default)]
    pub lock_type: Option<LockType>,
    /// Seconds until the lock expires unless renewed by acquiring again (default 900, max 86400).
    #[serde(default, deserialize_with = "lenient::integer")]
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl_seconds: Option<u64>,
    /// If taken, wait up to this many seconds (max 300) in the first-come-first-served queue; returns the moment it is granted, else granted false with queue_position.
    #[serde(default, deserialize_with = "lenient::integer")]
    #[schemars(range(max = 300))]
    pub wait_seconds: Option<u64>,
    /// If taken, stay queued and go on working: it is granted to you automatically when freed, and you are told (a coordination message, locks_granted on your next answer). lock_release withdraws it.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub queue: Option<bool>,
    /// For resource:NAME only: how many sessions may hold it at once (default 1). Set once per project.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub capacity: Option<u64>,
}

/// Arguments of `lock_release`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockRelease {
    /// Defaults to the session this connection registered.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// The locked file (or directory/glob), spelled any way that names the same path. Also withdraws your queued request for it.
    pub file_path: String,
}

/// Arguments of `lock_list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockList {
    /// Only locks held by this session.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Only locks on this path or overlapping it (directory/glob locks covering it; for a directory or glob, the locks under it).
    #[serde(default)]
    pub file_path: Option<String>,
    /// Only locks of this project; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Only locks of sessions in this group.
    #[serde(default)]
    pub group: Option<String>,
    /// Most locks to return (default 100, max 1000).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub limit: Option<u64>,
}

/// Arguments of `lock_check`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LockCheck {
    /// The file (or path#Symbol) to check, relative to the project root.
    pub file_path: String,
    /// Project to look in; defaults to your session's project.
    #[serde(default)]
    pub project: Option<String>,
    /// Your session id, to resolve the project and absolute paths; may be omitted once this connection registered one.
    #[serde(default)]
    pub session_id: Option<String>,
    /// On a shared HTTP server: the session_token session_register returned; pass it on every call.
    #[serde(default)]
    pub session_token: Option<String>,
    /// A fencing_token you were granted: token_valid in the answer says whether it is still the current lock on this path (check before writing after a long pause).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub fencing_token: Option<u64>,
}

#[tool_router(router = lock_tools, vis = "pub(in crate::mcp)")]
impl CoordinatorServer {
    #[tool(
        description = "Lock a file before editing it (also a directory ending in /, a glob like src/**/*.ts, or resource:NAME). Granted: {granted: true, lock_type, expires_at, fencing_token, warnings}. Taken: {granted: false, held_by, holder_name, reason}. wait_seconds waits in a fair queue and returns the moment the lock is granted; queue=true stays queued and is granted it automatically later (queued, queue_position). Acquiring a lock you hold renews it. Release it with lock_release when done.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn lock_acquire(
        &self,
        Parameters(args): Parameters<LockAcquire>,
    ) -> Result<Json<Answer<LockOutcome>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let lock_type = args.lock_type.unwrap_or(LockType::Exclusive);
        let queue = args.queue.unwrap_or(false);
        let request = LockRequest {
            session_id: session.clone(),
            file_path: args.file_path.clone(),
            lock_type,
            ttl_seconds: args.ttl_seconds,
            wait_seconds: args.wait_seconds,
            queue,
            wake: self.wakeup.address(),
            capacity: args.capacity,
            edit: None,
        };
        // Listen before asking, so a grant right after the answer is not missed.
        let mut bell = self.wakeup.subscribe();
        let first = self
            .respond(Some(session.clone()), move |c| {
                c.acquire_lock(request.clone())
            })
            .await?;
        let wait = match args.wait_seconds {
            Some(seconds) if seconds > 0 && first.0.body.queued => Duration::from_secs(seconds),
            _ => {
                if first.0.body.queued {
                    self.wakeup.nudge();
                }
                return Ok(first);
            }
        };
        self.wakeup.nudge();
        let deadline = Instant::now() + wait;
        let path = args.file_path;
        loop {
            let look_by = deadline.min(Instant::now() + WAIT_FALLBACK);
            tokio::select! {
                _ = bell.changed() => {}
                _ = tokio::time::sleep_until(look_by) => {}
            }
            let (session, path) = (session.clone(), path.clone());
            if Instant::now() >= deadline {
                return self
                    .respond(Some(session.clone()), move |c| {
                        if queue {
                            c.queued_status(&session, &path, lock_type)
                        } else {
                            c.give_up_wait(&session, &path, lock_type)
                        }
                    })
                    .await;
            }
            let status = self
                .respond(Some(session.clone()), move |c| {
                    c.queued_status(&session, &path, lock_type)
                })
                .await?;
            if !status.0.body.queued {
                return Ok(status);
            }
        }
    }

    #[tool(
        description = "Release a lock you hold, as soon as you are done with the file; the next queued request is granted. Also withdraws your queued request for the path (cancelled_wait). Only the holder can release: otherwise released is false and reason says who holds it.",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn lock_release(
        &self,
        Parameters(args): Parameters<LockRelease>,
    ) -> Result<Json<Answer<Released>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.release_lock(&session, &args.file_path)
        })
        .await
    }

    #[tool(
        description = "List live locks (default: your project), optionally only one session's or one file's, with holder, type and expiry.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn lock_list(
        &self,
        Parameters(args): Parameters<LockList>,
    ) -> Result<Json<Answer<coordinator::LockList>>, ToolError> {
        let args = args?;
        let viewer = self.viewer(None);
        let query = LockListQuery {
            project: args.project,
            session_id: args.session_id,
            file_path: args.file_path,
            group: args.group,
            limit: args.limit,
        };
        self.respond(viewer.clone(), move |c| {
            c.list_locks(viewer.as_deref(), query.clone())
        })
        .await
    }

    #[tool(
        description = "Check whether a file is locked and by whom, without locking it: locked, lock_type, held_by, holder_name, expires_at, every holder (directory and glob locks covering it included) and the queue of waiting requests. Pass your fencing_token to learn whether your lock is still the current one (token_valid).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn lock_check(
        &self,
        Parameters(args): Parameters<LockCheck>,
    ) -> Result<Json<Answer<LockStatus>>, ToolError> {
        let args = args?;
        // Naming a session counts as its heartbeat and collects its grants: only for a session
        // this connection may act for.
        let viewer = match (&args.session_id, &args.session_token) {
            (None, None) => self.viewer(None),
            _ => Some(
                self.acting(args.session_id, args.session_token, "session_id")
                    .await?,
            ),
        };
        self.respond(viewer.clone(), move |c| {
            c.check_lock(
                viewer.as_deref(),
                args.project.as_deref(),
                &args.file_path,
                args.fencing_token.and_then(|t| i64::try_from(t).ok()),
            )
        })
        .await
    }
}
