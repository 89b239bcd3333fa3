//! Text templates in the Go template syntax the product documents use:
//! `{{ .column }}`.
//!
//! Supported:
//! - `{{ .col }}` and `{{.col}}`: a column's value; strings are inserted
//!   as they are, numbers and booleans in their usual text form, timestamps
//!   as RFC 3339, structs, arrays and maps as JSON.
//! - `{{ .a.b }}`: a nested field (structs, string-keyed maps, array indexes).
//! - `{{ . }}`: the whole record as a JSON object.
//! - `{{ json .col }}` / `{{ json . }}`: the value as JSON (strings quoted),
//!   for building JSON bodies.
//! - `{{- ... -}}`: trims white space before / after the action, as in Go.
//! - A missing column renders `<no value>`, as Go does.
//!
//! Anything else (`if`, `range`, pipelines, variables) is rejected when the
//! template is parsed, naming the action.
//!
//! ```
//! use connector_core::{Record, Value, format::template::Template};
//!
//! let t = Template::parse("{{ .device }} is at {{.number}}% ({{ .nope }})").unwrap();
//! let r = Record::from_pairs([("device", Value::from("device_1")), ("number", 42.into())]);
//! assert_eq!(t.render(&r), "device_1 is at 42% (<no value>)");
//! ```

use std::fmt::Write as _;

use crate::record::Record;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Field { path: String, json: bool },
    Whole,
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    source: String,
}

/// What a missing field renders as, as in Go's `text/template`.
pub const NO_VALUE: &str = "<no value>";

impl Template {
    /// Parses a template; the error says which action is not supported or
    /// where a `{{` is left open.
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut text = String::new();
        while let Some(open) = rest.find("{{") {
            text.push_str(&rest[..open]);
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!("template `{source}`: `{{{{` at byte {open} is never closed")
            })?;
            let mut action = &after[..close];
            rest = &after[close + 2..];
            if let Some(a) = action.strip_prefix('-') {
                action = a;
                let trimmed = text.trim_end().len();
                text.truncate(trimmed);
            }
            let trim_after = action.ends_with('-')
                && action.len() > 1
                && action[..action.len() - 1].ends_with(char::is_whitespace);
            if trim_after {
                action = &action[..action.len() - 1];
                rest = rest.trim_start();
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(parse_action(action.trim(), source)?);
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            parts,
            source: source.to_owned(),
        })
    }

    /// The template text as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The column paths the template reads, for validating it against a schema.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field { path, .. } => Some(path.as_str()),
            _ => None,
        })
    }

    /// Renders the template for one record.
    pub fn render(&self, record: &Record) -> String {
        let mut out = String::new();
        self.render_into(record, &mut out);
        out
    }

    /// Renders the template for one record, appending to `out`.
    pub fn render_into(&self, record: &Record, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Whole => out.push_str(&serde_json::to_string(record).unwrap_or_default()),
                Part::Field { path, json } => match record.get_path(path) {
                    None => out.push_str(NO_VALUE),
                    Some(v) if *json => out.push_str(&serde_json::to_string(v).unwrap_or_default()),
                    Some(Value::String(s)) => out.push_str(s),
                    Some(v) => {
                        let _ = write!(out, "{v}");
                    }
                },
            }
        }
    }
}

fn parse_action(action: &str, source: &str) -> Result<Part, String> {
    let unsupported = || {
        format!(
            "template `{source}`: `{{{{ {action} }}}}` is not supported (supported: `{{{{ .column }}}}`, `{{{{ .a.b }}}}`, `{{{{ . }}}}`, `{{{{ json .column }}}}`)"
        )
    };
    let (json, target) = match action.strip_prefix("json") {
        Some(rest) if rest.starts_with(char::is_whitespace) => (true, rest.trim()),
        _ => (false, action),
    };
    if target == "." {
        // The whole record renders as JSON with or without `json`.
        return Ok(Part::Whole);
    }
    let path = target.strip_prefix('.').ok_or_else(unsupported)?;
    let valid = !path.is_empty()
        && path.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '@' || c == '$')
        });
    if !valid {
        return Err(unsupported());
    }
    Ok(Part::Field {
        path: path.to_owned(),
        json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record::from_pairs([
            ("name", Value::from("ada")),
            ("n", Value::Int64(3)),
            ("ok", Value::Boolean(true)),
            (
                "user",
                Value::from_json(serde_json::json!({"id": 7, "tags": ["a", "b"]})),
            ),
        ])
    }

    #[test]
    fn renders_fields_paths_and_missing() {
        let t = Template::parse(
            "{{ .name }}/{{.n}}/{{ .ok }}/{{ .user.id }}/{{ .user.tags }}/{{ .user.nope }}",
        )
        .unwrap();
        assert_eq!(t.render(&record()), r#"ada/3/true/7/["a","b"]/<no value>"#);
        assert_eq!(
            t.fields().collect::<Vec<_>>(),
            ["name", "n", "ok", "user.id", "user.tags", "user.nope"]
        );
    }

    #[test]
    fn whole_record_and_json_function() {
        let t = Template::parse(r#"{"who": {{ json .name }}, "all": {{ . }}}"#).unwrap();
        let out = t.render(&record());
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["who"], "ada");
        assert_eq!(parsed["all"]["user"]["id"], 7);
    }

    #[test]
    fn trim_markers() {
        let t = Template::parse("a  {{- .n -}}  b").unwrap();
        assert_eq!(t.render(&record()), "a3b");
    }

    #[test]
    fn rejects_unsupported_actions() {
        for bad in [
            "{{ if .x }}y{{ end }}",
            "{{ name }}",
            "{{ .a | upper }}",
            "{{ .a..b }}",
        ] {
            let err = Template::parse(bad).unwrap_err();
            assert!(err.contains("is not supported"), "{bad}: {err}");
        }
        assert!(
            Template::parse("{{ .a ")
                .unwrap_err()
                .contains("never closed")
        );
    }

    #[test]
    fn plain_text_passes_through() {
        let t = Template::parse("no actions, } or { alone").unwrap();
        assert_eq!(t.render(&record()), "no actions, } or { alone");
    }
}
