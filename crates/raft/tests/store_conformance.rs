//! openraft's storage conformance suite, run against the on-disk store, plus what the suite
//! does not check: that the vote, the log and the snapshot survive a reopen, and that a torn
//! last log line is cut off.

use std::fs::OpenOptions;
use std::io::Write;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder,
    StorageError, Vote,
};
use oxka_metadata::MetadataRecord;
use oxka_raft::store::{self, LogStore, StateMachine};
use oxka_raft::{Batch, EntryOutcome, NodeId, TypeConfig};
use tempfile::TempDir;

struct DiskStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for DiskStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (log, sm) = store::open(dir.path()).expect("a fresh store opens");
        Ok((dir, log, sm))
    }
}

#[test]
fn the_disk_store_passes_openraft_storage_conformance_suite() {
    Suite::test_all(DiskStoreBuilder).unwrap();
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// A batch of one record per entry from index 1, so based on `index - 1`.
fn batch(term: u64, index: u64, records: Vec<MetadataRecord>) -> Entry<TypeConfig> {
    batch_at(term, index, index - 1, records)
}

fn batch_at(
    term: u64,
    index: u64,
    based_on: u64,
    records: Vec<MetadataRecord>,
) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Batch { based_on, records }),
    }
}

fn producer_ids(start: i64) -> MetadataRecord {
    MetadataRecord::ProducerIds {
        next_block_start: start,
    }
}

#[tokio::test]
async fn vote_log_and_snapshot_survive_a_reopen_and_a_torn_line_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut log, mut sm) = store::open(dir.path()).unwrap();
        log.save_vote(&Vote::new(3, 2)).await.unwrap();
        let entries: Vec<_> = (1..=4)
            .map(|i| batch(1, i, vec![producer_ids(i as i64 * 1000)]))
            .collect();
        log.blocking_append(entries.clone()).await.unwrap();
        log.truncate(log_id(1, 4)).await.unwrap();
        sm.apply(entries[..2].to_vec()).await.unwrap();
        assert_eq!(sm.published().image().next_offset, 2);
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        log.purge(log_id(1, 1)).await.unwrap();
    }
    // A crash in the middle of an append leaves half a line.
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join("log.jsonl"))
        .unwrap();
    file.write_all(b"{\"log_id\":{\"leader_id\":").unwrap();
    drop(file);

    let (mut log, mut sm) = store::open(dir.path()).unwrap();
    assert_eq!(log.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1)));
    assert_eq!(state.last_log_id, Some(log_id(1, 3)));
    let indexes: Vec<u64> = log
        .try_get_log_entries(0..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.log_id.index)
        .collect();
    assert_eq!(indexes, vec![2, 3]);
    // The state machine is rebuilt from the snapshot: two records applied.
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 2)));
    assert_eq!(sm.published().image().next_offset, 2);
    assert_eq!(sm.published().image().next_producer_id, 2000);
    // And the log goes on after the cut.
    log.blocking_append([batch(2, 4, vec![producer_ids(9000)])])
        .await
        .unwrap();
    drop(log);
    let (mut log, _) = store::open(dir.path()).unwrap();
    assert_eq!(
        log.get_log_state().await.unwrap().last_log_id,
        Some(log_id(2, 4))
    );
}

#[tokio::test]
async fn a_batch_based_on_an_offset_the_log_has_left_is_skipped_whole_and_answered_stale() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut sm) = store::open(dir.path()).unwrap();
    let outcomes = sm
        .apply(vec![
            batch_at(1, 1, 0, vec![producer_ids(1000), producer_ids(2000)]),
            // Validated against the empty image too: lost the race.
            batch_at(1, 2, 0, vec![producer_ids(5000)]),
            batch_at(1, 3, 2, vec![producer_ids(3000)]),
            // Ahead of the log: cannot happen from a real proposal, and is refused the same way.
            batch_at(1, 4, 9, vec![producer_ids(6000)]),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            EntryOutcome::Applied { next_offset: 2 },
            EntryOutcome::Stale { next_offset: 2 },
            EntryOutcome::Applied { next_offset: 3 },
            EntryOutcome::Stale { next_offset: 3 },
        ]
    );
    let image = sm.published().image();
    assert_eq!(image.next_offset, 3);
    assert_eq!(image.next_producer_id, 3000);
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(
        applied,
        Some(log_id(1, 4)),
        "skipped entries are applied all the same"
    );

    // A snapshot holds only the applied records: rebuilt from it, the image is the same.
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    drop(sm);
    let (_, sm) = store::open(dir.path()).unwrap();
    assert_eq!(sm.published().image().next_offset, 3);
    assert_eq!(sm.published().image().next_producer_id, 3000);
}
