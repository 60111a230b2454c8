//! Sessions: registering, staying alive, leaving.

use schemars::JsonSchema;
use serde::Serialize;

use super::messages::{Notice, notify};
use super::{Coordinator, optional_label, required_label};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{new_session_id, new_token, token_hash};
use crate::model::{Channel, Intent, Lock, Session, SessionActivity};
use crate::store::{IntentFilter, LockFilter, SessionFilter, StoreError, WriteTx};

/// Who a new session is and where it works.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    pub name: String,
    pub project: String,
    pub branch: Option<String>,
    /// Absolute path of the session's checkout; absolute file paths are made relative to it.
    pub working_directory: Option<String>,
    /// A group inside the project (a team, a feature), to filter and address sessions by.
    pub group: Option<String>,
    /// Where to wake the session's server process (see `wake.rs`); `None` when it cannot be.
    pub wake: Option<String>,
    /// The AI client process that started the session's server or hook.
    pub client_pid: Option<u32>,
    /// The client's own id for the session (set by hooks).
    pub client_ref: Option<String>,
    /// The hash of the session's current token, kept by the connection that registered it so
    /// that [`Coordinator::revive`] restores it (`register` issues a new one and ignores this).
    pub token_hash: Option<String>,
    /// Whose access token the registration came with, on a shared server (`token add`).
    pub who: Option<String>,
}

/// What a registration may take over of the sessions that already exist.
#[derive(Debug, Clone, Copy, Default)]
pub struct Claim<'a> {
    /// The id of a session the caller registered before (or proved with its token): continued
    /// when it still exists under the same name and project, instead of leaving a ghost twin.
    pub resume: Option<&'a str>,
    /// Refuse a name that another live session of the project has. On the shared server names
    /// are how sessions address each other and what people see, so a second client taking a
    /// live session's name would split its mail and pass its locks off as the other's.
    pub unique_name: bool,
    /// The token to issue instead of a random one: a client that brings its own (a header in
    /// its configuration) keeps the same token across registrations.
    pub token: Option<&'a str>,
}

