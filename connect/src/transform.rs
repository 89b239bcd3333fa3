//! Record transforms of pipeline files: `filter`, `select`, `drop`, `rename`.
//!
//! ```toml
//! [[transforms]]
//! type = "filter"
//! where = "number > 50"                    # or: field = "number", op = ">", value = 50
//!
//! [[transforms]]
//! type = "filter"
//! any = ["region == 'eu-central-1'", { field = "usage_user", op = ">=", value = 90 }]
//!
//! [[transforms]]
//! type = "select"                          # keep these fields, in this order
//! fields = ["device", "number"]
//!
//! [[transforms]]
//! type = "rename"
//! fields = { number = "value" }            # old name = new name
//! ```

use std::sync::Arc;

use connector_core::schema::{Field, Schema};
use connector_core::{Pipeline, Record, Value};
use serde_json::{Map, Value as Json};

/// One transform step.
#[derive(Debug, Clone)]
pub enum Transform {
    /// Keeps the records for which the condition holds.
    Filter(Condition),
    /// Keeps only these fields, in this order (a missing one becomes null).
    Select(Vec<String>),
    /// Removes these fields.
    Drop(Vec<String>),
    /// Renames fields: (old, new).
    Rename(Vec<(String, String)>),
}

/// The transform types, for errors and `connect describe`.
pub const TYPES: &[&str] = &["filter", "select", "drop", "rename"];

impl Transform {
    /// Reads a transform table (`type` plus its settings).
    pub fn from_json(object: &Map<String, Json>) -> Result<Transform, String> {
        let kind = match object.get("type") {
            Some(Json::String(t)) => t.as_str(),
            Some(_) => return Err("`type` must be a string".into()),
            None => {
                return Err(format!(
                    "missing `type` (one of {})",
                    quoted(TYPES).join(", ")
                ));
            }
        };
        let allowed: &[&str] = match kind {
            "filter" => &["type", "where", "field", "op", "value", "all", "any"],
            "select" | "drop" | "rename" => &["type", "fields"],
            other => {
                let hint = crate::registry::suggest(other, TYPES.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown transform type `{other}`{hint} (types: {})",
                    TYPES.join(", ")
                ));
            }
        };
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                let hint = crate::registry::suggest(key, allowed.iter().copied())
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(format!(
                    "{kind}: unknown setting `{key}`{hint} (settings: {})",
                    allowed[1..].join(", ")
                ));
            }
        }
        match kind {
            "filter" => {
                let mut rest = object.clone();
                rest.remove("type");
                Condition::from_json(&Json::Object(rest))
                    .map(Transform::Filter)
                    .map_err(|e| format!("filter: {e}"))
            }
            "select" | "drop" => {
                let fields = match object.get("fields") {
                    Some(Json::Array(items)) => items
                        .iter()
                        .map(|i| i.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>(),
                    Some(Json::String(s)) => Some(
                        s.split(',')
                            .map(str::trim)
                            .filter(|f| !f.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    ),
                    _ => None,
                }
                .filter(|f: &Vec<String>| !f.is_empty())
                .ok_or_else(|| {
                    format!("{kind}: `fields` must be a non-empty list of field names")
                })?;
                Ok(if kind == "select" {
                    Transform::Select(fields)
                } else {
                    Transform::Drop(fields)
                })
            }
            _ => {
                let pairs = match object.get("fields") {
                    Some(Json::Object(map)) if !map.is_empty() => map
                        .iter()
                        .map(|(old, new)| new.as_str().map(|n| (old.clone(), n.to_owned())))
                        .collect::<Option<Vec<_>>>(),
                    _ => None,
                }
                .ok_or_else(|| {
                    "rename: `fields` must be a table of old name = new name".to_owned()
                })?;
                Ok(Transform::Rename(pairs))
            }
        }
    }

    /// Reads the command line's `--rename old=new`.
    pub fn parse_rename(text: &str) -> Result<(String, String), String> {
        match text.split_once('=') {
            Some((old, new)) if !old.trim().is_empty() && !new.trim().is_empty() => {
                Ok((old.trim().to_owned(), new.trim().to_owned()))
            }
            _ => Err(format!("`{text}`: expected OLD=NEW")),
        }
    }

    /// Adds the step to a pipeline.
    pub fn apply(self, pipeline: Pipeline) -> Pipeline {
        match self.compile() {
            Compiled::Filter(condition) => pipeline.filter(move |r| condition.matches(r)),
            Compiled::Map(f) => pipeline.map(f),
        }
    }

    /// The step as a record function.
    pub fn compile(self) -> Compiled {
        match self {
            Transform::Filter(condition) => Compiled::Filter(condition),
            Transform::Select(fields) => {
                let mut reshape = Reshape::new(move |schema| {
                    fields
                        .iter()
                        .map(|name| match schema.index_of(name) {
                            Some(i) => (Some(i), schema.field(i).clone()),
                            None => (
                                None,
                                Field::new(name.clone(), connector_core::DataType::Json),
                            ),
                        })
                        .collect()
                });
                Compiled::Map(Box::new(move |r| reshape.apply(r)))
            }
            Transform::Drop(fields) => {
                let mut reshape = Reshape::new(move |schema| {
                    schema
                        .fields()
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| !fields.contains(&f.name))
                        .map(|(i, f)| (Some(i), f.clone()))
                        .collect()
                });
                Compiled::Map(Box::new(move |r| reshape.apply(r)))
            }
            Transform::Rename(pairs) => {
                let mut reshape = Reshape::new(move |schema| {
                    schema
                        .fields()
                        .iter()
                        .enumerate()
                        .map(|(i, f)| {
                            let mut f = f.clone();
                            if let Some((_, new)) = pairs.iter().find(|(old, _)| *old == f.name) {
                                f.name = new.clone();
                            }
                            (Some(i), f)
                        })
                        .collect()
                });
                Compiled::Map(Box::new(move |r| reshape.apply(r)))
            }
        }
    }
}

