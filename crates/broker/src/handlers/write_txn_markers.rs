//! WriteTxnMarkers (key 27, v1): a transaction coordinator on another broker asks this one,
//! the leader of some of the transaction's partitions, to write the commit or abort markers
//! there (Kafka's inter-broker call; CLUSTER_ACTION on the cluster). A marker into
//! `__consumer_offsets` also applies or drops the transaction's offset commits here, where the
//! group coordinator is.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use oxka_metadata::acl::AclOperation;
use oxka_protocol::kafka_protocol;

use super::RequestContext;
use crate::errors::partition_error_code;
use crate::partition::PartitionError;
use crate::Broker;

pub(super) fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let allowed = broker.authorize_cluster(ctx, AclOperation::ClusterAction);
    let mut response = WriteTxnMarkersResponse::default();
    for marker in request.markers {
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        let mut offsets_marker = false;
        for topic in marker.topics {
            let mut t = WritableTxnMarkerTopicResult::default();
            t.name = topic.name.clone();
            for index in topic.partition_indexes {
                let mut r = WritableTxnMarkerPartitionResult::default();
                r.partition_index = index;
                r.error_code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    match broker.led_partition(&topic.name, index) {
                        Err(code) => code,
                        Ok(p) => match p.write_txn_marker(
                            marker.producer_id.0,
                            marker.producer_epoch,
                            marker.transaction_result,
                            marker.coordinator_epoch,
                        ) {
                            Ok(_) => {
                                offsets_marker |=
                                    topic.name.as_str() == crate::group::OFFSETS_TOPIC;
                                0
                            }
                            Err(PartitionError::Deleted) => {
                                ResponseError::UnknownTopicOrPartition.code()
                            }
                            Err(e) => {
                                tracing::warn!(topic = %topic.name.as_str(), partition = index, error = %e, "writing a transaction marker failed");
                                partition_error_code(&e)
                            }
                        },
                    }
                };
                t.partitions.push(r);
            }
            result.topics.push(t);
        }
        if offsets_marker {
            broker
                .groups
                .complete_txn_offsets(marker.producer_id.0, marker.transaction_result);
        }
        response.markers.push(result);
    }
    response
}
