//! InitProducerId (key 22) for idempotent producers: every call without a transactional id
//! gets a producer id never handed out before, at epoch 0, as Kafka does. Transactional ids
//! are refused until the transaction coordinator exists.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use oxka_protocol::kafka_protocol;

use super::blocking;
use crate::errors::controller_error_code;
use crate::Broker;

pub(super) async fn init_producer_id(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if let Some(id) = &request.transactional_id {
        tracing::warn!(transactional_id = %id.as_str(), "transactions are not supported yet");
        response.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
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