/// A transform ready to run on records.
pub enum Compiled {
    /// Keeps the records the condition holds for.
    Filter(Condition),
    /// Rewrites each record.
    Map(Box<dyn FnMut(Record) -> Record + Send>),
}

impl Compiled {
    /// Runs the step on one record; `None` when a filter drops it.
    pub fn run(&mut self, record: Record) -> Option<Record> {
        match self {
            Compiled::Filter(c) => c.matches(&record).then_some(record),
            Compiled::Map(f) => Some(f(record)),
        }
    }
}

/// Output field → (input position, field).
type Layout = Vec<(Option<usize>, Field)>;

/// The last input schema, its output schema, and where each output value
/// comes from.
type Cached = (Arc<Schema>, Arc<Schema>, Vec<Option<usize>>);

/// Reshapes records field by field. Records of one shape share their
/// schema, so the new schema is computed once per input schema, not per
/// record.
struct Reshape<F> {
    plan: F,
    last: Option<Cached>,
}

impl<F: FnMut(&Schema) -> Layout> Reshape<F> {
    fn new(plan: F) -> Self {
        Reshape { plan, last: None }
    }

    fn apply(&mut self, mut record: Record) -> Record {
        let cached = self
            .last
            .as_ref()
            .is_some_and(|(input, _, _)| Arc::ptr_eq(input, &record.schema));
        if !cached {
            let layout = (self.plan)(&record.schema);
            let (positions, fields): (Vec<_>, Vec<_>) = layout.into_iter().unzip();
            self.last = Some((
                record.schema.clone(),
                Arc::new(Schema::new(fields)),
                positions,
            ));
        }
        let (_, output, positions) = self.last.as_ref().expect("layout computed above");
        let mut old = std::mem::take(&mut record.values);
        record.values = positions
            .iter()
            .map(|p| p.map_or(Value::Null, |i| std::mem::take(&mut old[i])))
            .collect();
        record.schema = output.clone();
        record
    }
}

