//! The cost of the pipeline files' transforms against the same steps
//! written by hand in Rust.
//!
//! `cargo bench -p connect --bench transforms`
//!
//! 100,000 `devops` records (7 fields) go through a filter
//! (`usage_user > 50`), a select of three fields and a rename.
//! `transforms/hand_written` does that with closures that know the field
//! positions; `transforms/connect` with `Transform::compile` from the
//! file form. Both consume the records they are given and return what
//! they keep (checked equal before timing).

use std::sync::Arc;

use connect::transform::{Compiled, Condition, Transform};
use connector_core::schema::{Field, Schema};
use connector_core::{Record, Source};
use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use source_generator::{GeneratorConfig, GeneratorSource, Template};

const RECORDS: usize = 100_000;

fn records() -> Vec<Record> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut source = GeneratorSource::new(
            GeneratorConfig::new(Template::Devops)
                .interval(std::time::Duration::ZERO)
                .seed(3)
                .count(RECORDS as u64),
        );
        let mut out = Vec::with_capacity(RECORDS);
        while let Some(batch) = source.next_batch().await.unwrap() {
            out.extend(batch.records);
        }
        out
    })
}

/// The steps written for these records: positions known in advance.
struct HandWritten {
    host: usize,
    region: usize,
    user: usize,
    output: Arc<Schema>,
}

impl HandWritten {
    fn new(schema: &Schema) -> Self {
        let (host, region, user) = (
            schema.index_of("hostname").unwrap(),
            schema.index_of("region").unwrap(),
            schema.index_of("usage_user").unwrap(),
        );
        let output = Arc::new(Schema::new(vec![
            schema.field(host).clone(),
            schema.field(region).clone(),
            Field::new("user", schema.field(user).data_type.clone()),
        ]));
        HandWritten {
            host,
            region,
            user,
            output,
        }
    }

    fn run(&self, records: Vec<Record>) -> Vec<Record> {
        let mut kept = Vec::with_capacity(records.len());
        for mut r in records {
            if !r.values[self.user].as_f64().is_some_and(|n| n > 50.0) {
                continue;
            }
            r.values = vec![
                std::mem::take(&mut r.values[self.host]),
                std::mem::take(&mut r.values[self.region]),
                std::mem::take(&mut r.values[self.user]),
            ];
            r.schema = self.output.clone();
            kept.push(r);
        }
        kept
    }
}

fn steps() -> Vec<Compiled> {
    [
        Transform::Filter(Condition::parse("usage_user > 50").unwrap()),
        Transform::Select(vec![
            "hostname".into(),
            "region".into(),
            "usage_user".into(),
        ]),
        Transform::Rename(vec![("usage_user".into(), "user".into())]),
    ]
    .into_iter()
    .map(Transform::compile)
    .collect()
}

fn ours(records: Vec<Record>, steps: &mut [Compiled]) -> Vec<Record> {
    let mut kept = Vec::with_capacity(records.len());
    'records: for mut r in records {
        for step in steps.iter_mut() {
            match step.run(r) {
                Some(next) => r = next,
                None => continue 'records,
            }
        }
        kept.push(r);
    }
    kept
}

fn transforms(c: &mut Criterion) {
    let input = records();
    let hand = HandWritten::new(&input[0].schema);
    let expected: Vec<_> = hand
        .run(input.clone())
        .iter()
        .map(Record::to_json)
        .collect();
    let got: Vec<_> = ours(input.clone(), &mut steps())
        .iter()
        .map(Record::to_json)
        .collect();
    assert_eq!(expected, got);
    assert!(expected.len() > RECORDS / 4);

    let mut group = c.benchmark_group("transforms");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.bench_function("hand_written", |b| {
        b.iter_batched(
            || input.clone(),
            |records| hand.run(records),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("connect", |b| {
        let mut steps = steps();
        b.iter_batched(
            || input.clone(),
            |records| ours(records, &mut steps),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, transforms);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("transforms", "connect", "hand_written");
}
