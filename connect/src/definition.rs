//! Pipeline definitions as written: a TOML, YAML or JSON file, or the
//! command line's `--source`/`--sink`/`-p` flags, read into one JSON tree
//! with `${VAR}` references replaced.

use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::env;
use crate::issues::Issues;

/// A pipeline definition before it is validated.
#[derive(Debug, Clone)]
pub struct Definition {
    /// Where it came from: the file's path, or `command line`.
    pub origin: String,
    /// The name used when the definition has no `name`: the file's stem.
    pub default_name: Option<String>,
    /// The top-level table.
    pub root: Map<String, Json>,
}

/// The file formats, by extension.
const EXTENSIONS: &str = "`.toml`, `.yaml`, `.yml` or `.json`";

impl Definition {
    /// Reads and parses a pipeline file, then substitutes `${VAR}` from
    /// the environment.
    pub fn load(path: &Path) -> Result<Definition, Issues> {
        let origin = path.display().to_string();
        let mut issues = Issues::new(&origin);
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                issues.add("", format!("cannot read the pipeline file: {e}"));
                return Err(issues);
            }
        };
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let parsed: Result<Json, String> = match extension.as_deref() {
            Some("toml") => toml::from_str(&text).map_err(|e| format!("invalid TOML: {e}")),
            Some("yaml" | "yml") => {
                serde_yaml_ng::from_str(&text).map_err(|e| format!("invalid YAML: {e}"))
            }
            Some("json") => serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}")),
            _ => Err(format!(
                "cannot tell the file's format from its name: use {EXTENSIONS}"
            )),
        };
        let root = match parsed {
            Ok(Json::Object(root)) => root,
            Ok(Json::Null) => Map::new(),
            Ok(_) => {
                issues.add("", "expected a table with `source` and `sinks` at the top");
                return Err(issues);
            }
            Err(e) => {
                issues.add("", e.trim_end().to_owned());
                return Err(issues);
            }
        };
        let default_name = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned);
        Definition {
            origin,
            default_name,
            root,
        }
        .substituted(&env::process_env)
    }

    /// Replaces `${VAR}` in every string value; every missing variable is
    /// reported with the key that holds it.
    pub fn substituted(
        mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Definition, Issues> {
        let mut issues = Issues::new(&self.origin);
        for (key, value) in self.root.iter_mut() {
            substitute_in(value, key, lookup, &mut issues);
        }
        issues.into_result(self)
    }
}

fn substitute_in(
    value: &mut Json,
    path: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    issues: &mut Issues,
) {
    match value {
        Json::String(s) => match env::substitute(s, lookup) {
            Ok(new) => *s = new,
            Err(e) => issues.add(path, e),
        },
        Json::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                substitute_in(item, &format!("{path}.{i}"), lookup, issues);
            }
        }
        Json::Object(map) => {
            for (k, v) in map.iter_mut() {
                substitute_in(v, &format!("{path}.{k}"), lookup, issues);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_three_formats_give_the_same_tree() {
        let dir = tempfile::tempdir().unwrap();
        let toml = write(
            dir.path(),
            "p.toml",
            "[source]\ntype = \"kafka\"\n\"tls.disable\" = true\n[source.sasl_opts]\nx = 1\n",
        );
        let yaml = write(
            dir.path(),
            "p.yaml",
            "source:\n  type: kafka\n  tls.disable: true\n  sasl_opts:\n    x: 1\n",
        );
        let json = write(
            dir.path(),
            "p.json",
            r#"{"source": {"type": "kafka", "tls.disable": true, "sasl_opts": {"x": 1}}}"#,
        );
        let trees: Vec<_> = [toml, yaml, json]
            .iter()
            .map(|p| Definition::load(p).unwrap().root)
            .collect();
        assert_eq!(trees[0], trees[1]);
        assert_eq!(trees[1], trees[2]);
    }

    #[test]
    fn parse_errors_name_the_file_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "bad.toml", "[source\n");
        let err = Definition::load(&p).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: invalid TOML: ", p.display())),
            "{err}"
        );
        let p = write(dir.path(), "p.ini", "");
        let err = Definition::load(&p).unwrap_err().to_string();
        assert!(
            err.ends_with("use `.toml`, `.yaml`, `.yml` or `.json`"),
            "{err}"
        );
    }

    #[test]
    fn substitution_reports_the_key() {
        let def = Definition {
            origin: "p.toml".into(),
            default_name: None,
            root: serde_json::json!({"source": {"password": "${PW}", "hosts": ["${H}", "x"]}})
                .as_object()
                .unwrap()
                .clone(),
        };
        let lookup = |n: &str| (n == "H").then(|| "h1".to_owned());
        let err = def.clone().substituted(&lookup).unwrap_err().to_string();
        assert_eq!(
            err,
            "p.toml: source.password: environment variable `PW` is not set (write `${PW:-default}` to give a default)"
        );
        let lookup = |n: &str| Some(format!("<{n}>"));
        let ok = def.substituted(&lookup).unwrap();
        assert_eq!(
            ok.root["source"],
            serde_json::json!({"password": "<PW>", "hosts": ["<H>", "x"]})
        );
    }
}
