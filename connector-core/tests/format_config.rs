//! Building codecs from connector property maps: which formats a connector
//! allows, defaults, declared schemas, and the configuration errors.

use connector_core::config::{ConnectorSpec, PropertyKind, PropertyReader, PropertySpec, Role};
use connector_core::format::{
    DataFormat, Encoding, Envelope, FormatConfig, MessageMeta, decode_message, encode_record, props,
};
use connector_core::{DataType, Properties, Record, Result, Value};

static KAFKA_SOURCE: ConnectorSpec = ConnectorSpec {
    name: "kafka",
    role: Role::Source,
    description: "test",
    properties: &[
        PropertySpec::required("topic", PropertyKind::String, "Topic."),
        props::DATA_TYPE,
        props::SCHEMA_REGISTRY_ADDRESS,
        props::SCHEMA_REGISTRY_API_KEY,
        props::SCHEMA_REGISTRY_API_SECRET,
        props::SCHEMA,
        props::TIMESTAMP,
        props::TIMESTAMP_FORMAT,
        props::DELIMITER,
        props::FIELDS,
        props::AVRO_SCHEMA,
        props::PROTO_FILE,
        props::PROTO_MESSAGE,
    ],
};

static KAFKA_SINK: ConnectorSpec = ConnectorSpec {
    name: "kafka",
    role: Role::Sink,
    description: "test",
    properties: &[
        PropertySpec::required("topic", PropertyKind::String, "Topic."),
        props::DATA_TYPE_DEFAULT_JSON,
        props::SCHEMA_REGISTRY_ADDRESS,
        props::SCHEMA_SUBJECT,
        props::TEXT_TEMPLATE,
    ],
};

static LIVEPEER: ConnectorSpec = ConnectorSpec {
    name: "livepeer",
    role: Role::Source,
    description: "test",
    properties: &[props::data_type(&["json", "text"], None)],
};

static HTTPPUSH: ConnectorSpec = ConnectorSpec {
    name: "httppush",
    role: Role::Source,
    description: "test",
    properties: &[
        props::FORMAT,
        props::SCHEMA,
        props::STRICT_VALIDATION,
        props::TIMESTAMP,
        props::TIMESTAMP_FORMAT,
        props::DELIMITER,
        props::FIELDS,
        props::PROTO_FILE,
        props::PROTO_MESSAGE,
        props::PROTO_INCLUDE_PATHS,
    ],
};

