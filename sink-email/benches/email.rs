//! Email sink speed against lettre used by hand, in the same run.
//!
//! `cargo bench -p sink-email --bench email` (needs `scripts/install-test-deps.sh`
//! for the aiosmtpd server)
//!
//! - `email_render/lettre_builder`: a mail built with lettre's builder and
//!   `format!` (the baseline); `email_render/email_sink`: the same mail from
//!   the sink's subject and body templates. Both end in the bytes sent.
//! - `email_send/lettre_connection`: 20 prebuilt mails sent over one open
//!   lettre connection to a local aiosmtpd (the baseline);
//!   `email_send/email_sink`: 20 records through `EmailSink::send` (render,
//!   send over its reused connection, acknowledge). lettre's own sockets
//!   leave Nagle's algorithm on, so each of its mails waits for the server's
//!   delayed ACK; the sink's sockets do not.
//! - `email_send_tls/*`: the same over implicit TLS (self-signed, not verified).

use std::time::Duration;

use connector_core::{Ack, Batch, Properties, Record, Sink, Value};
use criterion::{Criterion, Throughput, criterion_group};
use lettre::Message;
use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use sink_email::EmailSink;
use testkit::smtp::{SmtpMode, SmtpServer};

const MAILS: usize = 20;

fn record(i: usize) -> Record {
    Record::from_pairs([
        ("device", Value::from(format!("device_{}", i % 3))),
        ("number", Value::Float64(i as f64 * 1.5)),
        ("note", Value::from("temperature above threshold")),
    ])
}

fn props(port: u16) -> Properties {
    Properties::from_pairs([
        ("server", "127.0.0.1".to_owned()),
        ("port", port.to_string()),
        ("tls.mode", "none".to_owned()),
        ("from", "Alerts <alerts@example.com>".to_owned()),
        ("to", "ops@example.com".to_owned()),
        ("subject", "{{ .device }} reads {{ .number }}".to_owned()),
        (
            "body",
            "Device {{ .device }} reported {{ .number }}: {{ .note }}.".to_owned(),
        ),
    ])
}

fn by_hand(record: &Record) -> Message {
    let device = record
        .get("device")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let number = record
        .get("number")
        .and_then(Value::as_f64)
        .unwrap_or_default();
    let note = record
        .get("note")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Message::builder()
        .from("Alerts <alerts@example.com>".parse().unwrap())
        .message_id(None)
        .to("ops@example.com".parse().unwrap())
        .subject(format!("{device} reads {number}"))
        .header(ContentType::TEXT_PLAIN)
        .body(format!("Device {device} reported {number}: {note}."))
        .unwrap()
}

fn render(c: &mut Criterion) {
    let sink = EmailSink::from_properties(&props(25)).unwrap();
    let record = record(7);
    assert_eq!(
        sink.render(&record).unwrap().headers().get_raw("Subject"),
        by_hand(&record).headers().get_raw("Subject")
    );
    let mut group = c.benchmark_group("email_render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("lettre_builder", |b| {
        b.iter(|| by_hand(&record).formatted())
    });
    group.bench_function("email_sink", |b| {
        b.iter(|| sink.render(&record).unwrap().formatted())
    });
    group.finish();
}

fn send(c: &mut Criterion) {
    send_over(c, "email_send", SmtpMode::Plain);
    send_over(c, "email_send_tls", SmtpMode::ImplicitTls);
}

fn send_over(c: &mut Criterion, name: &str, mode: SmtpMode) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = SmtpServer::builder().mode(mode).start();
    let records: Vec<Record> = (0..MAILS).map(record).collect();
    let messages: Vec<Message> = records.iter().map(by_hand).collect();
    let tls = (mode == SmtpMode::ImplicitTls).then(|| {
        TlsParameters::builder("127.0.0.1".into())
            .dangerous_accept_invalid_certs(true)
            .build_rustls()
            .unwrap()
    });
    let mut props = props(server.port());
    if tls.is_some() {
        props.set("tls.mode", "implicit");
        props.set("tls.skip_verify_server", "true");
    }

    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(MAILS as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));

    let mut conn = rt.block_on(async {
        AsyncSmtpConnection::connect_tokio1(
            ("127.0.0.1", server.port()),
            Some(Duration::from_secs(10)),
            &ClientId::default(),
            tls,
            None,
        )
        .await
        .unwrap()
    });
    group.bench_function("lettre_connection", |b| {
        b.iter(|| {
            rt.block_on(async {
                for message in &messages {
                    conn.send(message.envelope(), &message.formatted())
                        .await
                        .unwrap();
                }
            })
        })
    });

    let mut sink = EmailSink::from_properties(&props).unwrap();
    group.bench_function("email_sink", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (ack, outcome) = Ack::channel();
                sink.send(Batch::with_ack(records.clone(), ack))
                    .await
                    .unwrap();
                assert!(outcome.await.is_delivered());
            })
        })
    });
    group.finish();
}

criterion_group!(benches, render, send);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("email_render", "email_sink", "lettre_builder");
    testkit::bench::report_ratio("email_send", "email_sink", "lettre_connection");
    testkit::bench::report_ratio("email_send_tls", "email_sink", "lettre_connection");
}
