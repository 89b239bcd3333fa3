//! Every connector type the command knows: type name → documentation
//! (the crate's `SPEC`), a validator that reads the properties without
//! connecting anything, and a constructor.
//!
//! This is the one place a new connector is added. `connect list` and
//! `connect describe` print the specs themselves, so the documentation
//! cannot drift from what the connectors accept.

use connector_core::config::{ConnectorSpec, Role};
use connector_core::{Properties, Result, Sink, Source};

use crate::sinks::{console, file};

/// A source type.
pub struct SourceType {
    /// Name, role, description and properties.
    pub spec: &'static ConnectorSpec,
    /// Reads the properties (and builds the data-format decoder) without
    /// connecting to anything.
    pub validate: fn(&Properties) -> Result<()>,
    /// Builds the source; nothing connects before it is first read or checked.
    pub build: fn(&Properties) -> Result<Box<dyn Source>>,
}

/// A sink type.
pub struct SinkType {
    /// Name, role, description and properties.
    pub spec: &'static ConnectorSpec,
    /// Reads the properties (and builds encoders and templates) without
    /// connecting to anything.
    pub validate: fn(&Properties) -> Result<()>,
    /// Builds the sink; nothing connects before its first batch or check.
    pub build: fn(&Properties) -> Result<Box<dyn Sink>>,
}

/// A name from the product documents that is not a connector of its own,
/// with the documented route.
pub struct Route {
    /// The name users look for.
    pub name: &'static str,
    /// What to use instead.
    pub how: &'static str,
}

/// Every source type, in the order `connect list` prints them.
pub static SOURCES: &[SourceType] = &[
    SourceType {
        spec: &source_kafka::SPEC,
        // The constructor only builds the decoder; it joins the group on
        // first read.
        validate: |p| source_kafka::KafkaSource::from_properties(p).map(drop),
        build: |p| Ok(Box::new(source_kafka::KafkaSource::from_properties(p)?)),
    },
    SourceType {
        spec: &source_generator::SPEC,
        validate: |p| source_generator::GeneratorConfig::from_properties(p).map(drop),
        build: |p| {
            Ok(Box::new(
                source_generator::GeneratorSource::from_properties(p)?,
            ))
        },
    },
    SourceType {
        spec: &source_pulsar::SPEC,
        // The constructor only builds the decoder; it connects on first read.
        validate: |p| source_pulsar::PulsarSource::from_properties(p).map(drop),
        build: |p| Ok(Box::new(source_pulsar::PulsarSource::from_properties(p)?)),
    },
    SourceType {
        spec: &source_livepeer::SPEC,
        validate: |p| source_livepeer::LivepeerSource::from_properties(p).map(drop),
        build: |p| {
            Ok(Box::new(source_livepeer::LivepeerSource::from_properties(
                p,
            )?))
        },
    },
    SourceType {
        spec: &source_ably::SPEC,
        validate: |p| source_ably::AblySource::from_properties(p).map(drop),
        build: |p| Ok(Box::new(source_ably::AblySource::from_properties(p)?)),
    },
    SourceType {
        spec: &source_httppush::SPEC,
        // The server is bound when the source is first read.
        validate: |p| source_httppush::HttpPushSource::from_properties(p).map(drop),
        build: |p| {
            Ok(Box::new(source_httppush::HttpPushSource::from_properties(
                p,
            )?))
        },
    },
];

/// Every sink type, in the order `connect list` prints them.
pub static SINKS: &[SinkType] = &[
    SinkType {
        spec: &sink_kafka::SPEC,
        // The producer connects (and creates a missing topic) on the first
        // batch or check.
        validate: |p| sink_kafka::KafkaSink::from_properties(p).map(drop),
        build: |p| Ok(Box::new(sink_kafka::KafkaSink::from_properties(p)?)),
    },
    SinkType {
        spec: &sink_pulsar::SPEC,
        validate: |p| sink_pulsar::PulsarSink::from_properties(p).map(drop),
        build: |p| Ok(Box::new(sink_pulsar::PulsarSink::from_properties(p)?)),
    },
    SinkType {
        spec: &sink_http::SPEC,
        validate: |p| sink_http::HttpSink::from_properties(p).map(drop),
        build: |p| Ok(Box::new(sink_http::HttpSink::from_properties(p)?)),
    },
    SinkType {
        spec: &sink_slack::SPEC,
        validate: |p| sink_slack::SlackSink::from_properties(p).map(drop),
        build: |p| Ok(Box::new(sink_slack::SlackSink::from_properties(p)?)),
    },
    SinkType {
        spec: &sink_email::SPEC,
        validate: |p| sink_email::EmailSink::from_properties(p).map(drop),
        build: |p| Ok(Box::new(sink_email::EmailSink::from_properties(p)?)),
    },
    SinkType {
        spec: &sink_clickhouse::SPEC,
        validate: |p| sink_clickhouse::ClickHouseSink::from_properties(p).map(drop),
        build: |p| {
            Ok(Box::new(sink_clickhouse::ClickHouseSink::from_properties(
                p,
            )?))
        },
    },
    SinkType {
        spec: &sink_timeplus::SPEC,
        validate: |p| sink_timeplus::TimeplusSink::from_properties(p).map(drop),
        build: |p| Ok(Box::new(sink_timeplus::TimeplusSink::from_properties(p)?)),
    },
    SinkType {
        spec: &console::SPEC,
        validate: |p| console::ConsoleConfig::from_properties(p).map(drop),
        build: |p| console::ConsoleConfig::from_properties(p).map(console::ConsoleConfig::build),
    },
    SinkType {
        spec: &file::SPEC,
        validate: |p| file::FileConfig::from_properties(p).and_then(|c| c.encoder().map(drop)),
        build: |p| Ok(Box::new(file::FileSink::from_properties(p)?)),
    },
];

/// Names of the product documents that are routes, not connectors.
pub static ROUTES: &[Route] = &[Route {
    name: "snowflake",
    how: "not a connector of its own: write JSON to Kafka with the `kafka` sink and load it with Kafka Connect's Snowflake sink",
}];

/// The source type called `name`.
pub fn source(name: &str) -> Option<&'static SourceType> {
    SOURCES.iter().find(|t| t.spec.name == name)
}

/// The sink type called `name`.
pub fn sink(name: &str) -> Option<&'static SinkType> {
    SINKS.iter().find(|t| t.spec.name == name)
}

/// The route documented for `name`.
pub fn route(name: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.name == name)
}

/// Every spec with the given role.
pub fn specs(role: Role) -> Vec<&'static ConnectorSpec> {
    match role {
        Role::Source => SOURCES.iter().map(|t| t.spec).collect(),
        Role::Sink => SINKS.iter().map(|t| t.spec).collect(),
    }
}

/// Every type name with the given role.
pub fn names(role: Role) -> Vec<&'static str> {
    specs(role).into_iter().map(|s| s.name).collect()
}

/// The closest type name to a misspelt `name`, among `candidates`.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_role_and_match_roles() {
        for role in [Role::Source, Role::Sink] {
            let mut names = names(role);
            for spec in specs(role) {
                assert_eq!(spec.role, role, "{} is listed as a {role}", spec.name);
            }
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "duplicate {role} type");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("clikhouse", names(Role::Sink)), Some("clickhouse"));
        assert_eq!(suggest("zzz", names(Role::Sink)), None);
    }
}
