//! `connect list` and `connect describe`, printed from the connectors'
//! own specs.

use std::fmt::Write as _;

use connector_core::config::{ConnectorSpec, PropertyKind, PropertySpec, Role};
use serde_json::{Value as Json, json};

use crate::plan::OPTIONS;
use crate::registry::{self, ROUTES};

/// `connect list`: every type with its role and description.
pub fn list_text() -> String {
    let mut out = String::new();
    let width = registry::SOURCES
        .iter()
        .map(|t| t.spec.name.len())
        .chain(registry::SINKS.iter().map(|t| t.spec.name.len()))
        .chain(ROUTES.iter().map(|r| r.name.len()))
        .max()
        .unwrap_or(0);
    for role in [Role::Source, Role::Sink] {
        let _ = writeln!(
            out,
            "{}:",
            if role == Role::Source {
                "Sources"
            } else {
                "Sinks"
            }
        );
        for spec in registry::specs(role) {
            let _ = writeln!(out, "  {:width$}  {}", spec.name, spec.description);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Routes:");
    for route in ROUTES {
        let _ = writeln!(out, "  {:width$}  {}", route.name, route.how);
    }
    out.push_str("\nRun `connect describe TYPE` for a type's properties, `connect describe pipeline` for the file layout.\n");
    out
}

/// `connect list --json`.
pub fn list_json() -> Json {
    let connectors: Vec<Json> = [Role::Source, Role::Sink]
        .into_iter()
        .flat_map(registry::specs)
        .map(spec_json)
        .collect();
    let routes: Vec<Json> = ROUTES
        .iter()
        .map(|r| json!({"name": r.name, "route": r.how}))
        .collect();
    json!({"connectors": connectors, "routes": routes})
}

/// Every spec called `name` (a type can be a source and a sink).
pub fn find(name: &str) -> Vec<&'static ConnectorSpec> {
    [Role::Source, Role::Sink]
        .into_iter()
        .flat_map(registry::specs)
        .filter(|s| s.name == name)
        .collect()
}

/// Every type name, for "did you mean".
pub fn all_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = [Role::Source, Role::Sink]
        .into_iter()
        .flat_map(registry::names)
        .chain(ROUTES.iter().map(|r| r.name))
        .chain(["pipeline"])
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn kind_name(kind: &PropertyKind) -> &'static str {
    match kind {
        PropertyKind::String => "string",
        PropertyKind::Secret => "secret",
        PropertyKind::Integer => "integer",
        PropertyKind::Boolean => "boolean",
        PropertyKind::Duration => "duration",
        PropertyKind::List => "list",
        PropertyKind::Map => "map",
        PropertyKind::Choice(_) => "choice",
        PropertyKind::Url => "url",
    }
}

fn property_json(p: &PropertySpec) -> Json {
    let mut v = json!({
        "name": p.name,
        "required": p.required,
        "default": p.default,
        "kind": kind_name(&p.kind),
        "expected": p.kind.expected(),
        "secret": p.is_secret(),
        "description": p.description,
    });
    if let PropertyKind::Choice(options) = p.kind {
        v["choices"] = json!(options);
    }
    if !p.aliases.is_empty() {
        v["aliases"] = json!(p.aliases);
    }
    v
}

fn spec_json(spec: &ConnectorSpec) -> Json {
    json!({
        "name": spec.name,
        "role": spec.role.to_string(),
        "description": spec.description,
        "properties": spec.properties.iter().map(property_json).collect::<Vec<_>>(),
    })
}

/// `connect describe TYPE --json`.
pub fn describe_json(specs: &[&ConnectorSpec]) -> Json {
    Json::Array(specs.iter().map(|s| spec_json(s)).collect())
}

