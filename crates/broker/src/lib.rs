//! The Oxka broker: partitions, the controller handle, and one handler module per Kafka API.
//!
//! The server crate owns sockets and framing; it hands each decoded request to
//! [`Broker::handle`] and writes back whatever response comes out, in request order.

mod authorizer;
pub mod config;
mod errors;
pub mod group;
mod handlers;
pub mod leadership;
pub mod log_dir;
pub mod metrics;
pub mod partition;
mod principal;
pub mod producer_state;
mod replica_fetcher;
mod replication;
pub mod sasl;
pub mod txn;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use oxka_metadata::{BrokerEndpoint, Controller, ControllerError, MetadataImage, MetadataQuorum};
use parking_lot::{Mutex, RwLock};

pub use config::{BrokerConfig, ConfigSource};
pub use handlers::{Reply, RequestContext};
use partition::PartitionManager;
pub use principal::KafkaPrincipal;

/// Wall-clock milliseconds since the Unix epoch, Kafka's timestamp unit.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error(transparent)]
    Log(#[from] oxka_log::LogError),
    #[error("log dir {path}: {source}")]
    LogDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log dir {path} is not a directory (log.dirs must name directories)")]
    NotADirectory { path: std::path::PathBuf },
    #[error("log dir {path} is not writable by this process: {source}")]
    NotWritable {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Failed to acquire lock on file .lock in {path}. A Kafka or Oxka broker in another process is using this directory.")]
    LogDirLocked { path: std::path::PathBuf },
    #[error("{path}: {reason}")]
    MetaProperties {
        path: std::path::PathBuf,
        reason: String,
    },
}

#[derive(Debug)]
pub struct Broker {
    pub config: Arc<BrokerConfig>,
    controller: Mutex<Controller>,
    /// The metadata quorum behind the controller, for what it knows without the controller
    /// lock (the active controller's id).
    quorum: Arc<dyn MetadataQuorum>,
    image: RwLock<Arc<MetadataImage>>,
    /// Held while an image is installed, so installs never interleave (see `apply_image`).
    applying: Mutex<()>,
    partitions: PartitionManager,
    /// The unused part of this broker's current block of producer ids: `next..end`.
    producer_ids: Mutex<(i64, i64)>,
    /// The group coordinator (consumer groups and committed offsets).
    pub groups: group::GroupCoordinator,
    /// The transaction coordinator (transactional ids, `__transaction_state`, markers).
    pub txns: txn::TxnCoordinator,
    /// The follower side of replication: fetches what this broker follows from its leaders.
    fetchers: replica_fetcher::ReplicaFetchers,
    /// This process's `.lock` on every log dir, released when the broker is dropped.
    _dir_locks: log_dir::LogDirLocks,
}

impl Broker {
    /// A broker of a single-node cluster: its own metadata log ([`oxka_metadata::LocalQuorum`])
    /// under `metadata.log.dir`. Opens every hosted partition (recovering them). Blocking.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>, StartError> {
        Broker::open_with(config, None)
    }

    /// A broker whose metadata comes from `quorum` (the Raft quorum of a cluster), or from its
    /// own metadata log when `None`. Blocking: registration waits for the quorum to commit.
    pub fn open_with(
        config: BrokerConfig,
        quorum: Option<Arc<dyn MetadataQuorum>>,
    ) -> Result<Arc<Broker>, StartError> {
        let mut dirs = config.log_dirs.clone();
        dirs.push(config.metadata_log_dir.clone());
        // Locked before anything is read, so two brokers never share a directory.
        let dir_locks = log_dir::lock_all(&dirs)?;
        let stored_cluster =
            log_dir::check_meta_properties(&dirs, config.node_id, config.cluster_id.as_deref())?;
        let cluster_id = config.cluster_id.clone().or_else(|| stored_cluster.clone());
        let clustered = quorum.is_some();
        let controller = match quorum {
            Some(quorum) => Controller::with_quorum(quorum, cluster_id)?,
            None => Controller::open(
                &config.metadata_log_dir.join("__cluster_metadata-0"),
                config.node_id,
                cluster_id,
            )?,
        };
        if let Some(stored) = &stored_cluster {
            let image = controller.image();
            if &image.cluster_id != stored {
                return Err(StartError::MetaProperties {
                    path: config.metadata_log_dir.join("__cluster_metadata-0"),
                    reason: format!(
                        "the metadata log belongs to cluster {}, but meta.properties in the log dirs names cluster {stored}",
                        image.cluster_id
                    ),
                });
            }
        }
        // Registered before anything reads the image, so Metadata answers from it.
        let endpoints = registered_endpoints(&config);
        controller.retry_stale(|c| c.register_broker(config.node_id, endpoints.clone()))?;
        let groups_config = group::CoordinatorConfig::from_broker(&config);
        let txn_config = txn::TxnConfig::from_broker(&config);
        // `__consumer_offsets` and `__transaction_state` are not created here: as in Kafka, the
        // first FindCoordinator for a group / transactional id creates them
        // ([`Broker::ensure_coordinator_topic`]). Where they exist, they are opened below with
        // every other partition and the coordinators load them.
        let image = controller.image();
        for dir in &dirs {
            log_dir::write_meta_properties(dir, config.node_id, &image.cluster_id).map_err(
                |source| StartError::LogDir {
                    path: dir.clone(),
                    source,
                },
            )?;
        }
        config.set_dynamic(dynamic_configs(&image, config.node_id));
        let partitions = PartitionManager::new(config.node_id, config.log_dirs.clone());
        if !clustered {
            partitions.remove_orphans(&image);
        } else {
            // This node's image may still lag the quorum's, and a partition created since is
            // not an orphan: Kafka too only removes stray replicas once it has caught up.
            tracing::info!(
                "not removing unknown partition directories: the metadata image may lag the quorum"
            );
        }
        partitions.reconcile(&image, &config)?;
        let quorum = controller.quorum().clone();
        let broker = Arc::new(Broker {
            config: Arc::new(config),
            controller: Mutex::new(controller),
            quorum,
            image: RwLock::new(image),
            applying: Mutex::new(()),
            partitions,
            producer_ids: Mutex::new((0, 0)),
            groups: group::GroupCoordinator::new(groups_config),
            txns: txn::TxnCoordinator::new(txn_config),
            fetchers: replica_fetcher::ReplicaFetchers::default(),
            _dir_locks: dir_locks,
        });
        broker.install_roles(&broker.image());
        // Every image the quorum applies from now on (this node's proposals and, in a
        // cluster, records committed by another controller) reaches the broker here.
        let weak = Arc::downgrade(&broker);
        broker.quorum.subscribe(Box::new(move |image| {
            if let Some(broker) = weak.upgrade() {
                broker.apply_image(image);
            }
        }));
        // What the quorum applied between the image read above and the subscription.
        broker.apply_image(&broker.quorum.image());
        group::GroupCoordinator::start(&broker);
        txn::TxnCoordinator::start(&broker);
        replica_fetcher::ReplicaFetchers::start(&broker);
        Ok(broker)
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    /// The active controller's node id, as Metadata and DescribeCluster report it (-1 when
    /// none is known).
    pub fn controller_id(&self) -> i32 {
        self.quorum.leader().unwrap_or(-1)
    }

    pub fn partitions(&self) -> &PartitionManager {
        &self.partitions
    }

    /// Runs a controller operation. Controller operations are serialised (KRaft's single
    /// controller thread); what they commit reaches this broker through
    /// [`Broker::apply_image`] before the operation returns. Blocking (the metadata log's
    /// fsync, log directory creation and deletion).
    ///
    /// When another controller's records were committed between this node's validation and
    /// its proposal ([`ControllerError::Stale`]), the operation runs again against the image
    /// that includes them, a bounded number of times.
    fn change_metadata<T>(
        &self,
        f: impl FnMut(&Controller) -> Result<T, ControllerError>,
    ) -> Result<T, ControllerError> {
        self.controller.lock().retry_stale(f)
    }

    /// The active controller's periodic duty (Kafka's heartbeat fencing, on the quorum's own
    /// liveness): fence brokers it has not heard from within the session timeout, unfence
    /// those back, and move leaderships off fenced brokers. A no-op on other nodes and when
    /// nothing changed. Blocking.
    pub fn controller_tick(&self) {
        if self.quorum.live_nodes().is_none() {
            return;
        }
        // The liveness view is read again for every attempt (a retry after Stale must not
        // reuse an older one), and only while this node is the active controller.
        let quorum = &self.quorum;
        let result = self.change_metadata(|c| {
            let live = quorum.live_nodes().ok_or(ControllerError::NotController {
                leader: quorum.leader(),
            })?;
            c.fence_and_elect(&live)
        });
        match result {
            Ok(_) => {}
            Err(ControllerError::NotController { .. }) => {
                tracing::debug!("no longer the active controller: fencing left to the new one");
            }
            Err(e) => tracing::warn!(error = %e, "fencing and leader election failed"),
        }
    }

    /// Makes `image` the broker's: dynamic configs, the image requests read, and the hosted
    /// partitions (created, deleted, re-epoched). Called by the metadata quorum, in log order.
    /// Images arrive in log order from the listener, but the one start-up call may race with
    /// it: installs are serialised and an image not newer than the installed one is ignored,
    /// so the partitions are never reconciled back to an older image.
    fn apply_image(&self, image: &Arc<MetadataImage>) {
        let _applying = self.applying.lock();
        let previous = {
            let mut current = self.image.write();
            if image.next_offset <= current.next_offset {
                return;
            }
            std::mem::replace(&mut *current, image.clone())
        };
        self.config
            .set_dynamic(dynamic_configs(image, self.config.node_id));
        if let Err(e) = self.partitions.reconcile(image, &self.config) {
            tracing::error!(error = %e, "reconciling partitions with metadata failed");
        }
        self.install_roles(image);
        self.move_coordinators(&previous, image);
    }

    /// Creates the internal topic behind FindCoordinator `key_type` (0: `__consumer_offsets`,
    /// 1: `__transaction_state`) if it does not exist yet, as Kafka does on the first
    /// FindCoordinator. A no-op once it exists; a failure is logged and leaves the coordinator
    /// unavailable (COORDINATOR_NOT_AVAILABLE, retriable). Runs the creation on a blocking
    /// thread (metadata fsync, partition directories).
    pub async fn ensure_coordinator_topic(self: &Arc<Self>, key_type: i8) {
        let topic = match key_type {
            0 => group::OFFSETS_TOPIC,
            1 => txn::TXN_TOPIC,
            _ => return,
        };
        if self.image().topic(topic).is_some() {
            return;
        }
        let broker = Arc::clone(self);
        let created =
            tokio::task::spawn_blocking(move || broker.create_coordinator_topic(key_type))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        if let Err(error) = created {
            tracing::warn!(%error, "creating {topic} failed");
        }
    }

    /// The blocking part of [`Broker::ensure_coordinator_topic`]; also used by AddOffsetsToTxn.
    pub(crate) fn create_coordinator_topic(&self, key_type: i8) -> Result<(), ControllerError> {
        self.change_metadata(|c| {
            // Kafka's "alive brokers": registered, unfenced and not shutting down.
            let image = c.image();
            let alive = image
                .brokers
                .keys()
                .filter(|b| image.is_active_broker(**b))
                .count()
                .max(1);
            match key_type {
                0 => group::ensure_offsets_topic(c, self.groups.config(), alive).map(|_| ()),
                _ => txn::ensure_txn_topic(c, self.txns.config(), alive).map(|_| ()),
            }
        })
    }

    /// A producer id never handed out before, from the current block (a new block is reserved
    /// in the metadata log when it runs out). Blocking.
    fn next_producer_id(&self) -> Result<i64, ControllerError> {
        const BLOCK: i64 = 1000;
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            let start = self.change_metadata(|c| c.allocate_producer_ids(BLOCK))?;
            *ids = (start, start + BLOCK);
        }
        ids.0 += 1;
        Ok(ids.0 - 1)
    }

    /// Periodic log maintenance: time-based rolls and retention. Blocking.
    pub fn run_log_maintenance(&self) {
        let now = now_ms();
        let expiration_ms = self
            .config
            .get("producer.id.expiration.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(86_400_000);
        for partition in self.partitions.all() {
            partition.expire_producers(now, expiration_ms);
            let result = partition.enforce_retention(now);
            match result {
                Ok(0) | Err(partition::PartitionError::Deleted) => {}
                Ok(deleted) => tracing::info!(
                    topic = %partition.topic,
                    partition = partition.index,
                    deleted,
                    "retention deleted segments"
                ),
                Err(e) => tracing::error!(
                    topic = %partition.topic,
                    partition = partition.index,
                    error = %e,
                    "log maintenance failed"
                ),
            }
        }
    }

    /// One pass of the log cleaner over every compacted partition. Blocking.
    pub fn run_log_cleaner(&self) {
        let now = now_ms();
        let cleaner = oxka_log::CleanerConfig {
            dedupe_buffer_bytes: self
                .config
                .get("log.cleaner.dedupe.buffer.size")
                .and_then(|v| v.parse().ok())
                .unwrap_or(oxka_log::CleanerConfig::default().dedupe_buffer_bytes),
        };
        for partition in self.partitions.all() {
            match partition.compact(now, &cleaner) {
                Ok(_) | Err(partition::PartitionError::Deleted) => {}
                Err(e) => tracing::error!(
                    topic = %partition.topic,
                    partition = partition.index,
                    error = %e,
                    "log compaction failed"
                ),
            }
        }
    }

    /// How often the cleaner runs: `log.cleaner.backoff.ms`, or the retention check interval
    /// when that is shorter.
    pub fn cleaner_interval_ms(&self) -> u64 {
        let backoff: u64 = self
            .config
            .get("log.cleaner.backoff.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(15_000);
        backoff.min(self.config.retention_check_interval_ms).max(10)
    }

    /// Fsyncs partitions whose `flush.ms` has passed, and segments a log rolled away from
    /// (Kafka's flush after a roll). Blocking.
    pub fn run_scheduled_flushes(&self) {
        let now = now_ms();
        for partition in self.partitions.all() {
            if let Err(e) = partition.flush_rolled() {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "flush after roll failed");
            }
            if partition.flush_due(now) {
                if let Err(e) = partition.flush() {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "scheduled flush failed");
                }
            }
        }
    }

    /// Flushes and closes every log (clean shutdown). Blocking.
    pub fn shutdown(&self) {
        self.checkpoint_high_watermarks();
        for partition in self.partitions.all() {
            if let Err(e) = partition.with_log(|log| Ok(log.flush()?)) {
                tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "flush on shutdown failed");
            }
            if let Err(e) = partition.write_producer_snapshot() {
                tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "producer snapshot on shutdown failed");
            }
        }
    }
}

/// The endpoints this broker registers: its advertised listeners except the controller
/// listeners (`controller.listener.names`), which Kafka never hands to clients.
fn registered_endpoints(config: &BrokerConfig) -> Vec<BrokerEndpoint> {
    let controller = config.controller_listener_names();
    config
        .advertised_listeners
        .iter()
        .filter(|l| !controller.contains(&l.name.as_str()))
        .map(|l| BrokerEndpoint {
            name: l.name.clone(),
            host: l.host.clone(),
            port: l.port,
        })
        .collect()
}

/// The dynamic broker configs the image holds for `node_id`.
fn dynamic_configs(image: &MetadataImage, node_id: i32) -> config::DynamicBrokerConfigs {
    config::DynamicBrokerConfigs {
        node: image
            .broker_configs
            .get(&node_id.to_string())
            .cloned()
            .unwrap_or_default(),
        cluster: image.broker_configs.get("").cloned().unwrap_or_default(),
    }
}
