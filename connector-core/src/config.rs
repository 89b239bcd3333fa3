//! The property-map configuration layer.
//!
//! Every connector documents its properties once, as a [`ConnectorSpec`]
//! (names, whether required, defaults, descriptions). [`PropertyReader`]
//! reads a [`Properties`] map against that spec: defaults come from the spec
//! (so documentation and behaviour cannot drift), unknown keys are reported
//! with the list of valid ones and a "did you mean", and every problem is
//! collected so the user sees them all at once.
//!
//! Values may be strings or JSON values. Durations accept `200ms`, `10s`,
//! `5m`, `1h` (and combinations such as `1m30s`); booleans `true`/`false`;
//! lists a JSON array or a comma-separated string; maps a JSON object (or a
//! string holding one). Nested objects are flattened into dotted names, so
//! `{"tls": {"disable": true}}` is the same as `{"tls.disable": true}`.
//!
//! ```
//! use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Properties};
//! use std::time::Duration;
//!
//! static SPEC: ConnectorSpec = ConnectorSpec {
//!     name: "stream_generator",
//!     role: connector_core::config::Role::Source,
//!     description: "Generates random events.",
//!     properties: &[
//!         PropertySpec::required("template", PropertyKind::Choice(&["iot", "user_logins", "devops"]), "Template."),
//!         PropertySpec::optional("interval", PropertyKind::Duration, Some("200ms"), "Time between events."),
//!     ],
//! };
//!
//! let props = Properties::from_pairs([("template", "iot")]);
//! let mut reader = PropertyReader::new(&SPEC, &props);
//! let template: String = reader.required("template");
//! let interval: Duration = reader.required("interval"); // the spec's default
//! reader.finish().unwrap();
//! assert_eq!((template.as_str(), interval), ("iot", Duration::from_millis(200)));
//!
//! let bad = Properties::from_pairs([("template", "iot"), ("intervall", "1s")]);
//! let mut reader = PropertyReader::new(&SPEC, &bad);
//! let _: String = reader.required("template");
//! let err = reader.finish().unwrap_err().to_string();
//! assert!(err.contains("unknown property; did you mean `interval`?"), "{err}");
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde_json::Value as Json;

use crate::error::{Error, Result};

/// Whether a connector reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Produces records.
    Source,
    /// Consumes records.
    Sink,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Source => "source",
            Role::Sink => "sink",
        })
    }
}

/// The shape of a property's value, for validation and documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    /// Free text.
    String,
    /// A secret string: never printed.
    Secret,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// `200ms`, `10s`, `5m`, `1h`.
    Duration,
    /// A JSON array or a comma-separated string.
    List,
    /// A JSON object of string values.
    Map,
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// A URL.
    Url,
}

impl PropertyKind {
    /// What the kind expects, in words.
    pub fn expected(&self) -> String {
        match self {
            PropertyKind::String => "a string".into(),
            PropertyKind::Secret => "a secret string".into(),
            PropertyKind::Integer => "a whole number".into(),
            PropertyKind::Boolean => "`true` or `false`".into(),
            PropertyKind::Duration => "a duration such as `200ms`, `10s`, `5m` or `1h`".into(),
            PropertyKind::List => "a list (JSON array or comma-separated)".into(),
            PropertyKind::Map => "a map (JSON object)".into(),
            PropertyKind::Url => "a URL".into(),
            PropertyKind::Choice(options) => {
                let quoted: Vec<String> = options.iter().map(|o| format!("`{o}`")).collect();
                format!("one of {}", quoted.join(", "))
            }
        }
    }
}

/// One documented property.
#[derive(Debug, Clone, Copy)]
pub struct PropertySpec {
    /// The name users write.
    pub name: &'static str,
    /// Other accepted spellings (`parallelism` for `paralism`).
    pub aliases: &'static [&'static str],
    /// Whether it must be given (a property with a default is never required).
    pub required: bool,
    /// The default, written as a user would write it.
    pub default: Option<&'static str>,
    /// The value's shape.
    pub kind: PropertyKind,
    /// One-sentence description.
    pub description: &'static str,
}

