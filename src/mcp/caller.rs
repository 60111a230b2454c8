//! Which session a tool call acts for, and whether this connection may act for it.
//!
//! A stdio server trusts its one client with any session; a shared HTTP server acts for a
//! session only on its token, since session ids are public. Every feature's tools ask here, so
//! the rule is written once.

use std::collections::BTreeMap;
use std::sync::{MutexGuard, PoisonError};

use super::{CoordinatorServer, ToolError};

/// Which sessions a connection may act for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Any it names: a stdio server runs for one client on that client's machine, which can
    /// open the database itself, and the original product lets any call name a session_id.
    Process,
    /// Only those it registered, or whose session_token it showed: an HTTP server serves
    /// many clients, and session ids are public (session_list shows them).
    Connection,
}

impl CoordinatorServer {
    fn proven(&self) -> MutexGuard<'_, BTreeMap<String, String>> {
        self.proven.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session a call acts for: the one named, else the one this connection registered.
    /// Over HTTP, a named session must be this connection's, or `token` must prove it.
    pub(super) async fn acting(
        &self,
        named: Option<String>,
        token: Option<String>,
        argument: &str,
    ) -> Result<String, ToolError> {
        let named = named
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        if let Some(token) = token.filter(|t| !t.trim().is_empty()) {
            let proven = self.prove(token).await?;
            return match named {
                Some(id) if id != proven => Err(ToolError::new(format!(
                    "invalid argument `session_token`: it belongs to session {proven}, not to {argument} {id}"
                ))),
                _ => Ok(proven),
            };
        }
        let Some(id) = named.or_else(|| self.default_session()) else {
            return Err(ToolError::new(match self.trust {
                Trust::Process => format!(
                    "invalid arguments: `{argument}` is required: call session_register first (this connection then remembers the session), or pass the session_id it returned"
                ),
                Trust::Connection => "invalid arguments: `session_token` is required: pass the session_token that session_register returned, on every call (this shared server knows your session by it alone); call session_register first if you have none".to_owned(),
            }));
        };
        if self.trust == Trust::Process || self.keepalive.holds(&id) {
            return Ok(id);
        }
        let shown = self.proven().get(&id).cloned();
        match shown {
            Some(token) => match self.prove(token).await {
                Ok(proven) if proven == id => Ok(id),
                _ => {
                    self.proven().remove(&id);
                    Err(ToolError::new(format!(
                        "not permitted: the session_token this connection showed for session {id} was replaced (the session registered again) or ended with it; pass the current one"
                    )))
                }
            },
            None => Err(ToolError::new(format!(
                "not permitted: this shared server acts for session {id} only on its token; pass `session_token` (session_register returned it) on every call, not session_id alone"
            ))),
        }
    }

    /// The session a token belongs to; this connection may act for it from now on.
    pub(super) async fn prove(&self, token: String) -> Result<String, ToolError> {
        let coordinator = self.coordinator.clone();
        let shown = token.clone();
        let id = tokio::task::spawn_blocking(move || coordinator.authenticate(&shown))
            .await
            .map_err(|error| ToolError::new(format!("internal error: {error}")))??;
        self.proven().insert(id.clone(), token);
        Ok(id)
    }

    /// This connection's session, when a call names none.
    pub(super) fn default_session(&self) -> Option<String> {
        self.keepalive.current().or_else(|| {
            let proven = self.proven();
            (proven.len() == 1)
                .then(|| proven.keys().next().cloned())
                .flatten()
        })
    }

    /// The session a look is about: any session may be looked at.
    pub(super) fn target(&self, named: Option<String>) -> Result<String, ToolError> {
        self.viewer(named).ok_or_else(|| {
            ToolError::new(
                "invalid arguments: `session_id` is required: call session_register first, or name the session to describe",
            )
        })
    }

    /// The session a look is made by, if known: the one named, else this connection's.
    pub(super) fn viewer(&self, named: Option<String>) -> Option<String> {
        named
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty())
            .or_else(|| self.default_session())
    }
}
