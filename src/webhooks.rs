//! Delivering events to webhook endpoints (Slack, Discord, or anything that takes JSON).
//!
//! The changes worth an event (tool calls, people's commands, the sweep) only append it to the
//! outbox, inside their own transaction (`coordinator/events.rs`); this task reads the outbox
//! and POSTs, so a slow or dead endpoint never slows a tool call. Each endpoint gets every
//! event at least once, in order: an event is marked delivered after a 2xx, a failure retries
//! the same event with growing pauses, and a restart resumes from the cursor in the database.
//! The body's shape, one that Slack's and Discord's incoming webhooks show as it is, is made
//! here: the domain records plain sentences and knows no chat service.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::clock::Timestamp;
use crate::coordinator::{Coordinator, Due, Event};

/// How long a POST may take before it counts as failed.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle endpoint looks for new events.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Events sent per lease.
const BATCH: usize = 50;

/// How long other processes leave a batch alone after its last delivery: several POST
/// timeouts. Each delivery renews it; a sender that lost it stops.
const LEASE: Duration = Duration::from_secs(60);

/// One event as a webhook receives it. `text` (Slack) and `content` (Discord) carry the same
/// sentence, so either service's incoming webhook shows it as is. Any session can put words
/// in it (a message, a name), so neither may ping anyone: Slack's control characters are
/// escaped, and Discord is told to resolve no mentions.
#[derive(Debug, Clone, Serialize)]
struct Payload {
    id: i64,
    event: String,
    project: String,
    at: Timestamp,
    text: String,
    content: String,
    allowed_mentions: Value,
    data: Value,
}

impl From<Event> for Payload {
    fn from(event: Event) -> Self {
        let text = format!("[{}] {}", event.project, event.text);
        Payload {
            id: event.id,
            event: event.kind,
            project: event.project,
            at: event.at,
            text: slack_escaped(&text),
            content: text,
            allowed_mentions: json!({ "parse": [] }),
            data: event.data,
        }
    }
}

/// Slack reads `<!channel>`, `<@U…>` and `&` entities in `text`; these are its escapes.
fn slack_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Why webhooks cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Shown without its path, which holds Slack's and Discord's secret.
    #[error("invalid --webhook '{0}': write an http:// or https:// URL")]
    BadUrl(String),
    #[error("cannot set up the HTTP client for webhooks: {0}")]
    Client(String),
}

/// Checks each URL and starts one delivery task per endpoint.
pub fn spawn(
    coordinator: Arc<Coordinator>,
    urls: &[String],
) -> Result<Vec<JoinHandle<()>>, WebhookError> {
    if urls.is_empty() {
        return Ok(Vec::new());
    }
    for url in urls {
        let parsed = reqwest::Url::parse(url).map_err(|_| WebhookError::BadUrl(redacted(url)))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(WebhookError::BadUrl(redacted(url)));
        }
    }
    // One process-wide TLS provider; a second install (already done) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| WebhookError::Client(e.to_string()))?;
    // Who holds a lease: this process, among the others delivering to the same endpoints.
    let owner =
        crate::ids::new_token().map_err(|e| WebhookError::Client(format!("no randomness: {e}")))?;
    Ok(urls
        .iter()
        .map(|url| {
            tokio::spawn(deliver(
                coordinator.clone(),
                client.clone(),
                url.clone(),
                owner.clone(),
            ))
        })
        .collect())
}

