//! Building decoders and encoders from a connector's properties.
//!
//! A connector lists the format properties it supports in its spec (see
//! [`props`](super::props)), reads them with [`FormatConfig::read`] while it
//! reads its own, and builds its codec with [`FormatConfig::decoder`] or
//! [`FormatConfig::encoder`]:
//!
//! ```
//! use connector_core::config::{ConnectorSpec, PropertyReader, Role};
//! use connector_core::format::{props, FormatConfig, MessageMeta, decode_message};
//! use connector_core::{Properties, Value};
//!
//! static SPEC: ConnectorSpec = ConnectorSpec {
//!     name: "httppush",
//!     role: Role::Source,
//!     description: "Receives HTTP requests.",
//!     properties: &[props::FORMAT, props::DELIMITER, props::FIELDS, props::SCHEMA,
//!                   props::TIMESTAMP, props::TIMESTAMP_FORMAT],
//! };
//!
//! let props = Properties::from_pairs([
//!     ("format", "delimited"),
//!     ("delimiter", "|"),
//!     ("schema", "id bigint, at datetime"),
//!     ("timestamp", "at"),
//!     ("timestamp_format", "yyyy-MM-dd HH:mm:ss"),
//! ]);
//! let mut reader = PropertyReader::new(&SPEC, &props);
//! let format = FormatConfig::read(&mut reader);
//! reader.finish()?;
//!
//! let mut decoder = format.decoder()?;
//! let mut records = Vec::new();
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! decode_message(&mut decoder, b"7|1970-01-01 00:00:01", &MessageMeta::default(), &mut records).await?;
//! # Ok::<_, connector_core::Error>(()) })?;
//! assert_eq!(records[0].get("id"), Some(&Value::Int64(7)));
//! assert_eq!(records[0].timestamp, Some(1_000_000));
//! # Ok::<_, connector_core::Error>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{PropertyReader, Secret};
use crate::error::{Error, Result};
use crate::format::binary::{BinaryDecoder, BinaryEncoder};
use crate::format::debezium::{DebeziumDecoder, DebeziumEncoder};
use crate::format::declared::{Converter, parse_schema};
use crate::format::delimited::{DelimitedDecoder, DelimitedEncoder, parse_delimiter};
use crate::format::json::{JsonDecoder, JsonEncoder};
use crate::format::template::Template;
use crate::format::text::{TextDecoder, TextEncoder};
use crate::format::timestamp::{TimestampField, TimestampFormat};
use crate::format::{Decoder, Encoder};
use crate::schema::{DataType, Schema};

/// How values are written in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// JSON text.
    Json,
    /// UTF-8 text, one string column.
    Text,
    /// Raw bytes, one bytes column.
    Binary,
    /// Delimited lines (CSV).
    Delimited,
    /// Avro binary (plain with a fixed schema, or the Confluent wire format).
    Avro,
    /// Protocol Buffers, from a `.proto` file given at run time.
    Protobuf,
}

/// What a decoded value means: a plain row, or a change event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Envelope {
    /// Each value is one inserted row.
    Plain,
    /// A Debezium change event (`before`, `after`, `op`).
    Debezium,
    /// A Debezium change event read as upserts and deletes by message key.
    DebeziumUpsert,
}

/// A `data_type`: an encoding inside an envelope.
///
/// ```
/// use connector_core::format::{DataFormat, Encoding, Envelope};
///
/// let f = DataFormat::parse("debezium-json-upsert").unwrap();
/// assert_eq!((f.encoding, f.envelope), (Encoding::Json, Envelope::DebeziumUpsert));
/// assert_eq!(f.name(), "debezium-json-upsert");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataFormat {
    /// How values are written.
    pub encoding: Encoding,
    /// What they mean.
    pub envelope: Envelope,
}

