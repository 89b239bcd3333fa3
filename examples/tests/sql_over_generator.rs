//! Runs the sql_over_generator example as a user would and checks the
//! table it prints against the same averages computed in plain Rust over
//! the same seeded events.

use std::collections::BTreeMap;
use std::time::Duration;

use connector_core::{Source, Value};
use source_generator::{GeneratorConfig, GeneratorSource, Template};

#[tokio::test]
async fn sql_over_generator_prints_the_average_per_device() {
    let output = testkit::example_command("sql_over_generator")
        .args(["--count", "20000", "--seed", "5"])
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the example failed: {stderr}");
    assert!(stderr.contains("20000 events read"), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();

    let mut source = GeneratorSource::new(
        GeneratorConfig::new(Template::Iot)
            .interval(Duration::ZERO)
            .seed(5)
            .count(20_000),
    );
    let mut sums: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    while let Some(batch) = source.next_batch().await.unwrap() {
        for r in &batch.records {
            let device = r.get("device").and_then(Value::as_str).unwrap().to_owned();
            let entry = sums.entry(device).or_default();
            entry.0 += r.get("number").and_then(Value::as_f64).unwrap();
            entry.1 += 1;
        }
    }

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[1].split('|').map(str::trim).collect::<Vec<_>>(),
        ["", "device", "avg", "events", ""],
        "{stdout}"
    );
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .filter(|l| l.starts_with("| device_"))
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), sums.len(), "{stdout}");
    for (row, (device, (sum, n))) in rows.iter().zip(&sums) {
        assert_eq!(row[0], device, "{stdout}");
        let avg: f64 = row[1].parse().unwrap();
        let expected = sum / *n as f64;
        assert!(
            (avg - expected).abs() < 1e-9 * expected.abs(),
            "{device}: {avg} vs {expected}"
        );
        assert_eq!(row[2], n.to_string(), "{stdout}");
    }
}
