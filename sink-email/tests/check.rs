//! `Sink::check` of the email sink against a real SMTP server: greeting,
//! STARTTLS, AUTH and the envelope, without sending; each failure named.

use std::time::Duration;

use connector_core::check::{CheckOutcome, CheckReport};
use connector_core::{FailureKind, Properties, Sink};
use sink_email::EmailSink;
use testkit::smtp::{SmtpMode, SmtpServer};

const PASSWORD: &str = "correct horse battery staple";
const TIMEOUT: Duration = Duration::from_secs(5);

fn props(port: u16) -> Properties {
    Properties::from_pairs([
        ("server", "127.0.0.1".to_owned()),
        ("port", port.to_string()),
        ("from", "alerts@example.com".to_owned()),
        ("to", "ops@example.com, jane@example.com".to_owned()),
    ])
}

fn starttls_props(server: &SmtpServer) -> Properties {
    props(server.port())
        .with("tls.mode", "starttls")
        .with("tls.skip_verify_server", true)
        .with("username", "alerts@example.com")
        .with("password", PASSWORD)
}

async fn check(props: &Properties) -> CheckReport {
    let mut sink = EmailSink::from_properties(props).unwrap();
    let report = sink.check(TIMEOUT).await;
    let text = report.to_string();
    assert!(!text.contains(PASSWORD), "{text}");
    report
}

/// The failed step's name, kind and reason.
fn failure(report: &CheckReport) -> (String, FailureKind, String) {
    let step = report
        .failure()
        .unwrap_or_else(|| panic!("expected a failure:\n{report}"));
    match &step.outcome {
        CheckOutcome::Failed { kind, reason } => (step.name.clone(), *kind, reason.clone()),
        CheckOutcome::Passed(_) => unreachable!(),
    }
}

#[tokio::test]
async fn success_walks_every_step_and_sends_nothing() {
    let server = SmtpServer::builder()
        .mode(SmtpMode::StartTls)
        .auth("alerts@example.com", PASSWORD)
        .start();
    let report = check(&starttls_props(&server)).await;
    assert!(report.is_ok(), "{report}");
    let names: Vec<_> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("connect to 127.0.0.1:{}", server.port()).as_str(),
            "SMTP greeting and EHLO",
            "STARTTLS",
            "AUTH as `alerts@example.com`",
            "MAIL FROM <alerts@example.com>, RCPT TO <ops@example.com>, <jane@example.com>",
        ]
    );
    let text = report.to_string();
    assert!(
        text.contains("email sink: ok     SMTP greeting and EHLO: server `testkit.smtp`"),
        "{text}"
    );
    assert!(
        text.contains(
            "STARTTLS: TLS established (certificate not verified: tls.skip_verify_server is on)"
        ),
        "{text}"
    );
    assert!(
        text.contains("AUTH as `alerts@example.com`: 235 2.7.0 Authentication successful"),
        "{text}"
    );
    assert!(text.contains("accepted; nothing sent"), "{text}");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn success_over_implicit_tls_and_plain() {
    let server = SmtpServer::builder().mode(SmtpMode::ImplicitTls).start();
    let report = check(
        &props(server.port())
            .with("tls.mode", "implicit")
            .with("tls.skip_verify_server", true),
    )
    .await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        report.steps[1].name,
        "TLS handshake, SMTP greeting and EHLO"
    );

    let server = SmtpServer::start_plain();
    let report = check(&props(server.port()).with("tls.mode", "none")).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.steps.len(), 3, "{report}");
}

#[tokio::test]
async fn wrong_port() {
    let port = testkit::free_port();
    let report = check(&props(port)).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, format!("connect to 127.0.0.1:{port}"));
    assert_eq!(kind, FailureKind::Unreachable);
    assert!(reason.starts_with("Connection refused"), "{reason}");
    assert_eq!(report.steps.len(), 1);
}

