//! A validated pipeline: every connector's type known and its properties
//! read, transforms parsed, options read. Building it creates the
//! connectors (nothing connects until the pipeline runs or is checked).

use std::time::Duration;

use connector_core::config::{FromProperty, Role};
use connector_core::{BadDataPolicy, BatchLimits, Pipeline, Properties, Sink, Source};
use serde_json::{Map, Value as Json};

use crate::definition::Definition;
use crate::issues::Issues;
use crate::registry::{self, SinkType, SourceType};
use crate::transform::Transform;

/// Top-level keys of a pipeline file.
const TOP_LEVEL: &[&str] = &[
    "name",
    "description",
    "source",
    "transforms",
    "sinks",
    "sink",
    "dead_letter",
    "pipeline",
];

/// A connector of the plan: its section, type and properties.
pub struct Planned<T: 'static> {
    /// `source`, `sinks.0`, `dead_letter`.
    pub section: String,
    /// The connector type.
    pub kind: &'static T,
    /// Its properties (without `type`).
    pub props: Properties,
}

/// Options of the `pipeline` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Records per sink batch (overrides the sink's preference).
    pub batch_size: Option<usize>,
    /// Longest wait for a sink batch to fill.
    pub batch_time: Option<Duration>,
    /// What to do with bad records.
    pub on_bad_data: BadDataPolicy,
    /// Batches handed to the sinks and not yet acknowledged.
    pub max_in_flight: Option<usize>,
    /// Batches queued between the source and the sinks.
    pub channel_capacity: Option<usize>,
    /// Longest wait for outstanding acknowledgements at shutdown.
    pub drain_timeout: Duration,
    /// Check every connection before starting (`connect run` does, and
    /// prints each step).
    pub check_on_start: bool,
    /// Time limit of each check step.
    pub check_timeout: Duration,
}

/// The options, their kinds and descriptions, for errors and docs.
pub const OPTIONS: &[(&str, &str)] = &[
    (
        "batch_size",
        "records per sink batch (default: the sink's own, e.g. clickhouse `batch_count`)",
    ),
    (
        "batch_time",
        "longest wait for a sink batch to fill, e.g. `500ms`",
    ),
    (
        "on_bad_data",
        "`fail` (default), `skip`, or `dead_letter` (the default when a `dead_letter` sink is given)",
    ),
    (
        "max_in_flight",
        "batches sent and not yet acknowledged (default 16)",
    ),
    (
        "channel_capacity",
        "batches queued between the source and the sinks (default 16)",
    ),
    (
        "drain_timeout",
        "longest wait for acknowledgements at shutdown (default `30s`)",
    ),
    (
        "check_on_start",
        "`true` tests every connection before starting (default `false`)",
    ),
    (
        "check_timeout",
        "time limit of each connection-check step (default `10s`)",
    ),
];

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: None,
            batch_time: None,
            on_bad_data: BadDataPolicy::Fail,
            max_in_flight: None,
            channel_capacity: None,
            drain_timeout: Duration::from_secs(30),
            check_on_start: false,
            check_timeout: Duration::from_secs(10),
        }
    }
}

/// A validated pipeline.
pub struct Plan {
    /// The file (or `command line`).
    pub origin: String,
    /// The pipeline's name (its sources' stable id).
    pub name: String,
    /// The source.
    pub source: Planned<SourceType>,
    /// Record steps, in order.
    pub transforms: Vec<Transform>,
    /// The sinks (every record goes to each).
    pub sinks: Vec<Planned<SinkType>>,
    /// Where bad records go.
    pub dead_letter: Option<Planned<SinkType>>,
    /// Pipeline options.
    pub options: Options,
}

/// The built connectors of a plan.
pub struct Built {
    /// The source.
    pub source: Box<dyn Source>,
    /// The sinks, with their sections.
    pub sinks: Vec<(String, Box<dyn Sink>)>,
    /// The dead-letter sink.
    pub dead_letter: Option<Box<dyn Sink>>,
}

