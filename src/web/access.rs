//! Who may talk to the HTTP server: the checks every request passes before any route.
//!
//! - `Host` must name this server (loopback names, the bound address, or `--allowed-host`):
//!   a page on a hostile site can make a browser reach a loopback server under the site's own
//!   name (DNS rebinding), and only the Host header tells.
//! - `Origin`, when a browser sends one, must be this server's own or `--allowed-origin`, so
//!   no other page can call the API or MCP with the visitor's cookie or network position.
//! - With a token, every request must carry it: `Authorization: Bearer`, or the cookie the
//!   dashboard sets after it was opened once with `?token=`. A token is the shared one
//!   (`MCP_COORDINATOR_TOKEN`) or a person's (`token add NAME`), looked up in the database at
//!   every request, so a revoked one is refused at once; the request then carries the
//!   person's name ([`TokenHolder`]) for what it records. Connections a person's token opened
//!   are closed when it is revoked ([`People::watch`]). A server on loopback without the shared
//!   token needs a token as soon as the database has a person's.
//!
//! Refusals are 403 (Host, Origin), 401 (token) and 503 (the database cannot say); none logs
//! the token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use tokio_util::sync::CancellationToken;

use super::connections::Connection;
use crate::coordinator::{ACCESS_TOKEN_PREFIX, Coordinator, Holder};
use crate::mcp::TokenHolder;

/// The dashboard's cookie; `HttpOnly` and `SameSite=Strict`, so page scripts and other sites
/// never see or send it.
pub const COOKIE: &str = "mcp_coordinator_token";

/// Shortest token accepted: 128 bits of hex.
pub const MIN_TOKEN_CHARS: usize = 32;

pub struct Access {
    token: Option<String>,
    /// Lowercase host names and IP literals (without brackets), no port.
    hosts: Vec<String>,
    /// Lowercase `scheme://host[:port]`.
    origins: Vec<String>,
    /// Requests without a token may pass: the server listens on loopback only, and has no
    /// shared token (then, only while the database has no person's token either).
    loopback: bool,
    /// The persons' tokens, once the database is open.
    people: Option<People>,
}

/// The persons' tokens: looked up in the database, and the connections each opened.
pub struct People {
    coordinator: Arc<Coordinator>,
    /// By token ([`Holder::key`]): cancelled when it is revoked, which closes the connections
    /// it proved. Each of those holds a clone while it is open.
    revocations: Mutex<HashMap<String, Arc<CancellationToken>>>,
}

/// How often [`People::watch`] looks for revoked tokens whose connections are still open.
const REVOCATION_LOOK: Duration = Duration::from_secs(1);

/// Whom a request's token names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Admitted {
    /// No token was needed.
    Open,
    /// The shared token, which names nobody.
    Shared,
    /// A person's (or agent's) token.
    Holder(Holder),
}

/// Why a request was not admitted.
enum Refusal {
    Token,
    Unavailable(String),
}

/// Why the access settings cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "{listen} is reachable beyond this machine, so it needs a token: set MCP_COORDINATOR_TOKEN or --token (e.g. `openssl rand -hex 32`), or give each person their own with `token add NAME`"
    )]
    TokenRequired { listen: SocketAddr },
    #[error(
        "the token is {0} characters long; use at least {MIN_TOKEN_CHARS} random characters (e.g. `openssl rand -hex 32`)"
    )]
    WeakToken(usize),
    #[error(
        "invalid --allowed-origin '{0}': write scheme://host[:port], e.g. https://coordinator.example.com"
    )]
    BadOrigin(String),
    #[error("cannot read the persons' tokens: {0}")]
    Tokens(#[source] crate::Error),
}