#[tokio::test]
async fn wrong_credentials() {
    let server = SmtpServer::builder()
        .mode(SmtpMode::StartTls)
        .auth("alerts@example.com", PASSWORD)
        .start();
    let mut props = starttls_props(&server);
    props.set("password", "guess");
    let report = check(&props).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "AUTH as `alerts@example.com`");
    assert_eq!(kind, FailureKind::AuthRefused);
    assert_eq!(
        reason,
        "AUTH as `alerts@example.com` refused: 535 5.7.8 Authentication credentials invalid"
    );
    assert!(!report.to_string().contains("guess"));
}

#[tokio::test]
async fn tls_to_a_plain_port() {
    let server = SmtpServer::start_plain();
    let report = check(&props(server.port()).with("tls.mode", "implicit")).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "TLS handshake, SMTP greeting and EHLO");
    assert_eq!(kind, FailureKind::Tls);
    assert_eq!(
        reason,
        format!(
            "TLS handshake with 127.0.0.1:{} failed: received corrupt message of type InvalidContentType (the server does not speak TLS here; for STARTTLS use port 587 or tls.mode `starttls`)",
            server.port()
        )
    );

    // STARTTLS demanded from a server that does not offer it.
    let report = check(&props(server.port()).with("tls.mode", "starttls")).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "STARTTLS");
    assert_eq!(kind, FailureKind::Tls);
    assert_eq!(
        reason,
        format!(
            "127.0.0.1:{0} does not offer STARTTLS, which port {0} requires here (set port 25 or tls.mode `none` for plain SMTP)",
            server.port()
        )
    );
}

#[tokio::test]
async fn plain_client_at_an_implicit_tls_port_times_out_with_a_hint() {
    let server = SmtpServer::builder().mode(SmtpMode::ImplicitTls).start();
    let mut sink = EmailSink::from_properties(
        &props(server.port())
            .with("tls.mode", "none")
            .with("timeout", "500ms"),
    )
    .unwrap();
    let report = sink.check(TIMEOUT).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "SMTP greeting and EHLO");
    assert_eq!(kind, FailureKind::Timeout);
    assert_eq!(
        reason,
        "no answer to the SMTP greeting within 500ms (if this port expects TLS from the start, as 465 does, use port 465 or tls.mode `implicit`)"
    );
}

#[tokio::test]
async fn untrusted_certificate() {
    let server = SmtpServer::builder().mode(SmtpMode::StartTls).start();
    let report = check(&props(server.port()).with("tls.mode", "starttls")).await;
    let (step, kind, reason) = failure(&report);
    assert_eq!(step, "STARTTLS");
    assert_eq!(kind, FailureKind::Tls);
    assert!(
        reason.contains("invalid peer certificate: UnknownIssuer (trust its CA with tls.ca_file"),
        "{reason}"
    );
}

#[tokio::test]
async fn refused_recipient() {
    let server = SmtpServer::builder()
        .reject_recipient("jane@example.com")
        .start();
    let report = check(&props(server.port()).with("tls.mode", "none")).await;
    let (step, kind, reason) = failure(&report);
    assert!(step.starts_with("MAIL FROM <alerts@example.com>"), "{step}");
    assert_eq!(kind, FailureKind::NotFound);
    assert_eq!(
        reason,
        "recipient refused: 550 5.1.1 <jane@example.com>: Recipient address rejected: User unknown"
    );
}

#[tokio::test]
async fn auth_required_but_not_configured() {
    let server = SmtpServer::builder()
        .auth("alerts@example.com", PASSWORD)
        .start();
    let report = check(&props(server.port()).with("tls.mode", "none")).await;
    let (step, kind, reason) = failure(&report);
    assert!(step.starts_with("MAIL FROM"), "{step}");
    assert_eq!(kind, FailureKind::AuthRefused);
    assert!(
        reason.starts_with("server wants authentication: 530 5.7.0 Authentication required"),
        "{reason}"
    );
}
