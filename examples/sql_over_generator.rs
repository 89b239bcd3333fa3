//! DataFusion SQL over a live source: generated IoT events, averaged per
//! device, printed as a table.
//!
//! ```text
//! cargo run --example sql_over_generator                          # 100,000 events
//! cargo run --example sql_over_generator -- --count 1000000 --seed 7
//! cargo run --example sql_over_generator -- --sql "SELECT max(number) FROM iot WHERE device = 'device_1'"
//! ```
//!
//! The generator (`iot` template: `device`, `number`, `time`) is registered
//! as the streaming table `iot`; the query reads the stream as it is
//! generated and ends when the bounded run (`--count` events) ends. Any
//! other query over `iot` can be given with `--sql`.

use std::time::Duration;

use connector_datafusion::SessionContextExt;
use connector_datafusion::datafusion::prelude::SessionContext;
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = GeneratorConfig::new(Template::Iot)
        .interval(Duration::ZERO)
        .count(100_000);
    let mut sql = "SELECT device, avg(number) AS avg, count(*) AS events \
                   FROM iot GROUP BY device ORDER BY device"
        .to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--count" => config.count = Some(value.parse()?),
            "--seed" => config.seed = Some(value.parse()?),
            "--sql" => sql = value,
            other => {
                return Err(format!("unknown option {other} (use --count, --seed, --sql)").into());
            }
        }
    }

    let ctx = SessionContext::new();
    let table = ctx
        .register_source("iot", GeneratorSource::new(config))
        .await?;
    ctx.sql(&sql).await?.show().await?;
    eprintln!("{} events read", table.records_read());
    Ok(())
}
