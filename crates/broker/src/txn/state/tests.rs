//! The transaction state machine without a runtime: time is the `now` passed in.

use super::*;

const LIMITS: TxnLimits = TxnLimits {
    max_timeout_ms: 900_000,
};

fn tp(t: &str, p: i32) -> TopicPartition {
    (t.to_owned(), p)
}

fn no_new_id() -> Result<i64, i16> {
    panic!("no new producer id expected")
}

/// A transactional id initialised once: producer 1000 at epoch 0, Empty.
fn initialised(now: i64) -> TxnMetadata {
    let txn = TxnMetadata::new("tx", 1000, 60_000, now);
    let step = txn
        .init_producer_id(now, 60_000, None, LIMITS, no_new_id)
        .unwrap();
    assert_eq!(step.actions, vec![Action::Persist]);
    step.txn
}

/// `initialised` with an open transaction on `a-0`.
fn ongoing(now: i64) -> TxnMetadata {
    initialised(now)
        .add_partitions(now, 1000, 0, &[tp("a", 0)])
        .unwrap()
        .txn
}

#[test]
fn init_gives_epoch_zero_then_bumps_on_every_call() {
    let txn = initialised(0);
    assert_eq!((txn.producer_id, txn.producer_epoch), (1000, 0));
    assert_eq!(txn.state, TxnState::Empty);
    let again = txn
        .init_producer_id(5, 60_000, None, LIMITS, no_new_id)
        .unwrap()
        .txn;
    assert_eq!((again.producer_id, again.producer_epoch), (1000, 1));
    assert_eq!(again.last_producer_epoch, 0);
}

#[test]
fn epoch_exhaustion_moves_to_a_new_producer_id() {
    let mut txn = initialised(0);
    txn.producer_epoch = i16::MAX - 1;
    let step = txn
        .init_producer_id(1, 60_000, None, LIMITS, || Ok(2000))
        .unwrap();
    assert_eq!((step.txn.producer_id, step.txn.producer_epoch), (2000, 0));
    assert_eq!(step.txn.last_producer_id, 1000);
}

#[test]
fn timeout_above_the_maximum_is_invalid_transaction_timeout() {
    let txn = TxnMetadata::new("tx", 1, 60_000, 0);
    assert_eq!(
        txn.init_producer_id(0, 900_001, None, LIMITS, no_new_id),
        Err(code::INVALID_TRANSACTION_TIMEOUT)
    );
    assert_eq!(
        txn.init_producer_id(0, 0, None, LIMITS, no_new_id),
        Err(code::INVALID_TRANSACTION_TIMEOUT)
    );
    assert!(txn
        .init_producer_id(0, 900_000, None, LIMITS, no_new_id)
        .is_ok());
}

#[test]
fn a_second_producer_fences_the_first_and_aborts_its_transaction() {
    let txn = ongoing(0);
    let fence = txn
        .init_producer_id(10, 60_000, None, LIMITS, no_new_id)
        .unwrap();
    assert_eq!(fence.error, code::CONCURRENT_TRANSACTIONS);
    assert_eq!(fence.txn.state, TxnState::PrepareAbort);
    assert_eq!(fence.txn.producer_epoch, 1);
    assert_eq!(
        fence.actions,
        vec![
            Action::Persist,
            Action::WriteMarkers {
                producer_id: 1000,
                producer_epoch: 1,
                commit: false,
                partitions: vec![tp("a", 0)],
            }
        ]
    );
    // The new producer retries while the markers are written...
    assert_eq!(
        fence
            .txn
            .init_producer_id(11, 60_000, None, LIMITS, no_new_id),
        Err(code::CONCURRENT_TRANSACTIONS)
    );
    // ...and gets the next epoch once the abort completes.
    let done = fence.txn.markers_written(12).unwrap().txn;
    assert_eq!(done.state, TxnState::CompleteAbort);
    let second = done
        .init_producer_id(13, 60_000, None, LIMITS, no_new_id)
        .unwrap()
        .txn;
    assert_eq!(second.producer_epoch, 2);
    // The first producer (epoch 0) is fenced everywhere.
    assert_eq!(
        second.add_partitions(14, 1000, 0, &[tp("a", 0)]),
        Err(code::PRODUCER_FENCED)
    );
    assert_eq!(
        second.end_txn(14, 1000, 0, true),
        Err(code::PRODUCER_FENCED)
    );
    assert_eq!(
        second.end_txn(14, 999, 2, true),
        Err(code::INVALID_PRODUCER_ID_MAPPING)
    );
}

#[test]
fn kip_360_resume_with_an_unknown_epoch_is_fenced() {
    let txn = initialised(0);
    assert_eq!(
        txn.init_producer_id(1, 60_000, Some((1000, 7)), LIMITS, no_new_id),
        Err(code::PRODUCER_FENCED)
    );
    let resumed = txn
        .init_producer_id(1, 60_000, Some((1000, 0)), LIMITS, no_new_id)
        .unwrap();
    assert_eq!(resumed.txn.producer_epoch, 1);
}

