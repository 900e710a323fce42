//! One module per Kafka API. Each handler takes the decoded request and returns the response
//! Kafka would give, with errors at the same level (request, topic or partition).

mod acls;
mod admin;
mod api_versions;
mod configs;
mod consumer_group;
mod elect_leaders;
mod fetch;
mod group;
mod list_offsets;
mod log_dirs;
mod metadata;
mod produce;
mod producer_id;
mod reassignments;
mod scram;
mod txn;
mod write_txn_markers;

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{RequestKind, ResponseKind};
use oxka_protocol::kafka_protocol;

use crate::Broker;

/// What a handler knows about the request beyond its body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// Name of the listener the connection came in on (selects advertised listeners).
    pub listener_name: String,
    /// The client's address as Kafka reports it (`/127.0.0.1`).
    pub client_host: String,
    /// Who the connection authenticated as (`User:ANONYMOUS` when it did not).
    pub principal: crate::KafkaPrincipal,
}

/// What the connection does after a request.
// Moved once per request; boxing the response would add an allocation to every request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Reply {
    /// Send this response.
    Send(ResponseKind),
    /// Send nothing (Produce with acks=0).
    Nothing,
    /// Close the connection (an acks=0 produce failed: the only way to tell the producer).
    Close(String),
}

impl Broker {
    /// Handles one request.
    pub async fn handle(self: &Arc<Self>, ctx: &RequestContext, request: RequestKind) -> Reply {
        // A coordinator's write is answered once its partition's ISR has it (Kafka's
        // coordinators append with acks=all), so a coordinator failover loses no commit.
        let Some((topic, key)) = coordinator_key(&request) else {
            return self.dispatch(ctx, request).await;
        };
        let mut reply = self.dispatch(ctx, request).await;
        if !self.await_coordinator_write(topic, &key).await {
            if let Reply::Send(ResponseKind::OffsetCommit(r)) = &mut reply {
                for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    if p.error_code == 0 {
                        p.error_code = ResponseError::CoordinatorNotAvailable.code();
                    }
                }
            }
        }
        reply
    }

    async fn dispatch(self: &Arc<Self>, ctx: &RequestContext, request: RequestKind) -> Reply {
        let v = ctx.api_version;
        Reply::Send(match request {
            RequestKind::ApiVersions(r) => {
                ResponseKind::ApiVersions(api_versions::handle(self, v, r))
            }
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(metadata::handle(self, ctx, r).await)
            }
            RequestKind::Produce(r) => return produce::handle(self, ctx, r).await,
            RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(self, ctx, r).await),
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(list_offsets::handle(self, ctx, r))
            }
            RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
                list_offsets::offset_for_leader_epoch(self, ctx, r),
            ),
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(admin::create_topics(self, ctx, r).await)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(admin::delete_topics(self, ctx, r).await)
            }
            RequestKind::CreatePartitions(r) => {
                ResponseKind::CreatePartitions(admin::create_partitions(self, ctx, r).await)
            }
            RequestKind::DeleteRecords(r) => {
                ResponseKind::DeleteRecords(admin::delete_records(self, ctx, r).await)
            }
            RequestKind::DescribeConfigs(r) => {
                ResponseKind::DescribeConfigs(configs::describe(self, ctx, r))
            }
            RequestKind::AlterConfigs(r) => {
                ResponseKind::AlterConfigs(configs::alter(self, ctx, r).await)
            }
            RequestKind::ElectLeaders(r) => {
                ResponseKind::ElectLeaders(elect_leaders::handle(self, ctx, r).await)
            }
            RequestKind::AlterPartitionReassignments(r) => {
                ResponseKind::AlterPartitionReassignments(reassignments::alter(self, ctx, r).await)
            }
            RequestKind::ListPartitionReassignments(r) => {
                ResponseKind::ListPartitionReassignments(reassignments::list(self, ctx, r))
            }
            RequestKind::IncrementalAlterConfigs(r) => ResponseKind::IncrementalAlterConfigs(
                configs::incremental_alter(self, ctx, r).await,
            ),
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(producer_id::init_producer_id(self, ctx, r).await)
            }
            RequestKind::AddPartitionsToTxn(r) => {
                ResponseKind::AddPartitionsToTxn(txn::add_partitions_to_txn(self, ctx, r).await)
            }
            RequestKind::AddOffsetsToTxn(r) => {
                ResponseKind::AddOffsetsToTxn(txn::add_offsets_to_txn(self, ctx, r).await)
            }
            RequestKind::EndTxn(r) => ResponseKind::EndTxn(txn::end_txn(self, ctx, r).await),
            RequestKind::WriteTxnMarkers(r) => {
                ResponseKind::WriteTxnMarkers(write_txn_markers::handle(self, ctx, r))
            }
            RequestKind::TxnOffsetCommit(r) => {
                ResponseKind::TxnOffsetCommit(txn::txn_offset_commit(self, ctx, r).await)
            }
            RequestKind::DescribeProducers(r) => {
                ResponseKind::DescribeProducers(txn::describe_producers(self, ctx, r))
            }
            RequestKind::DescribeTransactions(r) => {
                ResponseKind::DescribeTransactions(txn::describe_transactions(self, ctx, r))
            }
            RequestKind::ListTransactions(r) => {
                ResponseKind::ListTransactions(txn::list_transactions(self, ctx, r))
            }
            RequestKind::DescribeAcls(r) => {
                ResponseKind::DescribeAcls(acls::describe_acls(self, ctx, r))
            }
            RequestKind::CreateAcls(r) => {
                ResponseKind::CreateAcls(acls::create_acls(self, ctx, r).await)
            }
            RequestKind::DeleteAcls(r) => {
                ResponseKind::DeleteAcls(acls::delete_acls(self, ctx, r).await)
            }
            RequestKind::DescribeLogDirs(r) => {
                ResponseKind::DescribeLogDirs(log_dirs::describe(self, ctx, r).await)
            }
            RequestKind::DescribeCluster(r) => {
                ResponseKind::DescribeCluster(metadata::describe_cluster(self, ctx, r))
            }
            RequestKind::FindCoordinator(r) => {
                self.ensure_coordinator_topic(r.key_type).await;
                ResponseKind::FindCoordinator(group::find_coordinator(self, ctx, r))
            }
            RequestKind::JoinGroup(r) => {
                ResponseKind::JoinGroup(group::join_group(self, ctx, r).await)
            }
            RequestKind::SyncGroup(r) => {
                ResponseKind::SyncGroup(group::sync_group(self, ctx, r).await)
            }
            RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(group::heartbeat(self, ctx, r)),
            RequestKind::LeaveGroup(r) => {
                ResponseKind::LeaveGroup(group::leave_group(self, ctx, r))
            }
            RequestKind::OffsetCommit(r) => {
                ResponseKind::OffsetCommit(group::offset_commit(self, ctx, r))
            }
            RequestKind::OffsetFetch(r) => {
                ResponseKind::OffsetFetch(group::offset_fetch(self, ctx, r))
            }
            RequestKind::ListGroups(r) => {
                ResponseKind::ListGroups(group::list_groups(self, ctx, r))
            }
            RequestKind::DescribeGroups(r) => {
                ResponseKind::DescribeGroups(group::describe_groups(self, ctx, r))
            }
            RequestKind::DeleteGroups(r) => {
                ResponseKind::DeleteGroups(group::delete_groups(self, ctx, r))
            }
            RequestKind::OffsetDelete(r) => {
                ResponseKind::OffsetDelete(group::offset_delete(self, ctx, r))
            }
            RequestKind::ConsumerGroupHeartbeat(r) => {
                ResponseKind::ConsumerGroupHeartbeat(consumer_group::heartbeat(self, ctx, r))
            }
            RequestKind::ConsumerGroupDescribe(r) => {
                ResponseKind::ConsumerGroupDescribe(consumer_group::describe(self, ctx, r))
            }
            RequestKind::DescribeUserScramCredentials(r) => {
                ResponseKind::DescribeUserScramCredentials(scram::describe(self, ctx, r))
            }
            RequestKind::AlterUserScramCredentials(r) => {
                ResponseKind::AlterUserScramCredentials(scram::alter(self, ctx, r).await)
            }
            other => {
                // The server only decodes requests listed in the version table, and every
                // API in that table has an arm above.
                tracing::error!(request = ?std::mem::discriminant(&other), "request reached the broker without a handler");
                return Reply::Close("no handler".into());
            }
        })
    }
}

