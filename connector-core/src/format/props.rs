//! The data-format properties, documented once for every connector.
//!
//! A connector lists the ones it supports in its own `ConnectorSpec` and
//! reads them with [`FormatConfig::read`](super::FormatConfig::read), which
//! reads only the format properties that the connector's spec lists:
//!
//! ```
//! use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
//! use connector_core::format::{props, FormatConfig};
//! use connector_core::Properties;
//!
//! static SPEC: ConnectorSpec = ConnectorSpec {
//!     name: "kafka",
//!     role: Role::Source,
//!     description: "Reads a Kafka topic.",
//!     properties: &[
//!         PropertySpec::required("topic", PropertyKind::String, "Topic to read."),
//!         props::DATA_TYPE,
//!         props::SCHEMA_REGISTRY_ADDRESS,
//!         props::SCHEMA_REGISTRY_API_KEY,
//!         props::SCHEMA_REGISTRY_API_SECRET,
//!     ],
//! };
//!
//! let props = Properties::from_pairs([("topic", "t"), ("data_type", "json")]);
//! let mut reader = PropertyReader::new(&SPEC, &props);
//! let _topic: String = reader.required("topic");
//! let format = FormatConfig::read(&mut reader);
//! reader.finish().unwrap();
//! assert_eq!(format.data_format.name(), "json");
//! ```
//!
//! Connectors that allow fewer formats or have a default build their own
//! `data_type` with [`data_type`] (e.g. the Livepeer source allows `json` and
//! `text`; the Kafka sink defaults to `json`).

use crate::config::{PropertyKind, PropertySpec};

/// Every `data_type` value the library understands.
pub const DATA_TYPES: &[&str] = &[
    "json",
    "text",
    "binary",
    "delimited",
    "avro",
    "protobuf",
    "debezium-json",
    "debezium-json-upsert",
    "debezium-avro",
    "debezium-avro-upsert",
];

/// The formats of the HTTP push source's `format` property.
pub const PUSH_FORMATS: &[&str] = &["json", "text", "binary", "delimited", "protobuf"];

const DATA_TYPE_DESCRIPTION: &str = "Data format of the payloads: `json`, `text`, `binary`, `delimited`, `avro`, `protobuf`, `debezium-json`, `debezium-json-upsert` (and `debezium-avro`, `debezium-avro-upsert`).";

/// A `data_type` property allowing `choices`, required when `default` is
/// `None`.
///
/// ```
/// use connector_core::config::PropertySpec;
/// use connector_core::format::props;
///
/// // The Livepeer source: json or text, required.
/// const DATA_TYPE: PropertySpec = props::data_type(&["json", "text"], None);
/// assert!(DATA_TYPE.required);
/// ```
pub const fn data_type(
    choices: &'static [&'static str],
    default: Option<&'static str>,
) -> PropertySpec {
    match default {
        None => PropertySpec::required(
            "data_type",
            PropertyKind::Choice(choices),
            DATA_TYPE_DESCRIPTION,
        ),
        Some(_) => PropertySpec::optional(
            "data_type",
            PropertyKind::Choice(choices),
            default,
            DATA_TYPE_DESCRIPTION,
        ),
    }
}

/// `data_type`, required, any format (the Kafka and Pulsar sources).
pub const DATA_TYPE: PropertySpec = data_type(DATA_TYPES, None);

/// `data_type`, any format, `json` by default (the Kafka and Pulsar sinks).
pub const DATA_TYPE_DEFAULT_JSON: PropertySpec = data_type(DATA_TYPES, Some("json"));

/// `format`: the HTTP push source's spelling of `data_type` (`json` by default).
pub const FORMAT: PropertySpec = PropertySpec::optional(
    "format",
    PropertyKind::Choice(PUSH_FORMATS),
    Some("json"),
    "Data format of request bodies: `json`, `text`, `binary`, `delimited` or `protobuf`.",
);

/// `schema_registry_address`: the Confluent schema registry URL, for Avro.
pub const SCHEMA_REGISTRY_ADDRESS: PropertySpec = PropertySpec::optional(
    "schema_registry_address",
    PropertyKind::Url,
    None,
    "Schema registry URL (e.g. `http://registry:8081`), for `avro` in the Confluent wire format.",
);

/// `schema_registry_api_key`: the registry's Basic-auth user.
pub const SCHEMA_REGISTRY_API_KEY: PropertySpec = PropertySpec::optional(
    "schema_registry_api_key",
    PropertyKind::Secret,
    None,
    "Schema registry API key (HTTP Basic auth user name).",
);

/// `schema_registry_api_secret`: the registry's Basic-auth password.
pub const SCHEMA_REGISTRY_API_SECRET: PropertySpec = PropertySpec::optional(
    "schema_registry_api_secret",
    PropertyKind::Secret,
    None,
    "Schema registry API secret (HTTP Basic auth password).",
);

