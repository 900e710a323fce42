//! The Raft state on disk, under the node's `<metadata.log.dir>/__cluster_metadata-0/raft/`:
//!
//! - `log.jsonl`: the Raft log, one openraft `Entry` (log id + payload: blank, membership, or a
//!   [`Batch`](crate::Batch): `{"based_on": n, "records": [MetadataRecord, ..]}`) as JSON per
//!   line, indexes increasing (openraft appends them
//!   consecutively; the store only refuses an index that does not increase, because openraft's
//!   conformance suite itself appends with gaps). Appends are fsynced
//!   before openraft is told they are durable; `truncate` cuts the file at the first removed
//!   line and fsyncs; `purge` records the purged log id in `state.json` first, then rewrites
//!   the file without the purged lines (`log.jsonl.tmp`, fsync, rename). On open, a torn last
//!   line (a crash in the middle of an append) is cut off, and lines at or below the purged log
//!   id (a crash between the two steps of a purge) are skipped.
//! - `state.json`: `{"vote": .., "last_purged": ..}`, replaced whole (`.tmp`, fsync, rename,
//!   fsync of the directory) before `save_vote`/`purge` return.
//! - `committed.json`: the last committed log id, replaced without fsync: it only lets a
//!   restarted node re-apply what it knows is committed without waiting for a leader. A stale
//!   one is safe (it is never ahead of the truth); an unreadable one is read as none.
//! - `snapshot.json`: `{"meta": SnapshotMeta, "records": [MetadataRecord, ..]}`, replaced whole
//!   (fsynced) when a snapshot is built or installed.
//!
//! **The state machine** is the [`MetadataImage`] folded by [`MetadataImage::apply`] from the
//! records of every applied batch whose `based_on` was the image's `next_offset` when it was
//! applied, plus the last applied log id and membership. A batch based on another offset is
//! skipped whole and answered [`EntryOutcome::Stale`]: this is the optimistic check of a
//! proposal, made where nothing can race it (in log order, identically on every voter). It is
//! not written on apply: it is rebuilt on open from the snapshot, and openraft re-applies the
//! log after it up to `committed.json`.
//!
//! **A snapshot is the full list of applied records**, not a compaction of the image: the image
//! has no serialised form and no way back to records, and replaying the list through the same
//! `MetadataImage::apply` gives an identical image by construction, `next_offset` included (it
//! counts records). The cost is a snapshot that grows with the metadata history; compacting it
//! needs an image → records function in `oxka-metadata`.
//!
//! Thread-safety: [`LogStore`] is a cheap clone over one mutex (the log reader that openraft's
//! replication tasks use is another clone); [`StateMachine`] is owned by openraft's state
//! machine task, and shares only its published image ([`Published`]) and the current snapshot
//! with others. All file I/O is synchronous inside the async methods: the files are small and
//! openraft serialises storage calls anyway.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Cursor, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError, StoredMembership, Vote,
};
use oxka_metadata::{ImageListener, MetadataImage, MetadataRecord};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::{EntryOutcome, NodeId, RaftError, TypeConfig};

type StorageResult<T> = Result<T, StorageError<NodeId>>;

/// Opens (or creates) the Raft state under `dir`.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), RaftError> {
    fs::create_dir_all(dir).map_err(|source| RaftError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok((LogStore::open(dir)?, StateMachine::open(dir)?))
}

// ---------------------------------------------------------------------------------------------
// The log and the vote
// ---------------------------------------------------------------------------------------------

/// The Raft log and vote (openraft's `RaftLogStorage`); also its own log reader.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
}

struct LogInner {
    dir: PathBuf,
    log_path: PathBuf,
    file: File,
    /// Every entry after `hard.last_purged`, by index, with the byte offset its line starts at.
    entries: BTreeMap<u64, (Entry<TypeConfig>, u64)>,
    /// The length of `log.jsonl`: where the next line goes.
    end: u64,
    hard: HardState,
    committed: Option<LogId<NodeId>>,
}

/// `state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HardState {
    vote: Option<Vote<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

const LOG_FILE: &str = "log.jsonl";
const STATE_FILE: &str = "state.json";
const COMMITTED_FILE: &str = "committed.json";
const SNAPSHOT_FILE: &str = "snapshot.json";

