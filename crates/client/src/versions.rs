//! The highest version of each API this client builds requests for.
//!
//! The codec can encode every version, but request *shapes* change between versions (topic ids
//! instead of names in Fetch v13+, batched groups in OffsetFetch v8+, batched keys in
//! FindCoordinator v4+). The client builds the name-based, single-key shapes, so it caps each
//! API at the last version with that shape. Every cap is served by Apache Kafka 3.x and 4.x.

use kafka_protocol::messages::ApiKey;

/// `(api_key, max_version)` for every API the client sends. An API not listed is not sent.
pub const CLIENT_MAX_VERSIONS: &[(ApiKey, i16)] = &[
    (ApiKey::Produce, 11),
    (ApiKey::Fetch, 12),
    (ApiKey::OffsetForLeaderEpoch, 4),
    (ApiKey::WriteTxnMarkers, 1),
    (ApiKey::ListOffsets, 9),
    (ApiKey::Metadata, 12),
    (ApiKey::OffsetCommit, 9),
    (ApiKey::OffsetFetch, 7),
    (ApiKey::FindCoordinator, 3),
    (ApiKey::DescribeGroups, 5),
    (ApiKey::ListGroups, 4),
    (ApiKey::ApiVersions, 3),
    (ApiKey::CreateTopics, 7),
    (ApiKey::DeleteTopics, 5),
    (ApiKey::DescribeAcls, 3),
    (ApiKey::CreateAcls, 3),
    (ApiKey::DeleteAcls, 3),
    (ApiKey::DescribeConfigs, 4),
    (ApiKey::CreatePartitions, 3),
    (ApiKey::DeleteGroups, 2),
    (ApiKey::IncrementalAlterConfigs, 1),
    (ApiKey::DescribeUserScramCredentials, 0),
    (ApiKey::AlterUserScramCredentials, 0),
    (ApiKey::DescribeCluster, 1),
];

/// The client's cap for `api_key`, if it sends that API.
pub fn client_max_version(api_key: ApiKey) -> Option<i16> {
    CLIENT_MAX_VERSIONS
        .iter()
        .find(|(key, _)| *key == api_key)
        .map(|&(_, v)| v)
}

/// The version to send: the highest in `broker_range ∩ [codec min, client cap]`, if any.
pub fn pick_version(api_key: ApiKey, broker_range: (i16, i16)) -> Option<i16> {
    let cap = client_max_version(api_key)?.min(api_key.valid_versions().max);
    let low = broker_range.0.max(api_key.valid_versions().min);
    let high = broker_range.1.min(cap);
    (low <= high).then_some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_are_within_the_codec() {
        for &(key, max) in CLIENT_MAX_VERSIONS {
            assert!(max <= key.valid_versions().max, "{key:?}");
        }
    }

    #[test]
    fn picks_the_highest_common_version() {
        assert_eq!(pick_version(ApiKey::Fetch, (4, 17)), Some(12));
        assert_eq!(pick_version(ApiKey::Fetch, (4, 8)), Some(8));
        assert_eq!(pick_version(ApiKey::Fetch, (13, 17)), None);
        assert_eq!(pick_version(ApiKey::FindCoordinator, (0, 6)), Some(3));
        assert_eq!(pick_version(ApiKey::SaslHandshake, (0, 1)), None);
    }
}
