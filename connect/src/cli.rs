//! The command line: subcommands, and pipelines given with flags
//! (`--source kafka -p brokers=… --sink console`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Args, Parser, Subcommand};
use serde_json::{Map, Value as Json};

use crate::definition::Definition;
use crate::issues::Issues;

const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 runtime failure (or a failed connection test), 2 configuration error.
Logs go to stderr; CONNECT_LOG sets the level (`warn`, `debug`, `source_kafka=debug,info`).

Examples:
  connect run examples/pipelines/generator-to-console.toml
  connect run --source stream_generator -p template=iot -p count=100 --filter 'number > 50' --sink console
  connect check examples/pipelines/*
  connect test pipeline.yaml
  connect describe kafka";

/// Run, validate and test source → sink pipelines described in TOML, YAML
/// or JSON files, with the property names of the connector documents.
#[derive(Debug, Parser)]
#[command(name = "connect", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline until its source ends or Ctrl-C/SIGTERM (which drain, flush and commit first).
    Run(RunArgs),
    /// Validate pipelines without connecting to anything: types, properties, formats, templates.
    Check(PipelineArgs),
    /// Test every connection of a pipeline (reach, authenticate, find the topic/table), one line per step.
    Test(TestArgs),
    /// List every connector type.
    List(ListArgs),
    /// Show a connector type's properties: required or not, defaults, descriptions.
    Describe(DescribeArgs),
}

/// A pipeline: a file, or flags.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Pipeline file(s): `.toml`, `.yaml`, `.yml` or `.json` (`check` takes several).
    #[arg(value_name = "PIPELINE")]
    pub files: Vec<PathBuf>,
    /// Source type, instead of a file (its properties follow as `-p NAME=VALUE`).
    #[arg(long, value_name = "TYPE", conflicts_with = "files")]
    pub source: Option<String>,
    /// Sink type; repeat for several sinks (each followed by its `-p NAME=VALUE`).
    #[arg(long, value_name = "TYPE", conflicts_with = "files")]
    pub sink: Vec<String>,
    /// Dead-letter sink type for bad records (followed by its `-p NAME=VALUE`).
    #[arg(long, value_name = "TYPE", conflicts_with = "files")]
    pub dead_letter: Option<String>,
    /// A property of the `--source`, `--sink` or `--dead-letter` before it.
    #[arg(short = 'p', long = "property", value_name = "NAME=VALUE")]
    pub property: Vec<String>,
    /// Keep records matching a condition, e.g. `number > 50` (repeatable: all must hold).
    #[arg(long, value_name = "CONDITION", conflicts_with = "files")]
    pub filter: Vec<String>,
    /// Keep only these fields, in this order (comma-separated).
    #[arg(long, value_name = "FIELDS", conflicts_with = "files")]
    pub select: Vec<String>,
    /// Remove these fields (comma-separated).
    #[arg(long = "drop", value_name = "FIELDS", conflicts_with = "files")]
    pub drop_fields: Vec<String>,
    /// Rename a field (repeatable).
    #[arg(long, value_name = "OLD=NEW", conflicts_with = "files")]
    pub rename: Vec<String>,
    /// Pipeline name (default: the file's name); also the source's stable id (Kafka group, Pulsar subscription).
    #[arg(long)]
    pub name: Option<String>,
    /// Records per sink batch.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Longest wait for a sink batch to fill, e.g. `500ms`.
    #[arg(long, value_name = "DURATION")]
    pub batch_time: Option<String>,
    /// `fail`, `skip` or `dead_letter`.
    #[arg(long, value_name = "POLICY")]
    pub on_bad_data: Option<String>,
}

/// `connect run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Serve Prometheus metrics at http://ADDR/metrics, e.g. `127.0.0.1:9100`.
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// How often progress is shown (default 1s on a terminal, 10s otherwise).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub status_interval: Option<Duration>,
    /// Test every connection before starting.
    #[arg(long)]
    pub check_first: bool,
}

/// `connect test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The pipeline.
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Time limit of each step.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_interval)]
    pub timeout: Duration,
}

/// `connect list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `connect describe`.
#[derive(Debug, Args)]
pub struct DescribeArgs {
    /// Connector type (`kafka`, `clickhouse`, ...), or `pipeline` for the file layout, options and transforms.
    #[arg(value_name = "TYPE")]
    pub type_name: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    connector_core::config::parse_duration(text)
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than 0".into()),
        d => Ok(d),
    }
}

/// What a flag of the command line is, in the order given.
enum Flag {
    Connector(&'static str, String),
    Property(String),
    Filter(String),
    Select(String),
    Drop(String),
    Rename(String),
}

/// Values of `id` with their positions on the command line.
fn indexed(matches: &ArgMatches, id: &str) -> Vec<(usize, String)> {
    match (matches.indices_of(id), matches.get_many::<String>(id)) {
        (Some(indices), Some(values)) => indices.zip(values.cloned()).collect(),
        _ => Vec::new(),
    }
}

impl PipelineArgs {
    /// Whether a pipeline is given with flags rather than a file.
    pub fn uses_flags(&self) -> bool {
        self.source.is_some() || !self.sink.is_empty()
    }

    /// The definitions to work on: each file, or the one given by flags,
    /// with the option flags applied. `matches` are the subcommand's, for
    /// the order of the flags.
    pub fn definitions(&self, matches: &ArgMatches) -> Vec<Result<Definition, Issues>> {
        let mut definitions: Vec<Result<Definition, Issues>> = if self.uses_flags() {
            vec![self.flags_definition(matches)]
        } else if self.files.is_empty() {
            let mut issues = Issues::new("command line");
            issues.add(
                "",
                "give a pipeline file, or `--source TYPE` and `--sink TYPE` with their `-p NAME=VALUE` properties",
            );
            vec![Err(issues)]
        } else {
            self.files.iter().map(|f| Definition::load(f)).collect()
        };
        for def in definitions.iter_mut().flatten() {
            self.apply_options(&mut def.root);
        }
        definitions
    }

    fn apply_options(&self, root: &mut Map<String, Json>) {
        if let Some(name) = &self.name {
            root.insert("name".into(), Json::String(name.clone()));
        }
        let mut options = Vec::new();
        if let Some(n) = self.batch_size {
            options.push(("batch_size", Json::from(n)));
        }
        if let Some(t) = &self.batch_time {
            options.push(("batch_time", Json::String(t.clone())));
        }
        if let Some(p) = &self.on_bad_data {
            options.push(("on_bad_data", Json::String(p.clone())));
        }
        if options.is_empty() {
            return;
        }
        let section = root
            .entry("pipeline")
            .or_insert_with(|| Json::Object(Map::new()));
        if let Json::Object(map) = section {
            for (k, v) in options {
                map.insert(k.into(), v);
            }
        }
    }

    fn flags_definition(&self, matches: &ArgMatches) -> Result<Definition, Issues> {
        let mut issues = Issues::new("command line");
        let mut flags: Vec<(usize, Flag)> = Vec::new();
        for (id, section) in [
            ("source", "source"),
            ("sink", "sink"),
            ("dead_letter", "dead_letter"),
        ] {
            flags.extend(
                indexed(matches, id)
                    .into_iter()
                    .map(|(i, v)| (i, Flag::Connector(section, v))),
            );
        }
        type MakeFlag = fn(String) -> Flag;
        let simple: [(&str, MakeFlag); 5] = [
            ("property", Flag::Property),
            ("filter", Flag::Filter),
            ("select", Flag::Select),
            ("drop_fields", Flag::Drop),
            ("rename", Flag::Rename),
        ];
        for (id, make) in simple {
            flags.extend(indexed(matches, id).into_iter().map(|(i, v)| (i, make(v))));
        }
        flags.sort_by_key(|(i, _)| *i);

        let mut source: Option<Map<String, Json>> = None;
        let mut sinks: Vec<Json> = Vec::new();
        let mut dead_letter: Option<Map<String, Json>> = None;
        let mut transforms: Vec<Json> = Vec::new();
        // Which connector the next `-p` belongs to.
        let mut current: Option<(&'static str, Map<String, Json>)> = None;
        let mut close = |current: &mut Option<(&'static str, Map<String, Json>)>| {
            if let Some((section, map)) = current.take() {
                match section {
                    "source" => source = Some(map),
                    "dead_letter" => dead_letter = Some(map),
                    _ => sinks.push(Json::Object(map)),
                }
            }
        };
        for (_, flag) in flags {
            match flag {
                Flag::Connector(section, type_name) => {
                    close(&mut current);
                    let mut map = Map::new();
                    map.insert("type".into(), Json::String(type_name));
                    current = Some((section, map));
                }
                Flag::Property(text) => match (text.split_once('='), current.as_mut()) {
                    (Some((name, value)), Some((_, map))) if !name.trim().is_empty() => {
                        map.insert(name.trim().to_owned(), Json::String(value.to_owned()));
                    }
                    (None, _) | (Some(_), Some(_)) => issues.add(
                        "",
                        format!("`-p {text}`: expected `-p NAME=VALUE`"),
                    ),
                    (Some(_), None) => issues.add(
                        "",
                        format!("`-p {text}`: a property must follow the `--source`, `--sink` or `--dead-letter` it belongs to"),
                    ),
                },
                Flag::Filter(condition) => {
                    transforms.push(serde_json::json!({"type": "filter", "where": condition}));
                }
                Flag::Select(fields) => {
                    transforms.push(serde_json::json!({"type": "select", "fields": fields}));
                }
                Flag::Drop(fields) => {
                    transforms.push(serde_json::json!({"type": "drop", "fields": fields}));
                }
                Flag::Rename(text) => match crate::transform::Transform::parse_rename(&text) {
                    Ok((old, new)) => {
                        let mut fields = Map::new();
                        fields.insert(old, Json::String(new));
                        transforms.push(serde_json::json!({"type": "rename", "fields": fields}));
                    }
                    Err(e) => issues.add("", format!("--rename {e}")),
                },
            }
        }
        close(&mut current);

        let mut root = Map::new();
        if let Some(s) = source {
            root.insert("source".into(), Json::Object(s));
        }
        if !transforms.is_empty() {
            root.insert("transforms".into(), Json::Array(transforms));
        }
        if !sinks.is_empty() {
            root.insert("sinks".into(), Json::Array(sinks));
        }
        if let Some(d) = dead_letter {
            root.insert("dead_letter".into(), Json::Object(d));
        }
        issues.into_result(())?;
        Definition {
            origin: "command line".into(),
            default_name: None,
            root,
        }
        .substituted(&crate::env::process_env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    fn definition(args: &[&str]) -> Result<Definition, Issues> {
        let matches = Cli::command()
            .try_get_matches_from(std::iter::once("connect").chain(args.iter().copied()))
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let (_, sub) = matches.subcommand().unwrap();
        let Command::Run(run) = cli.command else {
            panic!("run expected")
        };
        run.pipeline.definitions(sub).remove(0)
    }

    #[test]
    fn properties_follow_their_connector() {
        let def = definition(&[
            "run",
            "--source",
            "kafka",
            "-p",
            "brokers=b:9092",
            "-p",
            "topic=t",
            "--filter",
            "n > 1",
            "--sink",
            "console",
            "-p",
            "template={{ .n }}",
            "--select",
            "a,b",
            "--sink",
            "file",
            "-p",
            "path=/tmp/x=y",
            "--rename",
            "a=b",
            "--batch-size",
            "10",
        ])
        .unwrap();
        assert_eq!(
            Json::Object(def.root),
            serde_json::json!({
                "source": {"type": "kafka", "brokers": "b:9092", "topic": "t"},
                "transforms": [
                    {"type": "filter", "where": "n > 1"},
                    {"type": "select", "fields": "a,b"},
                    {"type": "rename", "fields": {"a": "b"}},
                ],
                "sinks": [
                    {"type": "console", "template": "{{ .n }}"},
                    {"type": "file", "path": "/tmp/x=y"},
                ],
                "pipeline": {"batch_size": 10},
            })
        );
    }

    #[test]
    fn a_property_before_any_connector_is_an_error() {
        let err = definition(&[
            "run", "-p", "a=b", "--source", "kafka", "--sink", "console", "-p", "x",
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "command line: `-p a=b`: a property must follow the `--source`, `--sink` or `--dead-letter` it belongs to\n\
             command line: `-p x`: expected `-p NAME=VALUE`"
        );
    }
}
