//! `connect list` and `connect describe`: every connector of the
//! specification, with properties generated from the connectors' specs.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use common::run;

const T: Duration = Duration::from_secs(60);

/// The connectors of the specification, by section, as (name, role).
/// Read from `shared/SPEC.md` beside the repository when it is there (CI
/// checks out the repository with `shared/` beside it); the list below is
/// what it held when this test was written and must agree with it.
fn specified() -> BTreeSet<(String, &'static str)> {
    let written: BTreeSet<(String, &'static str)> = [
        ("kafka", "source"),
        ("stream_generator", "source"),
        ("pulsar", "source"),
        ("pulsar", "sink"),
        ("livepeer", "source"),
        ("ably", "source"),
        ("httppush", "source"),
        ("kafka", "sink"),
        ("http", "sink"),
        ("slack", "sink"),
        ("email", "sink"),
        ("timeplus", "sink"),
        ("clickhouse", "sink"),
        ("snowflake", "sink"),
    ]
    .into_iter()
    .map(|(n, r)| (n.to_owned(), r))
    .collect();
    if let Some(spec) = spec_md() {
        let text = std::fs::read_to_string(&spec).unwrap();
        let mut role = "";
        let mut parsed = BTreeSet::new();
        for line in text.lines() {
            if line.starts_with("## ") {
                role = match line {
                    "## Sources" => "source",
                    "## Sinks" => "sink",
                    _ => "",
                };
            } else if let Some(heading) = line.strip_prefix("### ")
                && !role.is_empty()
            {
                let name = heading.split_whitespace().next().unwrap().to_owned();
                if heading.contains("(source and sink)") {
                    parsed.insert((name.clone(), "source"));
                    parsed.insert((name, "sink"));
                } else {
                    parsed.insert((name, role));
                }
            }
        }
        assert_eq!(
            parsed,
            written,
            "{} changed: update this test and the command",
            spec.display()
        );
    }
    written
}

/// `shared/SPEC.md` in the nearest ancestor of the crate that has one.
fn spec_md() -> Option<PathBuf> {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|d| d.join("shared/SPEC.md"))
        .find(|p| p.is_file())
}

#[test]
fn list_covers_every_connector_of_the_specification() {
    let out = run(&["list", "--json"], T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut listed: BTreeSet<(String, &str)> = json["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let role = if c["role"] == "source" {
                "source"
            } else {
                "sink"
            };
            (c["name"].as_str().unwrap().to_owned(), role)
        })
        .collect();
    // Routes (snowflake) are documented sinks that are not connectors.
    for r in json["routes"].as_array().unwrap() {
        listed.insert((r["name"].as_str().unwrap().to_owned(), "sink"));
    }
    let missing: Vec<_> = specified().difference(&listed).cloned().collect();
    assert!(missing.is_empty(), "not listed: {missing:?}");

    // The text form names each of them too.
    let text = run(&["list"], T).stdout;
    for (name, _) in specified() {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("  {name} "))),
            "{name} not in:\n{text}"
        );
    }
}

#[test]
fn describe_prints_every_property_from_the_spec() {
    let out = run(&["describe", "clickhouse", "--json"], T);
    assert_eq!(out.code, Some(0), "{}", out.all());
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let spec = &sink_clickhouse::SPEC;
    let properties = json[0]["properties"].as_array().unwrap();
    assert_eq!(properties.len(), spec.properties.len());
    for (printed, p) in properties.iter().zip(spec.properties) {
        assert_eq!(printed["name"], p.name);
        assert_eq!(printed["required"], p.required);
        assert_eq!(printed["default"].as_str(), p.default);
        assert_eq!(printed["description"], p.description);
    }

    let text = run(&["describe", "clickhouse"], T).stdout;
    assert!(text.starts_with("clickhouse (sink)\n"), "{text}");
    assert!(
        text.contains("  table_name (required): a string\n"),
        "{text}"
    );
    assert!(
        text.contains("  batch_count (default `128`): a whole number\n      Rows per insert.\n"),
        "{text}"
    );
    assert!(
        text.contains("  password (secret): a secret string\n"),
        "{text}"
    );

    // A type that is both a source and a sink shows both.
    let text = run(&["describe", "pulsar"], T).stdout;
    assert!(text.starts_with("pulsar (source)\n"), "{text}");
    assert!(text.contains("\npulsar (sink)\n"), "{text}");
}