impl LogStore {
    /// Opens the log and vote under `dir` (which must exist).
    pub fn open(dir: &Path) -> Result<LogStore, RaftError> {
        let hard: HardState = read_json(&dir.join(STATE_FILE))?.unwrap_or_default();
        // Unreadable is as good as absent: see the module doc.
        let committed = read_json(&dir.join(COMMITTED_FILE)).ok().flatten();
        let log_path = dir.join(LOG_FILE);
        let io = |source| RaftError::Io {
            path: log_path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(io)?;
        let purged_index = hard.last_purged.map(|id| id.index);
        let mut entries = BTreeMap::new();
        let mut end = 0u64;
        let mut reader = BufReader::new(&file);
        let mut line = String::new();
        for line_no in 1.. {
            line.clear();
            let n = reader.read_line(&mut line).map_err(io)?;
            if n == 0 || !line.ends_with('\n') {
                break; // the end, or a torn last line
            }
            let entry: Entry<TypeConfig> =
                serde_json::from_str(line.trim_end()).map_err(|source| RaftError::Corrupt {
                    path: log_path.clone(),
                    line: line_no,
                    source,
                })?;
            let index = entry.log_id.index;
            if purged_index.is_some_and(|p| index <= p) {
                // Left over from a purge interrupted before the file was rewritten.
            } else if let Some((&last, _)) = entries.last_key_value() {
                if index <= last {
                    return Err(RaftError::Inconsistent {
                        path: log_path,
                        reason: format!("line {line_no}: index {index} follows index {last}"),
                    });
                }
                entries.insert(index, (entry, end));
            } else {
                entries.insert(index, (entry, end));
            }
            end += n as u64;
        }
        if file.metadata().map_err(io)?.len() != end {
            tracing::warn!(path = %log_path.display(), valid_len = end, "truncating a torn raft log entry");
            file.set_len(end).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(LogInner {
                dir: dir.to_path_buf(),
                log_path,
                file,
                entries,
                end,
                hard,
                committed,
            })),
        })
    }
}

impl fmt::Debug for LogStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("LogStore")
            .field("path", &inner.log_path)
            .field("first_index", &inner.entries.keys().next())
            .field("last_index", &inner.entries.keys().next_back())
            .field("vote", &inner.hard.vote)
            .finish_non_exhaustive()
    }
}