impl PropertySpec {
    /// A required property.
    pub const fn required(
        name: &'static str,
        kind: PropertyKind,
        description: &'static str,
    ) -> Self {
        PropertySpec {
            name,
            aliases: &[],
            required: true,
            default: None,
            kind,
            description,
        }
    }

    /// An optional property, with its default if it has one.
    pub const fn optional(
        name: &'static str,
        kind: PropertyKind,
        default: Option<&'static str>,
        description: &'static str,
    ) -> Self {
        PropertySpec {
            name,
            aliases: &[],
            required: false,
            default,
            kind,
            description,
        }
    }

    /// The same property, also accepted under `aliases`.
    pub const fn with_aliases(mut self, aliases: &'static [&'static str]) -> Self {
        self.aliases = aliases;
        self
    }

    /// Whether the value is secret.
    pub fn is_secret(&self) -> bool {
        matches!(self.kind, PropertyKind::Secret)
    }
}

/// A connector's documentation: its name, role and properties.
#[derive(Debug)]
pub struct ConnectorSpec {
    /// Type name as used in pipeline files (`kafka`, `stream_generator`).
    pub name: &'static str,
    /// Source or sink.
    pub role: Role,
    /// One-paragraph description.
    pub description: &'static str,
    /// Every property, in documentation order.
    pub properties: &'static [PropertySpec],
}

impl ConnectorSpec {
    /// `kafka source`, `clickhouse sink`: how errors name the connector.
    pub fn component(&self) -> String {
        format!("{} {}", self.name, self.role)
    }

    /// The property called `name` (or spelled as one of its aliases).
    pub fn property(&self, name: &str) -> Option<&'static PropertySpec> {
        self.properties
            .iter()
            .find(|p| p.name == name || p.aliases.contains(&name))
    }
}

/// A property map: names to string or JSON values.
///
/// Build it from pairs, from a JSON object, or from any map of strings.
#[derive(Clone, Default, PartialEq)]
pub struct Properties {
    map: BTreeMap<String, Json>,
}

impl Properties {
    /// An empty map.
    pub fn new() -> Self {
        Properties::default()
    }

    /// A map of string values.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Properties {
            map: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), Json::String(v.into())))
                .collect(),
        }
    }

    /// A map from a JSON object. Anything else is a configuration error.
    pub fn from_json(component: &str, json: Json) -> Result<Self> {
        match json {
            Json::Object(map) => Ok(Properties {
                map: map.into_iter().collect(),
            }),
            other => Err(Error::config(
                component.to_owned(),
                "(properties)",
                format!(
                    "expected a JSON object of properties, got {}",
                    json_kind(&other)
                ),
            )),
        }
    }

    /// Sets a property.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Json>) -> &mut Self {
        self.map.insert(name.into(), value.into());
        self
    }

    /// Sets a property, builder style.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Json>) -> Self {
        self.set(name, value);
        self
    }

    /// The raw value of a property.
    pub fn get(&self, name: &str) -> Option<&Json> {
        self.map.get(name)
    }

    /// Removes a property, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<Json> {
        self.map.remove(name)
    }

    /// Whether the map has no properties.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Names and values, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl fmt::Debug for Properties {
    /// Values are not printed: property maps carry secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Properties {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Properties::from_pairs(iter)
    }
}

impl<K: Into<String>, V: Into<String>, S> From<std::collections::HashMap<K, V, S>> for Properties {
    fn from(map: std::collections::HashMap<K, V, S>) -> Self {
        Properties::from_pairs(map)
    }
}

impl<K: Into<String>, V: Into<String>> From<BTreeMap<K, V>> for Properties {
    fn from(map: BTreeMap<K, V>) -> Self {
        Properties::from_pairs(map)
    }
}

/// A secret string. Its `Debug` and `Display` print `***`; read it with
/// [`Secret::expose`] only where it is sent to a server.
///
/// ```
/// use connector_core::Secret;
///
/// let password = Secret::new("hunter2");
/// assert_eq!(format!("{password} {password:?}"), "*** Secret(***)");
/// assert_eq!(password.expose(), "hunter2");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(v: &str) -> Self {
        Secret::new(v)
    }
}

