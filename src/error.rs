//! What can go wrong in a coordinator call, worded for the caller who has to act on it.
//!
//! Every variant's text names what was wrong and what to do instead, because the reader is usually
//! a language model that will retry with whatever the message tells it.

use crate::store::StoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller passed a value it can correct.
    #[error("invalid argument `{argument}`: {problem}")]
    InvalidArgument {
        argument: &'static str,
        problem: String,
    },

    /// The session is gone: never registered, deregistered, or swept after missing heartbeats.
    #[error(
        "unknown session `{session_id}`: it is not registered (it was deregistered, or it timed out after missing heartbeats and its locks were released); call session_register to start a new session"
    )]
    UnknownSession { session_id: String },

    /// An intent, message or context entry that does not exist (or no longer does).
    #[error("{what} `{id}` does not exist (it may have been cleared or deleted already)")]
    NotFound { what: &'static str, id: String },

    /// The caller may not do this to something another session owns.
    #[error("{0}")]
    NotPermitted(String),

    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    pub fn invalid(argument: &'static str, problem: impl Into<String>) -> Self {
        Self::InvalidArgument {
            argument,
            problem: problem.into(),
        }
    }

    /// Whether [`crate::store::without_waiting`] refused the call before it changed anything.
    pub fn would_wait(&self) -> bool {
        matches!(self, Error::Store(error) if error.would_wait())
    }

    pub fn unknown_session(session_id: &str) -> Self {
        Self::UnknownSession {
            session_id: session_id.to_owned(),
        }
    }
}