impl LogInner {
    fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.entries
            .values()
            .next_back()
            .map(|(entry, _)| entry.log_id)
            .or(self.hard.last_purged)
    }

    fn save_hard_state(&self) -> Result<(), RaftError> {
        let bytes = serde_json::to_vec(&self.hard).expect("the hard state always serializes");
        replace_file(&self.dir, STATE_FILE, &bytes, true)
    }

    fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> Result<(), RaftError> {
        let mut buf = Vec::new();
        let mut offset = self.end;
        let mut last = self.entries.keys().next_back().copied();
        let mut placed = Vec::with_capacity(entries.len());
        for entry in entries {
            let index = entry.log_id.index;
            if last.is_some_and(|last| index <= last) {
                return Err(RaftError::Inconsistent {
                    path: self.log_path.clone(),
                    reason: format!("appending index {index} after index {last:?}"),
                });
            }
            let start = buf.len();
            serde_json::to_writer(&mut buf, &entry).expect("entries always serialize");
            buf.push(b'\n');
            placed.push((entry, offset));
            offset += (buf.len() - start) as u64;
            last = Some(index);
        }
        let io = |source| RaftError::Io {
            path: self.log_path.clone(),
            source,
        };
        if let Err(e) = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
        {
            // Cut off whatever part of the write landed, so the file matches memory.
            let _ = self.file.set_len(self.end);
            return Err(io(e));
        }
        self.end = offset;
        for (entry, offset) in placed {
            self.entries.insert(entry.log_id.index, (entry, offset));
        }
        Ok(())
    }

    /// Removes every entry at or after `index`.
    fn truncate(&mut self, index: u64) -> Result<(), RaftError> {
        let Some(&(_, offset)) = self.entries.range(index..).next().map(|(_, v)| v) else {
            return Ok(());
        };
        let io = |source| RaftError::Io {
            path: self.log_path.clone(),
            source,
        };
        self.file.set_len(offset).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.end = offset;
        self.entries.split_off(&index);
        Ok(())
    }

    /// Removes every entry up to and including `log_id`.
    fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), RaftError> {
        if self
            .hard
            .last_purged
            .is_some_and(|p| p.index >= log_id.index)
        {
            return Ok(());
        }
        self.hard.last_purged = Some(log_id);
        self.save_hard_state()?;
        self.entries = self.entries.split_off(&(log_id.index + 1));
        // Rewrite the file with what remains.
        let mut buf = Vec::new();
        for (entry, offset) in self.entries.values_mut() {
            *offset = buf.len() as u64;
            serde_json::to_writer(&mut buf, &*entry).expect("entries always serialize");
            buf.push(b'\n');
        }
        replace_file(&self.dir, LOG_FILE, &buf, true)?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|source| RaftError::Io {
                path: self.log_path.clone(),
                source,
            })?;
        self.end = buf.len() as u64;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let inner = self.inner.lock();
        let range = (
            clone_bound(range.start_bound()),
            clone_bound(range.end_bound()),
        );
        Ok(inner
            .entries
            .range(range)
            .map(|(_, (entry, _))| entry.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let inner = self.inner.lock();
        Ok(LogState {
            last_purged_log_id: inner.hard.last_purged,
            last_log_id: inner.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> LogStore {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        let mut inner = self.inner.lock();
        let previous = inner.hard.vote.replace(*vote);
        inner.save_hard_state().map_err(|e| {
            inner.hard.vote = previous;
            StorageIOError::write_vote(AnyError::new(&e)).into()
        })
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        Ok(self.inner.lock().hard.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        let mut inner = self.inner.lock();
        inner.committed = committed;
        let bytes = serde_json::to_vec(&committed).expect("a log id always serializes");
        replace_file(&inner.dir, COMMITTED_FILE, &bytes, false)
            .map_err(|e| StorageIOError::write(AnyError::new(&e)).into())
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self.inner.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let result = self.inner.lock().append(entries.into_iter().collect());
        match result {
            Ok(()) => {
                // Fsynced above: durable before openraft hears of it.
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(AnyError::new(&e)).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.inner
            .lock()
            .truncate(log_id.index)
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        self.inner
            .lock()
            .purge(log_id)
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine and its snapshots
// ---------------------------------------------------------------------------------------------

/// The newest applied image and the listeners to call with each new one, shared between the
/// state machine (which publishes) and the quorum (which reads and subscribes). Thread-safe.
pub struct Published {
    image: RwLock<Arc<MetadataImage>>,
    listeners: Mutex<Vec<ImageListener>>,
    /// The `next_offset` of `image`, sent after each publish, to wake [`Published::wait_for`].
    applied: tokio::sync::watch::Sender<u64>,
}

impl Published {
    /// The newest image applied on this node.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// Registers `listener` for every image applied from now on.
    pub fn subscribe(&self, listener: ImageListener) {
        self.listeners.lock().push(listener);
    }

    /// Waits until the newest image has applied the log up to `next_offset` and returns it
    /// (that image or a newer one), or `None` after `timeout`.
    pub async fn wait_for(
        &self,
        next_offset: u64,
        timeout: Duration,
    ) -> Option<Arc<MetadataImage>> {
        // Subscribed before the image is read, so a publish in between is not missed.
        let mut applied = self.applied.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let image = self.image();
            if image.next_offset >= next_offset {
                return Some(image);
            }
            match tokio::time::timeout_at(deadline, applied.changed()).await {
                Ok(Ok(())) => {}
                // Timed out (or the sender, which `self` owns, is gone).
                Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// Stores `image` as the newest and hands it to every listener. Called only from the
    /// state machine, whose calls openraft serialises: listeners see images in log order.
    fn publish(&self, image: Arc<MetadataImage>) {
        *self.image.write() = image.clone();
        self.applied.send_replace(image.next_offset);
        for listener in self.listeners.lock().iter() {
            listener(&image);
        }
    }
}

impl fmt::Debug for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Published")
            .field("next_offset", &self.image.read().next_offset)
            .field("listeners", &self.listeners.lock().len())
            .finish()
    }
}

/// `snapshot.json`: what a snapshot holds, and how it is kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    records: Vec<MetadataRecord>,
}

/// The current snapshot, as openraft hands it out: its meta and its data (the JSON of the
/// record list, the bytes sent to a follower that is too far behind).
#[derive(Debug, Clone)]
struct CurrentSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The metadata state machine (openraft's `RaftStateMachine`).
pub struct StateMachine {
    dir: PathBuf,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    /// Every record applied so far, in log order: what a snapshot holds.
    records: Vec<MetadataRecord>,
    published: Arc<Published>,
    snapshot: Arc<Mutex<Option<CurrentSnapshot>>>,
    /// Distinguishes snapshots built at the same log id.
    snapshot_seq: u64,
}

impl StateMachine {
    /// Opens the state machine under `dir` (which must exist), rebuilt from its snapshot.
    pub fn open(dir: &Path) -> Result<StateMachine, RaftError> {
        let file: Option<SnapshotFile> = read_json(&dir.join(SNAPSHOT_FILE))?;
        let mut sm = StateMachine {
            dir: dir.to_path_buf(),
            last_applied: None,
            last_membership: StoredMembership::default(),
            records: Vec::new(),
            published: Arc::new(Published {
                image: RwLock::new(Arc::new(MetadataImage::default())),
                listeners: Mutex::new(Vec::new()),
                applied: tokio::sync::watch::channel(0).0,
            }),
            snapshot: Arc::new(Mutex::new(None)),
            snapshot_seq: 0,
        };
        if let Some(file) = file {
            let data = serde_json::to_vec(&file.records).expect("records always serialize");
            sm.restore(&file.meta, file.records);
            *sm.snapshot.lock() = Some(CurrentSnapshot {
                meta: file.meta,
                data,
            });
        }
        Ok(sm)
    }

    /// The image this state machine publishes, for the quorum to read and subscribe to.
    pub fn published(&self) -> Arc<Published> {
        self.published.clone()
    }

    /// Replaces the state with the one a snapshot describes.
    fn restore(&mut self, meta: &SnapshotMeta<NodeId, BasicNode>, records: Vec<MetadataRecord>) {
        let mut image = MetadataImage::default();
        image.apply(&records);
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.records = records;
        self.published.publish(Arc::new(image));
    }
}

impl fmt::Debug for StateMachine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMachine")
            .field("dir", &self.dir)
            .field("last_applied", &self.last_applied)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<EntryOutcome>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let next_offset = self.published.image().next_offset;
            let outcome = match entry.payload {
                EntryPayload::Blank => EntryOutcome::Applied { next_offset },
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    EntryOutcome::Applied { next_offset }
                }
                // Every voter applies the same entries to the same image, so every voter
                // skips the same batches.
                EntryPayload::Normal(batch) if batch.based_on != next_offset => {
                    EntryOutcome::Stale { next_offset }
                }
                EntryPayload::Normal(batch) => {
                    let mut image = (*self.published.image()).clone();
                    image.apply(&batch.records);
                    self.records.extend(batch.records);
                    let next_offset = image.next_offset;
                    self.published.publish(Arc::new(image));
                    EntryOutcome::Applied { next_offset }
                }
            };
            responses.push(outcome);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        self.snapshot_seq += 1;
        SnapshotBuilder {
            dir: self.dir.clone(),
            seq: self.snapshot_seq,
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.last_membership.clone(),
                snapshot_id: String::new(),
            },
            records: self.records.clone(),
            current: self.snapshot.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let records: Vec<MetadataRecord> = serde_json::from_slice(&data).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::new(&e))
        })?;
        let file = SnapshotFile {
            meta: meta.clone(),
            records,
        };
        {
            let mut current = self.snapshot.lock();
            write_snapshot(&self.dir, &file).map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
            *current = Some(CurrentSnapshot {
                meta: meta.clone(),
                data,
            });
        }
        self.restore(meta, file.records);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(self.snapshot.lock().as_ref().map(|current| Snapshot {
            meta: current.meta.clone(),
            snapshot: Box::new(Cursor::new(current.data.clone())),
        }))
    }
}

/// Builds a snapshot from a copy of the state machine taken when openraft asked for it, so the
/// state machine goes on applying meanwhile.
pub struct SnapshotBuilder {
    dir: PathBuf,
    seq: u64,
    meta: SnapshotMeta<NodeId, BasicNode>,
    records: Vec<MetadataRecord>,
    current: Arc<Mutex<Option<CurrentSnapshot>>>,
}

impl fmt::Debug for SnapshotBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnapshotBuilder")
            .field("last_log_id", &self.meta.last_log_id)
            .field("records", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let mut meta = self.meta.clone();
        meta.snapshot_id = match meta.last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, self.seq),
            None => format!("none-{}", self.seq),
        };
        let file = SnapshotFile {
            meta: meta.clone(),
            records: std::mem::take(&mut self.records),
        };
        let data = serde_json::to_vec(&file.records).expect("records always serialize");
        let mut current = self.current.lock();
        // An installed snapshot may already be newer than this one: keep the newer.
        let newer_exists = current
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > meta.last_log_id);
        if !newer_exists {
            write_snapshot(&self.dir, &file).map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
            *current = Some(CurrentSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            });
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

fn write_snapshot(dir: &Path, file: &SnapshotFile) -> Result<(), RaftError> {
    let bytes = serde_json::to_vec(file).expect("snapshots always serialize");
    replace_file(dir, SNAPSHOT_FILE, &bytes, true)
}

/// Reads a whole JSON file, `None` if it does not exist.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, RaftError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RaftError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| RaftError::Corrupt {
            path: path.to_path_buf(),
            line: 1,
            source,
        })
}

/// Replaces `dir/name` with `bytes` atomically: written to `name.tmp`, then renamed over it;
/// with `durable`, the data and the rename are fsynced before returning.
fn replace_file(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> Result<(), RaftError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RaftError::Io { path, source }
    };
    let mut file = File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    if durable {
        file.sync_all().map_err(io(&tmp))?;
    }
    drop(file);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    if durable {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
    }
    Ok(())
}

fn clone_bound(bound: Bound<&u64>) -> Bound<u64> {
    match bound {
        Bound::Included(&i) => Bound::Included(i),
        Bound::Excluded(&i) => Bound::Excluded(i),
        Bound::Unbounded => Bound::Unbounded,
    }
}
