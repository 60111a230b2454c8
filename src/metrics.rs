//! What a shared server shows at `/metrics`, in the OpenMetrics text format Prometheus
//! scrapes: what this process did (tool calls and their latency, lock decisions, queue waits,
//! calls failed on the database), counted as it happens, and what the whole database holds
//! (sessions, locks, queues, each webhook endpoint's backlog), read at each scrape so that
//! the `dashboard` over stdio servers' database shows their work too.
//!
//! prometheus-client does the encoding; the names and their meanings are listed in README.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::coordinator::{LockDecision, Observer, Tally};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bucket bounds of tool-call latency, in seconds: a call is a millisecond or two, a call
/// that waits for a lock (`wait_seconds`) up to five minutes.
const CALL_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0,
];

/// Bucket bounds of the time a queued lock request waited for its grant, in seconds.
const WAIT_BUCKETS: [f64; 10] = [
    0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    /// "ok", or "error" (the tool refused or failed).
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    /// The endpoint's scheme, host and port, and a digest of its URL: its path is a secret
    /// (Slack's, Discord's).
    endpoint: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn call_histogram() -> Histogram {
    Histogram::new(CALL_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    tool_calls: Family<ToolOutcome, Counter>,
    tool_seconds: Histograms<ToolLabel>,
    lock_requests: Family<OutcomeLabel, Counter>,
    queue_wait: Histogram,
    database_errors: Counter,
    sessions: Family<StateLabel, Gauge>,
    locks_held: Gauge,
    queue_depth: Gauge,
    oldest_wait: Gauge<f64, AtomicU64>,
    webhook_backlog: Family<EndpointLabel, Gauge>,
    webhook_failures: Family<EndpointLabel, Gauge>,
    /// The webhook endpoints this process delivers to, and how each is labelled.
    webhooks: Vec<(String, String)>,
}

impl Metrics {
    /// `webhooks`: the endpoints this process delivers to, with the label each is shown by.
    pub fn new(webhooks: Vec<(String, String)>) -> Self {
        let mut registry = Registry::with_prefix("mcp_coordinator");
        let tool_calls = Family::<ToolOutcome, Counter>::default();
        registry.register(
            "tool_calls",
            "MCP tool calls answered by this server, by tool and outcome",
            tool_calls.clone(),
        );
        let tool_seconds: Histograms<ToolLabel> = Family::new_with_constructor(call_histogram);
        registry.register_with_unit(
            "tool_call_duration",
            "Time to answer an MCP tool call, by tool",
            Unit::Seconds,
            tool_seconds.clone(),
        );
        let lock_requests = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "lock_requests",
            "Lock requests decided by this server: granted (or renewed), queued, refused",
            lock_requests.clone(),
        );
        let queue_wait = Histogram::new(WAIT_BUCKETS);
        registry.register_with_unit(
            "queue_wait",
            "Time a queued lock request waited until this server granted it",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let database_errors = Counter::default();
        registry.register(
            "database_errors",
            "Tool calls and dashboard requests of this server that failed on the database",
            database_errors.clone(),
        );
        let sessions = Family::<StateLabel, Gauge>::default();
        registry.register(
            "sessions",
            "Registered sessions in the database: live, or stale (silent past the timeout, not yet swept)",
            sessions.clone(),
        );
        let locks_held = Gauge::default();
        registry.register(
            "locks_held",
            "Unexpired locks in the database",
            locks_held.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Lock requests waiting in queues in the database",
            queue_depth.clone(),
        );
        let oldest_wait = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "queue_oldest_wait",
            "How long the longest-waiting queued lock request has waited",
            Unit::Seconds,
            oldest_wait.clone(),
        );
        let webhook_backlog = Family::<EndpointLabel, Gauge>::default();
        registry.register(
            "webhook_backlog_events",
            "Events recorded and not yet delivered, per webhook endpoint of this server",
            webhook_backlog.clone(),
        );
        let webhook_failures = Family::<EndpointLabel, Gauge>::default();
        registry.register(
            "webhook_failures",
            "Failed deliveries since the last success, per webhook endpoint of this server",
            webhook_failures.clone(),
        );
        Self {
            registry,
            tool_calls,
            tool_seconds,
            lock_requests,
            queue_wait,
            database_errors,
            sessions,
            locks_held,
            queue_depth,
            oldest_wait,
            webhook_backlog,
            webhook_failures,
            webhooks,
        }
    }

    /// The webhook endpoints whose delivery state a scrape reads.
    pub fn webhook_urls(&self) -> Vec<String> {
        self.webhooks.iter().map(|(url, _)| url.clone()).collect()
    }

    /// A tool call answered in `took`; `tool` is a name the server knows (an unknown one is
    /// counted as "unknown", so clients cannot grow the label sets without bound).
    pub fn tool_called(&self, tool: &str, ok: bool, took: Duration) {
        self.tool_calls
            .get_or_create(&ToolOutcome {
                tool: tool.to_owned(),
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
        self.tool_seconds
            .get_or_create(&ToolLabel {
                tool: tool.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub fn database_failed(&self) {
        self.database_errors.inc();
    }

    /// The text a scrape gets: the counts of `tally` (read just before) and this process's.
    pub fn render(&self, tally: &Tally) -> String {
        let counts = &tally.counts;
        self.sessions
            .get_or_create(&StateLabel { state: "live" })
            .set(counts.sessions_live);
        self.sessions
            .get_or_create(&StateLabel { state: "stale" })
            .set(counts.sessions_stale);
        self.locks_held.set(counts.locks_held);
        self.queue_depth.set(counts.queued);
        self.oldest_wait.set(
            counts
                .oldest_queued_at
                .map_or(0.0, |at| at.until(tally.now).as_secs_f64()),
        );
        for ((_, label), outbox) in self.webhooks.iter().zip(&tally.outboxes) {
            let endpoint = EndpointLabel {
                endpoint: label.clone(),
            };
            self.webhook_backlog
                .get_or_create(&endpoint)
                .set(outbox.backlog);
            self.webhook_failures
                .get_or_create(&endpoint)
                .set(outbox.failures);
        }
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }
}

impl Observer for Metrics {
    fn lock_decided(&self, decision: LockDecision) {
        let outcome = match decision {
            LockDecision::Granted => "granted",
            LockDecision::Queued => "queued",
            LockDecision::Refused => "refused",
        };
        self.lock_requests
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    fn granted_from_queue(&self, waited: Duration) {
        self.queue_wait.observe(waited.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::store::{Counts, Outbox};

    #[test]
    fn a_scrape_shows_the_counts_and_what_this_process_did() {
        let metrics = Metrics::new(vec![(
            "https://hooks.slack.com/services/SECRET".into(),
            "https://hooks.slack.com/… 1a2b3c4d".into(),
        )]);
        metrics.tool_called("lock_acquire", true, Duration::from_millis(3));
        metrics.tool_called("lock_acquire", false, Duration::from_millis(1));
        metrics.lock_decided(LockDecision::Refused);
        metrics.granted_from_queue(Duration::from_secs(2));
        metrics.database_failed();
        let now = Timestamp::from_millis(10_000);
        let text = metrics.render(&Tally {
            now,
            counts: Counts {
                sessions_live: 3,
                sessions_stale: 1,
                locks_held: 2,
                queued: 1,
                oldest_queued_at: Some(Timestamp::from_millis(2_500)),
            },
            outboxes: vec![Outbox {
                backlog: 4,
                failures: 2,
            }],
        });
        for line in [
            "mcp_coordinator_tool_calls_total{tool=\"lock_acquire\",outcome=\"ok\"} 1",
            "mcp_coordinator_tool_calls_total{tool=\"lock_acquire\",outcome=\"error\"} 1",
            "mcp_coordinator_tool_call_duration_seconds_count{tool=\"lock_acquire\"} 2",
            "mcp_coordinator_tool_call_duration_seconds_bucket{le=\"0.0025\",tool=\"lock_acquire\"} 1",
            "mcp_coordinator_lock_requests_total{outcome=\"refused\"} 1",
            "mcp_coordinator_queue_wait_seconds_count 1",
            "mcp_coordinator_database_errors_total 1",
            "mcp_coordinator_sessions{state=\"live\"} 3",
            "mcp_coordinator_sessions{state=\"stale\"} 1",
            "mcp_coordinator_locks_held 2",
            "mcp_coordinator_queue_depth 1",
            "mcp_coordinator_queue_oldest_wait_seconds 7.5",
            "mcp_coordinator_webhook_backlog_events{endpoint=\"https://hooks.slack.com/… 1a2b3c4d\"} 4",
            "mcp_coordinator_webhook_failures{endpoint=\"https://hooks.slack.com/… 1a2b3c4d\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        assert!(!text.contains("SECRET"), "the endpoint's path is a secret");
        assert!(text.ends_with("# EOF\n"));
    }
}
