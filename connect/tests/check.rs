//! `connect check` on good and bad pipeline files, as a user runs it: every
//! error names the file, the section, the connector, the property and what
//! was expected.

mod common;

use std::time::Duration;

use common::{run, write};

const T: Duration = Duration::from_secs(60);

#[test]
fn a_good_file_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "good.toml",
        r#"
name = "demo"
[source]
type = "stream_generator"
template = "devops"
interval = "0ms"
count = 10

[[transforms]]
type = "filter"
where = "usage_user > 10"

[[sinks]]
type = "file"
path = "out.jsonl"

[[sinks]]
type = "console"

[dead_letter]
type = "file"
path = "bad.jsonl"
"#,
    );
    let out = run(&["check", common::s(&path)], T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    assert_eq!(
        out.stdout,
        format!(
            "{}: ok (stream_generator → 1 transform → file, console; bad records → file)\n",
            path.display()
        )
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn every_problem_of_a_bad_toml_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        r#"
[source]
type = "stream_generator"
templat = "iot"
interval = "10"

[[transforms]]
type = "filter"
where = "number ~ 5"

[[transforms]]
type = "selekt"
fields = ["a"]

[[sinks]]
type = "clikhouse"

[[sinks]]
type = "clickhouse"
hosts = ["localhost:8123"]
batch_duration = "soon"

[[sinks]]
type = "stream_generator"

[pipeline]
batch_sise = 10
on_bad_data = "dead_letter"

[pipline]
"#,
    );
    let out = run(&["check", common::s(&path)], T);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert_eq!(out.stdout, "");
    let f = path.display();
    let expected = [
        format!(
            "{f}: pipline: unknown section; did you mean `pipeline`? (sections: name, description, source, transforms, sinks, sink, dead_letter, pipeline)"
        ),
        format!(
            "{f}: source: stream_generator source: property `template`: required property is missing"
        ),
        format!(
            "{f}: source: stream_generator source: property `interval`: `10` is not a duration (expected e.g. `200ms`, `10s`, `5m`, `1h`)"
        ),
        format!(
            "{f}: source: stream_generator source: property `templat`: unknown property; did you mean `template`? (valid properties: template, interval, seed, count, batch_size)"
        ),
        format!(
            "{f}: transforms.0: filter: `number ~ 5`: unknown operator `~` (one of ==, !=, >, >=, <, <=, in, not_in, contains, starts_with, ends_with, matches, exists, missing)"
        ),
        format!(
            "{f}: transforms.1: unknown transform type `selekt`; did you mean `select`? (types: filter, select, drop, rename)"
        ),
        format!(
            "{f}: sinks.0: unknown sink type `clikhouse`; did you mean `clickhouse`? (sink types: {})",
            sink_types()
        ),
        format!(
            "{f}: sinks.1: clickhouse sink: property `table_name`: required property is missing"
        ),
        format!(
            "{f}: sinks.1: clickhouse sink: property `batch_duration`: `soon` is not a duration (expected e.g. `200ms`, `10s`, `5m`, `1h`)"
        ),
        format!(
            "{f}: sinks.2: `stream_generator` is a source, not a sink (sink types: {})",
            sink_types()
        ),
        format!(
            "{f}: pipeline: option `batch_sise`: unknown option; did you mean `batch_size`? (options: batch_size, batch_time, on_bad_data, max_in_flight, channel_capacity, drain_timeout, check_on_start, check_timeout)"
        ),
        format!(
            "{f}: pipeline: option `on_bad_data`: `dead_letter` needs a `dead_letter` sink (a table with `type` and its properties)"
        ),
    ];
    let lines: Vec<&str> = out.stderr.lines().collect();
    for line in &expected {
        assert!(
            lines.contains(&line.as_str()),
            "missing line:\n{line}\nin:\n{}",
            out.stderr
        );
    }
    assert_eq!(lines.len(), expected.len(), "{}", out.stderr);
}

