//! The leader's side of a proposal: the optimistic check and the write.
//!
//! [`Proposer::propose`] runs on the node that believes it is the Raft leader, for its own
//! proposals and for those its followers forward (`RaftRequest::Forward`). One proposal at a
//! time (a mutex held from the check to the end of the write):
//!
//! 1. `ensure_linearizable`: a round of heartbeats confirms at a majority that this node is
//!    still the leader of its term `T`, and openraft waits until this node's state machine has
//!    applied up to the *read log id*: the greater of the commit index and the blank entry this
//!    leader appended when it was elected. So the published image includes every entry
//!    committed by earlier leaders (the blank entry comes after all of them in this leader's
//!    log, and it is applied only once committed) and every entry this leader committed.
//! 2. The check: the image's `next_offset` must equal `based_on`, else
//!    [`ProposeOutcome::Stale`] with the image's `next_offset`.
//! 3. `client_write` of a [`Batch`] `{based_on, records}`. It returns once the entry is
//!    committed and applied here, with the state machine's [`EntryOutcome`]: `Applied` with the
//!    `next_offset` right after this batch, or `Stale`.
//!
//! **Why the check is sound, an election included.** The check that decides is the state
//! machine's: it applies a batch only if its image ends at the batch's `based_on`, and skips it
//! whole otherwise ([`crate::store`]). It runs in log order, on every voter, over the same
//! committed entries, so nothing can slip between check and append, whichever leader appended
//! what in whichever term, and every voter skips the same batches. It also makes a retry safe:
//! of two attempts at one `based_on` (a forwarded proposal whose answer was lost, sent again)
//! at most one is applied.
//!
//! Steps 1–2 are the leader's early answer, so that a batch already stale is neither logged
//! nor replicated; they need not be exact to be safe, and they are exact in the common case:
//! in term `T` only this leader appends, and only through this mutex, so between 2 and 3 no
//! record batch joins the log ahead of ours in term `T` (blank and membership entries can, but
//! they add no records). Right after an election step 1 is what makes them meaningful: before
//! the new leader's blank entry is applied, its image may lack entries the previous leader
//! committed; `ensure_linearizable` waits that out. Should this node lose leadership and win it
//! back in a later term between 2 and 3, the batch may land after records the early check
//! never saw, and the state machine answers `Stale`.
//!
//! Thread-safety: [`Proposer`] is a cheap clone over shared state; `propose` may be called
//! from any task.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::Raft;
use oxka_metadata::MetadataRecord;
use serde::{Deserialize, Serialize};

use crate::store::Published;
use crate::{Batch, EntryOutcome, NodeId, TypeConfig};

/// What became of a proposal on the node that tried to lead it; also the answer to a
/// forwarded proposal, on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposeOutcome {
    /// The batch is committed and applied on the leader; the log ends at `next_offset` right
    /// after it.
    Committed { next_offset: u64 },
    /// The log had moved on from `based_on` to `next_offset`; nothing was written.
    Stale { next_offset: u64 },
    /// The node is not the leader; `leader` is the one it knows of.
    NotLeader { leader: Option<NodeId> },
    /// No majority confirmed the leadership or committed the batch in time, or the Raft node
    /// stopped. The batch may still be committed later.
    Unavailable(String),
}

/// Runs proposals on this node as the leader, one at a time.
#[derive(Clone)]
pub struct Proposer {
    raft: Raft<TypeConfig>,
    published: Arc<Published>,
    timeout: Duration,
    /// Held from the check to the end of the write: the serialisation the check relies on.
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Proposer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proposer")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Proposer {
    /// A proposer for `raft`, whose state machine publishes `published`; each proposal gives
    /// up after `timeout` (waiting for its turn included).
    pub fn new(raft: Raft<TypeConfig>, published: Arc<Published>, timeout: Duration) -> Proposer {
        Proposer {
            raft,
            published,
            timeout,
            turn: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// Appends `records` as one entry if this node leads and its applied log ends at
    /// `based_on` (see the module docs for why that check holds).
    pub async fn propose(&self, based_on: u64, records: Vec<MetadataRecord>) -> ProposeOutcome {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.propose_in_turn(based_on, records)).await {
            Ok(outcome) => outcome,
            Err(_) => ProposeOutcome::Unavailable(format!(
                "the proposal was not committed within {timeout:?}"
            )),
        }
    }

    async fn propose_in_turn(&self, based_on: u64, records: Vec<MetadataRecord>) -> ProposeOutcome {
        let _turn = self.turn.lock().await;
        match self.raft.ensure_linearizable().await {
            Ok(_) => {}
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(forward))) => {
                return ProposeOutcome::NotLeader {
                    leader: forward.leader_id,
                }
            }
            Err(e) => return ProposeOutcome::Unavailable(e.to_string()),
        }
        let next_offset = self.published.image().next_offset;
        if next_offset != based_on {
            return ProposeOutcome::Stale { next_offset };
        }
        match self.raft.client_write(Batch { based_on, records }).await {
            Ok(response) => match response.data {
                EntryOutcome::Applied { next_offset } => ProposeOutcome::Committed { next_offset },
                EntryOutcome::Stale { next_offset } => ProposeOutcome::Stale { next_offset },
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                ProposeOutcome::NotLeader {
                    leader: forward.leader_id,
                }
            }
            Err(e) => ProposeOutcome::Unavailable(e.to_string()),
        }
    }
}
