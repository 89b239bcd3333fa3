//! The email sink against a real SMTP server (aiosmtpd, started per test):
//! plain, AUTH, STARTTLS and implicit TLS with a self-signed certificate,
//! refused recipients, temporary failures, lost connections.

use std::time::Duration;

use connector_core::{
    Ack, AckStatus, BadDataPolicy, Batch, Pipeline, Properties, Record, Sink, Value,
};
use serde_json::json;
use sink_email::EmailSink;
use source_generator::GeneratorSource;
use testkit::smtp::{SmtpMode, SmtpServer};

const PASSWORD: &str = "correct horse battery staple";

fn props(server: &SmtpServer) -> Properties {
    Properties::from_pairs([
        ("server", "127.0.0.1".to_owned()),
        ("port", server.port().to_string()),
        ("tls.mode", "none".to_owned()),
        ("from", "Alerts <alerts@example.com>".to_owned()),
        ("to", "ops@example.com, Jane <jane@example.com>".to_owned()),
        ("retry_interval", "10ms".to_owned()),
        ("timeout", "10s".to_owned()),
    ])
}

fn reading(device: &str, number: f64) -> Record {
    Record::from_pairs([
        ("device", Value::from(device)),
        ("number", Value::Float64(number)),
    ])
}

/// Sends `records` as one batch; returns the batch's outcome and what `send` returned.
async fn send(
    sink: &mut EmailSink,
    records: Vec<Record>,
) -> (AckStatus, connector_core::Result<()>) {
    let (ack, outcome) = Ack::channel();
    let result = sink.send(Batch::with_ack(records, ack)).await;
    (outcome.await, result)
}

fn error_text(status: &AckStatus) -> String {
    status.error().map(|e| e.to_string()).unwrap_or_default()
}

