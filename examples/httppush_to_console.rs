//! HTTP push → console: records that clients POST to the endpoint are
//! printed to standard output as JSON lines.
//!
//! ```text
//! cargo run --example httppush_to_console                     # 0.0.0.0:10081, POST /api/data, JSON
//! cargo run --example httppush_to_console -- --ip 127.0.0.1 --port 8080 --endpoint /ingest
//! cargo run --example httppush_to_console -- --token s3cret --wait
//! cargo run --example httppush_to_console -- --format delimited --fields id,name --schema "id bigint, name string"
//! ```
//!
//! Then, from another terminal:
//!
//! ```text
//! # one object, or an array of objects: 200 ok
//! curl -i -d '{"device": "d1", "temperature": 21.5}' http://127.0.0.1:10081/api/data
//! curl -i -d '[{"device": "d1"}, {"device": "d2", "tags": ["a", "b"]}]' http://127.0.0.1:10081/api/data
//! # a body that does not decode: 400 with the reason; nothing is printed
//! curl -i -d '{"device": ' http://127.0.0.1:10081/api/data
//! # unknown path: 404; another method: 405 with `Allow: POST`
//! curl -i -d '{}' http://127.0.0.1:10081/api/other
//! curl -i -X PUT -d '{}' http://127.0.0.1:10081/api/data
//! # with --token s3cret: 401 without the token, 200 with it
//! curl -i -H 'Authorization: Bearer s3cret' -d '{"a": 1}' http://127.0.0.1:10081/api/data
//! # with --format delimited --fields id,name: one record per line
//! curl -i --data-binary $'1,ada\n2,bob' http://127.0.0.1:10081/api/data
//! ```
//!
//! With `--wait`, each request is answered only after its records were
//! printed (`wait_for_delivery`). Ctrl-C stops the server; the port is
//! released.

use std::time::Duration;

use connector_core::console::ConsoleSink;
use connector_core::{Pipeline, Properties};
use source_httppush::HttpPushSource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // The source is configured from a property map, as a pipeline file
    // would configure it (see source_httppush::SPEC for every property).
    let mut props = Properties::from_pairs([("endpoint", "/api/data")]);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--wait" {
            props.set("wait_for_delivery", "true");
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let property = match arg.as_str() {
            "--ip" => "http_server_ip",
            "--port" => "http_server_port",
            "--endpoint" => "endpoint",
            "--method" => "method",
            "--token" => "bearer_token",
            "--format" => "format",
            "--fields" => "fields",
            "--delimiter" => "delimiter",
            "--schema" => "schema",
            "--certfile" => "certfile",
            "--keyfile" => "keyfile",
            other => {
                return Err(format!(
                    "unknown option {other} (use --ip, --port, --endpoint, --method, --token, \
                     --format, --fields, --delimiter, --schema, --certfile, --keyfile, --wait)"
                )
                .into());
            }
        };
        props.set(property, value);
    }

    let mut source = HttpPushSource::from_properties(&props)?;
    source.start().await?;
    let url = source.url().unwrap_or_default();
    eprintln!(
        "listening: {} {url} (Ctrl-C to stop)",
        source.config().method
    );

    let report = Pipeline::new(source)
        .name("httppush_to_console")
        .to(ConsoleSink::stdout())
        .handle_signals(true)
        .log_progress(Duration::from_secs(10))
        .run()
        .await?;
    eprintln!(
        "done: {} records in {:.1}s",
        report.metrics.records_out,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
