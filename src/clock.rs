//! Time as the coordinator sees it: milliseconds since the Unix epoch, from an injectable clock.
//!
//! Expiry and liveness rules are tested by moving a [`ManualClock`] instead of sleeping, so every
//! rule that depends on time takes its "now" from a [`Clock`].

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Serialize, Serializer};

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Stored as an integer (cheap to compare and index) and shown as RFC 3339 text, which both people
/// and language models read without conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The expiry of a lock held until its change is committed: the last second of year 9999,
    /// which every client can still parse and show.
    pub const UNTIL_COMMIT: Timestamp = Timestamp(253_402_300_799_000);

    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    pub fn plus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_add(millis))
    }

    pub fn minus(self, duration: Duration) -> Self {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        Self(self.0.saturating_sub(millis))
    }

    /// The time from `self` until `later` (zero when `later` is not later).
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    /// Whole seconds from `self` until `later` (0 when `later` is not later).
    pub fn seconds_until(self, later: Timestamp) -> u64 {
        u64::try_from(later.0.saturating_sub(self.0) / 1000).unwrap_or(0)
    }

    fn to_system_time(self) -> SystemTime {
        match u64::try_from(self.0) {
            Ok(millis) => UNIX_EPOCH + Duration::from_millis(millis),
            Err(_) => UNIX_EPOCH,
        }
    }

    /// Reads a point in time given by a caller: an RFC 3339 UTC time (`2026-11-24T14:05:00Z`) or
    /// a duration before `now` (`15m`, `2h`, `1day`), because a language model rarely knows the
    /// current time but can always say "the last ten minutes".
    pub fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, String> {
        let text = text.trim();
        if let Ok(time) = humantime::parse_rfc3339_weak(text) {
            let millis = time
                .duration_since(UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            return Ok(Timestamp(millis));
        }
        if let Ok(ago) = humantime::parse_duration(text) {
            return Ok(now.minus(ago));
        }
        Err(format!(
            "'{text}' is neither a UTC time like 2026-11-24T14:05:00Z nor a duration like 15m, 2h or 1day"
        ))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_rfc3339_millis(self.to_system_time())
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "date-time" })
    }
}

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(millis)
    }
}

/// A clock that only moves when told to, for tests of expiry and liveness.
#[cfg(test)]
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

#[cfg(test)]
impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(std::sync::atomic::AtomicI64::new(start.as_millis()))
    }

    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0
            .fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_rfc3339_utc_with_milliseconds() {
        let t = Timestamp::from_millis(1_795_000_000_123);
        assert_eq!(t.to_string(), "2026-11-18T11:06:40.123Z");
        assert_eq!(
            serde_json::to_value(t).ok(),
            Some(serde_json::json!("2026-11-18T11:06:40.123Z"))
        );
    }

    #[test]
    fn since_accepts_times_and_durations_ago() {
        let now = Timestamp::from_millis(1_795_000_000_000);
        assert_eq!(
            Timestamp::parse_since("2026-11-18T11:06:40Z", now),
            Ok(Timestamp::from_millis(1_795_000_000_000))
        );
        assert_eq!(
            Timestamp::parse_since("15m", now),
            Ok(Timestamp::from_millis(1_795_000_000_000 - 15 * 60_000))
        );
        let err = Timestamp::parse_since("yesterday-ish", now).err();
        assert!(err.is_some_and(|e| e.contains("15m")));
    }

    #[test]
    fn seconds_until_never_goes_negative() {
        let a = Timestamp::from_millis(10_000);
        assert_eq!(a.seconds_until(Timestamp::from_millis(15_500)), 5);
        assert_eq!(a.seconds_until(Timestamp::from_millis(1_000)), 0);
    }
}