impl Access {
    pub fn new(
        listen: SocketAddr,
        token: Option<String>,
        extra_hosts: &[String],
        extra_origins: &[String],
    ) -> Result<Self, AccessError> {
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        if let Some(token) = &token
            && token.chars().count() < MIN_TOKEN_CHARS
        {
            return Err(AccessError::WeakToken(token.chars().count()));
        }
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        if !listen.ip().is_unspecified() {
            hosts.push(listen.ip().to_string());
        }
        hosts.extend(
            extra_hosts
                .iter()
                .map(|h| host_only(h.trim()).to_ascii_lowercase()),
        );
        let origins = extra_origins
            .iter()
            .map(|o| {
                let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
                if o.starts_with("http://") || o.starts_with("https://") {
                    Ok(o)
                } else {
                    Err(AccessError::BadOrigin(o))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            token,
            hosts,
            origins,
            loopback: listen.ip().is_loopback(),
            people: None,
        })
    }

    /// Takes the persons' tokens from `coordinator`'s database. Beyond loopback, a server
    /// with neither the shared token nor a person's is refused: anyone could use it. Reads
    /// the database, so it runs before the server's async runtime, not on it.
    pub fn with_people(
        self,
        coordinator: Arc<Coordinator>,
        listen: SocketAddr,
    ) -> Result<Self, AccessError> {
        if self.token.is_none()
            && !self.loopback
            && !coordinator.tokens_in_use().map_err(AccessError::Tokens)?
        {
            return Err(AccessError::TokenRequired { listen });
        }
        Ok(Self {
            people: Some(People {
                coordinator,
                revocations: Mutex::default(),
            }),
            ..self
        })
    }

    /// Whom the first token of `shown` that works names; without one that works, whether
    /// the request may pass without.
    async fn admit(&self, shown: &[&str]) -> Result<Admitted, Refusal> {
        if let Some(expected) = &self.token
            && shown
                .iter()
                .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
        {
            return Ok(Admitted::Shared);
        }
        let Some(people) = &self.people else {
            return if self.token.is_none() {
                Ok(Admitted::Open)
            } else {
                Err(Refusal::Token)
            };
        };
        let ours: Vec<String> = shown
            .iter()
            .filter(|s| s.starts_with(ACCESS_TOKEN_PREFIX))
            .map(|s| (*s).to_owned())
            .collect();
        // A person's token that no longer works is refused, even where none is needed:
        // whoever shows a revoked token is told so, not let in as anyone.
        let may_open = self.token.is_none() && self.loopback && ours.is_empty();
        if ours.is_empty() && !may_open {
            return Err(Refusal::Token);
        }
        let coordinator = people.coordinator.clone();
        let found = tokio::task::spawn_blocking(move || {
            let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
            if let Some(holder) = coordinator.token_holder(&ours)? {
                return Ok(Some(Admitted::Holder(holder)));
            }
            let open = may_open && !coordinator.tokens_in_use()?;
            Ok::<_, crate::Error>(open.then_some(Admitted::Open))
        })
        .await;
        match found {
            Ok(Ok(Some(admitted))) => Ok(admitted),
            Ok(Ok(None)) => Err(Refusal::Token),
            Ok(Err(error)) => Err(Refusal::Unavailable(error.to_string())),
            Err(error) => Err(Refusal::Unavailable(error.to_string())),
        }
    }

    fn host_allowed(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return Err("the request has no Host header".into());
        };
        let name = host_only(host).to_ascii_lowercase();
        if self.hosts.contains(&name) {
            Ok(())
        } else {
            Err(format!(
                "Host '{host}' is not a name of this server (DNS rebinding protection); start it with --allowed-host {name} if clients reach it by that name"
            ))
        }
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> Result<(), String> {
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let origin = origin.to_str().unwrap_or("").trim().to_ascii_lowercase();
        // The server's own pages: same host and port as the request was sent to (another port
        // of the same host is another site). A TLS proxy in front changes the scheme only.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| !host.is_empty() && authority == host);
        if own || self.origins.contains(&origin) {
            Ok(())
        } else {
            Err(format!(
                "Origin '{origin}' may not use this server; start it with --allowed-origin {origin} to let that site in"
            ))
        }
    }

    /// The tokens a request shows: its bearer token, then every cookie of ours (another site
    /// on the same host name may have set a decoy one first).
    fn shown_tokens(headers: &HeaderMap) -> Vec<&str> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            // The scheme's name is case-insensitive (RFC 7235).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, shown)| shown.trim());
        let cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value);
        bearer.into_iter().chain(cookies).collect()
    }

    fn token_in_query<'q>(&self, query: Option<&'q str>) -> Option<&'q str> {
        query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "token")
            .map(|(_, value)| value)
    }
}

