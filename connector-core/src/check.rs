//! Connection checks ("test connection"): reach the server, authenticate,
//! check the target, report each step.
//!
//! Every source and sink implements [`Source::check`](crate::Source::check) /
//! [`Sink::check`](crate::Sink::check). A check never writes or consumes
//! data. Its [`CheckReport`] lists the steps tried, in order, each passed or
//! failed with a [`FailureKind`] and a reason that holds no secret.
//!
//! ```
//! use connector_core::check::{CheckReport, FailureKind};
//!
//! let mut report = CheckReport::new("clickhouse sink");
//! report.pass("connect to 127.0.0.1:8123", "ClickHouse 18.16.1");
//! report.fail("authenticate as `default`", FailureKind::AuthRefused, "Code: 516, wrong password");
//! assert!(!report.is_ok());
//! assert_eq!(
//!     report.to_string(),
//!     "clickhouse sink: ok     connect to 127.0.0.1:8123: ClickHouse 18.16.1\n\
//!      clickhouse sink: FAILED authenticate as `default`: auth refused: Code: 516, wrong password"
//! );
//! ```

use std::fmt;
use std::time::Duration;

/// Why a check step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// Name resolution failed, or nothing answers at the address.
    Unreachable,
    /// The TLS handshake failed (wrong port, bad certificate, plain server).
    Tls,
    /// The server refused the credentials.
    AuthRefused,
    /// The topic, table, channel or endpoint does not exist.
    NotFound,
    /// Authenticated, but not allowed to do what the connector needs.
    PermissionDenied,
    /// The step did not finish within the timeout.
    Timeout,
    /// The server answered, but not as expected (wrong protocol, bad config).
    Invalid,
}

impl FailureKind {
    /// Lower-case words, as printed in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unreachable => "unreachable",
            FailureKind::Tls => "TLS error",
            FailureKind::AuthRefused => "auth refused",
            FailureKind::NotFound => "not found",
            FailureKind::PermissionDenied => "permission denied",
            FailureKind::Timeout => "timeout",
            FailureKind::Invalid => "invalid",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// The step worked; the detail says what was found (server version...).
    Passed(String),
    /// The step failed.
    Failed {
        /// The class of failure.
        kind: FailureKind,
        /// What went wrong, as precisely as the server said (no secrets).
        reason: String,
    },
}

/// One step of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckStep {
    /// What was tried, e.g. `connect to 127.0.0.1:9092`.
    pub name: String,
    /// How it went.
    pub outcome: CheckOutcome,
}

/// Every step a check tried, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The connector checked, e.g. `kafka source`.
    pub component: String,
    /// The steps, in order; a check stops at its first failure.
    pub steps: Vec<CheckStep>,
}

impl CheckReport {
    /// An empty report for `component`.
    pub fn new(component: impl Into<String>) -> Self {
        CheckReport {
            component: component.into(),
            steps: Vec::new(),
        }
    }

    /// Records a passed step.
    pub fn pass(&mut self, name: impl Into<String>, detail: impl Into<String>) -> &mut Self {
        self.steps.push(CheckStep {
            name: name.into(),
            outcome: CheckOutcome::Passed(detail.into()),
        });
        self
    }

    /// Records a failed step.
    pub fn fail(
        &mut self,
        name: impl Into<String>,
        kind: FailureKind,
        reason: impl Into<String>,
    ) -> &mut Self {
        self.steps.push(CheckStep {
            name: name.into(),
            outcome: CheckOutcome::Failed {
                kind,
                reason: reason.into(),
            },
        });
        self
    }

    /// Whether every step passed (and there was at least one).
    pub fn is_ok(&self) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .iter()
                .all(|s| matches!(s.outcome, CheckOutcome::Passed(_)))
    }

    /// The first failed step.
    pub fn failure(&self) -> Option<&CheckStep> {
        self.steps
            .iter()
            .find(|s| matches!(s.outcome, CheckOutcome::Failed { .. }))
    }

    /// Runs `step` under `timeout`; records it as passed with the returned
    /// detail, failed with its kind and reason, or failed as a timeout.
    /// Returns whether it passed, so a check can stop at the first failure.
    pub async fn step<F>(&mut self, name: impl Into<String>, timeout: Duration, step: F) -> bool
    where
        F: Future<Output = Result<String, (FailureKind, String)>>,
    {
        let name = name.into();
        match tokio::time::timeout(timeout, step).await {
            Ok(Ok(detail)) => {
                self.pass(name, detail);
                true
            }
            Ok(Err((kind, reason))) => {
                self.fail(name, kind, reason);
                false
            }
            Err(_) => {
                self.fail(
                    name,
                    FailureKind::Timeout,
                    format!(
                        "no answer within {}",
                        crate::config::format_duration(timeout)
                    ),
                );
                false
            }
        }
    }
}

impl fmt::Display for CheckReport {
    /// One line per step: `component: ok     step: detail` or
    /// `component: FAILED step: kind: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            match &step.outcome {
                CheckOutcome::Passed(detail) if detail.is_empty() => {
                    write!(f, "{}: ok     {}", self.component, step.name)?;
                }
                CheckOutcome::Passed(detail) => {
                    write!(f, "{}: ok     {}: {detail}", self.component, step.name)?;
                }
                CheckOutcome::Failed { kind, reason } => {
                    write!(
                        f,
                        "{}: FAILED {}: {kind}: {reason}",
                        self.component, step.name
                    )?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn step_times_out() {
        let mut report = CheckReport::new("x source");
        let ok = report
            .step("wait", Duration::from_millis(10), async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(String::new())
            })
            .await;
        assert!(!ok);
        assert_eq!(
            report.failure().map(|s| &s.outcome),
            Some(&CheckOutcome::Failed {
                kind: FailureKind::Timeout,
                reason: "no answer within 10ms".into()
            })
        );
    }

    #[test]
    fn empty_report_is_not_ok() {
        assert!(!CheckReport::new("x").is_ok());
    }
}