/// Another live session of the same project, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Peer {
    pub session_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Registered {
    #[serde(flatten)]
    pub session: Session,
    /// Always "registered".
    pub status: &'static str,
    /// True when this re-registration continued an existing session of this connection.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
    /// A session silent (no heartbeat, no call) for this long is removed and its locks released.
    pub session_timeout_seconds: u64,
    /// The other live sessions of this project.
    pub other_sessions: Vec<Peer>,
    /// The session's secret: over HTTP, pass it as session_token to act for this session from
    /// another connection. Registering again replaces it.
    pub session_token: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Heartbeat {
    pub session_id: String,
    /// Always "active".
    pub status: &'static str,
    pub last_heartbeat: Timestamp,
    /// When the session will be considered gone without another heartbeat or call.
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionActivity>,
    pub count: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionDetails {
    #[serde(flatten)]
    pub session: Session,
    /// "active", or "stale" when it missed its heartbeats and is about to be removed.
    pub state: &'static str,
    pub locks: Vec<Lock>,
    /// Its announced and in-progress intents.
    pub intents: Vec<Intent>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Deregistered {
    /// Always "deregistered".
    pub status: &'static str,
    pub session_id: String,
    pub locks_released: i64,
    pub intents_cleared: i64,
}

impl Coordinator {
    /// Registers a session, or continues the one `claim` names (its branch and working
    /// directory updated). A registration with a `client_ref` continues (or replaces) the
    /// session of that reference.
    pub fn register(&self, registration: Registration, claim: Claim<'_>) -> Result<Registered> {
        let resume = claim.resume;
        let name = required_label("name", &registration.name)?;
        let project = required_label("project", &registration.project)?;
        let branch = optional_label("branch", registration.branch.as_deref())?;
        let group = optional_label("group", registration.group.as_deref())?;
        let working_directory = working_directory(registration.working_directory.as_deref())?;
        let now = self.now();
        let fresh = |session_id: String| Session {
            session_id,
            name: name.clone(),
            project: project.clone(),
            branch: branch.clone(),
            working_directory: working_directory.clone(),
            group: group.clone(),
            registered_at: now,
            last_heartbeat: now,
            wake: registration.wake.clone(),
            client_pid: registration.client_pid,
            client_ref: registration.client_ref.clone(),
            who: registration.who.clone(),
        };

        let token = match claim.token {
            Some(token) => token.to_owned(),
            None => new_token().map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?,
        };
        let (session, resumed, others, wakes) = self.store.write(|tx| {
            // A hook names its client's session instead of remembering ours: the one registered
            // under that name is continued, or replaced when renamed or moved, in this same
            // transaction, so parallel hooks of one client never register twins.
            let mut wakes = Vec::new();
            let previous = match (resume, registration.client_ref.as_deref()) {
                (Some(id), _) => tx.session(id)?,
                (None, Some(client_ref)) => tx.session_of_client(client_ref)?,
                (None, None) => None,
            };
            let continued = match previous {
                Some(s) if s.name == name && s.project == project => {
                    tx.update_session_place(&fresh(s.session_id), &self.machine, now)?
                }
                Some(s) if resume.is_none() => {
                    tx.delete_session(&s.session_id, now)?;
                    wakes = self.promote_everywhere(tx, now)?;
                    None
                }
                _ => None,
            };
            let resumed = continued.is_some();
            let session = match continued {
                Some(session) => session,
                None if claim.unique_name
                    && let Some(live) = tx
                        .live_sessions(&project, self.alive_since(now))?
                        .into_iter()
                        .find(|s| s.name == name) =>
                {
                    return Err(Error::invalid(
                        "name",
                        format!(
                            "'{name}' is the name of a live session of project '{project}' ({}); to continue that session pass its session_token (session_register returned it), or choose another name for a new session",
                            live.session_id
                        ),
                    ));
                }
                None => {
                    let session = fresh(
                        new_session_id()
                            .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?,
                    );
                    tx.insert_session(&session, &self.machine)?;
                    session
                }
            };
            tx.set_token_hash(&session.session_id, &token_hash(&token))?;
            let others = tx.live_sessions(&project, self.alive_since(now))?;
            Ok::<_, Error>((session, resumed, others, wakes))
        })?;
        self.wake(&wakes);

        Ok(Registered {
            other_sessions: others
                .into_iter()
                .filter(|s| s.session_id != session.session_id)
                .map(|s| Peer {
                    session_id: s.session_id,
                    name: s.name,
                    branch: s.branch,
                })
                .collect(),
            session,
            status: "registered",
            resumed,
            session_token: token,
            session_timeout_seconds: self.session_timeout.as_secs(),
        })
    }

    /// The session a token was issued to. A token ends with its session, and registering
    /// again replaces it.
    pub fn authenticate(&self, token: &str) -> Result<String> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Error::invalid("session_token", "must not be empty"));
        }
        self.store
            .read(|tx| tx.session_of_token(&token_hash(token)))?
            .ok_or_else(|| {
                Error::invalid(
                    "session_token",
                    "belongs to no live session: it ends with its session (deregistered or timed out) and is replaced when the session registers again; use the one session_register returned last",
                )
            })
    }

    pub fn heartbeat(&self, session_id: &str) -> Result<Heartbeat> {
        let now = self.now();
        let session = self.store.write(|tx| Self::acting(tx, session_id, now))?;
        Ok(Heartbeat {
            session_id: session.session_id,
            status: "active",
            last_heartbeat: session.last_heartbeat,
            expires_at: session.last_heartbeat.plus(self.session_timeout),
        })
    }

    /// Brings back, under its old id, a session that was swept while its process still lived
    /// (a suspended laptop, a stopped process), and tells it in its inbox what it lost.
    /// Returns false when the session was alive all along.
    pub fn revive(&self, session_id: &str, registration: &Registration) -> Result<bool> {
        let now = self.now();
        let timeout = self.session_timeout.as_secs();
        self.store.write(|tx| {
            if tx.touch_session(session_id, now)?.is_some() {
                return Ok(false);
            }
            tx.insert_session(
                &Session {
                    session_id: session_id.to_owned(),
                    name: registration.name.clone(),
                    project: registration.project.clone(),
                    branch: registration.branch.clone(),
                    working_directory: registration.working_directory.clone(),
                    group: registration.group.clone(),
                    registered_at: now,
                    last_heartbeat: now,
                    wake: registration.wake.clone(),
                    client_pid: registration.client_pid,
                    client_ref: registration.client_ref.clone(),
                    who: registration.who.clone(),
                },
                &self.machine,
            )?;
            if let Some(hash) = &registration.token_hash {
                tx.set_token_hash(session_id, hash)?;
            }
            let notice = format!(
                "This session was removed and its locks and intents were released: it went \
                 more than {timeout}s without a heartbeat (was the machine asleep or the process \
                 stopped?), or a person ended it. It is registered again under the same id; \
                 re-acquire the locks you still need and re-announce your intents."
            );
            notify(
                tx,
                Notice {
                    project: &registration.project,
                    session_id,
                    channel: Channel::Alerts,
                    content: &notice,
                },
                now,
            )?;
            Ok::<_, Error>(true)
        })
    }

    pub fn list_sessions(
        &self,
        viewer: Option<&str>,
        project: Option<&str>,
        branch: Option<&str>,
        group: Option<&str>,
    ) -> Result<SessionList> {
        let branch = optional_label("branch", branch)?;
        let group = optional_label("group", group)?;
        self.look(viewer, |tx, viewer, now| {
            let filter = SessionFilter {
                project: super::scope(project, viewer),
                branch: branch.as_deref(),
                group: group.as_deref(),
                alive_since: self.alive_since(now),
            };
            let sessions = tx.sessions(filter, now)?;
            Ok(SessionList {
                count: sessions.len(),
                sessions,
            })
        })
    }

    pub fn get_session(&self, viewer: Option<&str>, session_id: &str) -> Result<SessionDetails> {
        let session_id = required_label("session_id", session_id)?;
        self.look(viewer, |tx, _, now| {
            let session = tx
                .session(&session_id)?
                .ok_or_else(|| Error::unknown_session(&session_id))?;
            let locks = tx.locks(
                LockFilter {
                    project: None,
                    session_id: Some(&session_id),
                    path: None,
                    group: None,
                    limit: usize::MAX,
                },
                now,
            )?;
            let intents = tx.intents(IntentFilter {
                project: None,
                session_id: Some(&session_id),
                group: None,
                intent_type: None,
                active_only: true,
                limit: usize::MAX,
            })?;
            let state = if session.last_heartbeat >= self.alive_since(now) {
                "active"
            } else {
                "stale"
            };
            Ok(SessionDetails {
                session,
                state,
                locks,
                intents,
            })
        })
    }

    /// The live sessions that know their client: the candidates for a hook's or guard's own.
    pub fn client_sessions(&self) -> Result<Vec<Session>> {
        self.look(None, |tx, _, now| {
            Ok(tx.live_client_sessions(self.alive_since(now), &self.machine)?)
        })
    }

    /// A live session by id, or by a name only one live session has (in `project`, when
    /// given).
    pub fn find_session(&self, id_or_name: &str, project: Option<&str>) -> Result<Session> {
        let wanted = required_label("session", id_or_name)?;
        self.look(None, |tx, _, now| {
            let alive_since = self.alive_since(now);
            if let Some(session) = tx.session(&wanted)? {
                return if session.last_heartbeat >= alive_since {
                    Ok(session)
                } else {
                    Err(Error::invalid(
                        "session",
                        format!("'{wanted}' went silent and is about to be swept"),
                    ))
                };
            }
            only_one(tx.named(&wanted, project, alive_since)?, &wanted)
        })
    }

    /// The projects of live sessions working in any of `dirs` (or below), most sessions first.
    pub fn projects_in(&self, dirs: &[String]) -> Result<Vec<String>> {
        self.look(None, |tx, _, now| {
            let mut counted: Vec<(String, i64)> = Vec::new();
            for dir in dirs {
                for (project, n) in tx.projects_under(dir, self.alive_since(now))? {
                    match counted.iter_mut().find(|(p, _)| *p == project) {
                        Some((_, total)) => *total += n,
                        None => counted.push((project, n)),
                    }
                }
            }
            counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Ok(counted.into_iter().map(|(p, _)| p).collect())
        })
    }

    /// Ends a session: its locks are released and its intents cleared.
    pub fn deregister(&self, session_id: &str) -> Result<Deregistered> {
        let now = self.now();
        let (gone, wakes) = self.store.write(|tx| self.end_in(tx, session_id, now))?;
        self.wake(&wakes);
        Ok(gone)
    }

    /// Ends session `session_id` inside `tx`; returns what it held and whom to wake (the
    /// waiters its locks were promoted to).
    pub(super) fn end_in(
        &self,
        tx: &WriteTx<'_>,
        session_id: &str,
        now: Timestamp,
    ) -> Result<(Deregistered, Vec<String>)> {
        let (locks_released, intents_cleared) = tx.holdings(session_id, now)?;
        if !tx.delete_session(session_id, now)? {
            return Err(Error::unknown_session(session_id));
        }
        let wakes = self.promote_everywhere(tx, now)?;
        Ok((
            Deregistered {
                status: "deregistered",
                session_id: session_id.to_owned(),
                locks_released,
                intents_cleared,
            },
            wakes,
        ))
    }
}