/// The host part of a `Host` header or authority: no port, no IPv6 brackets.
fn host_only(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

/// Compares a token shown with the expected one in a time that does not depend on where they
/// first differ, so that timing refusals cannot reveal the token a prefix at a time. Only the
/// length can show, and a token's length is no secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The middleware: Host, Origin, then token.
pub async fn check(
    State(access): State<Arc<Access>>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Err(why) = access
        .host_allowed(headers)
        .and_then(|()| access.origin_allowed(headers))
    {
        return refuse(StatusCode::FORBIDDEN, &why);
    }
    // Opening the dashboard with ?token=…: keep it in a cookie and drop it from the address
    // bar (and so from history and screenshots), whether or not a cookie was already set.
    if request.method() == axum::http::Method::GET
        && request.uri().path() == "/"
        && let Some(shown) = access.token_in_query(request.uri().query())
        && let Ok(Admitted::Shared | Admitted::Holder(_)) = access.admit(&[shown]).await
    {
        let mut response = Redirect::to("/").into_response();
        let cookie = format!("{COOKIE}={shown}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
        return response;
    }
    if is_oauth_probe(request.uri().path()) {
        // No OAuth here: saying so (404) before asking for the token keeps clients from trying
        // to register themselves; the ones that try anyway show this body as the reason.
        return refuse(StatusCode::NOT_FOUND, NEEDS_TOKEN);
    }
    let admitted = match access.admit(&Access::shown_tokens(request.headers())).await {
        Ok(admitted) => admitted,
        Err(Refusal::Token) => {
            let mut response = refuse(StatusCode::UNAUTHORIZED, NEEDS_TOKEN);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mcp-session-coordinator\""),
            );
            return response;
        }
        Err(Refusal::Unavailable(why)) => {
            // The cause stays in the log: the caller has shown no token yet.
            tracing::warn!(error = %why, "cannot check a token");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot check the token now: the database is unavailable; try again shortly",
            );
        }
    };
    if let Some(connection) = request.extensions().get::<Arc<Connection>>() {
        connection.prove();
        if let (Admitted::Holder(holder), Some(people)) = (&admitted, &access.people) {
            connection.close_when(&holder.key, people.revocation(&holder.key));
        }
    }
    if let Admitted::Holder(holder) = admitted {
        request.extensions_mut().insert(TokenHolder(holder.name));
    }
    next.run(request).await
}

impl People {
    /// What is cancelled when the token `key` is revoked.
    fn revocation(&self, key: &str) -> Arc<CancellationToken> {
        self.revocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// Closes the connections of tokens revoked meanwhile, looking every
    /// [`REVOCATION_LOOK`] while any connection a person's token proved is open, until the
    /// server stops.
    pub fn watch(access: Arc<Access>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let Some(people) = &access.people else {
                return;
            };
            let mut ticks = tokio::time::interval(REVOCATION_LOOK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                {
                    let mut revocations = people
                        .revocations
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner);
                    // Tokens whose connections have all closed need no watching.
                    revocations.retain(|_, revoked| Arc::strong_count(revoked) > 1);
                    if revocations.is_empty() {
                        continue;
                    }
                }
                let coordinator = people.coordinator.clone();
                let live = match tokio::task::spawn_blocking(move || coordinator.live_token_keys())
                    .await
                {
                    Ok(Ok(live)) => live,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "cannot look for revoked tokens");
                        continue;
                    }
                    Err(_) => continue,
                };
                let mut revocations = people
                    .revocations
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                revocations.retain(|key, revoked| {
                    let works = live.contains(key);
                    if !works {
                        tracing::info!("a token was revoked: closing its connections");
                        revoked.cancel();
                    }
                    works
                });
            }
        })
    }
}