async fn deliver(
    coordinator: Arc<Coordinator>,
    client: reqwest::Client,
    url: String,
    owner: String,
) {
    let shown = redacted(&url);
    loop {
        let (c, u, o) = (coordinator.clone(), url.clone(), owner.clone());
        let due = tokio::task::spawn_blocking(move || c.webhook_due(&u, &o, BATCH, LEASE)).await;
        let events = match due {
            Ok(Ok(Due::Send(events))) => events,
            Ok(Ok(Due::Idle)) => {
                tokio::time::sleep(LOOK_EVERY).await;
                continue;
            }
            Ok(Ok(Due::Later(at))) => {
                let wait = at.as_millis().saturating_sub(coordinator.now().as_millis());
                let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
                tokio::time::sleep(wait.clamp(Duration::from_millis(50), LOOK_EVERY * 4)).await;
                continue;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, webhook = %shown, "cannot read the event outbox; will retry");
                tokio::time::sleep(LOOK_EVERY * 4).await;
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "webhook task failed");
                return;
            }
        };
        for event in events {
            let id = event.id;
            let sent = client
                .post(&url)
                .header("X-Coordinator-Event", event.kind.as_str())
                .header("X-Coordinator-Delivery", id.to_string())
                .json(&Payload::from(event))
                .send()
                .await;
            let failure = match sent {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("answered {}", response.status())),
                Err(error) => Some(without_url(&error)),
            };
            let (c, u, o) = (coordinator.clone(), url.clone(), owner.clone());
            let recorded = tokio::task::spawn_blocking(move || match failure {
                None => c.webhook_delivered(&u, &o, id, LEASE).map(|kept| {
                    if kept {
                        Recorded::Delivered
                    } else {
                        Recorded::TakenOver
                    }
                }),
                Some(why) => c.webhook_failed(&u, &o, &why).map(|delay| match delay {
                    Some(retry_in) => Recorded::Failed { why, retry_in },
                    None => Recorded::TakenOver,
                }),
            })
            .await;
            match recorded {
                Ok(Ok(Recorded::Delivered)) => {
                    tracing::debug!(webhook = %shown, event = id, "delivered")
                }
                Ok(Ok(Recorded::TakenOver)) => {
                    tracing::info!(webhook = %shown, "another process took over this endpoint's deliveries");
                    break;
                }
                Ok(Ok(Recorded::Failed { why, retry_in })) => {
                    tracing::warn!(webhook = %shown, event = id, error = %why, ?retry_in, "webhook delivery failed");
                    break;
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, webhook = %shown, "cannot record a delivery; it will be sent again");
                    break;
                }
                Err(error) => {
                    tracing::error!(%error, "webhook task failed");
                    return;
                }
            }
        }
    }
}

/// What became of a delivery once recorded.
enum Recorded {
    Delivered,
    /// The endpoint failed; this process keeps its deliveries and tries again after
    /// `retry_in`.
    Failed {
        why: String,
        retry_in: Duration,
    },
    /// Another process holds the endpoint's lease now.
    TakenOver,
}

/// An endpoint as metrics label it: [`redacted`], and a short digest of the whole URL that
/// tells apart two endpoints on one host (two Slack channels) and reveals nothing of the path.
pub fn label(url: &str) -> String {
    let digest = crate::ids::token_hash(url);
    format!("{} {}", redacted(url), &digest[..8])
}

/// An endpoint as logs show it: its scheme, host and port, without the path, which is the
/// secret of Slack's and Discord's webhooks.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => match parsed.port() {
            Some(port) => format!(
                "{}://{}:{port}/…",
                parsed.scheme(),
                parsed.host_str().unwrap_or("?")
            ),
            None => format!(
                "{}://{}/…",
                parsed.scheme(),
                parsed.host_str().unwrap_or("?")
            ),
        },
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// A client error without the URL reqwest puts in it.
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::LockRequest;
    use crate::coordinator::testing::Harness;
    use crate::model::LockType;

    #[test]
    fn words_from_sessions_ping_nobody() {
        assert_eq!(
            slack_escaped("<!channel> a & b <@U1>"),
            "&lt;!channel&gt; a &amp; b &lt;@U1&gt;"
        );
    }

    #[test]
    fn slack_and_discord_show_the_same_sentence() {
        let h = Harness::new();
        let url = "http://hooks.test/a";
        let due = |h: &Harness| {
            h.coordinator
                .webhook_due(url, "me", 10, Duration::from_secs(30))
                .expect("due")
        };
        assert!(matches!(due(&h), Due::Idle), "a new endpoint starts now");
        let alice = h.session("alice", "app", None);
        let bob = h.session("bob", "app", None);
        for session in [&alice, &bob] {
            h.coordinator
                .acquire_lock(LockRequest::new(session, "src/a.rs", LockType::Exclusive))
                .expect("acquire");
        }
        let Due::Send(events) = due(&h) else {
            panic!("the contention is due");
        };
        let payload = Payload::from(events[0].clone());
        assert_eq!(payload.event, "lock.contention");
        assert!(payload.text.contains("bob") && payload.text.contains("src/a.rs"));
        assert_eq!(payload.text, payload.content, "nothing to escape here");
    }

    #[test]
    fn logs_never_show_a_webhooks_secret_path() {
        assert_eq!(
            redacted("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redacted("not a url"), "(invalid URL)");
        assert_eq!(
            redacted("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080/…"
        );
        let (one, two) = (
            label("https://hooks.slack.com/services/T000/B000/XXXX"),
            label("https://hooks.slack.com/services/T000/B001/YYYY"),
        );
        assert!(
            one.starts_with("https://hooks.slack.com/… ") && one != two,
            "{one} {two}"
        );
        assert!(!one.contains("T000") && !one.contains("XXXX"));
    }
}