impl DataFormat {
    /// `json`.
    pub const JSON: DataFormat = DataFormat::plain(Encoding::Json);
    /// `text`.
    pub const TEXT: DataFormat = DataFormat::plain(Encoding::Text);
    /// `binary`.
    pub const BINARY: DataFormat = DataFormat::plain(Encoding::Binary);
    /// `delimited`.
    pub const DELIMITED: DataFormat = DataFormat::plain(Encoding::Delimited);
    /// `avro`.
    pub const AVRO: DataFormat = DataFormat::plain(Encoding::Avro);
    /// `protobuf`.
    pub const PROTOBUF: DataFormat = DataFormat::plain(Encoding::Protobuf);
    /// `debezium-json`.
    pub const DEBEZIUM_JSON: DataFormat = DataFormat {
        encoding: Encoding::Json,
        envelope: Envelope::Debezium,
    };
    /// `debezium-json-upsert`.
    pub const DEBEZIUM_JSON_UPSERT: DataFormat = DataFormat {
        encoding: Encoding::Json,
        envelope: Envelope::DebeziumUpsert,
    };
    /// `debezium-avro`.
    pub const DEBEZIUM_AVRO: DataFormat = DataFormat {
        encoding: Encoding::Avro,
        envelope: Envelope::Debezium,
    };
    /// `debezium-avro-upsert`.
    pub const DEBEZIUM_AVRO_UPSERT: DataFormat = DataFormat {
        encoding: Encoding::Avro,
        envelope: Envelope::DebeziumUpsert,
    };

    const ALL: [DataFormat; 10] = [
        DataFormat::JSON,
        DataFormat::TEXT,
        DataFormat::BINARY,
        DataFormat::DELIMITED,
        DataFormat::AVRO,
        DataFormat::PROTOBUF,
        DataFormat::DEBEZIUM_JSON,
        DataFormat::DEBEZIUM_JSON_UPSERT,
        DataFormat::DEBEZIUM_AVRO,
        DataFormat::DEBEZIUM_AVRO_UPSERT,
    ];

    /// A plain (non-change-event) format.
    pub const fn plain(encoding: Encoding) -> Self {
        DataFormat {
            encoding,
            envelope: Envelope::Plain,
        }
    }

    /// The format called `name` (a `data_type` value).
    pub fn parse(name: &str) -> Option<DataFormat> {
        DataFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The `data_type` value naming this format.
    pub fn name(&self) -> &'static str {
        match (self.encoding, self.envelope) {
            (Encoding::Json, Envelope::Plain) => "json",
            (Encoding::Text, Envelope::Plain) => "text",
            (Encoding::Binary, Envelope::Plain) => "binary",
            (Encoding::Delimited, Envelope::Plain) => "delimited",
            (Encoding::Avro, Envelope::Plain) => "avro",
            (Encoding::Protobuf, Envelope::Plain) => "protobuf",
            (Encoding::Json, Envelope::Debezium) => "debezium-json",
            (Encoding::Json, Envelope::DebeziumUpsert) => "debezium-json-upsert",
            (Encoding::Avro, Envelope::Debezium) => "debezium-avro",
            (Encoding::Avro, Envelope::DebeziumUpsert) => "debezium-avro-upsert",
            (_, Envelope::Debezium) => "debezium",
            (_, Envelope::DebeziumUpsert) => "debezium-upsert",
        }
    }
}

impl fmt::Display for DataFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Schema registry settings (`schema_registry_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://registry:8081`.
    pub address: String,
    /// Basic-auth user.
    pub api_key: Option<Secret>,
    /// Basic-auth password.
    pub api_secret: Option<Secret>,
}

/// Where a `protobuf` message type is described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoConfig {
    /// The `.proto` file.
    pub file: PathBuf,
    /// Full name of the message type (`package.Message`).
    pub message: String,
    /// Directories searched for imports (the file's own directory is always searched).
    pub include_paths: Vec<PathBuf>,
}

/// Everything needed to build a decoder or encoder for one connector.
///
/// Build it from properties with [`FormatConfig::read`], or in code:
///
/// ```
/// use connector_core::format::{DataFormat, FormatConfig};
///
/// let config = FormatConfig::new(DataFormat::DELIMITED)
///     .with_delimiter(b';')
///     .with_fields(["id", "name"]);
/// let decoder = config.decoder().unwrap();
/// assert_eq!(decoder.format(), "delimited");
/// ```
#[derive(Debug, Clone)]
pub struct FormatConfig {
    /// The connector, for errors (`kafka source`).
    pub component: Cow<'static, str>,
    /// The property that named the format (`data_type`, or `format`).
    pub format_property: &'static str,
    /// Which format.
    pub data_format: DataFormat,
    /// Declared columns (`schema`).
    pub schema: Option<Arc<Schema>>,
    /// A declared field that is missing is an error (`strict_validation`).
    pub strict: bool,
    /// The field that sets each record's event time (`timestamp`).
    pub timestamp: Option<String>,
    /// How datetime text is read (`timestamp_format`).
    pub timestamp_format: TimestampFormat,
    /// Field separator of `delimited` (`delimiter`).
    pub delimiter: u8,
    /// Column names of `delimited` (`fields`).
    pub fields: Option<Vec<String>>,
    /// Schema registry for Avro (`schema_registry_*`).
    pub registry: Option<RegistryConfig>,
    /// Registry subject an encoder registers under (`schema_subject`).
    pub subject: Option<String>,
    /// Fixed Avro schema, JSON text (`avro_schema`).
    pub avro_schema: Option<String>,
    /// Protobuf message description (`proto_*`).
    pub proto: Option<ProtoConfig>,
    /// How `text` renders records (`text_template`).
    pub template: Option<Template>,
}