/// The coordinator topic and key (group id or transactional id) of a request that writes to
/// a coordinator's partition.
fn coordinator_key(request: &RequestKind) -> Option<(&'static str, String)> {
    use crate::{group::OFFSETS_TOPIC, txn::TXN_TOPIC};
    let (topic, key) = match request {
        RequestKind::JoinGroup(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        RequestKind::SyncGroup(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        RequestKind::LeaveGroup(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        RequestKind::OffsetCommit(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        RequestKind::OffsetDelete(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        RequestKind::TxnOffsetCommit(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        RequestKind::ConsumerGroupHeartbeat(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        RequestKind::InitProducerId(r) => (TXN_TOPIC, r.transactional_id.as_ref()?.to_string()),
        RequestKind::AddOffsetsToTxn(r) => (TXN_TOPIC, r.transactional_id.to_string()),
        RequestKind::AddPartitionsToTxn(r) if !r.v3_and_below_transactional_id.is_empty() => {
            (TXN_TOPIC, r.v3_and_below_transactional_id.to_string())
        }
        RequestKind::EndTxn(r) => (TXN_TOPIC, r.transactional_id.to_string()),
        _ => return None,
    };
    Some((topic, key))
}

/// Runs blocking work (metadata fsync, directory changes) off the runtime's worker threads.
async fn blocking<T: Send + 'static>(
    broker: &Arc<Broker>,
    f: impl FnOnce(&Broker) -> T + Send + 'static,
) -> T {
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || f(&broker))
        .await
        .expect("blocking broker task panicked")
}