/// `connect describe TYPE`: description, properties, and a starting point
/// for a pipeline file.
pub fn describe_text(spec: &ConnectorSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({})", spec.name, spec.role);
    let _ = writeln!(out, "  {}\n", spec.description);
    let _ = writeln!(out, "Properties:");
    for p in spec.properties {
        let mut head = format!("  {}", p.name);
        let mut notes = Vec::new();
        if p.required {
            notes.push("required".to_owned());
        }
        match p.default {
            Some("") => notes.push("default empty".to_owned()),
            Some(d) => notes.push(format!("default `{d}`")),
            None => {}
        }
        if p.is_secret() {
            notes.push("secret".to_owned());
        }
        if !p.aliases.is_empty() {
            notes.push(format!("also `{}`", p.aliases.join("`, `")));
        }
        if !notes.is_empty() {
            let _ = write!(head, " ({})", notes.join(", "));
        }
        let _ = writeln!(out, "{head}: {}", p.kind.expected());
        let _ = writeln!(out, "      {}", p.description);
    }
    let section = match spec.role {
        Role::Source => "[source]".to_owned(),
        Role::Sink => "[[sinks]]".to_owned(),
    };
    let _ = writeln!(
        out,
        "\nIn a TOML pipeline file:\n  {section}\n  type = \"{}\"",
        spec.name
    );
    for p in spec.properties.iter().filter(|p| p.required) {
        let value = match p.kind {
            PropertyKind::Choice(options) => format!("\"{}\"", options.first().unwrap_or(&"")),
            PropertyKind::Secret => format!("\"${{{}}}\"", env_name(spec.name, p.name)),
            PropertyKind::Integer => "0".to_owned(),
            PropertyKind::Boolean => "false".to_owned(),
            PropertyKind::List => "[\"...\"]".to_owned(),
            PropertyKind::Map => "{}".to_owned(),
            _ => "\"...\"".to_owned(),
        };
        let key = if p.name.contains('.') {
            format!("\"{}\"", p.name)
        } else {
            p.name.to_owned()
        };
        let _ = writeln!(out, "  {key} = {value}");
    }
    out
}

/// `CLICKHOUSE_PASSWORD` for a secret: where the example reads it from.
fn env_name(connector: &str, property: &str) -> String {
    format!("{connector}_{property}")
        .to_ascii_uppercase()
        .replace(['.', '-'], "_")
}

/// `connect describe pipeline`: the file layout, options and transforms.
pub fn pipeline_text() -> String {
    let mut out = String::from(
        "A pipeline file (TOML, YAML or JSON) has:\n\
         \x20 name         the pipeline's name (default: the file name); also the source's stable id\n\
         \x20 description  free text\n\
         \x20 source       a table: `type` and the connector's properties\n\
         \x20 transforms   a list of tables: `type` (filter, select, drop, rename) and settings\n\
         \x20 sinks        a list of tables: `type` and properties (`sink` for just one)\n\
         \x20 dead_letter  a sink table for bad records\n\
         \x20 pipeline     options (below)\n\n\
         String values may use ${VAR}, ${VAR:-default} or ${VAR:?message} from the environment.\n\
         Dotted property names (`tls.disable`) may be quoted keys or nested tables.\n\n\
         Options (`pipeline` table):\n",
    );
    for (name, description) in OPTIONS {
        let _ = writeln!(out, "  {name:17} {description}");
    }
    out.push_str(
        "\nTransforms:\n\
         \x20 filter  `where = \"number > 50\"`, or `field`/`op`/`value`, or `all`/`any` lists of conditions;\n\
         \x20         ops: ==, !=, >, >=, <, <=, in, not_in, contains, starts_with, ends_with, matches, exists, missing\n\
         \x20 select  `fields = [\"a\", \"b\"]`: keep these fields, in this order\n\
         \x20 drop    `fields = [\"a\"]`: remove these fields\n\
         \x20 rename  `fields = { old = \"new\" }`\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_listed_with_its_description() {
        let text = list_text();
        for role in [Role::Source, Role::Sink] {
            for spec in registry::specs(role) {
                assert!(text.contains(spec.description), "{} missing", spec.name);
            }
        }
        assert!(text.contains("snowflake"));
    }

    #[test]
    fn describe_shows_every_property() {
        let spec = &source_generator::SPEC;
        let text = describe_text(spec);
        for p in spec.properties {
            assert!(text.contains(p.description), "{}", p.name);
        }
        assert!(
            text.contains("  template (required): one of `iot`, `user_logins`, `devops`\n"),
            "{text}"
        );
        assert!(
            text.contains("  interval (default `200ms`): a duration"),
            "{text}"
        );
        assert!(
            text.contains("[source]\n  type = \"stream_generator\"\n  template = \"iot\"\n"),
            "{text}"
        );
    }
}
