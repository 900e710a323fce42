//! DescribeLogDirs (35): per log dir, the hosted partitions and their sizes.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use oxka_protocol::kafka_protocol;

use oxka_metadata::acl::AclOperation;

use super::RequestContext;
use crate::Broker;

/// Needs DESCRIBE on the cluster; without it Kafka answers no log dirs and (v3+) a top-level
/// CLUSTER_AUTHORIZATION_FAILED.
pub(super) async fn describe(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let version = ctx.api_version;
    if !broker.authorize_cluster(ctx, AclOperation::Describe) {
        let mut response = DescribeLogDirsResponse::default();
        if version >= 3 {
            response.error_code =
                kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code();
        }
        return response;
    }
    let broker = broker.clone();
    tokio::task::spawn_blocking(move || describe_blocking(&broker, version, request))
        .await
        .expect("describe log dirs task panicked")
}

fn describe_blocking(
    broker: &Broker,
    version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| t.topic.as_str() == topic && t.partitions.contains(&partition)),
    };
    let mut response = DescribeLogDirsResponse::default();
    for dir in broker.partitions().log_dirs() {
        let mut result = DescribeLogDirsResult::default();
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        result.log_dir = absolute.to_string_lossy().into_owned().into();
        if version >= 4 {
            (result.total_bytes, result.usable_bytes) = disk_space(dir);
        }
        for partition in broker.partitions().all() {
            let in_dir = partition
                .with_log(|log| Ok(log.dir().starts_with(dir)))
                .unwrap_or(false);
            if !in_dir || !wanted(&partition.topic, partition.index) {
                continue;
            }
            let Ok(size) = partition.size_bytes() else {
                continue;
            };
            let mut p = DescribeLogDirsPartition::default();
            p.partition_index = partition.index;
            p.partition_size = size as i64;
            p.offset_lag = 0;
            match result.topics.last_mut() {
                Some(t) if t.name.as_str() == partition.topic => t.partitions.push(p),
                _ => {
                    let mut t = DescribeLogDirsTopic::default();
                    t.name = TopicName(partition.topic.clone().into());
                    t.partitions.push(p);
                    result.topics.push(t);
                }
            }
        }
        response.results.push(result);
    }
    response
}

/// Total and usable bytes of the file system holding `dir` (-1, -1 when unknown).
fn disk_space(dir: &std::path::Path) -> (i64, i64) {
    match nix::sys::statvfs::statvfs(dir) {
        Ok(s) => {
            let frag = s.fragment_size() as i64;
            (s.blocks() as i64 * frag, s.blocks_available() as i64 * frag)
        }
        Err(_) => (-1, -1),
    }
}