/// A condition on a record's fields.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `path op literal`.
    Compare {
        /// Field name or dotted path into nested values.
        path: String,
        /// The comparison.
        op: Op,
        /// What the field is compared with.
        value: Literal,
    },
    /// Every condition holds.
    All(Vec<Condition>),
    /// At least one condition holds.
    Any(Vec<Condition>),
}

/// A comparison operator.
#[derive(Debug, Clone)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `in [..]`
    In,
    /// `not_in [..]`
    NotIn,
    /// Substring of a string, or element of an array.
    Contains,
    /// String prefix.
    StartsWith,
    /// String suffix.
    EndsWith,
    /// Regular expression search.
    Matches(regex::Regex),
    /// The field is present and not null.
    Exists,
    /// The field is missing or null.
    Missing,
}

const OPS: &str =
    "==, !=, >, >=, <, <=, in, not_in, contains, starts_with, ends_with, matches, exists, missing";

impl Op {
    fn parse(word: &str) -> Option<Op> {
        Some(match word {
            "==" | "=" | "eq" => Op::Eq,
            "!=" | "<>" | "ne" => Op::Ne,
            ">" | "gt" => Op::Gt,
            ">=" | "ge" | "gte" => Op::Ge,
            "<" | "lt" => Op::Lt,
            "<=" | "le" | "lte" => Op::Le,
            "in" => Op::In,
            "not_in" | "not in" => Op::NotIn,
            "contains" => Op::Contains,
            "starts_with" => Op::StartsWith,
            "ends_with" => Op::EndsWith,
            // The pattern is compiled once the literal is known.
            "matches" | "=~" => Op::Matches(regex::Regex::new("").expect("empty regex")),
            "exists" | "is not null" => Op::Exists,
            "missing" | "is null" => Op::Missing,
            _ => return None,
        })
    }

    fn takes_value(&self) -> bool {
        !matches!(self, Op::Exists | Op::Missing)
    }
}

/// A literal a field is compared with, with its forms precomputed.
#[derive(Debug, Clone)]
pub struct Literal {
    json: Json,
    number: Option<f64>,
    /// The literal as a time (RFC 3339 text, or a number of Unix milliseconds).
    micros: Option<i64>,
}

impl Literal {
    fn new(json: Json) -> Literal {
        let number = json.as_f64();
        let micros = match &json {
            Json::String(s) => chrono::DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.timestamp_micros()),
            Json::Number(n) => n.as_i64().map(|ms| ms.saturating_mul(1000)),
            _ => None,
        };
        Literal {
            json,
            number,
            micros,
        }
    }
}

