//! The APIs this broker implements, and the version range of each. ApiVersions
//! advertises exactly this list.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// Every API with a real handler. The range is the codec's full range: each
/// handler serves every version the crate can encode and decode.
pub const SUPPORTED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::DescribeQuorum,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::OffsetDelete,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::InitProducerId,
];

/// Where we serve less than `ApiKey::valid_versions` says: OffsetCommit v10
/// and OffsetFetch v10 name topics by id only, which the request codec lacks;
/// InitProducerId v6 (KIP-939, two-phase commit) is in the key's range but
/// not in the request codec's.
const MAX_VERSION: &[(ApiKey, i16)] = &[
    (ApiKey::OffsetCommit, 9),
    (ApiKey::OffsetFetch, 9),
    (ApiKey::InitProducerId, 5),
];

pub fn supported_range(api: ApiKey) -> Option<VersionRange> {
    SUPPORTED.contains(&api).then(|| {
        let r = api.valid_versions();
        let max = MAX_VERSION
            .iter()
            .find(|(a, _)| *a == api)
            .map_or(r.max, |(_, m)| r.max.min(*m));
        VersionRange { min: r.min, max }
    })
}

pub fn is_supported(api: ApiKey, version: i16) -> bool {
    supported_range(api).is_some_and(|r| r.min <= version && version <= r.max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::Message;

    /// Every advertised version can be decoded (request) and encoded
    /// (response): `ApiKey::valid_versions` is not always what the codecs
    /// of the message types implement.
    #[test]
    fn advertised_versions_are_within_the_codecs() {
        macro_rules! check {
            ($($api:ident => $req:ty, $resp:ty;)*) => {
                let mut checked = Vec::new();
                $(
                    let r = supported_range(ApiKey::$api).expect(stringify!($api));
                    assert!(<$req as Message>::VERSIONS.max >= r.max && <$req as Message>::VERSIONS.min <= r.min,
                        "{}: advertised {:?}, request codec {:?}", stringify!($api), r, <$req as Message>::VERSIONS);
                    assert!(<$resp as Message>::VERSIONS.max >= r.max,
                        "{}: advertised {:?}, response codec {:?}", stringify!($api), r, <$resp as Message>::VERSIONS);
                    // And the response is wired to an encoder.
                    crate::protocol::response::encode(
                        ApiKey::$api,
                        r.max,
                        1,
                        &ResponseKind::$api(<$resp>::default()),
                        Default::default(),
                    )
                    .unwrap_or_else(|e| panic!("{}: {e}", stringify!($api)));
                    checked.push(ApiKey::$api);
                )*
                for api in SUPPORTED {
                    assert!(checked.contains(api), "{api:?} is advertised but not checked here");
                }
            };
        }
        check! {
            Produce => ProduceRequest, ProduceResponse;
            Fetch => FetchRequest, FetchResponse;
            ListOffsets => ListOffsetsRequest, ListOffsetsResponse;
            Metadata => MetadataRequest, MetadataResponse;
            OffsetForLeaderEpoch => OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
            ApiVersions => ApiVersionsRequest, ApiVersionsResponse;
            CreateTopics => CreateTopicsRequest, CreateTopicsResponse;
            DeleteTopics => DeleteTopicsRequest, DeleteTopicsResponse;
            CreatePartitions => CreatePartitionsRequest, CreatePartitionsResponse;
            ElectLeaders => ElectLeadersRequest, ElectLeadersResponse;
            AlterPartitionReassignments => AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse;
            ListPartitionReassignments => ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse;
            DescribeConfigs => DescribeConfigsRequest, DescribeConfigsResponse;
            AlterConfigs => AlterConfigsRequest, AlterConfigsResponse;
            IncrementalAlterConfigs => IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse;
            DescribeCluster => DescribeClusterRequest, DescribeClusterResponse;
            DescribeQuorum => DescribeQuorumRequest, DescribeQuorumResponse;
            FindCoordinator => FindCoordinatorRequest, FindCoordinatorResponse;
            JoinGroup => JoinGroupRequest, JoinGroupResponse;
            SyncGroup => SyncGroupRequest, SyncGroupResponse;
            Heartbeat => HeartbeatRequest, HeartbeatResponse;
            LeaveGroup => LeaveGroupRequest, LeaveGroupResponse;
            OffsetCommit => OffsetCommitRequest, OffsetCommitResponse;
            OffsetFetch => OffsetFetchRequest, OffsetFetchResponse;
            OffsetDelete => OffsetDeleteRequest, OffsetDeleteResponse;
            ListGroups => ListGroupsRequest, ListGroupsResponse;
            DescribeGroups => DescribeGroupsRequest, DescribeGroupsResponse;
            DeleteGroups => DeleteGroupsRequest, DeleteGroupsResponse;
            ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse;
            ConsumerGroupDescribe => ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse;
            InitProducerId => InitProducerIdRequest, InitProducerIdResponse;
        }
    }
}