fn read(spec: &'static ConnectorSpec, props: &Properties) -> Result<FormatConfig> {
    let mut reader = PropertyReader::new(spec, props);
    if spec.property("topic").is_some() {
        let _: String = reader.required("topic");
    }
    let config = FormatConfig::read(&mut reader);
    reader.finish()?;
    Ok(config)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn source_requires_data_type_sink_defaults_to_json() {
    let err = read(&KAFKA_SOURCE, &Properties::from_pairs([("topic", "t")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "kafka source: property `data_type`: required property is missing"
    );
    let sink = read(&KAFKA_SINK, &Properties::from_pairs([("topic", "t")])).unwrap();
    assert_eq!(sink.data_format, DataFormat::JSON);
    assert_eq!(sink.encoder().unwrap().content_type(), "application/json");

    let source = read(
        &KAFKA_SOURCE,
        &Properties::from_pairs([("topic", "t"), ("data_type", "debezium-json-upsert")]),
    )
    .unwrap();
    assert_eq!(source.data_format.encoding, Encoding::Json);
    assert_eq!(source.data_format.envelope, Envelope::DebeziumUpsert);
    assert_eq!(source.component, "kafka source");
}

#[test]
fn connectors_restrict_formats() {
    let err = read(&LIVEPEER, &Properties::from_pairs([("data_type", "avro")])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "livepeer source: property `data_type`: expected one of `json`, `text`, got `avro`"
    );
    let text = read(&LIVEPEER, &Properties::from_pairs([("data_type", "text")])).unwrap();
    assert_eq!(text.decoder().unwrap().format(), "text");
    let push = read(&HTTPPUSH, &Properties::new()).unwrap();
    assert_eq!(
        push.data_format,
        DataFormat::JSON,
        "httppush `format` defaults to json"
    );
    assert_eq!(push.format_property, "format");
    let err = read(&HTTPPUSH, &Properties::from_pairs([("format", "avro")])).unwrap_err();
    assert!(err.to_string().contains("property `format`: expected one of `json`, `text`, `binary`, `delimited`, `protobuf`, got `avro`"), "{err}");
    // A format property the connector does not list is an unknown property.
    let err = read(
        &LIVEPEER,
        &Properties::from_pairs([("data_type", "json"), ("delimiter", ";")]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("property `delimiter`: unknown property"),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let props = Properties::from_pairs([
        ("topic", "t"),
        ("data_type", "delimited"),
        ("delimiter", "::"),
        ("schema", "id bigint, at sometime"),
        ("timestamp_format", "yyyy-QQ"),
    ]);
    let err = read(&KAFKA_SOURCE, &props).unwrap_err().to_string();
    assert!(
        err.starts_with("kafka source: invalid configuration:"),
        "{err}"
    );
    assert!(
        err.contains("property `delimiter`: expected one ASCII character"),
        "{err}"
    );
    assert!(
        err.contains("property `schema`: field `at`: unknown type `sometime`"),
        "{err}"
    );
    assert!(
        err.contains(
            "property `timestamp_format`: timestamp format `yyyy-QQ`: `QQ` is not supported"
        ),
        "{err}"
    );
}

#[test]
fn avro_and_protobuf_need_their_settings() {
    let err = read(
        &KAFKA_SOURCE,
        &Properties::from_pairs([("topic", "t"), ("data_type", "avro")]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "kafka source: property `data_type`: `avro` needs `schema_registry_address` (Confluent wire format) or `avro_schema` (plain Avro binary)"
    );
    let err = read(
        &KAFKA_SOURCE,
        &Properties::from_pairs([("topic", "t"), ("data_type", "protobuf")]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("`protobuf` needs `proto_file`"),
        "{err}"
    );
    // The same checks guard codecs built in code.
    let err = FormatConfig::new(DataFormat::AVRO)
        .with_component("kafka sink")
        .encoder()
        .err()
        .unwrap();
    assert!(err.is_config());
    assert!(
        err.to_string()
            .starts_with("kafka sink: property `data_type`: `avro` needs"),
        "{err}"
    );
    let err = read(
        &KAFKA_SOURCE,
        &Properties::from_pairs([
            ("topic", "t"),
            ("data_type", "json"),
            ("schema_registry_api_key", "k"),
        ]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("property `schema_registry_address`: required when"),
        "{err}"
    );
}

#[test]
fn registry_secrets_are_never_printed() {
    let props = Properties::from_pairs([
        ("topic", "t"),
        ("data_type", "avro"),
        ("schema_registry_address", "http://127.0.0.1:1"),
        ("schema_registry_api_key", "key-XYZZY"),
        ("schema_registry_api_secret", "secret-PLUGH"),
    ]);
    let config = read(&KAFKA_SOURCE, &props).unwrap();
    let registry = config.registry.as_ref().unwrap();
    assert_eq!(
        registry.api_secret.as_ref().unwrap().expose(),
        "secret-PLUGH"
    );
    let debug = format!("{config:?}");
    assert!(
        !debug.contains("XYZZY") && !debug.contains("PLUGH"),
        "{debug}"
    );
}

#[test]
fn binary_and_text_take_their_column_from_the_schema() {
    let err = read(
        &HTTPPUSH,
        &Properties::from_pairs([("format", "binary"), ("schema", "a bigint")]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("property `schema`: `binary` needs exactly one `bytea` field, got (a int64)"),
        "{err}"
    );
    let config = read(
        &HTTPPUSH,
        &Properties::from_pairs([("format", "binary"), ("schema", "payload bytea")]),
    )
    .unwrap();
    let schema = config.record_schema().unwrap();
    assert_eq!(schema.field(0).name, "payload");
    let mut decoder = config.decoder().unwrap();
    let mut out = Vec::new();
    block_on(decode_message(
        &mut decoder,
        b"\x01\x02",
        &MessageMeta::default(),
        &mut out,
    ))
    .unwrap();
    assert_eq!(out[0].get("payload"), Some(&Value::Bytes(vec![1, 2])));
    let mut encoder = config.encoder().unwrap();
    let mut bytes = Vec::new();
    block_on(encode_record(&mut encoder, &out[0], &mut bytes)).unwrap();
    assert_eq!(bytes, [1, 2]);
}

#[test]
fn json_with_declared_schema_from_properties() {
    let props = Properties::new()
        .with(
            "schema",
            serde_json::json!([
                {"name": "id", "type": "bigint"},
                {"name": "at", "type": "datetime"},
                {"name": "user", "type": "struct", "fields": [{"name": "name", "type": "string"}]}
            ]),
        )
        .with("strict_validation", true)
        .with("timestamp", "at")
        .with("timestamp_format", "yyyy-MM-dd HH:mm:ss");
    let config = read(&HTTPPUSH, &props).unwrap();
    assert!(config.strict);
    let schema = config.record_schema().unwrap();
    assert_eq!(schema.field(1).data_type, DataType::Timestamp);
    let mut decoder = config.decoder().unwrap();
    let mut out = Vec::new();
    block_on(decode_message(
        &mut decoder,
        br#"{"id": "5", "at": "1970-01-01 00:00:09", "user": {"name": "ada", "x": 1}, "extra": 0}"#,
        &MessageMeta::default(),
        &mut out,
    ))
    .unwrap();
    assert_eq!(out[0].get("id"), Some(&Value::Int64(5)));
    assert_eq!(out[0].timestamp, Some(9_000_000));
    assert_eq!(out[0].get_path("user.name"), Some(&Value::from("ada")));
    let err = block_on(decode_message(
        &mut decoder,
        br#"{"id": 1}"#,
        &MessageMeta::default(),
        &mut out,
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("field `at` is missing (strict validation)"),
        "{err}"
    );
}

#[test]
fn sink_text_template_from_properties() {
    let props = Properties::from_pairs([
        ("topic", "t"),
        ("data_type", "text"),
        ("text_template", "{{ .device }} at {{ .temp }}"),
    ]);
    let config = read(&KAFKA_SINK, &props).unwrap();
    let mut encoder = config.encoder().unwrap();
    let record = Record::from_pairs([("device", Value::from("d1")), ("temp", Value::Int64(20))]);
    let mut out = Vec::new();
    block_on(encode_record(&mut encoder, &record, &mut out)).unwrap();
    assert_eq!(out, b"d1 at 20");
    let bad = Properties::from_pairs([
        ("topic", "t"),
        ("data_type", "text"),
        ("text_template", "{{ if .x }}"),
    ]);
    assert!(
        read(&KAFKA_SINK, &bad)
            .unwrap_err()
            .to_string()
            .contains("property `text_template`")
    );
}

#[test]
fn data_format_names_round_trip() {
    for name in props::DATA_TYPES {
        assert_eq!(DataFormat::parse(name).unwrap().name(), *name);
    }
    assert_eq!(DataFormat::parse("xml"), None);
}
