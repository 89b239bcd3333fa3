//! Two sources in one consumer group split the topic's partitions: no
//! record is lost and none is read by both, including across the rebalance
//! when the second one joins.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{collect, eventually, expect_records, init_logs, numbers, props};
use connector_core::Position;
use kafka_common::testing::{MockKafka, TestMessage};

fn partitions_of(records: &[connector_core::Record]) -> BTreeSet<i32> {
    records
        .iter()
        .filter_map(|r| match &r.position {
            Some(Position::Offset { partition, .. }) => Some(*partition),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn two_sources_in_one_group_split_the_partitions() {
    init_logs();
    let kafka = MockKafka::start();
    kafka.create_topic("shared", 4);
    let messages = |range: std::ops::Range<i64>| {
        range.map(|n| TestMessage::new(format!(r#"{{"n":{n}}}"#)).partition((n % 4) as i32))
    };
    // The first member reads everything there is.
    kafka.produce("shared", messages(0..1000));
    let p = props(&kafka, "shared", "json").with("group", "readers");
    let (first, first_records, first_status) = collect(common::quick_group_source(&p));
    expect_records(&first_records, 1000).await;
    // Delivered records are committed promptly. (Kafka also accepts the
    // commit a member makes when its partitions are revoked; the mock
    // cluster refuses commits while the group is joining, so here the
    // offsets must be committed before the second member joins.)
    eventually("the first member to commit what it delivered", || {
        first_status.committed_offsets().values().sum::<i64>() == 1000
    })
    .await;

    // The second member joins: the partitions are split between them.
    let (second, second_records, second_status) = collect(common::quick_group_source(&p));
    eventually("the partitions to be split", || {
        let a = first_status.assigned_partitions();
        let b = second_status.assigned_partitions();
        !a.is_empty() && !b.is_empty() && a.len() + b.len() == 4
    })
    .await;
    let a: BTreeSet<i32> = first_status.assigned_partitions().into_iter().collect();
    let b: BTreeSet<i32> = second_status.assigned_partitions().into_iter().collect();
    assert!(a.is_disjoint(&b), "{a:?} {b:?}");

    kafka.produce("shared", messages(1000..3000));
    eventually("every record", || {
        first_records.len() + second_records.len() >= 3000
    })
    .await;
    // Give stray duplicates a chance to show up before counting.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    first.stop();
    second.stop();
    first.join().await.unwrap();
    second.join().await.unwrap();

    let first_all = first_records.records();
    let second_all = second_records.records();
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for n in numbers(&first_all).into_iter().chain(numbers(&second_all)) {
        *seen.entry(n).or_default() += 1;
    }
    let missing: Vec<i64> = (0..3000).filter(|n| !seen.contains_key(n)).collect();
    let repeated: Vec<(&i64, &usize)> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(missing.is_empty(), "lost records: {missing:?}");
    assert!(repeated.is_empty(), "records read twice: {repeated:?}");
    // After the split, each member read only its own partitions.
    let second_partitions = partitions_of(&second_all);
    assert!(
        second_partitions.is_subset(&b),
        "{second_partitions:?} vs {b:?}"
    );
    let late_first: Vec<_> = first_all[1000..].to_vec();
    assert!(partitions_of(&late_first).is_subset(&a));
    assert_eq!(
        kafka.committed("readers", "shared").values().sum::<i64>(),
        3000
    );
}