#[tokio::test]
async fn plain_server_gets_one_mail_per_record_over_one_connection() {
    let server = SmtpServer::start_plain();
    let mut sink = EmailSink::from_properties(
        &props(&server)
            .with("subject", "{{ .device }} reads {{ .number }}")
            .with(
                "body",
                "Device {{ .device }} reported {{.number}}.\nMissing: {{ .nope }}",
            ),
    )
    .unwrap();

    let (status, result) = send(&mut sink, vec![reading("d1", 1.5), reading("d2", 2.0)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    let (status, result) = send(&mut sink, vec![reading("d3", 99.25)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    sink.close().await.unwrap();

    let mails = server.messages();
    assert_eq!(mails.len(), 3);
    assert_eq!(sink.sent(), 3);
    let subjects: Vec<_> = mails.iter().map(|m| m.header("Subject").unwrap()).collect();
    assert_eq!(subjects, ["d1 reads 1.5", "d2 reads 2", "d3 reads 99.25"]);
    let first = &mails[0];
    assert_eq!(first.mail_from, "alerts@example.com");
    assert_eq!(first.rcpt_tos, ["ops@example.com", "jane@example.com"]);
    assert_eq!(first.header("From"), Some("Alerts <alerts@example.com>"));
    assert_eq!(
        first.header("To"),
        Some("ops@example.com, Jane <jane@example.com>")
    );
    assert!(first.header("Message-ID").is_some() && first.header("Date").is_some());
    assert_eq!(first.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        first.body.as_deref().map(str::trim_end),
        Some("Device d1 reported 1.5.\nMissing: <no value>")
    );
    assert!(!first.tls && first.login.is_none());
    // One connection carried every mail.
    assert!(
        mails.iter().all(|m| m.connection == mails[0].connection),
        "{mails:#?}"
    );
}

#[tokio::test]
async fn default_body_is_the_record_as_json_and_text_is_utf8() {
    let server = SmtpServer::start_plain();
    let mut sink =
        EmailSink::from_properties(&props(&server).with("subject", "Grüße {{ .device }}")).unwrap();
    let record = Record::from_pairs([
        ("device", Value::from("Gerät-7 ✓")),
        ("number", Value::Int64(42)),
        (
            "tags",
            Value::from_json(json!({"room": "Küche", "ok": true})),
        ),
    ]);
    let (status, result) = send(&mut sink, vec![record]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    let mail = &server.messages()[0];
    assert_eq!(mail.header("Subject"), Some("Grüße Gerät-7 ✓"));
    let body: serde_json::Value = serde_json::from_str(mail.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"device": "Gerät-7 ✓", "number": 42, "tags": {"room": "Küche", "ok": true}})
    );
}

#[tokio::test]
async fn html_body_and_header_injection_is_neutralised() {
    let server = SmtpServer::start_plain();
    let mut sink = EmailSink::from_properties(
        &props(&server)
            .with("content_type", "text/html")
            .with("subject", "alert {{ .device }}")
            .with("body", "<p>{{ .device }}</p>"),
    )
    .unwrap();
    let (status, _) = send(&mut sink, vec![reading("x\r\nBcc: evil@example.com", 1.0)]).await;
    assert!(status.is_delivered(), "{status:?}");
    let mail = &server.messages()[0];
    assert_eq!(mail.content_type.as_deref(), Some("text/html"));
    assert!(mail.header("Bcc").is_none(), "{:?}", mail.headers);
    assert_eq!(mail.rcpt_tos.len(), 2);
    assert!(mail.header("Subject").unwrap().starts_with("alert x"));
}

#[tokio::test]
async fn auth_on_a_plain_server() {
    let server = SmtpServer::builder()
        .auth("alerts@example.com", PASSWORD)
        .start();
    let mut sink = EmailSink::from_properties(
        &props(&server)
            .with("username", "alerts@example.com")
            .with("password", PASSWORD)
            .with("from", ""),
    )
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0), reading("d2", 2.0)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    let mails = server.messages();
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert_eq!(mail.login.as_deref(), Some("alerts@example.com"));
        // `from` defaults to the user name.
        assert_eq!(mail.mail_from, "alerts@example.com");
        assert_eq!(mail.connection, mails[0].connection);
    }
}

#[tokio::test]
async fn wrong_password_stops_the_sink_with_the_servers_reply() {
    let server = SmtpServer::builder()
        .auth("alerts@example.com", PASSWORD)
        .start();
    let mut sink = EmailSink::from_properties(
        &props(&server)
            .with("username", "alerts@example.com")
            .with("password", "not-the-password"),
    )
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    let err = result
        .map_err(|e| e.to_string())
        .expect_err(&format!("{status:?}"));
    assert!(
        err.contains(
            "AUTH as `alerts@example.com` refused: 535 5.7.8 Authentication credentials invalid"
        ),
        "{err}"
    );
    assert!(
        err.starts_with("email sink: send record 0 of the batch via 127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"));
    assert!(matches!(status, AckStatus::Failed(_)), "{status:?}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn starttls_with_a_self_signed_certificate_and_skip_verify() {
    let server = SmtpServer::builder()
        .mode(SmtpMode::StartTls)
        .auth("alerts@example.com", PASSWORD)
        .start();
    let mut sink = EmailSink::from_properties(
        &props(&server)
            .with("tls.mode", "starttls")
            .with("tls.skip_verify_server", "true")
            .with("username", "alerts@example.com")
            .with("password", PASSWORD),
    )
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0), reading("d2", 2.0)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    let mails = server.messages();
    assert_eq!(mails.len(), 2);
    assert!(
        mails
            .iter()
            .all(|m| m.tls && m.connection == mails[0].connection),
        "{mails:#?}"
    );
    assert_eq!(mails[1].login.as_deref(), Some("alerts@example.com"));
}

#[tokio::test]
async fn starttls_verifies_the_certificate_unless_told_not_to() {
    let server = SmtpServer::builder().mode(SmtpMode::StartTls).start();
    let mut sink =
        EmailSink::from_properties(&props(&server).with("tls.mode", "starttls")).unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("TLS handshake with 127.0.0.1:")
            && err.contains("invalid peer certificate: UnknownIssuer")
            && err.contains("tls.skip_verify_server"),
        "{err}"
    );
    assert!(matches!(status, AckStatus::Failed(_)));
    assert!(server.messages().is_empty());

    // Trusting the server's own certificate verifies it properly.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, server.certificate_pem().unwrap()).unwrap();
    let mut sink = EmailSink::from_properties(
        &props(&server)
            .with("tls.mode", "starttls")
            .with("tls.ca_file", ca.to_str().unwrap()),
    )
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    assert!(server.messages()[0].tls);
}