impl Plan {
    /// Validates everything without connecting; every problem is reported.
    pub fn new(def: Definition) -> Result<Plan, Issues> {
        let Definition {
            origin,
            default_name,
            root,
        } = def;
        let mut issues = Issues::new(&origin);
        for key in root.keys() {
            if !TOP_LEVEL.contains(&key.as_str()) {
                let hint = registry::suggest(key, TOP_LEVEL.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                issues.add(
                    key.as_str(),
                    format!("unknown section{hint} (sections: {})", TOP_LEVEL.join(", ")),
                );
            }
        }
        let name = match root.get("name") {
            Some(Json::String(n)) if !n.trim().is_empty() => Some(n.trim().to_owned()),
            Some(_) => {
                issues.add("name", "must be a non-empty string");
                None
            }
            None => default_name,
        }
        .unwrap_or_else(|| "connect".to_owned());

        let source = match root.get("source") {
            Some(json) => connector(json, "source", Role::Source, &mut issues).and_then(
                |(type_name, mut props)| {
                    let kind = registry::source(&type_name)?;
                    // The pipeline's name is the source's stable id: its
                    // Kafka group / Pulsar subscription survives restarts.
                    if kind.spec.property("id").is_some() && props.get("id").is_none() {
                        props.set("id", name.clone());
                    }
                    if let Err(e) = (kind.validate)(&props) {
                        issues.add_error("source", &e);
                    }
                    Some(Planned {
                        section: "source".into(),
                        kind,
                        props,
                    })
                },
            ),
            None => {
                issues.add(
                    "",
                    "missing `source` (a table with `type` and its properties)",
                );
                None
            }
        };

        let mut transforms = Vec::new();
        match root.get("transforms") {
            None => {}
            Some(Json::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let section = format!("transforms.{i}");
                    match item.as_object().map(Transform::from_json) {
                        Some(Ok(t)) => transforms.push(t),
                        Some(Err(e)) => issues.add(section, e),
                        None => issues.add(section, "must be a table with `type`"),
                    }
                }
            }
            Some(_) => issues.add("transforms", "must be a list of tables"),
        }

        let sink_items: Vec<(String, &Json)> = match (root.get("sinks"), root.get("sink")) {
            (Some(_), Some(_)) => {
                issues.add(
                    "sink",
                    "give either `sink` (one) or `sinks` (a list), not both",
                );
                Vec::new()
            }
            (Some(Json::Array(items)), None) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("sinks.{i}"), item))
                .collect(),
            (Some(Json::Object(_)), None) => {
                issues.add("sinks", "must be a list of tables (`[[sinks]]` in TOML); for one sink, `sink` works too");
                Vec::new()
            }
            (Some(_), None) => {
                issues.add("sinks", "must be a list of tables");
                Vec::new()
            }
            (None, Some(one)) => vec![("sink".to_owned(), one)],
            (None, None) => Vec::new(),
        };
        if sink_items.is_empty() && !issues.list.iter().any(|i| i.section.starts_with("sink")) {
            issues.add(
                "",
                "missing `sinks` (a list of tables with `type` and properties)",
            );
        }
        let mut sinks = Vec::new();
        for (section, json) in sink_items {
            if let Some(planned) = plan_sink(json, &section, &mut issues) {
                sinks.push(planned);
            }
        }
        let dead_letter = root
            .get("dead_letter")
            .and_then(|json| plan_sink(json, "dead_letter", &mut issues));

        let options = match root.get("pipeline") {
            None => Options::default(),
            Some(Json::Object(map)) => read_options(map, dead_letter.is_some(), &mut issues),
            Some(_) => {
                issues.add("pipeline", "must be a table of options");
                Options::default()
            }
        };
        let options = if root.get("pipeline").is_none() && dead_letter.is_some() {
            Options {
                on_bad_data: BadDataPolicy::DeadLetter,
                ..options
            }
        } else {
            options
        };

        match source {
            Some(source) if issues.is_empty() => Ok(Plan {
                origin,
                name,
                source,
                transforms,
                sinks,
                dead_letter,
                options,
            }),
            _ => Err(issues),
        }
    }

    /// Builds every connector.
    pub fn build(&self) -> Result<Built, Issues> {
        let mut issues = Issues::new(&self.origin);
        let source = (self.source.kind.build)(&self.source.props)
            .map_err(|e| issues.add_error(&self.source.section, &e))
            .ok();
        let mut sinks = Vec::new();
        for planned in &self.sinks {
            match (planned.kind.build)(&planned.props) {
                Ok(sink) => sinks.push((planned.section.clone(), sink)),
                Err(e) => issues.add_error(&planned.section, &e),
            }
        }
        let dead_letter = self.dead_letter.as_ref().and_then(|p| {
            (p.kind.build)(&p.props)
                .map_err(|e| issues.add_error(&p.section, &e))
                .ok()
        });
        match source {
            Some(source) if issues.is_empty() => Ok(Built {
                source,
                sinks,
                dead_letter,
            }),
            _ => Err(issues),
        }
    }

    /// A pipeline of the built connectors with the plan's transforms and
    /// options.
    pub fn pipeline(&self, built: Built) -> Pipeline {
        let Built {
            source,
            sinks,
            dead_letter,
        } = built;
        let options = &self.options;
        let mut pipeline = Pipeline::new(source).name(self.name.clone());
        for t in self.transforms.iter().cloned() {
            pipeline = t.apply(pipeline);
        }
        // The sinks' own batching, as the pipeline would merge it, with the
        // options' overrides on top.
        let preferred = sinks
            .iter()
            .map(|(_, s)| s.batch_limits())
            .reduce(|a, b| BatchLimits {
                max_records: a.max_records.min(b.max_records),
                max_wait: a.max_wait.max(b.max_wait),
            })
            .unwrap_or_default();
        if options.batch_size.is_some() || options.batch_time.is_some() {
            pipeline = pipeline.batch_limits(BatchLimits {
                max_records: options.batch_size.unwrap_or(preferred.max_records),
                max_wait: options.batch_time.unwrap_or(preferred.max_wait),
            });
        }
        for (_, sink) in sinks {
            pipeline = pipeline.to(sink);
        }
        if let Some(dl) = dead_letter {
            pipeline = pipeline.dead_letter(dl);
        }
        pipeline = pipeline.on_bad_data(options.on_bad_data);
        if let Some(n) = options.max_in_flight {
            pipeline = pipeline.max_in_flight(n);
        }
        if let Some(n) = options.channel_capacity {
            pipeline = pipeline.channel_capacity(n);
        }
        pipeline.drain_timeout(options.drain_timeout)
    }
}