/// The one session of `named`, or why there is not exactly one.
pub(super) fn only_one(mut named: Vec<Session>, wanted: &str) -> Result<Session> {
    match named.len() {
        1 => Ok(named.remove(0)),
        0 => Err(Error::unknown_session(wanted)),
        n => Err(Error::invalid(
            "session",
            format!(
                "{n} sessions are named '{wanted}'; pass an id: {}",
                named
                    .iter()
                    .map(|s| format!("{} ({})", s.session_id, s.project))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// A working directory must be absolute: relative ones cannot anchor anything. It is shown
/// beside the session's name, so it refuses what a name refuses (a folder named with a line
/// break or an escape sequence is no folder anyone meant).
fn working_directory(value: Option<&str>) -> Result<Option<String>> {
    let value = super::optional_text("working_directory", value, crate::paths::MAX_PATH_LEN)?;
    if let Some(dir) = &value {
        super::visible("working_directory", dir)?;
        let unix = dir.starts_with('/');
        let bytes = dir.as_bytes();
        let windows = bytes.len() >= 3
            && bytes[0].is_ascii_alphabetic()
            && bytes[1] == b':'
            && (bytes[2] == b'\\' || bytes[2] == b'/');
        if !unix && !windows {
            return Err(Error::invalid(
                "working_directory",
                format!("'{dir}' is not an absolute path; pass one like /home/me/repo"),
            ));
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests;
