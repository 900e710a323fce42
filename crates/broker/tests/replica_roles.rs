//! A partition's leader and follower roles without a network: `PartitionManager` opens a
//! partition of a two-replica topic on broker 1, the image makes it leader, and a follower's
//! fetches (the leader's `read_for_follower`) are what move its high watermark. Then the image
//! makes it a follower, which appends the leader's batches as they are.

use std::collections::BTreeMap;

use oxka_broker::partition::{AckWait, PartitionError, PartitionManager};
use oxka_broker::BrokerConfig;
use oxka_log::test_support::simple_batch;
use oxka_metadata::{MetadataImage, MetadataRecord, Uuid};

fn config(dir: &std::path::Path) -> BrokerConfig {
    let props: BTreeMap<String, String> = [
        ("node.id", "1".to_owned()),
        ("log.dirs", dir.display().to_string()),
        ("min.insync.replicas", "2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    BrokerConfig::from_properties(&props).unwrap()
}

/// `image` with partition t-0 registered again (its partition epoch goes up by one).
fn register(image: &mut MetadataImage, topic_id: Uuid, leader: i32, epoch: i32, isr: Vec<i32>) {
    if image.topic("t").is_none() {
        image.apply(&[MetadataRecord::Topic {
            name: "t".into(),
            topic_id,
        }]);
    }
    image.apply(&[MetadataRecord::Partition {
        topic_id,
        partition: 0,
        replicas: vec![1, 2],
        isr,
        leader,
        leader_epoch: epoch,
    }]);
}

#[test]
fn the_leaders_high_watermark_follows_its_follower_and_acks_all_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let manager = PartitionManager::new(1, vec![dir.path().to_path_buf()]);
    let topic_id = Uuid::new_v4();
    let mut image = MetadataImage::default();
    register(&mut image, topic_id, 1, 3, vec![1, 2]);
    manager.reconcile(&image, &config).unwrap();
    assert!(
        manager.sync_roles(&image, 30_000).is_empty(),
        "leads, follows nothing"
    );
    let p = manager.get("t", 0).unwrap();

    let mut batch = simple_batch(0, 5, 1_000, 10);
    let appended = p.append_as_leader(&mut batch, true, true).unwrap();
    assert_eq!(
        (
            appended.first_offset,
            appended.last_offset,
            appended.leader_epoch
        ),
        (0, 4, 3)
    );
    assert_eq!(p.ack_status(3, 4), AckWait::Pending);
    // Consumers see nothing yet: the high watermark waits for the follower.
    let (read, offsets) = p.read(0, 1 << 20, true).unwrap();
    assert!(read.records.is_empty());
    assert_eq!(offsets.high_watermark, 0);

    // The follower fetches from 0 (gets the batch, to the log end), then from 5.
    let (read, _, proposals) = p.read_for_follower(2, 3, 0, 1 << 20, true).unwrap();
    assert_eq!(read.records.len(), batch.len());
    assert!(proposals.is_empty(), "already in the ISR");
    assert_eq!(p.ack_status(3, 4), AckWait::Pending);
    p.read_for_follower(2, 3, 5, 1 << 20, true).unwrap();
    assert_eq!(p.ack_status(3, 4), AckWait::Done);
    assert_eq!(p.offsets().unwrap().high_watermark, 5);
    assert_eq!(
        p.read(0, 1 << 20, true).unwrap().0.records.len(),
        batch.len()
    );
    // A follower in an older epoch is fenced.
    assert!(matches!(
        p.read_for_follower(2, 2, 5, 1 << 20, true),
        Err(PartitionError::FencedLeaderEpoch)
    ));

    // The ISR shrinks to the leader alone: acks=all is refused before the append (min 2).
    register(&mut image, topic_id, 1, 3, vec![1]);
    manager.reconcile(&image, &config).unwrap();
    manager.sync_roles(&image, 30_000);
    let mut more = simple_batch(0, 1, 2_000, 10);
    assert!(matches!(
        p.append_as_leader(&mut more, true, true),
        Err(PartitionError::NotEnoughReplicas { isr: 1, min: 2, .. })
    ));
    // acks=1 appends, but KIP-966 keeps the high watermark where it was.
    let one = p.append_as_leader(&mut more, true, false).unwrap();
    assert_eq!(one.first_offset, 5);
    assert_eq!(p.offsets().unwrap().high_watermark, 5);

    // Broker 2 leads epoch 4: this replica follows it, refuses leader appends, and takes the
    // leader's batches with their offsets after truncating the record it alone has.
    register(&mut image, topic_id, 2, 4, vec![2]);
    manager.reconcile(&image, &config).unwrap();
    let followed = manager.sync_roles(&image, 30_000);
    assert_eq!(followed.get(&2).map(|v| v.len()), Some(1));
    assert!(matches!(
        p.append_as_leader(&mut simple_batch(0, 1, 3_000, 10), true, false),
        Err(PartitionError::NotLeader)
    ));
    assert_eq!(p.ack_status(3, 5), AckWait::NotLeader);
    assert_eq!(p.truncate_to(5).unwrap(), 5);
    let theirs = oxka_log::test_support::BatchBuilder::new(5)
        .leader_epoch(4)
        .record(4_000, None, Some(b"from the leader"))
        .build();
    assert_eq!(p.append_as_follower(&theirs, 6, 0).unwrap(), 6);
    assert_eq!(p.offsets().unwrap().high_watermark, 6);
    assert_eq!(p.following(), Some((2, 4)));
}
