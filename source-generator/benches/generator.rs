//! Generator speed, and the pipeline's overhead over a bare loop.
//!
//! `cargo bench -p source-generator --bench generator`
//!
//! - `generator/<template>`: records/s of `GeneratorSource::next_batch` at
//!   `interval=0ms` (goal: ≥ 1M records/s on one core).
//! - `pipeline_overhead/bare_loop`: generator → `DiscardSink` called in a
//!   plain loop; `pipeline_overhead/pipeline`: the same through `Pipeline`
//!   (channel, batching, acks, metrics). Goal: the pipeline costs ≤ 10%.

use std::time::Duration;

use connector_core::memory::DiscardSink;
use connector_core::{Pipeline, Sink, Source};
use criterion::{Criterion, Throughput, criterion_group};
use source_generator::{GeneratorConfig, GeneratorSource, Template};

const RECORDS: u64 = 1_000_000;

fn config(template: Template, count: u64) -> GeneratorConfig {
    GeneratorConfig::new(template)
        .interval(Duration::ZERO)
        .seed(1)
        .count(count)
}

fn generator(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("generator");
    group.throughput(Throughput::Elements(RECORDS));
    for template in Template::ALL {
        group.bench_function(template.name(), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut source = GeneratorSource::new(config(template, RECORDS));
                    let mut n = 0;
                    while let Some(batch) = source.next_batch().await.unwrap() {
                        n += batch.len();
                    }
                    n
                })
            })
        });
    }
    group.finish();
}

fn pipeline_overhead(c: &mut Criterion) {
    // Two worker threads: the pipeline runs its source and sink on separate
    // tasks, the bare loop on one.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("pipeline_overhead");
    group.throughput(Throughput::Elements(RECORDS));
    group.bench_function("bare_loop", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut source = GeneratorSource::new(config(Template::Iot, RECORDS));
                let mut sink = DiscardSink::new();
                while let Some(batch) = source.next_batch().await.unwrap() {
                    sink.send(batch).await.unwrap();
                }
                assert_eq!(sink.records(), RECORDS);
            })
        })
    });
    group.bench_function("pipeline", |b| {
        b.iter(|| {
            rt.block_on(async {
                let report = Pipeline::new(GeneratorSource::new(config(Template::Iot, RECORDS)))
                    .to(DiscardSink::new())
                    .run()
                    .await
                    .unwrap();
                assert_eq!(report.metrics.records_out, RECORDS);
            })
        })
    });
    group.finish();
}

criterion_group!(benches, generator, pipeline_overhead);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    testkit::bench::report_ratio("pipeline_overhead", "pipeline", "bare_loop");
}
