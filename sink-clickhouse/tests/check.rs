//! "Test connection" against a real server: what passes, and the exact
//! reason for each way it can fail. Also inserts over HTTPS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use connector_core::check::{CheckOutcome, FailureKind};
use connector_core::{
    Ack, Batch, CheckReport, DataType, Field, Properties, Record, Schema, Sink, Value,
};
use sink_clickhouse::{ClickHouseConfig, ClickHouseSink, Endpoint};
use testkit::clickhouse::ClickHouse;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn check(config: ClickHouseConfig) -> CheckReport {
    ClickHouseSink::new(config).unwrap().check(TIMEOUT).await
}

fn at(endpoint: Endpoint, table: &str) -> ClickHouseConfig {
    ClickHouseConfig::new(table, vec![endpoint])
}

/// The first failed step: its name, kind and reason.
fn failure(report: &CheckReport) -> (String, FailureKind, String) {
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

fn with_table() -> ClickHouse {
    let server = ClickHouse::builder()
        .user("writer", "s3cret")
        .readonly_user("reader", "r3ad")
        .start();
    server.query("CREATE TABLE t (id Int64, name String, note Nullable(String)) ENGINE = MergeTree ORDER BY id");
    server
}

#[tokio::test]
async fn a_good_configuration_passes_every_step() {
    let server = with_table();
    let port = server.http_port();
    let report = ClickHouseSink::from_properties(&Properties::from_pairs([
        ("hosts", format!("127.0.0.1:{port}")),
        ("username", "writer".into()),
        ("password", "s3cret".into()),
        ("database", "default".into()),
        ("table_name", "t".into()),
    ]))
    .unwrap()
    .check(TIMEOUT)
    .await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.to_string(),
        format!(
            "clickhouse sink: ok     connect to http://127.0.0.1:{port}: ClickHouse answers /ping\n\
             clickhouse sink: ok     authenticate as `writer`: ClickHouse 18.16.1\n\
             clickhouse sink: ok     database `default`: exists\n\
             clickhouse sink: ok     permission to write: the user is not read-only\n\
             clickhouse sink: ok     table `default`.`t`: exists with columns id Int64, name String, note Nullable(String)"
        )
    );
    assert!(!report.to_string().contains("s3cret"));
}

