//! When to retry a request and how long to wait first.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How the wait grows from one retry to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backoff {
    /// Every wait is `retry_interval`.
    Constant,
    /// The first wait is `retry_interval`, each later one twice the one
    /// before, up to `retry_max_interval`.
    #[default]
    Exponential,
}

impl Backoff {
    /// Parses `constant` / `exponential`.
    pub fn parse(s: &str) -> Option<Backoff> {
        match s {
            "constant" => Some(Backoff::Constant),
            "exponential" => Some(Backoff::Exponential),
            _ => None,
        }
    }
}

/// Which failures are retried, how often, and how long the sink waits.
///
/// Connection errors, timeouts, `408`, `429` and `5xx` answers are retried;
/// any other status is final. A `Retry-After` header makes the wait at
/// least what the server asked for.
///
/// ```
/// use std::time::Duration;
/// use sink_http::{Backoff, RetryPolicy};
///
/// let policy = RetryPolicy::new(5, Duration::from_secs(1)).max_interval(Duration::from_secs(3));
/// assert_eq!(policy.backoff, Backoff::Exponential);
/// let waits: Vec<u64> = (1..=4).map(|n| policy.delay(n).as_secs()).collect();
/// assert_eq!(waits, [1, 2, 3, 3]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try (`retries`).
    pub retries: u32,
    /// Wait before the first retry (`retry_interval`).
    pub interval: Duration,
    /// Longest wait between two tries (`retry_max_interval`).
    pub max_interval: Duration,
    /// How the wait grows (`retry_backoff`).
    pub backoff: Backoff,
    /// When set, `429 Too Many Requests` answers are waited out as often as
    /// they come, without counting against `retries` (the Slack sink: rate
    /// limits are normal there and must not drop messages).
    pub wait_out_rate_limits: bool,
}

impl RetryPolicy {
    /// `retries` retries, the first after `interval`, growing exponentially
    /// up to a minute.
    pub fn new(retries: u32, interval: Duration) -> Self {
        RetryPolicy {
            retries,
            interval,
            max_interval: Duration::from_secs(60).max(interval),
            backoff: Backoff::Exponential,
            wait_out_rate_limits: false,
        }
    }

    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy::new(0, Duration::ZERO)
    }

    /// Sets the longest wait.
    pub fn max_interval(mut self, max: Duration) -> Self {
        self.max_interval = max;
        self
    }

    /// Sets how the wait grows.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Waits out `429` answers without counting them as retries.
    pub fn wait_out_rate_limits(mut self, on: bool) -> Self {
        self.wait_out_rate_limits = on;
        self
    }

    /// The wait before retry number `retry` (1 for the first retry), before
    /// any `Retry-After` and jitter.
    pub fn delay(&self, retry: u32) -> Duration {
        let base = match self.backoff {
            Backoff::Constant => self.interval,
            Backoff::Exponential => {
                let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(31));
                self.interval.saturating_mul(factor)
            }
        };
        base.min(self.max_interval.max(self.interval))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::none()
    }
}

/// Whether an answer with this status may succeed when tried again: `408`,
/// `429` and every `5xx`.
pub fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
}

/// The longest `Retry-After` the sinks obey; a server asking for more is
/// retried after this long (and will say so again if it meant it).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP date
/// (RFC 9110 §10.2.3), capped at [`MAX_RETRY_AFTER`]. A date in the past
/// means no wait; a malformed value is ignored.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
/// use sink_http::retry_after;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
/// assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(3)));
/// ```
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        // Not allowed by the RFC, but some servers send fractions.
        Duration::try_from_secs_f64(secs).ok()?
    } else {
        let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
        let at =
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(date.timestamp()).ok()?);
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Adds up to 10% random extra to a wait, so that many requests failing
/// together do not all come back at the same instant. Never shortens it.
pub(crate) fn with_jitter(wait: Duration) -> Duration {
    if wait.is_zero() {
        return wait;
    }
    let extra = rand::random::<f64>() * 0.1;
    wait + wait.mul_f64(extra)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn exponential_and_constant_delays() {
        let p = RetryPolicy::new(10, Duration::from_millis(100))
            .max_interval(Duration::from_millis(500));
        let waits: Vec<u128> = (1..=5).map(|n| p.delay(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 500, 500]);
        let c = p.clone().backoff(Backoff::Constant);
        assert!((1..=5).all(|n| c.delay(n) == Duration::from_millis(100)));
        // A max below the interval never shortens the documented interval.
        let odd = RetryPolicy::new(3, Duration::from_secs(10)).max_interval(Duration::from_secs(1));
        assert_eq!(odd.delay(3), Duration::from_secs(10));
        assert_eq!(p.delay(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn retryable_statuses() {
        for code in [408, 429, 500, 502, 503, 504, 599] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [200, 301, 400, 401, 403, 404, 409, 413, 422] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00 UTC
        let parse = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_static(v));
            retry_after(&h, now)
        };
        assert_eq!(parse("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:28:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse("Wed, 21 Oct 2015 07:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn jitter_only_adds() {
        for _ in 0..100 {
            let w = with_jitter(Duration::from_millis(100));
            assert!(w >= Duration::from_millis(100) && w <= Duration::from_millis(110));
        }
        assert_eq!(with_jitter(Duration::ZERO), Duration::ZERO);
    }
}
