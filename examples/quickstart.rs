//! Quickstart: generated IoT events → a map step → the console.
//!
//! ```text
//! cargo run --example quickstart                  # runs until Ctrl-C
//! cargo run --example quickstart -- --count 1000  # stops after 1000 records
//! cargo run --example quickstart -- --interval 0ms --count 1000000 > /dev/null
//! ```
//!
//! Records go to standard output as JSON lines; a progress line
//! (records/s) goes to standard error every second.

use std::sync::Arc;
use std::time::Duration;

use connector_core::config::parse_duration;
use connector_core::console::ConsoleSink;
use connector_core::{DataType, Field, Pipeline, Record, Schema, Value};
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let mut config = GeneratorConfig::new(Template::Iot).interval(Duration::from_millis(5));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--count" => config.count = Some(value.parse()?),
            "--interval" => config.interval = parse_duration(&value)?,
            "--seed" => config.seed = Some(value.parse()?),
            other => {
                return Err(
                    format!("unknown option {other} (use --count, --interval, --seed)").into(),
                );
            }
        }
    }

    // The map step adds a `level` column; the new schema is built once and
    // shared by every output record.
    let schema = Arc::new(Schema::new(
        Template::Iot
            .schema()
            .fields()
            .iter()
            .cloned()
            .chain([Field::required("level", DataType::String)])
            .collect(),
    ));
    let add_level = move |mut record: Record| {
        let number = record
            .get("number")
            .and_then(Value::as_f64)
            .unwrap_or_default();
        record
            .values
            .push(Value::from(if number > 80.0 { "high" } else { "normal" }));
        record.schema = schema.clone();
        record
    };

    let report = Pipeline::new(GeneratorSource::new(config))
        .name("quickstart")
        .map(add_level)
        .to(ConsoleSink::stdout())
        .handle_signals(true)
        .log_progress(Duration::from_secs(1))
        .run()
        .await?;
    eprintln!(
        "done: {} records in {:.1}s",
        report.metrics.records_out,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}
