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
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::CreatePartitions,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
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

/// Where we serve less than the codec knows: OffsetCommit v10 and
/// OffsetFetch v10 name topics by id only, which the request codec lacks.
const MAX_VERSION: &[(ApiKey, i16)] = &[(ApiKey::OffsetCommit, 9), (ApiKey::OffsetFetch, 9)];

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