impl Condition {
    /// Parses `path op value` (`number > 50`, `region == 'eu-central-1'`,
    /// `tags contains "x"`, `device in ["a", "b"]`, `user missing`).
    pub fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        let path_end = text
            .find(|c: char| c.is_whitespace() || "=!<>".contains(c))
            .unwrap_or(text.len());
        let (path, rest) = text.split_at(path_end);
        if path.is_empty() {
            return Err(format!(
                "`{text}`: expected `FIELD OP VALUE`, e.g. `number > 50`"
            ));
        }
        let rest = rest.trim_start();
        let (op_text, value_text) = if rest.starts_with(|c: char| "=!<>".contains(c)) {
            let end = rest
                .find(|c: char| !"=!<>~".contains(c))
                .unwrap_or(rest.len());
            (&rest[..end], rest[end..].trim())
        } else {
            // Word operators, longest first so `is not null` wins over `is null`.
            const WORDS: &[&str] = &[
                "is not null",
                "is null",
                "not in",
                "not_in",
                "in",
                "contains",
                "starts_with",
                "ends_with",
                "matches",
                "exists",
                "missing",
                "eq",
                "ne",
                "gte",
                "gt",
                "lte",
                "lt",
                "ge",
                "le",
            ];
            match WORDS.iter().find(|w| {
                rest.strip_prefix(**w)
                    .is_some_and(|after| after.is_empty() || after.starts_with(char::is_whitespace))
            }) {
                Some(word) => (*word, rest[word.len()..].trim()),
                None => (rest.split_whitespace().next().unwrap_or(""), ""),
            }
        };
        if op_text.is_empty() {
            return Err(format!("`{text}`: missing operator (one of {OPS})"));
        }
        let op = Op::parse(op_text)
            .ok_or_else(|| format!("`{text}`: unknown operator `{op_text}` (one of {OPS})"))?;
        let value = if op.takes_value() {
            if value_text.is_empty() {
                return Err(format!("`{text}`: missing the value after `{op_text}`"));
            }
            Some(parse_literal(value_text))
        } else {
            if !value_text.is_empty() {
                return Err(format!(
                    "`{text}`: `{op_text}` takes no value, found `{value_text}`"
                ));
            }
            None
        };
        Condition::compare(path, op, value).map_err(|e| format!("`{text}`: {e}"))
    }

    /// Reads a condition: a string (see [`Condition::parse`]), or a table
    /// with `where`, `field`/`op`/`value`, `all` or `any`.
    pub fn from_json(json: &Json) -> Result<Condition, String> {
        let object = match json {
            Json::String(s) => return Condition::parse(s),
            Json::Object(o) => o,
            _ => {
                return Err(
                    "a condition is a string such as \"number > 50\" or a table with `field`, `op` and `value`".into(),
                );
            }
        };
        let mut parts = Vec::new();
        if let Some(w) = object.get("where") {
            let text = w
                .as_str()
                .ok_or("`where` must be a string such as \"number > 50\"")?;
            parts.push(Condition::parse(text)?);
        }
        if let Some(field) = object.get("field") {
            let path = field.as_str().ok_or("`field` must be a string")?;
            let op_text = match object.get("op") {
                Some(Json::String(s)) => s.as_str(),
                Some(_) => return Err("`op` must be a string".into()),
                None => return Err(format!("`field` needs `op` (one of {OPS})")),
            };
            let op = Op::parse(op_text)
                .ok_or_else(|| format!("unknown operator `{op_text}` (one of {OPS})"))?;
            let value = object.get("value").cloned();
            if op.takes_value() && value.is_none() {
                return Err(format!("`op = \"{op_text}\"` needs a `value`"));
            }
            parts.push(Condition::compare(path, op, value.map(Literal::new))?);
        } else if object.contains_key("op") || object.contains_key("value") {
            return Err("`op` and `value` need a `field`".into());
        }
        for (key, all) in [("all", true), ("any", false)] {
            if let Some(items) = object.get(key) {
                let items = items
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| format!("`{key}` must be a non-empty list of conditions"))?;
                let conditions = items
                    .iter()
                    .map(Condition::from_json)
                    .collect::<Result<Vec<_>, _>>()?;
                parts.push(if all {
                    Condition::All(conditions)
                } else {
                    Condition::Any(conditions)
                });
            }
        }
        match parts.len() {
            0 => Err("no condition: give `where`, `field`/`op`/`value`, `all` or `any`".into()),
            1 => Ok(parts.remove(0)),
            _ => Ok(Condition::All(parts)),
        }
    }

    fn compare(path: &str, op: Op, value: Option<Literal>) -> Result<Condition, String> {
        let value = value.unwrap_or_else(|| Literal::new(Json::Null));
        let op = match op {
            Op::Matches(_) => {
                let pattern = value
                    .json
                    .as_str()
                    .ok_or("`matches` needs a regular expression string")?;
                Op::Matches(
                    regex::Regex::new(pattern)
                        .map_err(|e| format!("invalid regular expression: {e}"))?,
                )
            }
            Op::In | Op::NotIn if !value.json.is_array() => {
                return Err("`in` and `not_in` need a list, e.g. [\"a\", \"b\"]".into());
            }
            Op::Gt | Op::Ge | Op::Lt | Op::Le
                if value.number.is_none() && !value.json.is_string() =>
            {
                return Err("ordering compares with a number, a string or a time".into());
            }
            Op::StartsWith | Op::EndsWith if !value.json.is_string() => {
                return Err("`starts_with` and `ends_with` need a string".into());
            }
            other => other,
        };
        Ok(Condition::Compare {
            path: path.to_owned(),
            op,
            value,
        })
    }

    /// Whether the record satisfies the condition. A missing or null
    /// field satisfies only `missing`, `== null` and `not_in`.
    pub fn matches(&self, record: &Record) -> bool {
        match self {
            Condition::All(items) => items.iter().all(|c| c.matches(record)),
            Condition::Any(items) => items.iter().any(|c| c.matches(record)),
            Condition::Compare { path, op, value } => {
                let field = record.get_path(path).filter(|v| !v.is_null());
                evaluate(field, op, value)
            }
        }
    }
}

