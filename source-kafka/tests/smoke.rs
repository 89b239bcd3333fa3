//! smoke
use connector_core::{Pipeline, Properties, memory::CollectSink};
use kafka_common::testing::{MockKafka, TestMessage};
use source_kafka::KafkaSource;
use std::time::Duration;

#[tokio::test]
async fn smoke() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("source_kafka=debug,librdkafka=info")
        .try_init();
    let kafka = MockKafka::start();
    kafka.create_topic("t", 2);
    kafka.produce(
        "t",
        (0..100).map(|i| TestMessage::new(format!("{{\"n\":{i}}}")).key(format!("k{i}"))),
    );
    let props = Properties::from_pairs([
        ("brokers", kafka.bootstrap()),
        ("topic", "t"),
        ("offset", "earliest"),
        ("data_type", "json"),
        ("tls.disable", "true"),
        ("group", "g"),
    ]);
    let source = KafkaSource::from_properties(&props).unwrap();
    let (sink, collected) = CollectSink::new();
    let p = Pipeline::new(source).to(sink);
    let stop = p.shutdown_token();
    let h = tokio::spawn(p.run());
    assert!(
        collected.wait_for(100, Duration::from_secs(20)).await,
        "got {}",
        collected.len()
    );
    stop.cancel();
    let report = h.await.unwrap().unwrap();
    println!("{report:?}");
    println!("{:?}", collected.records()[0]);
    println!("{:?}", kafka.committed("g", "t"));
}