#[tokio::test]
async fn implicit_tls_with_skip_verify() {
    let server = SmtpServer::builder()
        .mode(SmtpMode::ImplicitTls)
        .auth("alerts@example.com", PASSWORD)
        .start();
    let mut sink = EmailSink::from_properties(
        &props(&server)
            .with("tls.mode", "implicit")
            .with("tls.skip_verify_server", true)
            .with("username", "alerts@example.com")
            .with("password", PASSWORD),
    )
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    let mail = &server.messages()[0];
    assert!(mail.tls);
    assert_eq!(mail.login.as_deref(), Some("alerts@example.com"));
}

#[tokio::test]
async fn a_refused_recipient_rejects_the_record_and_the_sink_goes_on() {
    let server = SmtpServer::builder()
        .reject_recipient("nobody@example.com")
        .start();
    let mut sink = EmailSink::from_properties(
        &props(&server).with("to", "ops@example.com, nobody@example.com"),
    )
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0), reading("d2", 2.0)]).await;
    result.unwrap();
    match &status {
        AckStatus::Rejected(e) => assert_eq!(
            e.to_string(),
            "email sink: rejected record 0 of the batch: server replied 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"
        ),
        other => panic!("expected rejected, got {other:?}"),
    }
    // The sink is still usable: the next batch is tried (and refused) too.
    let (status, result) = send(&mut sink, vec![reading("d3", 3.0)]).await;
    result.unwrap();
    assert!(
        error_text(&status).contains("550 5.1.1 <nobody@example.com>"),
        "{status:?}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_refused_mail_does_not_hold_up_the_others_in_its_batch() {
    let server = SmtpServer::builder().reject_content("forbidden").start();
    let mut sink =
        EmailSink::from_properties(&props(&server).with("subject", "{{ .device }}")).unwrap();
    let (status, result) = send(
        &mut sink,
        vec![
            reading("d1", 1.0),
            reading("forbidden", 2.0),
            reading("d3", 3.0),
        ],
    )
    .await;
    result.unwrap();
    assert_eq!(
        error_text(&status),
        "email sink: rejected record 1 of the batch: server replied 554 5.7.1 Message content rejected by policy"
    );
    let subjects: Vec<_> = server
        .messages()
        .iter()
        .map(|m| m.header("Subject").unwrap().to_owned())
        .collect();
    assert_eq!(subjects, ["d1", "d3"]);

    // In a pipeline that skips bad data, the good records are delivered and
    // the refused one is counted as bad.
    let (mut tx, source) = connector_core::memory::channel(4);
    for device in ["d4", "forbidden", "d6"] {
        tx.send(Batch::new(vec![reading(device, 0.0)]))
            .await
            .unwrap();
    }
    drop(tx);
    let report = Pipeline::new(source)
        .to(EmailSink::from_properties(&props(&server).with("subject", "{{ .device }}")).unwrap())
        .on_bad_data(BadDataPolicy::Skip)
        .run()
        .await
        .unwrap();
    assert_eq!(report.metrics.records_out, 2);
    assert_eq!(report.metrics.bad_records, 1);
    assert_eq!(server.messages().len(), 4);
}

#[tokio::test]
async fn rejected_batch_stops_a_pipeline_whose_policy_is_fail_with_the_reply() {
    let server = SmtpServer::builder()
        .reject_recipient("nobody@example.com")
        .start();
    let sink =
        EmailSink::from_properties(&props(&server).with("to", "nobody@example.com")).unwrap();
    let source = GeneratorSource::from_properties(&Properties::from_pairs([
        ("template", "iot"),
        ("interval", "0ms"),
        ("count", "2"),
    ]))
    .unwrap();
    let err = Pipeline::new(source)
        .to(sink)
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown"),
        "{err}"
    );
}