/// Reads a connector table: its `type` (checked against the role) and
/// properties.
fn connector(
    json: &Json,
    section: &str,
    role: Role,
    issues: &mut Issues,
) -> Option<(String, Properties)> {
    let Json::Object(map) = json else {
        issues.add(
            section,
            "must be a table with `type` and the connector's properties",
        );
        return None;
    };
    let names = registry::names(role);
    let type_name = match map.get("type") {
        Some(Json::String(t)) => t.clone(),
        Some(_) => {
            issues.add(section, "`type` must be a string");
            return None;
        }
        None => {
            issues.add(
                section,
                format!("missing `type` ({role} types: {})", names.join(", ")),
            );
            return None;
        }
    };
    let known = match role {
        Role::Source => registry::source(&type_name).is_some(),
        Role::Sink => registry::sink(&type_name).is_some(),
    };
    if !known {
        let other = match role {
            Role::Source => registry::sink(&type_name).map(|_| Role::Sink),
            Role::Sink => registry::source(&type_name).map(|_| Role::Source),
        };
        let message = if let Some(other) = other {
            format!(
                "`{type_name}` is a {other}, not a {role} ({role} types: {})",
                names.join(", ")
            )
        } else if let Some(route) = registry::route(&type_name) {
            format!("`{type_name}` is {}", route.how)
        } else {
            let hint = registry::suggest(&type_name, names.iter().copied())
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            format!(
                "unknown {role} type `{type_name}`{hint} ({role} types: {})",
                names.join(", ")
            )
        };
        issues.add(section, message);
        return None;
    }
    let mut props = map.clone();
    props.remove("type");
    Some((
        type_name,
        Properties::from_json(section, Json::Object(props)).ok()?,
    ))
}

fn plan_sink(json: &Json, section: &str, issues: &mut Issues) -> Option<Planned<SinkType>> {
    let (type_name, props) = connector(json, section, Role::Sink, issues)?;
    let kind = registry::sink(&type_name)?;
    if let Err(e) = (kind.validate)(&props) {
        issues.add_error(section, &e);
    }
    Some(Planned {
        section: section.to_owned(),
        kind,
        props,
    })
}

fn read_options(map: &Map<String, Json>, has_dead_letter: bool, issues: &mut Issues) -> Options {
    let mut options = Options::default();
    let names: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
    for (key, value) in map {
        let result: Result<(), String> = (|| {
            match key.as_str() {
                "batch_size" => options.batch_size = Some(positive(value)?),
                "batch_time" => options.batch_time = Some(Duration::from_property(value)?),
                "max_in_flight" => options.max_in_flight = Some(positive(value)?),
                "channel_capacity" => options.channel_capacity = Some(positive(value)?),
                "drain_timeout" => options.drain_timeout = Duration::from_property(value)?,
                "check_on_start" => options.check_on_start = bool::from_property(value)?,
                "check_timeout" => options.check_timeout = Duration::from_property(value)?,
                "on_bad_data" => {
                    options.on_bad_data = match String::from_property(value)?.as_str() {
                        "fail" => BadDataPolicy::Fail,
                        "skip" => BadDataPolicy::Skip,
                        "dead_letter" | "dead-letter" => BadDataPolicy::DeadLetter,
                        other => {
                            return Err(format!(
                                "expected one of `fail`, `skip`, `dead_letter`, got `{other}`"
                            ));
                        }
                    }
                }
                other => {
                    let hint = registry::suggest(other, names.iter().copied())
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown option{hint} (options: {})",
                        names.join(", ")
                    ));
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            issues.add("pipeline", format!("option `{key}`: {e}"));
        }
    }
    match (map.contains_key("on_bad_data"), options.on_bad_data, has_dead_letter) {
        (false, _, true) => options.on_bad_data = BadDataPolicy::DeadLetter,
        (true, BadDataPolicy::DeadLetter, false) => issues.add(
            "pipeline",
            "option `on_bad_data`: `dead_letter` needs a `dead_letter` sink (a table with `type` and its properties)",
        ),
        (true, BadDataPolicy::Fail | BadDataPolicy::Skip, true) => issues.add(
            "pipeline",
            "option `on_bad_data`: a `dead_letter` sink is given but bad records are not sent to it; set `on_bad_data = \"dead_letter\"` or remove the sink",
        ),
        _ => {}
    }
    options
}

fn positive(value: &Json) -> Result<usize, String> {
    match usize::from_property(value)? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}
