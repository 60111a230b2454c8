//! The 20 tools. Names, parameters and result fields follow the original product description;
//! descriptions are written for the model that reads them: when to call, what comes back.

use std::time::Duration;

use rmcp::{Json, tool, tool_router};
use tokio::time::Instant;

use super::http::BroughtToken;
use super::params::{self, Parameters};
use super::{Answer, CoordinatorServer, ToolError, Trust};
use crate::coordinator::{
    Announced, Claim, ConflictQuery, ConflictReport, ContextDeleted, ContextList, ContextShared,
    Deregistered, Heartbeat, Inbox, InboxQuery, IntentCleared, IntentList, IntentListQuery,
    IntentRequest, IntentUpdated, LockList, LockListQuery, LockOutcome, LockRequest, LockStatus,
    MarkedRead, NewContext, Outgoing, Registered, Registration, Released, Sender, Sent,
    SessionDetails, SessionList,
};
use crate::ids::token_hash;
use crate::model::{Channel, LockType, Priority};

/// How often a waiting call looks at its queue entry when no wake-up came: only matters when a
/// wake-up was lost (see `wake.rs`).
const WAIT_FALLBACK: Duration = Duration::from_secs(2);

#[tool_router(router = tools, vis = "pub(super)")]
impl CoordinatorServer {
    #[tool(
        description = "Register this AI session; call once before coordinating. Returns session_id (later calls from this connection may omit it) and session_token (on a shared HTTP server, pass it on every later call), the timeout after which a silent session is removed, and the other live sessions of the project. Registering again with the same name and project continues the same session (on a shared server: with its session_token; without it a live session's name is refused as taken).",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn session_register(
        &self,
        Parameters(args): Parameters<params::SessionRegister>,
        extensions: rmcp::model::Extensions,
    ) -> Result<Json<Answer<Registered>>, ToolError> {
        let args = args?;
        // A token the client's configuration brings (over HTTP) names the session it stands
        // for, from any connection; unknown yet, it becomes the new session's token.
        let brought = extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<BroughtToken>())
            .map(|BroughtToken(token)| token.clone());
        let registration = Registration {
            name: args.name,
            project: args.project,
            branch: args.branch,
            working_directory: args.working_directory.or_else(|| self.default_root.clone()),
            group: args.group,
            wake: self.wakeup.address(),
            client_pid: self.client_pid,
            client_ref: brought
                .as_deref()
                .map(|token| format!("token:{}", token_hash(token))),
            token_hash: None,
        };
        let resume = match args.session_token.filter(|t| !t.trim().is_empty()) {
            Some(token) => Some(self.prove(token).await?),
            None => self
                .keepalive
                .find(&registration.name, &registration.project),
        };
        let keepalive = self.keepalive.clone();
        let keepalives = self.keepalives.clone();
        let unique_name = self.trust == Trust::Connection;
        // Only a resumed session (same id as `resume`) can have mail waiting.
        self.respond(resume.clone(), move |c| {
            let claim = Claim {
                resume: resume.as_deref(),
                unique_name,
                token: brought.as_deref(),
            };
            let registered = c.register(registration.clone(), claim)?;
            let id = &registered.session.session_id;
            // Continued from here (a client that reconnected): the connection it left must no
            // longer heartbeat it, nor end it when it closes.
            keepalives.forget_everywhere(id);
            keepalive.remember(
                id,
                Registration {
                    token_hash: Some(token_hash(&registered.session_token)),
                    ..registration
                },
            );
            Ok(registered)
        })
        .await
    }

    #[tool(
        description = "Keep a session alive. This server already heartbeats the session it registered while it runs, and every call counts as one; call this after long idle stretches or for a session registered elsewhere.",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn session_heartbeat(
        &self,
        Parameters(args): Parameters<params::SessionOnly>,
    ) -> Result<Json<Answer<Heartbeat>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| c.heartbeat(&session))
            .await
    }

    #[tool(
        description = "List live sessions (default: your project) with how many locks and active intents each holds, to see who else is working on the codebase.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn session_list(
        &self,
        Parameters(args): Parameters<params::SessionList>,
    ) -> Result<Json<Answer<SessionList>>, ToolError> {
        let args = args?;
        let viewer = self.viewer(None);
        self.respond(viewer.clone(), move |c| {
            c.list_sessions(
                viewer.as_deref(),
                args.project.as_deref(),
                args.branch.as_deref(),
                args.group.as_deref(),
            )
        })
        .await
    }

    #[tool(
        description = "Describe one session: name, project, branch, working directory, last heartbeat, its locks and its active intents.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn session_get(
        &self,
        Parameters(args): Parameters<params::SessionGet>,
    ) -> Result<Json<Answer<SessionDetails>>, ToolError> {
        let target = self.target(args?.session_id)?;
        let viewer = self.viewer(None);
        self.respond(viewer.clone(), move |c| {
            c.get_session(viewer.as_deref(), &target)
        })
        .await
    }

    #[tool(
        description = "End a session when its work is done: releases all its locks and clears its intents (locks_released tells how many). The server also does this when its process exits.",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn session_deregister(
        &self,
        Parameters(args): Parameters<params::SessionOnly>,
    ) -> Result<Json<Answer<Deregistered>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let keepalives = self.keepalives.clone();
        self.respond(None, move |c| {
            // Forgotten first, so no heartbeat revives it in between.
            keepalives.forget_everywhere(&session);
            c.deregister(&session)
        })
        .await
    }

    #[tool(
        description = "Lock a file before editing it (also a directory ending in /, a glob like src/**/*.ts, or resource:NAME). Granted: {granted: true, lock_type, expires_at, fencing_token, warnings}. Taken: {granted: false, held_by, holder_name, reason}. wait_seconds waits in a fair queue and returns the moment the lock is granted; queue=true stays queued and is granted it automatically later (queued, queue_position). Acquiring a lock you hold renews it. Release it with lock_release when done.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn lock_acquire(
        &self,
        Parameters(args): Parameters<params::LockAcquire>,
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
        };
        // Listen before asking, so a grant right after the answer is not missed.
        let mut bell = self.wakeup.subscribe();
        let first = self
            .respond(Some(session.clone()), move |c| c.acquire_lock(request))
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
        Parameters(args): Parameters<params::LockRelease>,
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
        Parameters(args): Parameters<params::LockList>,
    ) -> Result<Json<Answer<LockList>>, ToolError> {
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
            c.list_locks(viewer.as_deref(), query)
        })
        .await
    }

    #[tool(
        description = "Check whether a file is locked and by whom, without locking it: locked, lock_type, held_by, holder_name, expires_at, every holder (directory and glob locks covering it included) and the queue of waiting requests. Pass your fencing_token to learn whether your lock is still the current one (token_valid).",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn lock_check(
        &self,
        Parameters(args): Parameters<params::LockCheck>,
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

    #[tool(
        description = "Announce what you are about to do so other sessions can avoid clashing with it. Returns intent_id and the conflicts it already has; safe_to_proceed false means stop and coordinate first. Set it in_progress when you start and completed when done (intent_update), or clear it (intent_clear).",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn intent_announce(
        &self,
        Parameters(args): Parameters<params::IntentAnnounce>,
    ) -> Result<Json<Answer<Announced>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let request = IntentRequest {
            session_id: session.clone(),
            intent_type: args.intent_type,
            target: args.target,
            description: args.description,
            files: args.files,
        };
        self.respond(Some(session), move |c| c.announce_intent(request))
            .await
    }

    #[tool(
        description = "Move your intent along: in_progress when you start, completed or abandoned when you stop. Finished intents no longer appear in conflict checks.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn intent_update(
        &self,
        Parameters(args): Parameters<params::IntentUpdate>,
    ) -> Result<Json<Answer<IntentUpdated>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.update_intent(
                &session,
                args.intent_id,
                args.status,
                args.description.as_deref(),
            )
        })
        .await
    }

    #[tool(
        description = "List active intents (default: your project), optionally of one type or session; include_finished adds completed and abandoned ones.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn intent_list(
        &self,
        Parameters(args): Parameters<params::IntentList>,
    ) -> Result<Json<Answer<IntentList>>, ToolError> {
        let args = args?;
        let viewer = self.viewer(None);
        let query = IntentListQuery {
            project: args.project,
            session_id: args.session_id,
            group: args.group,
            intent_type: args.intent_type,
            include_finished: args.include_finished.unwrap_or(false),
            limit: args.limit,
        };
        self.respond(viewer.clone(), move |c| {
            c.list_intents(viewer.as_deref(), query)
        })
        .await
    }

    #[tool(
        description = "Remove your intent once it is done or dropped, so it stops showing up in other sessions' conflict checks.",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn intent_clear(
        &self,
        Parameters(args): Parameters<params::IntentClear>,
    ) -> Result<Json<Answer<IntentCleared>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.clear_intent(&session, args.intent_id)
        })
        .await
    }

    #[tool(
        description = "Send a message to one session (to_session: its id or name), to a group (to_group), or else to every live session of your project. Returns message_id and who received it.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn message_send(
        &self,
        Parameters(args): Parameters<params::MessageSend>,
    ) -> Result<Json<Answer<Sent>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.from_session, args.session_token, "from_session")
            .await?;
        let message = Outgoing {
            from: Sender::Session(session.clone()),
            to_session: args.to_session,
            to_group: args.to_group,
            channel: args.channel.unwrap_or(Channel::General),
            priority: args.priority.unwrap_or(Priority::Normal),
            content: args.content,
        };
        self.respond(Some(session), move |c| c.send_message(message))
            .await
    }

    #[tool(
        description = "Read your inbox, newest first: messages sent to you and broadcasts to your project, each with read state; unread_count tells how many remain unread.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn message_list(
        &self,
        Parameters(args): Parameters<params::MessageList>,
    ) -> Result<Json<Answer<Inbox>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let query = InboxQuery {
            session_id: session.clone(),
            channel: args.channel,
            unread_only: args.unread_only.unwrap_or(false),
            since: args.since,
            limit: args.limit,
            mark_read: args.mark_read.unwrap_or(false),
        };
        self.respond(Some(session), move |c| c.list_messages(query))
            .await
    }

    #[tool(
        description = "Mark messages as read (all unread ones when message_ids is omitted), which clears them from the unread_messages count carried by every answer.",
        annotations(
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn message_mark_read(
        &self,
        Parameters(args): Parameters<params::MessageMarkRead>,
    ) -> Result<Json<Answer<MarkedRead>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.mark_read(&session, &args.message_ids)
        })
        .await
    }

    #[tool(
        description = "Check before you act: compares what you plan (intent_type, file_paths, target) with other live sessions' locks, intents and branches. Returns conflicts (type, severity, a description naming the session and what it does) and safe_to_proceed, false when any conflict is high. Call it before editing shared files and before every commit, push, rebase or merge.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn conflict_check(
        &self,
        Parameters(args): Parameters<params::ConflictCheck>,
    ) -> Result<Json<Answer<ConflictReport>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let query = ConflictQuery {
            session_id: session.clone(),
            intent_type: args.intent_type,
            file_paths: args.file_paths,
            target: args.target,
        };
        self.respond(Some(session), move |c| c.check_conflicts(query))
            .await
    }

    #[tool(
        description = "Share knowledge other sessions should have: a decision, discovery, convention, blocker or note. It outlives your session and is found with context_query.",
        annotations(destructive_hint = false, open_world_hint = false)
    )]
    async fn context_share(
        &self,
        Parameters(args): Parameters<params::ContextShare>,
    ) -> Result<Json<Answer<ContextShared>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        let entry = NewContext {
            session_id: session.clone(),
            context_type: args.context_type,
            content: args.content,
            project: args.project,
            tags: args.tags,
        };
        self.respond(Some(session), move |c| c.share_context(entry))
            .await
    }

    #[tool(
        description = "Search shared context (default: your project) by type and/or keyword, best match first; each entry has content, context_type, shared_by and created_at. Check it when you start a task.",
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn context_query(
        &self,
        Parameters(args): Parameters<params::ContextQuery>,
    ) -> Result<Json<Answer<ContextList>>, ToolError> {
        let args = args?;
        let viewer = self.viewer(None);
        self.respond(viewer.clone(), move |c| {
            c.query_context(
                viewer.as_deref(),
                args.project.as_deref(),
                args.context_type,
                args.keyword.as_deref(),
                args.limit,
            )
        })
        .await
    }

    #[tool(
        description = "Delete a shared context entry that is outdated or wrong; any session of its project may.",
        annotations(destructive_hint = true, open_world_hint = false)
    )]
    async fn context_delete(
        &self,
        Parameters(args): Parameters<params::ContextDelete>,
    ) -> Result<Json<Answer<ContextDeleted>>, ToolError> {
        let args = args?;
        let session = self
            .acting(args.session_id, args.session_token, "session_id")
            .await?;
        self.respond(Some(session.clone()), move |c| {
            c.delete_context(&session, args.context_id)
        })
        .await
    }
}
