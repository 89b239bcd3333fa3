//! Generated IoT events → one email each.
//!
//! ```text
//! EMAIL_PASSWORD=app-password cargo run --example generator_to_email -- \
//!     --server smtp.example.com --username alerts@example.com --to ops@example.com --count 3
//! cargo run --example generator_to_email -- --server 127.0.0.1 --port 2525 --tls none \
//!     --from alerts@example.com --to ops@example.com --count 3   # a local test server
//! ```
//!
//! The connection is checked first (greeting, STARTTLS, AUTH, recipients,
//! without sending); then each generated record becomes a mail whose
//! subject and body are rendered from templates.

use std::time::Duration;

use connector_core::{Pipeline, Properties};
use sink_email::EmailSink;
use source_generator::GeneratorSource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let mut email = Properties::from_pairs([
        ("subject", "{{ .device }} reads {{ .number }}"),
        (
            "body",
            "Device {{ .device }} reported {{ .number }} at {{ .time }}.\n\nThe whole record: {{ . }}",
        ),
    ]);
    if let Ok(password) = std::env::var("EMAIL_PASSWORD") {
        email.set("password", password);
    }
    let mut count = "3".to_owned();
    let mut interval = "1s".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--server" => email.set("server", value),
            "--port" => email.set("port", value),
            "--username" => email.set("username", value),
            "--from" => email.set("from", value),
            "--to" => email.set("to", value),
            "--tls" => email.set("tls.mode", value),
            "--skip-verify" => email.set("tls.skip_verify_server", value),
            "--count" => {
                count = value;
                &mut email
            }
            "--interval" => {
                interval = value;
                &mut email
            }
            other => {
                return Err(format!(
                    "unknown option {other} (use --server, --port, --username, --from, --to, --tls, --skip-verify, --count, --interval; the password comes from EMAIL_PASSWORD)"
                )
                .into());
            }
        };
    }

    let sink = EmailSink::from_properties(&email)?;
    let source = GeneratorSource::from_properties(&Properties::from_pairs([
        ("template", "iot"),
        ("interval", interval.as_str()),
        ("count", count.as_str()),
    ]))?;
    let report = Pipeline::new(source)
        .name("generator_to_email")
        .to(sink)
        .check_on_start(Duration::from_secs(10))
        .handle_signals(true)
        .run()
        .await?;
    eprintln!(
        "done: {} mails accepted by the server in {:.1}s",
        report.metrics.records_out,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
