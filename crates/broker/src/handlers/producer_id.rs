//! InitProducerId (key 22): every call without a transactional id gets a producer id never
//! handed out before, at epoch 0, as Kafka does. With a transactional id the transaction
//! coordinator answers: the id's producer id at its next epoch, fencing earlier producers.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use oxka_metadata::acl::{AclOperation, ResourceType};
use oxka_protocol::kafka_protocol;

use super::{blocking, RequestContext};
use crate::errors::controller_error_code;
use crate::Broker;

/// Authorization as Kafka checks it: WRITE on the transactional id, else
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED; without one, IDEMPOTENT_WRITE on the cluster or
/// WRITE on some topic (KIP-679), else CLUSTER_AUTHORIZATION_FAILED.
pub(super) async fn init_producer_id(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let version = ctx.api_version;
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if let Some(id) = &request.transactional_id {
        let id = id.to_string();
        if !broker.authorize(ctx, AclOperation::Write, ResourceType::TransactionalId, &id) {
            response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            return response;
        }
        let timeout_ms = request.transaction_timeout_ms;
        // v3+: a client resuming after an error (KIP-360) names its current id and epoch.
        let expected = (version >= 3 && request.producer_id.0 >= 0)
            .then_some((request.producer_id.0, request.producer_epoch));
        let r = blocking(broker, move |b| {
            b.txns.init_producer_id(b, &id, timeout_ms, expected)
        })
        .await;
        match r {
            Ok((pid, epoch)) => {
                response.producer_id = ProducerId(pid);
                response.producer_epoch = epoch;
            }
            Err(code) => response.error_code = super::txn::fenced_for(version, 4, code),
        }
        return response;
    }
    if !broker.authorize_cluster(ctx, AclOperation::IdempotentWrite)
        && !broker.authorize_any(ctx, AclOperation::Write, ResourceType::Topic)
    {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    match blocking(broker, |b| b.next_producer_id()).await {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id failed");
            response.error_code = controller_error_code(&e);
        }
    }
    response
}