#[test]
fn describe_unknown_types_and_routes() {
    let out = run(&["describe", "clickhous"], T);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr,
        "connect: unknown connector type `clickhous`; did you mean `clickhouse`? (run `connect list` for every type)\n"
    );
    let out = run(&["describe", "snowflake"], T);
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout
            .starts_with("snowflake: not a connector of its own")
    );
    let out = run(&["describe", "pipeline"], T);
    assert_eq!(out.code, Some(0));
    assert!(out.stdout.contains("  on_bad_data "), "{}", out.stdout);
}

/// The property names of each connector section of `shared/SPEC.md` that
/// documents them in a table: (name, role) → names.
fn specified_properties(spec: &std::path::Path) -> Vec<((String, &'static str), Vec<String>)> {
    let text = std::fs::read_to_string(spec).unwrap();
    let mut out: Vec<((String, &'static str), Vec<String>)> = Vec::new();
    let mut role = "";
    let mut current: Option<(String, Vec<&'static str>)> = None;
    for line in text.lines() {
        if line.starts_with("## ") {
            role = match line {
                "## Sources" => "source",
                "## Sinks" => "sink",
                _ => "",
            };
            current = None;
        } else if let Some(heading) = line.strip_prefix("### ") {
            current = (!role.is_empty()).then(|| {
                let name = heading.split_whitespace().next().unwrap().to_owned();
                let roles = if heading.contains("(source and sink)") {
                    vec!["source", "sink"]
                } else {
                    vec![role]
                };
                (name, roles)
            });
        } else if let Some((name, roles)) = &current
            && let Some(cell) = line.strip_prefix("| `")
        {
            // `| `username`, `password` | no | ...`: every backticked name
            // of the first cell.
            let first = cell.split(" |").next().unwrap();
            let names: Vec<String> = format!("`{first}")
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            for role in roles {
                let key = (name.clone(), *role);
                match out.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, list)) => list.extend(names.iter().cloned()),
                    None => out.push((key, names.clone())),
                }
            }
        }
    }
    out
}

#[test]
fn describe_lists_every_property_of_the_specification() {
    // Without `shared/SPEC.md` beside the repository, the kafka source's
    // table as it was when this test was written.
    let documented = match spec_md() {
        Some(spec) => {
            let documented = specified_properties(&spec);
            for (name, role) in [
                ("kafka", "source"),
                ("http", "sink"),
                ("clickhouse", "sink"),
            ] {
                assert!(
                    documented.iter().any(|((n, r), _)| n == name && *r == role),
                    "the {name} {role} table was not read: {documented:?}"
                );
            }
            documented
        }
        None => vec![(
            ("kafka".to_owned(), "source"),
            [
                "brokers",
                "topic",
                "offset",
                "data_type",
                "group",
                "sasl",
                "username",
                "password",
                "tls.disable",
                "tls.skip_verify_server",
                "schema_registry_address",
                "schema_registry_api_key",
                "schema_registry_api_secret",
            ]
            .map(str::to_owned)
            .to_vec(),
        )],
    };
    let mut missing = Vec::new();
    for ((name, role), properties) in &documented {
        let out = run(&["describe", name, "--json"], T);
        assert_eq!(out.code, Some(0), "{}", out.all());
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let described = json
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["role"] == *role)
            .unwrap_or_else(|| panic!("no {role} `{name}` in {json}"));
        let names: Vec<&str> = described["properties"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|p| {
                std::iter::once(p["name"].as_str().unwrap()).chain(
                    p["aliases"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| a.as_str().unwrap()),
                )
            })
            .collect();
        for p in properties {
            // A documented group (`oauth2`) is described as dotted names
            // (`oauth2.enabled`, ...).
            let group = format!("{p}.");
            if !names.iter().any(|n| n == p || n.starts_with(&group)) {
                missing.push(format!("{name} {role}: `{p}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "documented but not described: {missing:#?}"
    );

    // The kafka sink documents its properties in prose.
    let out = run(&["describe", "kafka", "--json"], T);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let sink: Vec<&str> = json[1]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(json[1]["role"], "sink");
    for p in [
        "brokers",
        "topic",
        "partitions",
        "replication_factor",
        "batch_count",
        "data_type",
        "sasl",
        "username",
        "password",
        "tls.disable",
        "tls.skip_verify_server",
    ] {
        assert!(sink.contains(&p), "kafka sink: `{p}` not in {sink:?}");
    }
}