impl FormatConfig {
    /// Defaults for `data_format`: no declared schema, `,` delimiter.
    pub fn new(data_format: DataFormat) -> Self {
        FormatConfig {
            component: Cow::Borrowed("format"),
            format_property: "data_type",
            data_format,
            schema: None,
            strict: false,
            timestamp: None,
            timestamp_format: TimestampFormat::Rfc3339,
            delimiter: b',',
            fields: None,
            registry: None,
            subject: None,
            avro_schema: None,
            proto: None,
            template: None,
        }
    }

    /// Names the connector in errors.
    pub fn with_component(mut self, component: impl Into<Cow<'static, str>>) -> Self {
        self.component = component.into();
        self
    }

    /// Declares the columns.
    pub fn with_schema(mut self, schema: Arc<Schema>) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Missing declared fields are errors.
    pub fn with_strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Sets the event-time field and how its text is read.
    pub fn with_timestamp(mut self, field: impl Into<String>, format: TimestampFormat) -> Self {
        self.timestamp = Some(field.into());
        self.timestamp_format = format;
        self
    }

    /// Sets the `delimited` separator.
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Names the `delimited` columns.
    pub fn with_fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = Some(fields.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the schema registry.
    pub fn with_registry(mut self, registry: RegistryConfig) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Sets the subject an encoder registers its schema under.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the subject unless one was configured (sinks pass `<topic>-value`).
    pub fn with_default_subject(mut self, subject: impl Into<String>) -> Self {
        if self.subject.is_none() {
            self.subject = Some(subject.into());
        }
        self
    }

    /// Sets a fixed Avro schema (JSON text).
    pub fn with_avro_schema(mut self, schema: impl Into<String>) -> Self {
        self.avro_schema = Some(schema.into());
        self
    }

    /// Sets the protobuf message description.
    pub fn with_proto(mut self, proto: ProtoConfig) -> Self {
        self.proto = Some(proto);
        self
    }

    /// Sets the `text` template.
    pub fn with_template(mut self, template: Template) -> Self {
        self.template = Some(template);
        self
    }

    /// Reads the format properties that the reader's spec lists (the format
    /// itself from `data_type`, or from `format` where the spec has that
    /// instead). Problems are recorded in the reader and reported by its
    /// `finish()`, together with the connector's own.
    pub fn read(reader: &mut PropertyReader<'_>) -> FormatConfig {
        let spec = reader.spec();
        let has = |name: &str| spec.property(name).is_some();
        let format_property = if has("data_type") {
            "data_type"
        } else if has("format") {
            "format"
        } else {
            debug_assert!(
                false,
                "{} lists neither `data_type` nor `format`",
                spec.component()
            );
            "data_type"
        };
        let mut config = FormatConfig::new(DataFormat::JSON).with_component(reader.component());
        config.format_property = format_property;
        let name: Option<String> = if spec.property(format_property).is_some_and(|p| p.required) {
            Some(reader.required(format_property))
        } else if has(format_property) {
            reader.optional(format_property)
        } else {
            None
        };
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            match DataFormat::parse(&name) {
                Some(f) => config.data_format = f,
                None => reader.invalid(
                    format_property,
                    format!(
                        "unknown data format `{name}` (known: {})",
                        super::props::DATA_TYPES.join(", ")
                    ),
                ),
            }
        }
        if has("schema")
            && let Some(value) = reader.optional::<serde_json::Value>("schema")
        {
            let empty = value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty());
            if !empty {
                match parse_schema(&value) {
                    Ok(schema) => config.schema = Some(Arc::new(schema)),
                    Err(e) => reader.invalid("schema", e),
                }
            }
        }
        if has("strict_validation") {
            config.strict = reader.optional("strict_validation").unwrap_or(false);
        }
        if has("timestamp") {
            config.timestamp = reader
                .optional::<String>("timestamp")
                .filter(|s| !s.is_empty());
        }
        if has("timestamp_format")
            && let Some(text) = reader.optional::<String>("timestamp_format")
        {
            match text.parse() {
                Ok(f) => config.timestamp_format = f,
                Err(e) => reader.invalid("timestamp_format", e),
            }
        }
        if has("delimiter")
            && let Some(text) = reader.optional::<String>("delimiter")
        {
            match parse_delimiter(&text) {
                Ok(d) => config.delimiter = d,
                Err(e) => reader.invalid("delimiter", e),
            }
        }
        if has("fields") {
            config.fields = reader
                .optional::<Vec<String>>("fields")
                .filter(|f| !f.is_empty());
        }
        if has("schema_registry_address") {
            let address = reader
                .optional::<String>("schema_registry_address")
                .filter(|s| !s.is_empty());
            let api_key = if has("schema_registry_api_key") {
                reader
                    .optional::<Secret>("schema_registry_api_key")
                    .filter(|s| !s.is_empty())
            } else {
                None
            };
            let api_secret = if has("schema_registry_api_secret") {
                reader
                    .optional::<Secret>("schema_registry_api_secret")
                    .filter(|s| !s.is_empty())
            } else {
                None
            };
            match address {
                Some(address) => config.registry = Some(RegistryConfig { address, api_key, api_secret }),
                None if api_key.is_some() || api_secret.is_some() => reader.invalid(
                    "schema_registry_address",
                    "required when `schema_registry_api_key` or `schema_registry_api_secret` is set",
                ),
                None => {}
            }
        }
        if has("schema_subject") {
            config.subject = reader
                .optional::<String>("schema_subject")
                .filter(|s| !s.is_empty());
        }
        if has("avro_schema") {
            config.avro_schema = reader
                .optional::<String>("avro_schema")
                .filter(|s| !s.trim().is_empty());
        }
        if has("proto_file") || has("proto_message") {
            let file = if has("proto_file") {
                reader.optional::<String>("proto_file")
            } else {
                None
            };
            let message = if has("proto_message") {
                reader.optional::<String>("proto_message")
            } else {
                None
            };
            let include_paths: Vec<String> = if has("proto_include_paths") {
                reader.optional("proto_include_paths").unwrap_or_default()
            } else {
                Vec::new()
            };
            if let (Some(file), Some(message)) = (
                file.filter(|s| !s.is_empty()),
                message.filter(|s| !s.is_empty()),
            ) {
                config.proto = Some(ProtoConfig {
                    file: file.into(),
                    message,
                    include_paths: include_paths.into_iter().map(PathBuf::from).collect(),
                });
            }
        }
        if has("text_template")
            && let Some(text) = reader
                .optional::<String>("text_template")
                .filter(|s| !s.is_empty())
        {
            match Template::parse(&text) {
                Ok(t) => config.template = Some(t),
                Err(e) => reader.invalid("text_template", e),
            }
        }
        for (property, reason) in config.problems() {
            reader.invalid(property, reason);
        }
        config
    }

    /// Combinations of settings that cannot work, as (property, reason).
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let format = self.data_format;
        let name = format.name();
        match format.encoding {
            Encoding::Avro if self.registry.is_none() && self.avro_schema.is_none() => problems.push((
                self.format_property,
                format!("`{name}` needs `schema_registry_address` (Confluent wire format) or `avro_schema` (plain Avro binary)"),
            )),
            Encoding::Protobuf if self.proto.is_none() => problems.push((
                self.format_property,
                format!("`{name}` needs `proto_file` (the `.proto` file) and `proto_message` (the message type)"),
            )),
            Encoding::Binary => {
                if let Some(schema) = &self.schema
                    && (schema.len() != 1 || schema.field(0).data_type != DataType::Bytes) {
                        problems.push(("schema", format!("`binary` needs exactly one `bytea` field, got {schema}")));
                    }
            }
            Encoding::Text => {
                if let Some(schema) = &self.schema
                    && (schema.len() != 1 || schema.field(0).data_type != DataType::String) {
                        problems.push(("schema", format!("`text` needs exactly one `string` field, got {schema}")));
                    }
            }
            _ => {}
        }
        if self.timestamp.is_some() && matches!(format.encoding, Encoding::Text | Encoding::Binary)
        {
            problems.push((
                "timestamp",
                format!("`{name}` records have no fields to take the time from"),
            ));
        }
        if let (Some(schema), Some(fields)) = (&self.schema, &self.fields)
            && format.encoding == Encoding::Delimited
            && !fields.iter().any(|f| schema.index_of(f).is_some())
        {
            problems.push((
                "fields",
                "none of the named columns is declared in `schema`".to_owned(),
            ));
        }
        problems
    }

    fn check(&self) -> Result<()> {
        match self.problems().into_iter().next() {
            Some((property, reason)) => {
                Err(Error::config(self.component.clone(), property, reason))
            }
            None => Ok(()),
        }
    }

    #[cfg_attr(all(feature = "avro", feature = "protobuf"), allow(dead_code))]
    fn unavailable(&self, feature: &str) -> Error {
        Error::config(
            self.component.clone(),
            self.format_property,
            format!(
                "`{}` needs connector-core built with the `{feature}` cargo feature",
                self.data_format
            ),
        )
    }

    fn converter(&self) -> Converter {
        Converter {
            strict: self.strict,
            timestamps: self.timestamp_format.clone(),
            field_format: None,
        }
    }

    fn timestamp_field(&self) -> Option<TimestampField> {
        self.timestamp.as_ref().map(|field| TimestampField {
            field: field.clone(),
            format: self.timestamp_format.clone(),
        })
    }

    /// The records' schema when it is known before decoding: declared, or
    /// fixed by the format (`text`, `binary`, `protobuf`, `avro` with a
    /// fixed schema). `None` for inferred JSON and registry Avro, and for
    /// change-event envelopes without a declared schema.
    pub fn record_schema(&self) -> Option<Arc<Schema>> {
        if self.schema.is_some() || self.data_format.envelope != Envelope::Plain {
            return self.schema.clone();
        }
        match self.data_format.encoding {
            Encoding::Text => Some(self.text_decoder().schema().clone()),
            Encoding::Binary => Some(self.binary_decoder().schema().clone()),
            #[cfg(feature = "protobuf")]
            Encoding::Protobuf => self.proto_codec().ok().map(|c| c.schema().clone()),
            #[cfg(feature = "avro")]
            Encoding::Avro if self.registry.is_none() => {
                self.avro_plan().ok().flatten().map(|p| p.schema().clone())
            }
            _ => None,
        }
    }

    fn text_decoder(&self) -> TextDecoder {
        match &self.schema {
            Some(s) if s.len() == 1 => TextDecoder::with_column(s.field(0).name.clone()),
            _ => TextDecoder::new(),
        }
    }

    fn binary_decoder(&self) -> BinaryDecoder {
        match &self.schema {
            Some(s) if s.len() == 1 => BinaryDecoder::with_column(s.field(0).name.clone()),
            _ => BinaryDecoder::new(),
        }
    }

    /// A decoder for this format; a configuration error says what is
    /// missing or wrong.
    pub fn decoder(&self) -> Result<Box<dyn Decoder>> {
        self.check()?;
        let format = self.data_format;
        Ok(match (format.encoding, format.envelope) {
            (Encoding::Json, Envelope::Plain) => {
                let mut decoder = JsonDecoder::new();
                if let Some(schema) = &self.schema {
                    decoder = decoder.with_schema(schema.clone(), self.converter());
                }
                if let Some(ts) = self.timestamp_field() {
                    decoder = decoder.with_timestamp(ts);
                }
                Box::new(decoder)
            }
            (Encoding::Text, Envelope::Plain) => Box::new(self.text_decoder()),
            (Encoding::Binary, Envelope::Plain) => Box::new(self.binary_decoder()),
            (Encoding::Delimited, Envelope::Plain) => {
                let mut decoder = DelimitedDecoder::new(self.delimiter);
                if let Some(fields) = &self.fields {
                    decoder = decoder.with_fields(fields.iter().cloned());
                }
                if let Some(schema) = &self.schema {
                    decoder = decoder.with_schema(schema.clone(), self.converter());
                }
                if let Some(ts) = self.timestamp_field() {
                    decoder = decoder.with_timestamp(ts);
                }
                Box::new(decoder)
            }
            (Encoding::Avro, envelope) => self.boxed_avro_decoder(envelope)?,
            (Encoding::Protobuf, Envelope::Plain) => self.boxed_protobuf_decoder()?,
            (Encoding::Json, envelope) => {
                let upsert = envelope == Envelope::DebeziumUpsert;
                let value = Box::new(JsonDecoder::new());
                Box::new(
                    DebeziumDecoder::new(format.name(), value, upsert)
                        .with_key_decoder(Box::new(JsonDecoder::new()))
                        .json_tombstones(),
                )
            }
            (_, _) => {
                return Err(Error::config(
                    self.component.clone(),
                    self.format_property,
                    format!("`{format}` decoding is not available"),
                ));
            }
        })
    }

    /// An encoder for this format; a configuration error says what is
    /// missing or wrong.
    pub fn encoder(&self) -> Result<Box<dyn Encoder>> {
        self.check()?;
        let format = self.data_format;
        Ok(match (format.encoding, format.envelope) {
            (Encoding::Json, Envelope::Plain) => Box::new(JsonEncoder::new()),
            (Encoding::Text, Envelope::Plain) => {
                let mut encoder = TextEncoder::new();
                if let Some(s) = self.schema.as_ref().filter(|s| s.len() == 1) {
                    encoder = encoder.with_column(s.field(0).name.clone());
                }
                if let Some(t) = &self.template {
                    encoder = encoder.with_template(t.clone());
                }
                Box::new(encoder)
            }
            (Encoding::Binary, Envelope::Plain) => {
                let mut encoder = BinaryEncoder::new();
                if let Some(s) = self.schema.as_ref().filter(|s| s.len() == 1) {
                    encoder = encoder.with_column(s.field(0).name.clone());
                }
                Box::new(encoder)
            }
            (Encoding::Delimited, Envelope::Plain) => {
                let mut encoder = DelimitedEncoder::new(self.delimiter);
                if let Some(fields) = &self.fields {
                    encoder = encoder.with_fields(fields.iter().cloned());
                } else if let Some(schema) = &self.schema {
                    encoder = encoder.with_fields(schema.names().map(str::to_owned));
                }
                Box::new(encoder)
            }
            (Encoding::Avro, envelope) => self.boxed_avro_encoder(envelope)?,
            (Encoding::Protobuf, Envelope::Plain) => self.boxed_protobuf_encoder()?,
            (Encoding::Json, _) => Box::new(DebeziumEncoder::new(
                format.name(),
                Box::new(JsonEncoder::new()),
            )),
            (_, _) => {
                return Err(Error::config(
                    self.component.clone(),
                    self.format_property,
                    format!("`{format}` encoding is not available"),
                ));
            }
        })
    }

    #[cfg(feature = "avro")]
    fn avro_plan(&self) -> Result<Option<crate::format::avro::Plan>> {
        self.avro_schema
            .as_deref()
            .map(crate::format::avro::Plan::parse)
            .transpose()
            .map_err(|e| Error::config(self.component.clone(), "avro_schema", e))
    }

    #[cfg(feature = "avro")]
    fn registry_client(&self) -> Result<Option<crate::format::registry::RegistryClient>> {
        self.registry
            .as_ref()
            .map(crate::format::registry::RegistryClient::new)
            .transpose()
            .map_err(|e| e.in_component(self.component.clone()))
    }

    /// An Avro decoder (the Confluent wire format with a registry, else
    /// plain binary with `avro_schema`).
    #[cfg(feature = "avro")]
    pub fn avro_decoder(&self) -> Result<crate::format::avro::AvroDecoder> {
        use crate::format::avro::AvroDecoder;
        let mut decoder = match (self.registry_client()?, self.avro_plan()?) {
            (Some(client), _) => AvroDecoder::registry(client),
            (None, Some(plan)) => AvroDecoder::fixed(plan),
            (None, None) => {
                return Err(Error::config(
                    self.component.clone(),
                    self.format_property,
                    "`avro` needs `schema_registry_address` (Confluent wire format) or `avro_schema` (plain Avro binary)",
                ));
            }
        };
        if let Some(schema) = &self.schema {
            decoder = decoder.with_declared(schema.clone(), self.converter());
        }
        if let Some(ts) = self.timestamp_field() {
            decoder = decoder.with_timestamp(ts);
        }
        Ok(decoder)
    }

    /// An Avro encoder (the Confluent wire format under `subject` with a
    /// registry, else plain binary with `avro_schema`).
    #[cfg(feature = "avro")]
    pub fn avro_encoder(&self) -> Result<crate::format::avro::AvroEncoder> {
        use crate::format::avro::AvroEncoder;
        match (self.registry_client()?, self.avro_plan()?) {
            (Some(client), _) => {
                let subject = self.subject.clone().ok_or_else(|| {
                    Error::config(
                        self.component.clone(),
                        "schema_subject",
                        "Avro encoding with a schema registry needs a subject (the connector's default is `<topic>-value`)",
                    )
                })?;
                Ok(AvroEncoder::registry(
                    client,
                    subject,
                    self.avro_schema.clone(),
                ))
            }
            (None, Some(plan)) => Ok(AvroEncoder::plain(plan)),
            (None, None) => Err(Error::config(
                self.component.clone(),
                self.format_property,
                "`avro` needs `schema_registry_address` (Confluent wire format) or `avro_schema` (plain Avro binary)",
            )),
        }
    }

    #[cfg(feature = "avro")]
    fn boxed_avro_decoder(&self, envelope: Envelope) -> Result<Box<dyn Decoder>> {
        let name = self.data_format.name();
        Ok(match envelope {
            Envelope::Plain => Box::new(self.avro_decoder()?),
            Envelope::Debezium | Envelope::DebeziumUpsert => {
                let value = Box::new(self.avro_decoder()?.named(name));
                let key = Box::new(self.avro_decoder()?.named(name));
                let upsert = envelope == Envelope::DebeziumUpsert;
                Box::new(DebeziumDecoder::new(name, value, upsert).with_key_decoder(key))
            }
        })
    }

    #[cfg(feature = "avro")]
    fn boxed_avro_encoder(&self, envelope: Envelope) -> Result<Box<dyn Encoder>> {
        let inner = Box::new(self.avro_encoder()?);
        Ok(match envelope {
            Envelope::Plain => inner,
            _ => Box::new(DebeziumEncoder::new(self.data_format.name(), inner)),
        })
    }

    #[cfg(not(feature = "avro"))]
    fn boxed_avro_decoder(&self, _envelope: Envelope) -> Result<Box<dyn Decoder>> {
        Err(self.unavailable("avro"))
    }

    #[cfg(not(feature = "avro"))]
    fn boxed_avro_encoder(&self, _envelope: Envelope) -> Result<Box<dyn Encoder>> {
        Err(self.unavailable("avro"))
    }

    /// The protobuf message type compiled from `proto_file` / `proto_message`.
    #[cfg(feature = "protobuf")]
    pub fn proto_codec(&self) -> Result<crate::format::protobuf::ProtoCodec> {
        let proto = self.proto.as_ref().ok_or_else(|| {
            Error::config(
                self.component.clone(),
                self.format_property,
                "`protobuf` needs `proto_file` (the `.proto` file) and `proto_message` (the message type)",
            )
        })?;
        let desc = crate::format::protobuf::compile(proto)
            .map_err(|e| Error::config(self.component.clone(), "proto_file", e))?;
        Ok(crate::format::protobuf::ProtoCodec::new(desc))
    }

    #[cfg(feature = "protobuf")]
    fn boxed_protobuf_decoder(&self) -> Result<Box<dyn Decoder>> {
        let mut decoder = crate::format::protobuf::ProtobufDecoder::new(self.proto_codec()?);
        if let Some(ts) = self.timestamp_field() {
            decoder = decoder.with_timestamp(ts);
        }
        Ok(Box::new(decoder))
    }

    #[cfg(feature = "protobuf")]
    fn boxed_protobuf_encoder(&self) -> Result<Box<dyn Encoder>> {
        Ok(Box::new(crate::format::protobuf::ProtobufEncoder::new(
            self.proto_codec()?,
        )))
    }

    #[cfg(not(feature = "protobuf"))]
    fn boxed_protobuf_decoder(&self) -> Result<Box<dyn Decoder>> {
        Err(self.unavailable("protobuf"))
    }

    #[cfg(not(feature = "protobuf"))]
    fn boxed_protobuf_encoder(&self) -> Result<Box<dyn Encoder>> {
        Err(self.unavailable("protobuf"))
    }
}
