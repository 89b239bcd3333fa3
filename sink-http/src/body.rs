//! Request bodies: one record rendered by a template or as a JSON object,
//! and batches of records as a JSON array or newline-delimited JSON.

use connector_core::Record;
use connector_core::format::template::Template;

/// How one record becomes text.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// The whole record as one JSON object (keys in schema order).
    Json,
    /// A `{{ .column }}` template.
    Template(Template),
}

impl Payload {
    /// A template, or [`Payload::Json`] for an empty or blank one.
    pub fn parse(template: &str) -> Result<Payload, String> {
        if template.trim().is_empty() {
            Ok(Payload::Json)
        } else {
            Template::parse(template).map(Payload::Template)
        }
    }

    /// Appends the record's text to `out`.
    ///
    /// ```
    /// use connector_core::{Record, Value};
    /// use sink_http::Payload;
    ///
    /// let record = Record::from_pairs([("device", Value::from("d1")), ("n", Value::Int64(7))]);
    /// let mut out = Vec::new();
    /// Payload::Json.render_into(&record, &mut out);
    /// assert_eq!(out, br#"{"device":"d1","n":7}"#);
    /// out.clear();
    /// Payload::parse("{{ .device }}={{.n}}").unwrap().render_into(&record, &mut out);
    /// assert_eq!(out, b"d1=7");
    /// ```
    pub fn render_into(&self, record: &Record, out: &mut Vec<u8>) {
        match self {
            Payload::Json => {
                // Serializing values to a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, record);
            }
            Payload::Template(template) => {
                let mut text = String::new();
                template.render_into(record, &mut text);
                out.extend_from_slice(text.as_bytes());
            }
        }
    }

    /// The record's text.
    pub fn render(&self, record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        self.render_into(record, &mut out);
        out
    }
}

/// Whether (and how) several records share one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchFormat {
    /// One request per record (`none`, the default).
    #[default]
    None,
    /// `[rec1,rec2,...]`: each record's text is an element, so with a
    /// template it must render valid JSON (`{{ json .col }}` helps).
    JsonArray,
    /// One record's text per line, each line ending in `\n`.
    Ndjson,
}

impl BatchFormat {
    /// Parses `none`, `json_array`, `ndjson`.
    pub fn parse(s: &str) -> Option<BatchFormat> {
        match s {
            "none" => Some(BatchFormat::None),
            "json_array" => Some(BatchFormat::JsonArray),
            "ndjson" => Some(BatchFormat::Ndjson),
            _ => None,
        }
    }

    /// The content type that suits the format when the user set none.
    pub fn default_content_type(self) -> &'static str {
        match self {
            BatchFormat::Ndjson => "application/x-ndjson",
            _ => "application/json",
        }
    }

    /// One body holding `records`.
    ///
    /// ```
    /// use connector_core::{Record, Value};
    /// use sink_http::{BatchFormat, Payload};
    ///
    /// let records: Vec<Record> = (1..=2).map(|n| Record::from_pairs([("n", Value::Int64(n))])).collect();
    /// let refs: Vec<&Record> = records.iter().collect();
    /// assert_eq!(BatchFormat::JsonArray.body(&Payload::Json, &refs), br#"[{"n":1},{"n":2}]"#);
    /// assert_eq!(BatchFormat::Ndjson.body(&Payload::Json, &refs), b"{\"n\":1}\n{\"n\":2}\n");
    /// ```
    pub fn body(self, payload: &Payload, records: &[&Record]) -> Vec<u8> {
        let mut out = Vec::with_capacity(records.len() * 64);
        match self {
            BatchFormat::None => {
                for record in records {
                    payload.render_into(record, &mut out);
                }
            }
            BatchFormat::JsonArray => {
                out.push(b'[');
                for (i, record) in records.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    payload.render_into(record, &mut out);
                }
                out.push(b']');
            }
            BatchFormat::Ndjson => {
                for record in records {
                    payload.render_into(record, &mut out);
                    out.push(b'\n');
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::Value;

    #[test]
    fn blank_template_means_json() {
        assert_eq!(Payload::parse("  "), Ok(Payload::Json));
        assert!(Payload::parse("{{ if .x }}").is_err());
    }

    #[test]
    fn template_array_elements() {
        let records: Vec<Record> = ["a", "b"]
            .iter()
            .map(|s| Record::from_pairs([("s", Value::from(*s))]))
            .collect();
        let refs: Vec<&Record> = records.iter().collect();
        let p = Payload::parse(r#"{"msg": {{ json .s }}}"#).unwrap();
        let body = BatchFormat::JsonArray.body(&p, &refs);
        let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, serde_json::json!([{"msg": "a"}, {"msg": "b"}]));
    }
}