fn evaluate(field: Option<&Value>, op: &Op, literal: &Literal) -> bool {
    use std::cmp::Ordering;
    let Some(v) = field else {
        return match op {
            Op::Missing => true,
            Op::Eq => literal.json.is_null(),
            Op::NotIn => true,
            Op::Ne => !literal.json.is_null(),
            _ => false,
        };
    };
    match op {
        Op::Exists => true,
        Op::Missing => false,
        Op::Eq => equals(v, literal),
        Op::Ne => !equals(v, literal),
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            let Some(ordering) = order(v, literal) else {
                return false;
            };
            match op {
                Op::Gt => ordering == Ordering::Greater,
                Op::Ge => ordering != Ordering::Less,
                Op::Lt => ordering == Ordering::Less,
                _ => ordering != Ordering::Greater,
            }
        }
        Op::In | Op::NotIn => {
            let found = literal.json.as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|item| equals(v, &Literal::new(item.clone())))
            });
            found == matches!(op, Op::In)
        }
        Op::Contains => match (v, &literal.json) {
            (Value::String(s), Json::String(part)) => s.contains(part.as_str()),
            (Value::Array(items), _) => items.iter().any(|item| equals(item, literal)),
            _ => false,
        },
        Op::StartsWith => v
            .as_str()
            .zip(literal.json.as_str())
            .is_some_and(|(s, p)| s.starts_with(p)),
        Op::EndsWith => v
            .as_str()
            .zip(literal.json.as_str())
            .is_some_and(|(s, p)| s.ends_with(p)),
        Op::Matches(re) => v.as_str().is_some_and(|s| re.is_match(s)),
    }
}

fn equals(v: &Value, literal: &Literal) -> bool {
    match (v, &literal.json) {
        (_, Json::Null) => v.is_null(),
        (Value::String(s), Json::String(l)) => s == l,
        (Value::Boolean(b), Json::Bool(l)) => b == l,
        (Value::Timestamp(t), _) => literal.micros == Some(*t),
        _ => match (v.as_f64(), literal.number) {
            (Some(a), Some(b)) => a == b,
            _ => Value::from_json(literal.json.clone()) == *v,
        },
    }
}

fn order(v: &Value, literal: &Literal) -> Option<std::cmp::Ordering> {
    match (v, &literal.json) {
        (Value::Timestamp(t), _) => literal.micros.map(|l| t.cmp(&l)),
        (Value::String(s), Json::String(l)) => Some(s.as_str().cmp(l.as_str())),
        _ => v.as_f64()?.partial_cmp(&literal.number?),
    }
}

/// A literal from condition text: JSON (`50`, `"x"`, `true`, `null`,
/// `[1, 2]`), a 'single-quoted' string, or a bare word as a string.
fn parse_literal(text: &str) -> Literal {
    if let Ok(json) = serde_json::from_str::<Json>(text) {
        return Literal::new(json);
    }
    let unquoted = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .unwrap_or(text);
    Literal::new(Json::String(unquoted.to_owned()))
}

