//! ApiVersions (key 18): the served version table, with KIP-511 client software checks.
//! An ApiVersions request at an unsupported version is answered by the server with a v0
//! response carrying UNSUPPORTED_VERSION before it ever reaches this handler.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use oxka_protocol::kafka_protocol;
use oxka_protocol::versions::api_version_entries;

use crate::Broker;

/// The metadata.version feature level Oxka reports (Kafka 3.9's).
const METADATA_VERSION_LEVEL: i16 = 21;

pub(super) fn handle(
    broker: &Broker,
    version: i16,
    request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = api_version_entries();
    if version >= 3 {
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && s.as_bytes()[0].is_ascii_alphanumeric()
                && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
        };
        if !valid(&request.client_software_name) || !valid(&request.client_software_version) {
            response.error_code = ResponseError::InvalidRequest.code();
            return response;
        }
        let mut supported = SupportedFeatureKey::default();
        supported.name = "metadata.version".into();
        supported.min_version = 1;
        supported.max_version = METADATA_VERSION_LEVEL;
        response.supported_features = vec![supported];
        let mut finalized = FinalizedFeatureKey::default();
        finalized.name = "metadata.version".into();
        finalized.min_version_level = METADATA_VERSION_LEVEL;
        finalized.max_version_level = METADATA_VERSION_LEVEL;
        response.finalized_features = vec![finalized];
        response.finalized_features_epoch = broker.image().next_offset as i64;
    }
    response
}