/// What a client without the token is told, wherever it knocks.
const NEEDS_TOKEN: &str = "this server needs a bearer token (no OAuth): configure your client to send the header Authorization: Bearer TOKEN, with the token the server was started with (or open the dashboard once as /?token=TOKEN)";

/// Where OAuth clients look for an authorization server (RFC 8414, RFC 9728, and the MCP
/// 2025-03-26 default endpoints).
fn is_oauth_probe(path: &str) -> bool {
    path.starts_with("/.well-known/")
        || path.starts_with("/mcp/.well-known/")
        || matches!(path, "/register" | "/authorize" | "/token")
}

/// How often refusals are logged: a flood of bad requests must not flood the log too.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The first refusal of each interval, and how many followed it unlogged.
static REFUSALS: Mutex<Option<(Instant, u64)>> = Mutex::new(None);

/// Logs a refusal, or counts it when one was logged within [`REFUSAL_LOG_EVERY`]; the count
/// is logged with the next refusal after the interval.
fn log_refusal(status: StatusCode, why: &str) {
    let mut refusals = REFUSALS.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    match refusals.as_mut() {
        Some((since, count)) if now.duration_since(*since) < REFUSAL_LOG_EVERY => {
            *count += 1;
            return;
        }
        Some((_, count)) if *count > 0 => {
            tracing::info!(
                refused = *count,
                seconds = REFUSAL_LOG_EVERY.as_secs(),
                "more requests refused, not logged one by one"
            );
        }
        _ => {}
    }
    *refusals = Some((now, 0));
    tracing::info!(status = status.as_u16(), reason = why, "request refused");
}

