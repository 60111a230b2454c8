//! Who may talk to the HTTP server: the checks every request passes before any route.
//!
//! - `Host` must name this server (loopback names, the bound address, or `--allowed-host`):
//!   a page on a hostile site can make a browser reach a loopback server under the site's own
//!   name (DNS rebinding), and only the Host header tells.
//! - `Origin`, when a browser sends one, must be this server's own or `--allowed-origin`, so
//!   no other page can call the API or MCP with the visitor's cookie or network position.
//! - With a token, every request must carry it: `Authorization: Bearer`, or the cookie the
//!   dashboard sets after it was opened once with `?token=`.
//!
//! Refusals are 403 (Host, Origin) and 401 (token); neither logs the token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use super::connections::Connection;

/// The dashboard's cookie; `HttpOnly` and `SameSite=Strict`, so page scripts and other sites
/// never see or send it.
pub const COOKIE: &str = "mcp_coordinator_token";

/// Shortest token accepted: 128 bits of hex.
pub const MIN_TOKEN_CHARS: usize = 32;

#[derive(Debug, Clone)]
pub struct Access {
    token: Option<String>,
    /// Lowercase host names and IP literals (without brackets), no port.
    hosts: Vec<String>,
    /// Lowercase `scheme://host[:port]`.
    origins: Vec<String>,
}

/// Why the access settings cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "{listen} is reachable beyond this machine, so it needs a token: set MCP_COORDINATOR_TOKEN or --token (e.g. `openssl rand -hex 32`)"
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
}

impl Access {
    pub fn new(
        listen: SocketAddr,
        token: Option<String>,
        extra_hosts: &[String],
        extra_origins: &[String],
    ) -> Result<Self, AccessError> {
        let token = token.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        match &token {
            None if !listen.ip().is_loopback() => {
                return Err(AccessError::TokenRequired { listen });
            }
            Some(token) if token.chars().count() < MIN_TOKEN_CHARS => {
                return Err(AccessError::WeakToken(token.chars().count()));
            }
            _ => {}
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
        })
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

    fn token_shown(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            // The scheme's name is case-insensitive (RFC 7235).
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, shown)| shown.trim());
        // Every cookie of that name counts: another site on the same host name may have set a
        // decoy one first.
        let mut cookies = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE)
            .map(|(_, value)| value);
        bearer.is_some_and(|shown| constant_time_eq(shown.as_bytes(), expected.as_bytes()))
            || cookies.any(|shown| constant_time_eq(shown.as_bytes(), expected.as_bytes()))
    }

    fn token_in_query<'q>(&self, query: Option<&'q str>) -> Option<&'q str> {
        self.token.as_ref()?;
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
pub async fn check(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
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
        && access
            .token
            .as_deref()
            .is_some_and(|t| constant_time_eq(shown.as_bytes(), t.as_bytes()))
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
    if !access.token_shown(headers) {
        let mut response = refuse(StatusCode::UNAUTHORIZED, NEEDS_TOKEN);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mcp-session-coordinator\""),
        );
        return response;
    }
    if let Some(connection) = request.extensions().get::<Arc<Connection>>() {
        connection.prove();
    }
    next.run(request).await
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

    #[test]
    fn beyond_loopback_needs_a_long_token() {
        let anywhere: SocketAddr = "0.0.0.0:7420".parse().expect("addr");
        assert!(matches!(
            Access::new(anywhere, None, &[], &[]),
            Err(AccessError::TokenRequired { .. })
        ));
        assert!(matches!(
            Access::new(anywhere, Some("short".into()), &[], &[]),
            Err(AccessError::WeakToken(5))
        ));
        assert!(Access::new(anywhere, Some("x".repeat(32)), &[], &[]).is_ok());
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

    #[test]
    fn the_token_comes_as_bearer_or_cookie_and_nothing_else() {
        let token = "t".repeat(40);
        let access = Access::new(loopback(), Some(token.clone()), &[], &[]).expect("access");
        assert!(access.token_shown(&headers(&[("authorization", &format!("Bearer {token}"))])));
        assert!(access.token_shown(&headers(&[("cookie", &format!("a=b; {COOKIE}={token}"))])));
        assert!(
            access.token_shown(&headers(&[(
                "cookie",
                &format!("{COOKIE}=decoy; {COOKIE}={token}")
            )])),
            "a decoy cookie first does not lock the dashboard out"
        );
        assert!(!access.token_shown(&HeaderMap::new()));
        assert!(!access.token_shown(&headers(&[("authorization", "Bearer wrong")])));
        assert!(!access.token_shown(&headers(&[("authorization", &format!("Basic {token}"))])));
        assert!(
            access.token_shown(&headers(&[("authorization", &format!("BEARER {token}"))])),
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
        assert!(open.token_shown(&HeaderMap::new()));
    }
}