/// `schema_subject`: the registry subject an Avro encoder registers its
/// schema under (connectors default it to `<topic>-value`).
pub const SCHEMA_SUBJECT: PropertySpec = PropertySpec::optional(
    "schema_subject",
    PropertyKind::String,
    None,
    "Schema registry subject for encoding (default `<topic>-value`).",
);

/// `avro_schema`: a fixed Avro writer schema (JSON text), used instead of the
/// registry.
pub const AVRO_SCHEMA: PropertySpec = PropertySpec::optional(
    "avro_schema",
    PropertyKind::String,
    None,
    "Avro schema (JSON) of payloads in plain Avro binary, when no schema registry is used; with a registry, the schema an encoder registers.",
);

/// `schema`: the declared columns and their types.
pub const SCHEMA: PropertySpec = PropertySpec::optional(
    "schema",
    // A map so that a JSON object value is kept whole instead of flattened.
    PropertyKind::Map,
    None,
    "Declared columns: `id bigint, name string, tags array<string>, user struct<id bigint>` or a JSON list of `{\"name\": .., \"type\": ..}`; types bigint, float, string, datetime, boolean, array, struct, bytea. Undeclared keys are dropped and values converted.",
);

/// `strict_validation`: a declared field that is missing is an error
/// instead of null.
pub const STRICT_VALIDATION: PropertySpec = PropertySpec::optional(
    "strict_validation",
    PropertyKind::Boolean,
    Some("false"),
    "With a declared schema, a missing field is an error instead of null.",
);

/// `timestamp`: the field that holds the event time.
pub const TIMESTAMP: PropertySpec = PropertySpec::optional(
    "timestamp",
    PropertyKind::String,
    None,
    "Field holding the event time of each record.",
);

/// `timestamp_format`: how the timestamp field is written.
pub const TIMESTAMP_FORMAT: PropertySpec = PropertySpec::optional(
    "timestamp_format",
    PropertyKind::String,
    None,
    "Format of the timestamp field: a pattern such as `yyyy-MM-dd HH:mm:ss.SSS`, or `rfc3339`, `unix`, `unix_ms`, `unix_us`. Numbers are Unix milliseconds unless it says otherwise; strings default to RFC 3339.",
);

/// `delimiter`: the field separator of `delimited`.
pub const DELIMITER: PropertySpec = PropertySpec::optional(
    "delimiter",
    PropertyKind::String,
    Some(","),
    "Field separator of `delimited` payloads: one character (`\\t` or `tab` for a tab).",
);

/// `fields`: the column names of `delimited` payloads.
pub const FIELDS: PropertySpec = PropertySpec::optional(
    "fields",
    PropertyKind::List,
    None,
    "Column names of `delimited` payloads, in order (default `col0`, `col1`, ...).",
);

/// `proto_file`: path of the `.proto` file for `protobuf`.
pub const PROTO_FILE: PropertySpec = PropertySpec::optional(
    "proto_file",
    PropertyKind::String,
    None,
    "Path of the `.proto` file describing `protobuf` payloads (compiled at start, no `protoc` needed).",
);

/// `proto_message`: the message type of `protobuf` payloads.
pub const PROTO_MESSAGE: PropertySpec = PropertySpec::optional(
    "proto_message",
    PropertyKind::String,
    None,
    "Full name of the `protobuf` message type, e.g. `shop.v1.Order`.",
);

/// `proto_include_paths`: where imports of the `.proto` file are looked up.
pub const PROTO_INCLUDE_PATHS: PropertySpec = PropertySpec::optional(
    "proto_include_paths",
    PropertyKind::List,
    None,
    "Directories searched for imports of `proto_file` (default: its own directory).",
);

/// `text_template`: how `text` renders a record (default: its `raw` column).
pub const TEXT_TEMPLATE: PropertySpec = PropertySpec::optional(
    "text_template",
    PropertyKind::String,
    None,
    "Template (`{{ .column }}`) that renders each record for `text` encoding; default: the `raw` column.",
);

/// Every format property, for connectors that accept all of them (with
/// [`DATA_TYPE`] as the format property).
pub const ALL: &[PropertySpec] = &[
    DATA_TYPE,
    SCHEMA_REGISTRY_ADDRESS,
    SCHEMA_REGISTRY_API_KEY,
    SCHEMA_REGISTRY_API_SECRET,
    SCHEMA_SUBJECT,
    AVRO_SCHEMA,
    SCHEMA,
    STRICT_VALIDATION,
    TIMESTAMP,
    TIMESTAMP_FORMAT,
    DELIMITER,
    FIELDS,
    PROTO_FILE,
    PROTO_MESSAGE,
    PROTO_INCLUDE_PATHS,
    TEXT_TEMPLATE,
];