#[test]
fn commit_prepares_writes_markers_then_completes() {
    let txn = ongoing(0)
        .add_partitions(1, 1000, 0, &[tp("b", 3)])
        .unwrap()
        .txn;
    let step = txn.end_txn(2, 1000, 0, true).unwrap();
    assert_eq!(step.txn.state, TxnState::PrepareCommit);
    assert_eq!(
        step.actions[1],
        Action::WriteMarkers {
            producer_id: 1000,
            producer_epoch: 0,
            commit: true,
            partitions: vec![tp("a", 0), tp("b", 3)],
        }
    );
    // While markers are written: a retried commit waits, an abort is invalid, adding waits.
    assert_eq!(
        step.txn.end_txn(3, 1000, 0, true),
        Err(code::CONCURRENT_TRANSACTIONS)
    );
    assert_eq!(
        step.txn.end_txn(3, 1000, 0, false),
        Err(code::INVALID_TXN_STATE)
    );
    assert_eq!(
        step.txn.add_partitions(3, 1000, 0, &[tp("a", 0)]),
        Err(code::CONCURRENT_TRANSACTIONS)
    );
    let done = step.txn.markers_written(4).unwrap();
    assert_eq!(done.txn.state, TxnState::CompleteCommit);
    assert!(done.txn.partitions.is_empty());
    // A retry of the completed commit succeeds without doing anything; abort is invalid.
    let retry = done.txn.end_txn(5, 1000, 0, true).unwrap();
    assert!(retry.actions.is_empty());
    assert_eq!(
        done.txn.end_txn(5, 1000, 0, false),
        Err(code::INVALID_TXN_STATE)
    );
    // The next transaction starts afresh.
    let next = done
        .txn
        .add_partitions(6, 1000, 0, &[tp("c", 0)])
        .unwrap()
        .txn;
    assert_eq!(next.state, TxnState::Ongoing);
    assert_eq!(next.txn_start_ms, 6);
    assert_eq!(next.partitions.len(), 1);
}

#[test]
fn ending_without_a_transaction_is_invalid_txn_state() {
    let txn = initialised(0);
    assert_eq!(txn.end_txn(1, 1000, 0, true), Err(code::INVALID_TXN_STATE));
    assert_eq!(txn.end_txn(1, 1000, 0, false), Err(code::INVALID_TXN_STATE));
}

#[test]
fn adding_known_partitions_again_persists_nothing() {
    let txn = ongoing(0);
    let step = txn.add_partitions(1, 1000, 0, &[tp("a", 0)]).unwrap();
    assert!(step.actions.is_empty());
    assert_eq!(step.txn, txn);
}

#[test]
fn a_transaction_past_its_timeout_is_aborted_under_a_bumped_epoch() {
    let txn = ongoing(100);
    assert_eq!(txn.on_tick(100 + 59_999), None);
    let step = txn.on_tick(100 + 60_000).unwrap();
    assert_eq!(step.txn.state, TxnState::PrepareAbort);
    assert_eq!(step.txn.producer_epoch, 1);
    assert!(matches!(
        step.actions[1],
        Action::WriteMarkers {
            commit: false,
            producer_epoch: 1,
            ..
        }
    ));
    // The producer that let it time out is fenced when it tries to commit.
    let done = step.txn.markers_written(60_200).unwrap().txn;
    assert_eq!(
        done.end_txn(60_300, 1000, 0, true),
        Err(code::PRODUCER_FENCED)
    );
    // Empty and completed transactions never time out.
    assert_eq!(done.on_tick(i64::MAX), None);
    assert_eq!(initialised(0).on_tick(i64::MAX), None);
}

#[test]
fn state_ids_round_trip() {
    for id in 0..8 {
        assert_eq!(TxnState::from_id(id).unwrap().id(), id);
    }
    assert_eq!(TxnState::from_id(8), None);
}

#[test]
fn only_idle_ids_without_a_transaction_in_progress_expire() {
    let idle = initialised(1_000);
    assert!(!idle.expired(1_000 + 4_999, 5_000));
    assert!(idle.expired(1_000 + 5_000, 5_000));
    // An open transaction never expires (it times out and is aborted instead).
    let open = ongoing(1_000);
    assert!(!open.expired(1_000 + 1_000_000, 5_000));
    let done = TxnMetadata {
        state: TxnState::CompleteAbort,
        ..open.clone()
    };
    assert!(done.expired(done.last_update_ms + 5_000, 5_000));
    let preparing = TxnMetadata {
        state: TxnState::PrepareCommit,
        ..open
    };
    assert!(!preparing.expired(i64::MAX / 2, 5_000));
}