fn refuse(status: StatusCode, why: &str) -> Response {
    log_refusal(status, why);
    let body = serde_json::json!({ "error": why }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        // The request's body is never read: say the connection ends, or a client reusing it
        // would lose its next request.
        .header(header::CONNECTION, "close")
        .body(Body::from(body))
        .unwrap_or_else(|_| status.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    fn loopback() -> SocketAddr {
        "127.0.0.1:7420".parse().expect("addr")
    }

    fn database() -> Arc<Coordinator> {
        Arc::new(crate::coordinator::testing::Harness::new().coordinator)
    }

    #[test]
    fn beyond_loopback_needs_a_long_token_or_a_persons() {
        let anywhere: SocketAddr = "0.0.0.0:7420".parse().expect("addr");
        let open = || Access::new(anywhere, None, &[], &[]).expect("access");
        let people = database();
        assert!(matches!(
            open().with_people(people.clone(), anywhere),
            Err(AccessError::TokenRequired { .. })
        ));
        assert!(matches!(
            Access::new(anywhere, Some("short".into()), &[], &[]),
            Err(AccessError::WeakToken(5))
        ));
        let shared = Access::new(anywhere, Some("x".repeat(32)), &[], &[]).expect("access");
        assert!(shared.with_people(people.clone(), anywhere).is_ok());
        people.add_token("alice").expect("added");
        assert!(open().with_people(people, anywhere).is_ok());
        assert!(Access::new(loopback(), None, &[], &[]).is_ok());
        assert!(Access::new(loopback(), None, &[], &["coordinator.example".into()]).is_err());
    }

    #[test]
    fn only_this_servers_names_pass_the_host_check() {
        let access =
            Access::new(loopback(), None, &["Coord.Example:443".into()], &[]).expect("access");
        for ok in ["127.0.0.1:7420", "localhost", "[::1]:7420", "coord.example"] {
            assert!(
                access.host_allowed(&headers(&[("host", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "evil.example:7420",
            "127.0.0.1.evil.example",
            "localhost.evil",
        ] {
            let why = access
                .host_allowed(&headers(&[("host", bad)]))
                .expect_err(bad);
            assert!(why.contains("--allowed-host"), "{why}");
        }
        assert!(access.host_allowed(&HeaderMap::new()).is_err());
    }

    #[test]
    fn foreign_origins_are_refused_and_own_or_listed_ones_pass() {
        let access =
            Access::new(loopback(), None, &[], &["https://ops.example".into()]).expect("access");
        assert!(
            access.origin_allowed(&HeaderMap::new()).is_ok(),
            "no Origin: not a browser page"
        );
        let from = |origin: &str| headers(&[("host", "127.0.0.1:7420"), ("origin", origin)]);
        for ok in ["http://127.0.0.1:7420", "https://ops.example"] {
            assert!(access.origin_allowed(&from(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "https://ops.example.evil",
            "http://127.0.0.1:9999",
            "http://localhost:7420",
        ] {
            assert!(
                access.origin_allowed(&from(bad)).is_err(),
                "{bad}: another site"
            );
        }
    }

    #[tokio::test]
    async fn the_token_comes_as_bearer_or_cookie_and_nothing_else() {
        let token = "t".repeat(40);
        let access = Access::new(loopback(), Some(token.clone()), &[], &[]).expect("access");
        let admitted = |pairs: &[(&'static str, &str)]| {
            let headers = headers(pairs);
            let shown: Vec<String> = Access::shown_tokens(&headers)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let access = &access;
            async move {
                let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
                access.admit(&shown).await.ok()
            }
        };
        let shared = Some(Admitted::Shared);
        assert_eq!(
            admitted(&[("authorization", &format!("Bearer {token}"))]).await,
            shared
        );
        assert_eq!(
            admitted(&[("cookie", &format!("a=b; {COOKIE}={token}"))]).await,
            shared
        );
        assert_eq!(
            admitted(&[("cookie", &format!("{COOKIE}=decoy; {COOKIE}={token}"))]).await,
            shared,
            "a decoy cookie first does not lock the dashboard out"
        );
        assert_eq!(admitted(&[]).await, None);
        assert_eq!(admitted(&[("authorization", "Bearer wrong")]).await, None);
        assert_eq!(
            admitted(&[("authorization", &format!("Basic {token}"))]).await,
            None
        );
        assert_eq!(
            admitted(&[("authorization", &format!("BEARER {token}"))]).await,
            shared,
            "the scheme is case-insensitive"
        );
        assert!(is_oauth_probe("/.well-known/oauth-protected-resource/mcp"));
        assert!(is_oauth_probe("/mcp/.well-known/oauth-protected-resource"));
        assert!(is_oauth_probe("/register") && !is_oauth_probe("/api/snapshot"));
        assert_eq!(
            access.token_in_query(Some(&format!("x=1&token={token}"))),
            Some(token.as_str())
        );
        let open = Access::new(loopback(), None, &[], &[]).expect("access");
        assert_eq!(open.admit(&[]).await.ok(), Some(Admitted::Open));
    }

    #[tokio::test]
    async fn a_persons_token_names_them_until_it_is_revoked() {
        let people = database();
        let access = Access::new(loopback(), None, &[], &[])
            .expect("access")
            .with_people(people.clone(), loopback())
            .expect("people");
        assert_eq!(
            access.admit(&[]).await.ok(),
            Some(Admitted::Open),
            "no token anywhere: loopback is open"
        );
        let alice = people.add_token("alice").expect("added").token;
        assert!(
            access.admit(&[]).await.is_err(),
            "once a person has a token, loopback needs one too"
        );
        let decoys = ["mcpc_a", "mcpc_b", "mcpc_c", "mcpc_d", "mcpc_e"];
        let shown: Vec<&str> = decoys.iter().copied().chain([alice.as_str()]).collect();
        assert!(
            matches!(access.admit(&shown).await, Ok(Admitted::Holder(h)) if h.name == "alice"),
            "the real cookie counts after any number of decoys"
        );
        people.revoke_token("alice").expect("revoked");
        assert!(access.admit(&[&alice]).await.is_err(), "refused at once");
        assert_eq!(
            access.admit(&[]).await.ok(),
            Some(Admitted::Open),
            "no working token left"
        );
    }
}
