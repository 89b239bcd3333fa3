//! Typed configuration and its property-map form.

use std::time::Duration;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::{Properties, Result};

use crate::template::Template;

/// The properties of the `stream_generator` source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    name: "stream_generator",
    role: Role::Source,
    description: "Generates random events from a template (iot, user_logins, devops) for tests and demos.",
    properties: &[
        PropertySpec::required(
            "template",
            PropertyKind::Choice(&["iot", "user_logins", "devops"]),
            "Which events to generate.",
        ),
        PropertySpec::optional(
            "interval",
            PropertyKind::Duration,
            Some("200ms"),
            "Time between events; `0ms` generates as fast as possible.",
        ),
        PropertySpec::optional(
            "seed",
            PropertyKind::Integer,
            None,
            "Seed for the random choices; the same seed gives the same values.",
        ),
        PropertySpec::optional(
            "count",
            PropertyKind::Integer,
            None,
            "Stop after this many events (default: never stop).",
        ),
        PropertySpec::optional(
            "batch_size",
            PropertyKind::Integer,
            Some("1024"),
            "Most events per batch when events are due faster than they are read.",
        ),
    ],
};

/// Typed configuration of [`GeneratorSource`](crate::GeneratorSource).
///
/// ```
/// use source_generator::{GeneratorConfig, Template};
/// use std::time::Duration;
///
/// let config = GeneratorConfig::new(Template::Devops)
///     .interval(Duration::ZERO)
///     .seed(42)
///     .count(1_000);
/// assert_eq!(config.count, Some(1_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Which events to generate.
    pub template: Template,
    /// Time between events; zero means as fast as possible.
    pub interval: Duration,
    /// Seed for reproducible values; `None` seeds from the OS.
    pub seed: Option<u64>,
    /// Stop after this many events; `None` runs forever.
    pub count: Option<u64>,
    /// Most events per batch.
    pub batch_size: usize,
}

impl GeneratorConfig {
    /// Defaults for `template`: one event every 200ms, forever, random seed.
    pub fn new(template: Template) -> Self {
        GeneratorConfig {
            template,
            interval: Duration::from_millis(200),
            seed: None,
            count: None,
            batch_size: 1024,
        }
    }

    /// Sets the interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the count.
    pub fn count(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// Reads the properties of [`SPEC`]; every problem is reported at once.
    pub fn from_properties(props: &Properties) -> Result<Self> {
        let mut r = PropertyReader::new(&SPEC, props);
        let template: String = r.required("template");
        let interval: Duration = r.required("interval");
        let seed = r.optional("seed");
        let count = r.optional("count");
        let batch_size: usize = r.required("batch_size");
        if batch_size == 0 {
            r.invalid("batch_size", "must be at least 1");
        }
        r.finish()?;
        Ok(GeneratorConfig {
            template: template.parse().unwrap_or(Template::Iot),
            interval,
            seed,
            count,
            batch_size,
        })
    }
}