#[tokio::test]
async fn the_record_schema_is_checked_against_the_columns() {
    let server = with_table();
    let endpoint = Endpoint::http("127.0.0.1", server.http_port());
    let fits = Arc::new(Schema::new(vec![
        Field::required("id", DataType::Int64),
        Field::required("name", DataType::String),
    ]));
    let report = check(at(endpoint.clone(), "t").with_schema(fits)).await;
    assert!(report.is_ok(), "{report}");
    assert!(
        report
            .to_string()
            .ends_with("exists; the records' 2 fields fit its 3 columns"),
        "{report}"
    );

    let misfit = Arc::new(Schema::new(vec![
        Field::required("id", DataType::Timestamp),
        Field::required("label", DataType::String),
    ]));
    let report = check(at(endpoint, "t").with_schema(misfit)).await;
    assert_eq!(
        failure(&report),
        (
            "table `default`.`t`".to_owned(),
            FailureKind::Invalid,
            "field `id` (timestamp) cannot be written to column `id` of type Int64; \
             field `label` has no column in `default`.`t` (columns: id, name, note); \
             column `name` (String) has no default and the records have no field `name`"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn wrong_port_is_unreachable() {
    let port = testkit::free_port();
    let report = check(at(Endpoint::http("127.0.0.1", port), "t")).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("connect to http://127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Unreachable);
    assert_eq!(
        reason,
        format!("cannot connect to http://127.0.0.1:{port}: Connection refused (os error 111)")
    );
    assert_eq!(report.steps.len(), 1, "nothing else can be checked");
}

#[tokio::test]
async fn wrong_credentials_are_refused() {
    let server = with_table();
    let report = check(
        at(Endpoint::http("127.0.0.1", server.http_port()), "t").credentials("writer", "wrong"),
    )
    .await;
    assert_eq!(
        failure(&report),
        (
            "authenticate as `writer`".to_owned(),
            FailureKind::AuthRefused,
            "Code: 193. DB::Exception: Wrong password for user writer".to_owned()
        )
    );
    assert!(!report.to_string().contains("wrong"));

    let report =
        check(at(Endpoint::http("127.0.0.1", server.http_port()), "t").credentials("nobody", "x"))
            .await;
    assert_eq!(
        failure(&report).1,
        FailureKind::AuthRefused,
        "unknown user: {report}"
    );
}

#[tokio::test]
async fn a_missing_table_is_not_found() {
    let server = with_table();
    let endpoint = Endpoint::http("127.0.0.1", server.http_port());
    let report = check(at(endpoint.clone(), "nope")).await;
    assert_eq!(
        failure(&report),
        (
            "table `default`.`nope`".to_owned(),
            FailureKind::NotFound,
            "table `default`.`nope` does not exist, and neither `engine` nor `init_sql` is set to create it"
                .to_owned()
        )
    );

    // With an engine (and the schema) the sink will create it: that passes.
    let schema = Arc::new(Schema::new(vec![Field::required("id", DataType::Int64)]));
    let report = check(
        at(endpoint.clone(), "nope")
            .engine("MergeTree")
            .with_schema(schema),
    )
    .await;
    assert!(report.is_ok(), "{report}");
    assert!(report.to_string().ends_with(
        "does not exist yet; will be created: CREATE TABLE IF NOT EXISTS `default`.`nope` (`id` Int64) ENGINE = MergeTree ORDER BY tuple()"
    ), "{report}");

    let report = check(at(endpoint, "missing_db.t")).await;
    assert_eq!(
        failure(&report),
        (
            "database `missing_db`".to_owned(),
            FailureKind::NotFound,
            "database `missing_db` does not exist".to_owned()
        )
    );
}

#[tokio::test]
async fn tls_to_a_plain_port_fails_the_handshake() {
    let server = with_table();
    let port = server.http_port();
    let report = check(at(Endpoint::https("127.0.0.1", port), "t")).await;
    assert_eq!(
        failure(&report),
        (
            format!("connect to https://127.0.0.1:{port}"),
            FailureKind::Tls,
            format!(
                "TLS handshake with https://127.0.0.1:{port} failed: received corrupt message of type InvalidContentType"
            )
        )
    );
}

#[tokio::test]
async fn a_read_only_user_may_not_write() {
    let server = with_table();
    let report = check(
        at(Endpoint::http("127.0.0.1", server.http_port()), "t").credentials("reader", "r3ad"),
    )
    .await;
    assert_eq!(
        failure(&report),
        (
            "permission to write".to_owned(),
            FailureKind::PermissionDenied,
            "user `reader` is read-only (readonly = 1) and cannot insert".to_owned()
        )
    );
}

#[tokio::test]
async fn the_native_port_is_not_http() {
    let server = with_table();
    let port = server.tcp_port();
    let report = check(at(Endpoint::http("127.0.0.1", port), "t")).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("connect to http://127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Invalid);
    assert!(
        reason.starts_with(&format!("http://127.0.0.1:{port} does not answer in HTTP")),
        "{reason}"
    );
    assert!(
        reason.ends_with("This sink needs the HTTP port (8123, or 8443 for https)"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts connections (the kernel does) but never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let report = ClickHouseSink::new(at(Endpoint::http("127.0.0.1", port), "t"))
        .unwrap()
        .check(Duration::from_millis(300))
        .await;
    assert_eq!(
        failure(&report),
        (
            format!("connect to http://127.0.0.1:{port}"),
            FailureKind::Timeout,
            "no answer within 300ms".to_owned()
        )
    );
}

#[tokio::test]
async fn unknown_settings_are_invalid() {
    let server = with_table();
    let report = check(
        at(Endpoint::http("127.0.0.1", server.http_port()), "t")
            .setting("insert_quorum", "0")
            .setting("insert_deduplication_token", "x"),
    )
    .await;
    assert_eq!(
        failure(&report),
        (
            "settings".to_owned(),
            FailureKind::Invalid,
            "ClickHouse 18.16.1 has no setting `insert_deduplication_token`".to_owned()
        )
    );
}

#[tokio::test]
async fn one_host_down_is_reported_and_the_rest_is_checked_on_the_next() {
    let server = with_table();
    let dead = testkit::free_port();
    let report = check(ClickHouseConfig::new(
        "t",
        vec![
            Endpoint::http("127.0.0.1", dead),
            Endpoint::http("127.0.0.1", server.http_port()),
        ],
    ))
    .await;
    assert_eq!(
        failure(&report).0,
        format!("connect to http://127.0.0.1:{dead}")
    );
    assert_eq!(report.steps.len(), 6, "{report}");
    assert!(
        report.steps[1..]
            .iter()
            .all(|s| matches!(s.outcome, CheckOutcome::Passed(_))),
        "{report}"
    );
}

#[tokio::test]
async fn https_with_the_servers_ca_checks_and_inserts() {
    let server = ClickHouse::builder().tls().start();
    server.query("CREATE TABLE t (id Int64, name String) ENGINE = MergeTree ORDER BY id");
    let https = Endpoint::https("localhost", server.https_port().unwrap());

    // Without the CA the certificate is not trusted.
    let report = check(at(https.clone(), "t")).await;
    let (_, kind, reason) = failure(&report);
    assert_eq!(kind, FailureKind::Tls);
    assert!(
        reason.contains("invalid peer certificate: UnknownIssuer"),
        "{reason}"
    );

    // Trusting the CA (or skipping verification) works.
    let trusted = at(https.clone(), "t").ca_file(server.ca_file().unwrap());
    let report = check(trusted.clone()).await;
    assert!(report.is_ok(), "{report}");
    let report = check(at(https, "t").skip_verify(true)).await;
    assert!(report.is_ok(), "{report}");

    let mut sink = ClickHouseSink::new(trusted).unwrap();
    let schema = common::id_schema();
    let (ack, outcome) = Ack::channel();
    let records = (0..3)
        .map(|id| {
            Record::new(
                schema.clone(),
                vec![Value::Int64(id), Value::String(format!("n{id}"))],
            )
        })
        .collect();
    sink.send(Batch::with_ack(records, ack)).await.unwrap();
    sink.close().await.unwrap();
    assert!(outcome.await.is_delivered());
    assert_eq!(server.query("SELECT count() FROM t"), "3");

    // The DSN form: https scheme or ?secure=true.
    let dsn = format!(
        "clickhouse://default:@localhost:{}/default?secure=true&skip_verify=true",
        server.https_port().unwrap()
    );
    let sink = ClickHouseSink::from_properties(&Properties::from_pairs([
        ("dsn", dsn.as_str()),
        ("table_name", "t"),
    ]))
    .unwrap();
    assert!(sink.config().endpoints[0].tls);
    let mut sink = sink;
    assert!(sink.check(TIMEOUT).await.is_ok());
}

#[tokio::test]
async fn an_unreadable_ca_file_is_a_configuration_error() {
    // `tls.ca_file` is accepted as another spelling of `tls.ca_cert`.
    for property in ["tls.ca_cert", "tls.ca_file"] {
        let err = ClickHouseSink::from_properties(&Properties::from_pairs([
            ("hosts", "https://localhost:8443"),
            ("table_name", "t"),
            (property, "/nonexistent/ca.pem"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "clickhouse sink: property `tls.ca_cert`: cannot read `/nonexistent/ca.pem`: "
            ),
            "{err}"
        );
    }
}
