//! One module per Kafka API. Each handler takes the decoded request and returns the response
//! Kafka would give, with errors at the same level (request, topic or partition).

mod admin;
mod api_versions;
mod configs;
mod fetch;
mod list_offsets;
mod log_dirs;
mod metadata;
mod produce;
mod producer_id;

use std::sync::Arc;

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
}

impl Broker {
    /// Handles one request. `None` means no response is sent (Produce with acks=0).
    pub async fn handle(
        self: &Arc<Self>,
        ctx: &RequestContext,
        request: RequestKind,
    ) -> Option<ResponseKind> {
        let v = ctx.api_version;
        Some(match request {
            RequestKind::ApiVersions(r) => {
                ResponseKind::ApiVersions(api_versions::handle(self, v, r))
            }
            RequestKind::Metadata(r) => {
                ResponseKind::Metadata(metadata::handle(self, ctx, r).await)
            }
            RequestKind::Produce(r) => {
                return produce::handle(self, v, r).await.map(ResponseKind::Produce)
            }
            RequestKind::Fetch(r) => ResponseKind::Fetch(fetch::handle(self, v, r).await),
            RequestKind::ListOffsets(r) => {
                ResponseKind::ListOffsets(list_offsets::handle(self, v, r))
            }
            RequestKind::OffsetForLeaderEpoch(r) => {
                ResponseKind::OffsetForLeaderEpoch(list_offsets::offset_for_leader_epoch(self, r))
            }
            RequestKind::CreateTopics(r) => {
                ResponseKind::CreateTopics(admin::create_topics(self, v, r).await)
            }
            RequestKind::DeleteTopics(r) => {
                ResponseKind::DeleteTopics(admin::delete_topics(self, v, r).await)
            }
            RequestKind::CreatePartitions(r) => {
                ResponseKind::CreatePartitions(admin::create_partitions(self, r).await)
            }
            RequestKind::DeleteRecords(r) => {
                ResponseKind::DeleteRecords(admin::delete_records(self, r).await)
            }
            RequestKind::DescribeConfigs(r) => {
                ResponseKind::DescribeConfigs(configs::describe(self, v, r))
            }
            RequestKind::AlterConfigs(r) => {
                ResponseKind::AlterConfigs(configs::alter(self, r).await)
            }
            RequestKind::IncrementalAlterConfigs(r) => {
                ResponseKind::IncrementalAlterConfigs(configs::incremental_alter(self, r).await)
            }
            RequestKind::InitProducerId(r) => {
                ResponseKind::InitProducerId(producer_id::init_producer_id(self, r).await)
            }
            RequestKind::DescribeLogDirs(r) => {
                ResponseKind::DescribeLogDirs(log_dirs::describe(self, v, r).await)
            }
            RequestKind::DescribeCluster(r) => {
                ResponseKind::DescribeCluster(metadata::describe_cluster(self, ctx, r))
            }
            other => {
                // The server only decodes requests listed in the version table, and every
                // API in that table has an arm above.
                tracing::error!(request = ?std::mem::discriminant(&other), "request reached the broker without a handler");
                return None;
            }
        })
    }
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
