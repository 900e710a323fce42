//! The table of API versions Oxka serves. It is the single source for ApiVersions responses
//! and for the check that closes a connection on an unsupported (key, version).
//!
//! Only versions that are implemented *and* exercised by a real client test are listed; a
//! client picks the highest common version, so overstating support breaks it.

use kafka_protocol::messages::api_versions_response::ApiVersion;

/// `(api_key, min_version, max_version)` for every API served on client listeners.
pub const SUPPORTED_APIS: &[(i16, i16, i16)] = &[
    (0, 3, 11), // Produce: record batches v2 only
    (1, 4, 16), // Fetch
    (2, 1, 9),  // ListOffsets
    (3, 0, 12), // Metadata
    (8, 2, 9),  // OffsetCommit
    (9, 1, 9),  // OffsetFetch: multi-group from v8
    (10, 0, 6), // FindCoordinator: batched keys from v4; group and transaction keys
    (11, 0, 9), // JoinGroup
    (12, 0, 4), // Heartbeat
    (13, 0, 5), // LeaveGroup: batched members from v3
    (14, 0, 5), // SyncGroup
    (15, 0, 5), // DescribeGroups
    (16, 0, 5), // ListGroups: state filter v4+, type filter v5+
    (17, 0, 1), // SaslHandshake: v0 raw tokens, v1 SaslAuthenticate-framed
    (18, 0, 4), // ApiVersions
    (19, 2, 7), // CreateTopics
    (20, 1, 6), // DeleteTopics
    (21, 0, 2), // DeleteRecords
    (22, 0, 4), // InitProducerId: idempotent and transactional producers
    (23, 2, 4), // OffsetForLeaderEpoch
    (24, 0, 3), // AddPartitionsToTxn: v4+ (batched, broker-to-broker verification) not served
    (25, 0, 3), // AddOffsetsToTxn
    (26, 0, 3), // EndTxn
    (27, 1, 1), // WriteTxnMarkers: from transaction coordinators (CLUSTER_ACTION), v1 as Kafka 4
    (28, 0, 3), // TxnOffsetCommit: member and generation checked from v3
    (29, 1, 3), // DescribeAcls: SECURITY_DISABLED without an authorizer
    (30, 1, 3), // CreateAcls
    (31, 1, 3), // DeleteAcls
    (32, 1, 4), // DescribeConfigs
    (33, 0, 2), // AlterConfigs
    (35, 1, 4), // DescribeLogDirs
    (36, 0, 2), // SaslAuthenticate: session lifetime (KIP-368) from v1
    (37, 0, 3), // CreatePartitions
    (42, 0, 2), // DeleteGroups
    (43, 0, 2), // ElectLeaders: preferred and unclean
    (44, 0, 1), // IncrementalAlterConfigs
    (45, 0, 1), // AlterPartitionReassignments: allow_replication_factor_change from v1
    (46, 0, 0), // ListPartitionReassignments
    (47, 0, 0), // OffsetDelete
    (50, 0, 0), // DescribeUserScramCredentials
    (51, 0, 0), // AlterUserScramCredentials
    (60, 0, 1), // DescribeCluster
    (61, 0, 0), // DescribeProducers
    (65, 0, 0), // DescribeTransactions
    (66, 0, 1), // ListTransactions: duration filter from v1
    (68, 0, 1), // ConsumerGroupHeartbeat (KIP-848): client-generated member ids from v1
    (69, 0, 1), // ConsumerGroupDescribe: member type from v1
];

/// The served ranges as ApiVersions response entries.
pub fn api_version_entries() -> Vec<ApiVersion> {
    SUPPORTED_APIS
        .iter()
        .map(|&(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = key;
            v.min_version = min;
            v.max_version = max;
            v
        })
        .collect()
}

/// The served version range of `api_key`, if it is served at all.
pub fn supported_range(api_key: i16) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(_, min, max)| (min, max))
}

/// Whether `(api_key, api_version)` is served.
pub fn is_supported(api_key: i16, api_version: i16) -> bool {
    supported_range(api_key).is_some_and(|(min, max)| (min..=max).contains(&api_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_within_the_codec() {
        use kafka_protocol::messages::ApiKey;
        for pair in SUPPORTED_APIS.windows(2) {
            assert!(pair[0].0 < pair[1].0);
        }
        for &(key, min, max) in SUPPORTED_APIS {
            let range = ApiKey::try_from(key).unwrap().valid_versions();
            assert!(min <= max && min >= range.min && max <= range.max, "{key}");
        }
    }
}