/// The sink types `connect list` knows, as errors list them.
fn sink_types() -> String {
    let out = run(&["list", "--json"], T);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    json["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["role"] == "sink")
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn yaml_and_json_files_are_checked_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = write(
        dir.path(),
        "bad.yaml",
        "source:\n  type: stream_generator\n  template: iot\nsinks:\n  - type: file\n    path: out.jsonl\n    fsync: maybe\n    data_type: avro\n",
    );
    let json = write(
        dir.path(),
        "bad.json",
        r#"{"source": {"type": "stream_generator", "template": "weather"}, "sink": {"type": "console", "template": "{{ .x"}}"#,
    );
    let out = run(&["check", common::s(&yaml), common::s(&json)], T);
    assert_eq!(out.code, Some(2), "{}", out.all());
    let y = yaml.display();
    let j = json.display();
    assert_eq!(
        out.stderr,
        format!(
            "{y}: sinks.0: file sink: property `data_type`: expected one of `json`, `text`, `delimited`, got `avro`\n\
             {y}: sinks.0: file sink: property `fsync`: expected `true` or `false`, got `maybe`\n\
             {j}: source: stream_generator source: property `template`: expected one of `iot`, `user_logins`, `devops`, got `weather`\n\
             {j}: sink: console sink: property `template`: {}\n",
            connector_core_template_error("{{ .x")
        ),
        "{}",
        out.all()
    );
}

/// The template parser's own message for `text`.
fn connector_core_template_error(text: &str) -> String {
    connector_core::format::template::Template::parse(text).unwrap_err()
}

#[test]
fn unreadable_and_malformed_files() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(
        dir.path(),
        "broken.toml",
        "[source]\ntype = \"stream_generator\"\ntemplate = \n",
    );
    let out = run(&["check", common::s(&broken)], T);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(
        out.stderr
            .starts_with(&format!("{}: invalid TOML: ", broken.display())),
        "{}",
        out.all()
    );
    assert!(out.stderr.contains("line 3"), "{}", out.all());

    let missing = dir.path().join("missing.yaml");
    let out = run(&["check", common::s(&missing)], T);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.starts_with(&format!(
            "{}: cannot read the pipeline file: ",
            missing.display()
        )),
        "{}",
        out.all()
    );

    let empty = write(dir.path(), "empty.yaml", "");
    let out = run(&["check", common::s(&empty)], T);
    assert_eq!(out.code, Some(2));
    let e = empty.display();
    assert_eq!(
        out.stderr,
        format!(
            "{e}: missing `source` (a table with `type` and its properties)\n\
             {e}: missing `sinks` (a list of tables with `type` and properties)\n"
        )
    );
}

#[test]
fn environment_variables_are_substituted_and_missing_ones_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "env.toml",
        "[source]\ntype = \"stream_generator\"\ntemplate = \"${TEMPLATE}\"\n[[sinks]]\ntype = \"clickhouse\"\nhosts = \"localhost:8123\"\ntable_name = \"t\"\npassword = \"${CH_PASSWORD:?the ClickHouse password}\"\n",
    );
    let mut command = common::connect();
    command
        .args(["check", common::s(&path)])
        .env_remove("TEMPLATE")
        .env_remove("CH_PASSWORD");
    let out = common::Running::start(command).wait(T);
    assert_eq!(out.code, Some(2), "{}", out.all());
    let p = path.display();
    assert_eq!(
        out.stderr,
        format!(
            "{p}: sinks.0.password: environment variable `CH_PASSWORD`: the ClickHouse password\n\
             {p}: source.template: environment variable `TEMPLATE` is not set (write `${{TEMPLATE:-default}}` to give a default)\n"
        )
    );

    let mut command = common::connect();
    command
        .args(["check", common::s(&path)])
        .env("TEMPLATE", "user_logins")
        .env("CH_PASSWORD", "s3cret");
    let out = common::Running::start(command).wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
}

#[test]
fn flags_are_checked_like_files() {
    let out = run(
        &[
            "check",
            "--source",
            "stream_generator",
            "-p",
            "template=iot",
            "-p",
            "intervall=1s",
            "--sink",
            "file",
        ],
        T,
    );
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert_eq!(
        out.stderr,
        "command line: source: stream_generator source: property `intervall`: unknown property; did you mean `interval`? (valid properties: template, interval, seed, count, batch_size)\n\
         command line: sinks.0: file sink: property `path`: required property is missing\n"
    );
}

#[test]
fn every_example_pipeline_is_check_clean() {
    let folder = common::repo_root().join("examples/pipelines");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("toml" | "yaml" | "yml" | "json")
            )
        })
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 7, "{files:?}");
    let mut command = common::connect();
    command
        .arg("check")
        .args(&files)
        // The two pipelines that refuse to run without their webhook URL.
        .env(
            "SLACK_WEBHOOK_URL",
            "https://hooks.slack.com/services/T000/B000/XXXX",
        )
        .env("WEBHOOK_URL", "https://example.com/hooks/alerts");
    let out = common::Running::start(command).wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    for file in &files {
        assert!(
            out.stdout.contains(&format!("{file}: ok (")),
            "{file} not ok:\n{}",
            out.all()
        );
    }

    // Without the URL, the Slack example says what to set.
    let mut command = common::connect();
    command
        .args([
            "check",
            folder.join("generator-to-slack.toml").to_str().unwrap(),
        ])
        .env_remove("SLACK_WEBHOOK_URL");
    let out = common::Running::start(command).wait(T);
    assert_eq!(out.code, Some(2), "{}", out.all());
    assert!(
        out.stderr.ends_with("generator-to-slack.toml: sinks.0.url: environment variable `SLACK_WEBHOOK_URL`: set SLACK_WEBHOOK_URL to the incoming-webhook URL\n"),
        "{}",
        out.all()
    );
}

#[test]
fn the_readme_pipeline_is_check_clean() {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let start = readme
        .find("# pipeline.toml\n")
        .expect("the README's pipeline");
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "pipeline.toml", &readme[start..end]);
    let mut command = common::connect();
    command
        .args(["check", common::s(&path)])
        .env("KAFKA_BROKERS", "localhost:9092")
        .env("CLICKHOUSE_PASSWORD", "secret");
    let out = common::Running::start(command).wait(T);
    assert_eq!(out.code, Some(0), "{}", out.all());
}