#[tokio::test]
async fn temporary_failures_are_retried() {
    let server = SmtpServer::builder().tempfail_first(2).start();
    let mut sink = EmailSink::from_properties(&props(&server).with("retries", "3")).unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn exhausted_retries_fail_the_batch_with_the_reply() {
    let server = SmtpServer::builder().tempfail_first(10).start();
    let mut sink = EmailSink::from_properties(&props(&server).with("retries", "1")).unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    result.unwrap();
    assert!(matches!(status, AckStatus::Failed(_)), "{status:?}");
    let err = error_text(&status);
    assert!(
        err.contains(
            "server replied 451 4.3.0 Temporary local problem, try again (gave up after 2 tries)"
        ),
        "{err}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn reconnects_after_the_server_restarts() {
    let mut server = SmtpServer::start_plain();
    let port = server.port();
    let mut sink = EmailSink::from_properties(&props(&server)).unwrap();
    let (status, _) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    assert!(status.is_delivered());
    assert_eq!(server.messages().len(), 1);

    server.kill();
    let server = SmtpServer::builder().port(port).start();
    let (status, result) = send(&mut sink, vec![reading("d2", 2.0)]).await;
    result.unwrap();
    assert!(status.is_delivered(), "{status:?}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn unreachable_server_fails_the_batch_after_retries() {
    let port = testkit::free_port();
    let mut sink = EmailSink::from_properties(&Properties::from_pairs([
        ("server", "127.0.0.1".to_owned()),
        ("port", port.to_string()),
        ("tls.mode", "none".to_owned()),
        ("from", "alerts@example.com".to_owned()),
        ("to", "ops@example.com".to_owned()),
        ("retries", "2".to_owned()),
        ("retry_interval", "5ms".to_owned()),
    ]))
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0), reading("d2", 2.0)]).await;
    result.unwrap();
    assert!(matches!(status, AckStatus::Failed(_)), "{status:?}");
    let err = error_text(&status);
    assert!(
        err.contains(&format!(
            "cannot connect to 127.0.0.1:{port}: Connection refused"
        )) && err.contains("(gave up after 3 tries)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut sink = EmailSink::from_properties(&Properties::from_pairs([
        ("server", "127.0.0.1".to_owned()),
        ("port", port.to_string()),
        ("from", "alerts@example.com".to_owned()),
        ("to", "ops@example.com".to_owned()),
        ("retries", "0".to_owned()),
        ("timeout", "300ms".to_owned()),
    ]))
    .unwrap();
    let (status, result) = send(&mut sink, vec![reading("d1", 1.0)]).await;
    result.unwrap();
    let err = error_text(&status);
    assert!(
        err.contains(
            "no answer to the SMTP greeting within 300ms (if this port expects TLS from the start"
        ),
        "{err}"
    );
    drop(listener);
}

#[tokio::test]
async fn generator_to_email_pipeline() {
    let server = SmtpServer::builder()
        .mode(SmtpMode::StartTls)
        .auth("alerts@example.com", PASSWORD)
        .start();
    let sink = EmailSink::from_properties(
        &props(&server)
            .with("tls.mode", "starttls")
            .with("tls.skip_verify_server", true)
            .with("username", "alerts@example.com")
            .with("password", PASSWORD)
            .with("subject", "{{ .device }}"),
    )
    .unwrap();
    let source = GeneratorSource::from_properties(&Properties::from_pairs([
        ("template", "iot"),
        ("interval", "0ms"),
        ("count", "5"),
        ("seed", "1"),
    ]))
    .unwrap();
    let report = Pipeline::new(source)
        .to(sink)
        .check_on_start(Duration::from_secs(10))
        .run()
        .await
        .unwrap();
    assert_eq!(report.metrics.records_out, 5);
    let mails = server.messages();
    assert_eq!(mails.len(), 5);
    for mail in &mails {
        let device = mail.header("Subject").unwrap();
        assert!(
            ["device_0", "device_1", "device_2"].contains(&device),
            "{device}"
        );
        let body: serde_json::Value = serde_json::from_str(mail.body.as_deref().unwrap()).unwrap();
        assert_eq!(body["device"], device);
    }
}
