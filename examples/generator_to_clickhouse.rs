//! Generated devops metrics → a ClickHouse MergeTree table.
//!
//! ```text
//! cargo run --example generator_to_clickhouse                       # http://127.0.0.1:8123, until Ctrl-C
//! cargo run --example generator_to_clickhouse -- --count 100000 --interval 0ms
//! cargo run --example generator_to_clickhouse -- --dsn clickhouse://default:@ch.example.com:8123/metrics
//! ```
//!
//! The sink is configured with the property names of the `clickhouse`
//! connector: it checks the connection first, creates the table from the
//! record schema (`engine` + `suffix`) if it does not exist, and inserts
//! batches of `batch_count` rows (or whatever arrived within
//! `batch_duration`). A progress line goes to standard error every second.

use std::time::Duration;

use connector_core::config::parse_duration;
use connector_core::{Pipeline, Properties};
use sink_clickhouse::{ClickHouseConfig, ClickHouseSink};
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    let mut generator = GeneratorConfig::new(Template::Devops).interval(Duration::from_millis(1));
    let mut dsn = "clickhouse://default:@127.0.0.1:8123/default".to_owned();
    let mut table = "devops".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--dsn" => dsn = value,
            "--table" => table = value,
            "--count" => generator.count = Some(value.parse()?),
            "--interval" => generator.interval = parse_duration(&value)?,
            other => {
                return Err(format!(
                    "unknown option {other} (use --dsn, --table, --count, --interval)"
                )
                .into());
            }
        }
    }

    let props = Properties::from_pairs([
        ("dsn", dsn.as_str()),
        ("table_name", table.as_str()),
        ("engine", "MergeTree"),
        (
            "suffix",
            "PARTITION BY toYYYYMM(time) ORDER BY (hostname, time)",
        ),
        ("batch_count", "10000"),
        ("batch_duration", "500ms"),
    ]);
    // The schema is known before the first record: the connection check can
    // then also say whether an existing table fits it.
    let config = ClickHouseConfig::from_properties(&props)?.with_schema(Template::Devops.schema());
    let sink = ClickHouseSink::new(config)?;

    let report = Pipeline::new(GeneratorSource::new(generator))
        .name("generator_to_clickhouse")
        .to(sink)
        .check_on_start(Duration::from_secs(5))
        .handle_signals(true)
        .log_progress(Duration::from_secs(1))
        .run()
        .await?;
    eprintln!(
        "done: {} rows into {table} in {:.1}s ({} batches)",
        report.metrics.records_out,
        report.elapsed.as_secs_f64(),
        report.metrics.batches_delivered
    );
    Ok(())
}