impl From<String> for Secret {
    fn from(v: String) -> Self {
        Secret(v)
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// Parses `200ms`, `10s`, `5m`, `1h`, `2d`, `1m30s`, `1.5s`, or `0`.
///
/// ```
/// use connector_core::config::parse_duration;
/// use std::time::Duration;
///
/// assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert!(parse_duration("10").is_err());
/// ```
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let s = text.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("`{text}` is not a duration (expected e.g. `200ms`, `10s`, `5m`, `1h`)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * unit_secs).map_err(|_| bad())?;
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it (`200ms`, `10s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if d.is_zero() {
        "0ms".into()
    } else if ms == 0 || !d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}us", d.as_micros())
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// A type a property value can be read as.
pub trait FromProperty: Sized {
    /// Converts the raw value, or says what was expected.
    fn from_property(value: &Json) -> std::result::Result<Self, String>;
}

fn as_text(value: &Json) -> Option<std::borrow::Cow<'_, str>> {
    match value {
        Json::String(s) => Some(s.as_str().into()),
        Json::Number(n) => Some(n.to_string().into()),
        Json::Bool(b) => Some(b.to_string().into()),
        _ => None,
    }
}

impl FromProperty for String {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        as_text(value)
            .map(|s| s.into_owned())
            .ok_or_else(|| format!("expected a string, got {}", json_kind(value)))
    }
}

impl FromProperty for Secret {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        match value {
            Json::String(s) => Ok(Secret(s.clone())),
            other => Err(format!("expected a string, got {}", json_kind(other))),
        }
    }
}

impl FromProperty for bool {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        match value {
            Json::Bool(b) => Ok(*b),
            Json::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Json::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            Json::String(s) => Err(format!("expected `true` or `false`, got `{s}`")),
            other => Err(format!(
                "expected `true` or `false`, got {}",
                json_kind(other)
            )),
        }
    }
}

macro_rules! integer_property {
    ($($t:ty),*) => {$(
        impl FromProperty for $t {
            fn from_property(value: &Json) -> std::result::Result<Self, String> {
                let text = as_text(value)
                    .ok_or_else(|| format!("expected a whole number, got {}", json_kind(value)))?;
                text.trim().parse::<$t>().map_err(|_| {
                    format!("expected a whole number between {} and {}, got `{text}`", <$t>::MIN, <$t>::MAX)
                })
            }
        }
    )*};
}

integer_property!(u8, u16, u32, u64, usize, i32, i64);

impl FromProperty for f64 {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        let text =
            as_text(value).ok_or_else(|| format!("expected a number, got {}", json_kind(value)))?;
        text.trim()
            .parse()
            .map_err(|_| format!("expected a number, got `{text}`"))
    }
}

impl FromProperty for Duration {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        match value {
            Json::String(s) => parse_duration(s),
            other => Err(format!(
                "expected a duration such as `200ms`, `10s`, `5m` or `1h`, got {}",
                json_kind(other)
            )),
        }
    }
}

impl FromProperty for Vec<String> {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        let from_array = |items: &Vec<Json>| {
            items
                .iter()
                .map(|item| {
                    as_text(item).map(|s| s.into_owned()).ok_or_else(|| {
                        format!("list items must be strings, got {}", json_kind(item))
                    })
                })
                .collect()
        };
        match value {
            Json::Array(items) => from_array(items),
            Json::String(s) if s.trim_start().starts_with('[') => {
                match serde_json::from_str::<Json>(s) {
                    Ok(Json::Array(items)) => from_array(&items),
                    _ => Err(format!("`{s}` is not a valid JSON array")),
                }
            }
            Json::String(s) => Ok(s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()),
            other => Err(format!(
                "expected a list (JSON array or comma-separated string), got {}",
                json_kind(other)
            )),
        }
    }
}

impl FromProperty for BTreeMap<String, String> {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        let object = match value {
            Json::Object(map) => map.clone(),
            Json::String(s) if s.trim().is_empty() => return Ok(BTreeMap::new()),
            Json::String(s) => match serde_json::from_str::<Json>(s) {
                Ok(Json::Object(map)) => map,
                _ => return Err("expected a JSON object".into()),
            },
            other => return Err(format!("expected a JSON object, got {}", json_kind(other))),
        };
        object
            .iter()
            .map(|(k, v)| {
                as_text(v)
                    .map(|s| (k.clone(), s.into_owned()))
                    .ok_or_else(|| format!("value of `{k}` must be a string, got {}", json_kind(v)))
            })
            .collect()
    }
}

impl FromProperty for Json {
    fn from_property(value: &Json) -> std::result::Result<Self, String> {
        Ok(value.clone())
    }
}

/// Reads properties against a [`ConnectorSpec`], collecting every problem.
///
/// Getters return a value even when the property is bad (its `Default`), so a
/// config can be assembled in one pass; [`PropertyReader::finish`] then
/// reports everything that went wrong, including unknown keys.
pub struct PropertyReader<'a> {
    spec: &'static ConnectorSpec,
    props: BTreeMap<String, &'a Json>,
    flattened: BTreeMap<String, Json>,
    used: HashSet<&'static str>,
    errors: Vec<Error>,
}

impl<'a> PropertyReader<'a> {
    /// A reader of `props` for the connector `spec` documents.
    pub fn new(spec: &'static ConnectorSpec, props: &'a Properties) -> Self {
        let mut reader = PropertyReader {
            spec,
            props: BTreeMap::new(),
            flattened: BTreeMap::new(),
            used: HashSet::new(),
            errors: Vec::new(),
        };
        for (key, value) in &props.map {
            match value {
                // Nested objects become dotted names unless the property itself is a map.
                Json::Object(inner)
                    if spec
                        .property(key)
                        .is_none_or(|p| p.kind != PropertyKind::Map) =>
                {
                    flatten(key, inner, &mut reader.flattened);
                }
                _ => {
                    reader.props.insert(key.clone(), value);
                }
            }
        }
        reader
    }

    /// The component name used in errors (`kafka source`).
    pub fn component(&self) -> String {
        self.spec.component()
    }

    /// The spec being read, so shared readers (such as the data-format
    /// properties) can read only the properties a connector documents.
    pub fn spec(&self) -> &'static ConnectorSpec {
        self.spec
    }

    fn raw(&mut self, name: &'static str) -> Option<(String, Json)> {
        let spec = self.spec.property(name);
        debug_assert!(
            spec.is_some(),
            "property `{name}` is not in the spec of {}",
            self.spec.name
        );
        self.used.insert(name);
        let aliases = spec.map_or(&[][..], |p| p.aliases);
        for key in std::iter::once(&name).chain(aliases) {
            if let Some(v) = self.props.get(*key) {
                return Some(((*key).to_owned(), (*v).clone()));
            }
            if let Some(v) = self.flattened.get(*key) {
                return Some(((*key).to_owned(), v.clone()));
            }
        }
        None
    }

    fn error(&mut self, property: &str, reason: String) {
        self.errors.push(Error::config(
            self.spec.component(),
            property.to_owned(),
            reason,
        ));
    }

    fn parse<T: FromProperty>(&mut self, key: &str, value: &Json) -> Option<T> {
        if let (Some(spec), Some(text)) = (self.spec.property(key), value.as_str())
            && let PropertyKind::Choice(options) = spec.kind
            && !options.contains(&text)
        {
            let reason = format!("expected {}, got `{text}`", spec.kind.expected());
            self.error(key, reason);
            return None;
        }
        match T::from_property(value) {
            Ok(v) => Some(v),
            Err(reason) => {
                self.error(key, reason);
                None
            }
        }
    }

    /// The property's value, or its documented default, or `None`.
    pub fn optional<T: FromProperty>(&mut self, name: &'static str) -> Option<T> {
        match self.raw(name) {
            Some((key, value)) => self.parse(&key, &value),
            None => {
                let default = self.spec.property(name)?.default?;
                self.parse(name, &Json::String(default.to_owned()))
            }
        }
    }

    /// The property's value or default; a missing value is an error (and
    /// `T::default()` is returned so reading can go on).
    pub fn required<T: FromProperty + Default>(&mut self, name: &'static str) -> T {
        match self.optional(name) {
            Some(v) => v,
            None => {
                if !self
                    .errors
                    .iter()
                    .any(|e| matches!(e, Error::Config { property, .. } if property == name))
                {
                    self.error(name, "required property is missing".into());
                }
                T::default()
            }
        }
    }

    /// Whether the user set the property (under any of its spellings).
    pub fn is_set(&self, name: &'static str) -> bool {
        let aliases = self.spec.property(name).map_or(&[][..], |p| p.aliases);
        std::iter::once(&name)
            .chain(aliases)
            .any(|k| self.props.contains_key(*k) || self.flattened.contains_key(*k))
    }

    /// Records a problem found while assembling the config (e.g. two
    /// properties that contradict each other).
    pub fn invalid(&mut self, property: &str, reason: impl Into<String>) {
        self.error(property, reason.into());
    }

    /// Ends reading: every problem found, plus unknown keys, as one error.
    pub fn finish(mut self) -> Result<()> {
        let known: Vec<&str> = self
            .spec
            .properties
            .iter()
            .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()))
            .collect();
        let given: Vec<String> = self
            .props
            .keys()
            .chain(self.flattened.keys())
            .cloned()
            .collect();
        for key in given {
            if known.contains(&key.as_str()) {
                continue;
            }
            let names: Vec<&str> = self.spec.properties.iter().map(|p| p.name).collect();
            let suggestion = known
                .iter()
                .map(|k| (strsim::jaro_winkler(&key, k), *k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            self.error(
                &key,
                format!(
                    "unknown property{suggestion} (valid properties: {})",
                    names.join(", ")
                ),
            );
        }
        match self.errors.len() {
            0 => Ok(()),
            1 => Err(self.errors.remove(0)),
            _ => Err(Error::ConfigList {
                component: self.spec.component().into(),
                errors: self.errors,
            }),
        }
    }
}

fn flatten(prefix: &str, object: &serde_json::Map<String, Json>, out: &mut BTreeMap<String, Json>) {
    for (k, v) in object {
        let key = format!("{prefix}.{k}");
        match v {
            Json::Object(inner) => flatten(&key, inner, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SPEC: ConnectorSpec = ConnectorSpec {
        name: "kafka",
        role: Role::Source,
        description: "test",
        properties: &[
            PropertySpec::required("brokers", PropertyKind::String, "Brokers."),
            PropertySpec::required("topic", PropertyKind::String, "Topic."),
            PropertySpec::required(
                "offset",
                PropertyKind::Choice(&["earliest", "latest"]),
                "Start.",
            ),
            PropertySpec::optional("password", PropertyKind::Secret, None, "Password."),
            PropertySpec::optional(
                "tls.disable",
                PropertyKind::Boolean,
                Some("false"),
                "TLS off.",
            ),
            PropertySpec::optional(
                "interval",
                PropertyKind::Duration,
                Some("200ms"),
                "Interval.",
            ),
            PropertySpec::optional("to", PropertyKind::List, None, "Recipients."),
            PropertySpec::optional("http_header", PropertyKind::Map, Some("{}"), "Headers."),
            PropertySpec::optional("paralism", PropertyKind::Integer, Some("1"), "Parallel.")
                .with_aliases(&["parallelism"]),
        ],
    };

    fn read(props: &Properties) -> (Result<()>, Option<Duration>, bool) {
        let mut r = PropertyReader::new(&SPEC, props);
        let _: String = r.required("brokers");
        let _: String = r.required("topic");
        let _: String = r.required("offset");
        let interval = r.optional::<Duration>("interval");
        let tls_off: bool = r.required("tls.disable");
        let _: Option<Secret> = r.optional("password");
        let _: Option<Vec<String>> = r.optional("to");
        let _: Option<BTreeMap<String, String>> = r.optional("http_header");
        let _: Option<u32> = r.optional("paralism");
        (r.finish(), interval, tls_off)
    }

    fn good() -> Properties {
        Properties::from_pairs([
            ("brokers", "b:9092"),
            ("topic", "t"),
            ("offset", "earliest"),
        ])
    }

    #[test]
    fn defaults_come_from_the_spec() {
        let (res, interval, tls_off) = read(&good());
        res.unwrap();
        assert_eq!(interval, Some(Duration::from_millis(200)));
        assert!(!tls_off);
    }

    #[test]
    fn missing_required_is_named() {
        let props = Properties::from_pairs([("brokers", "b:9092"), ("offset", "latest")]);
        let err = read(&props).0.unwrap_err();
        assert_eq!(
            err.to_string(),
            "kafka source: property `topic`: required property is missing"
        );
    }

    #[test]
    fn unknown_key_lists_valid_keys_and_suggests() {
        let props = good().with("ofset", "earliest").with("zzz", "1");
        let err = read(&props).0.unwrap_err().to_string();
        assert!(
            err.contains("property `ofset`: unknown property; did you mean `offset`?"),
            "{err}"
        );
        assert!(err.contains("property `zzz`: unknown property (valid properties: brokers, topic, offset, password, tls.disable, interval, to, http_header, paralism)"), "{err}");
    }

    #[test]
    fn malformed_values_are_explained() {
        let props = good()
            .with("interval", "10")
            .with("offset", "newest")
            .with("tls.disable", "yes")
            .with("paralism", "-1");
        let err = read(&props).0.unwrap_err().to_string();
        assert!(
            err.contains("property `interval`: `10` is not a duration"),
            "{err}"
        );
        assert!(
            err.contains("property `offset`: expected one of `earliest`, `latest`, got `newest`"),
            "{err}"
        );
        assert!(
            err.contains("property `tls.disable`: expected `true` or `false`, got `yes`"),
            "{err}"
        );
        assert!(
            err.contains("property `paralism`: expected a whole number"),
            "{err}"
        );
    }

    #[test]
    fn nested_objects_flatten_to_dotted_names() {
        let props = Properties::from_json(
            "kafka source",
            serde_json::json!({"brokers": "b", "topic": "t", "offset": "latest", "tls": {"disable": true}}),
        )
        .unwrap();
        let (res, _, tls_off) = read(&props);
        res.unwrap();
        assert!(tls_off);
    }

    #[test]
    fn aliases_lists_and_maps() {
        let props = good()
            .with("parallelism", "8")
            .with("to", "a@x.org, b@x.org")
            .with("http_header", serde_json::json!({"X-A": "1"}));
        let mut r = PropertyReader::new(&SPEC, &props);
        assert_eq!(r.optional::<u32>("paralism"), Some(8));
        assert_eq!(
            r.optional::<Vec<String>>("to"),
            Some(vec!["a@x.org".to_owned(), "b@x.org".to_owned()])
        );
        let headers: BTreeMap<String, String> = r.required("http_header");
        assert_eq!(headers.get("X-A").map(String::as_str), Some("1"));
        let list = Vec::<String>::from_property(&Json::String(r#"["a","b"]"#.into())).unwrap();
        assert_eq!(list, vec!["a", "b"]);
    }

    #[test]
    fn secrets_are_never_printed() {
        let props = good().with("password", "hunter2");
        let mut r = PropertyReader::new(&SPEC, &props);
        let secret: Secret = r.required("password");
        assert_eq!(secret.expose(), "hunter2");
        assert!(!format!("{secret:?} {secret} {props:?}").contains("hunter2"));
        let bad = good().with("password", 5);
        let err = read(&bad).0.unwrap_err().to_string();
        assert!(!err.contains('5') || !err.contains("hunter2"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "ms", "10", "10x", "s10", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in ["200ms", "10s", "5m", "1h", "0ms", "250us"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }
}