fn quoted(items: &[&str]) -> Vec<String> {
    items.iter().map(|i| format!("`{i}`")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use connector_core::StructValue;

    fn record() -> Record {
        Record::from_pairs([
            ("device", Value::from("device_1")),
            ("number", Value::Float64(72.5)),
            ("count", Value::Int64(3)),
            ("ok", Value::Boolean(true)),
            ("none", Value::Null),
            ("time", Value::Timestamp(1_700_000_000_000_000)),
            (
                "tags",
                Value::Array(vec![Value::from("a"), Value::from("b")]),
            ),
            (
                "user",
                Value::Struct(StructValue::from_pairs([("id", Value::Int64(7))])),
            ),
        ])
    }

    fn holds(text: &str) -> bool {
        Condition::parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .matches(&record())
    }

    #[test]
    fn comparisons() {
        assert!(holds("number > 50"));
        assert!(holds("number>50"));
        assert!(!holds("number < 50"));
        assert!(holds("count == 3"));
        assert!(holds("count >= 3.0"));
        assert!(holds("device == 'device_1'"));
        assert!(holds("device == \"device_1\""));
        assert!(holds("device == device_1"));
        assert!(holds("device != device_2"));
        assert!(holds("ok == true"));
        assert!(holds("user.id == 7"));
        assert!(holds("device in [\"device_0\", \"device_1\"]"));
        assert!(holds("device not in [\"device_0\"]"));
        assert!(holds("tags contains \"b\""));
        assert!(holds("device starts_with 'dev'"));
        assert!(holds("device matches '^device_[0-9]$'"));
        assert!(holds("time > \"2023-01-01T00:00:00Z\""));
        assert!(holds("time < 1800000000000"));
        assert!(holds("none missing"));
        assert!(holds("none is null"));
        assert!(holds("nothing missing"));
        assert!(holds("device exists"));
        assert!(holds("device is not null"));
        assert!(!holds("nothing > 1"));
        assert!(!holds("nothing == 1"));
        assert!(holds("nothing == null"));
    }

    #[test]
    fn parse_errors() {
        let err = |t: &str| Condition::parse(t).unwrap_err();
        assert_eq!(
            err("number ~ 5"),
            format!("`number ~ 5`: unknown operator `~` (one of {OPS})")
        );
        assert_eq!(err("number >"), "`number >`: missing the value after `>`");
        assert!(err("device matches '('").contains("invalid regular expression"));
        assert!(err("device in 'a'").contains("need a list"));
        assert!(err("device exists 1").contains("takes no value"));
    }

    #[test]
    fn tables() {
        let c = Condition::from_json(&serde_json::json!({
            "any": ["number < 10", {"field": "device", "op": "==", "value": "device_1"}]
        }))
        .unwrap();
        assert!(c.matches(&record()));
        let err = Condition::from_json(&serde_json::json!({"field": "x", "op": ">"})).unwrap_err();
        assert_eq!(err, "`op = \">\"` needs a `value`");
        let err = Transform::from_json(serde_json::json!({"type": "filtr"}).as_object().unwrap())
            .unwrap_err();
        assert!(err.contains("did you mean `filter`?"), "{err}");
    }

    #[tokio::test]
    async fn reshaping() {
        use connector_core::Sink as _;
        use connector_core::memory::{self, CollectSink};
        let (mut tx, source) = memory::channel(1);
        // Records of one shape share their schema, as sources make them.
        let r = record();
        tx.send(connector_core::Batch::new(vec![r.clone(), r]))
            .await
            .unwrap();
        drop(tx);
        let (sink, collected) = CollectSink::new();
        let mut pipeline = Pipeline::new(source);
        for t in [
            Transform::Select(vec!["number".into(), "device".into(), "absent".into()]),
            Transform::Rename(vec![("number".into(), "value".into())]),
            Transform::Drop(vec!["absent".into()]),
        ] {
            pipeline = t.apply(pipeline);
        }
        pipeline.to(sink).run().await.unwrap();
        let out = collected.records();
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].to_json(),
            serde_json::json!({"value": 72.5, "device": "device_1"})
        );
        assert!(Arc::ptr_eq(&out[0].schema, &out[1].schema));
    }
}
