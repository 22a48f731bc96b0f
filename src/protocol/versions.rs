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
];

pub fn supported_range(api: ApiKey) -> Option<VersionRange> {
    SUPPORTED.contains(&api).then(|| api.valid_versions())
}

pub fn is_supported(api: ApiKey, version: i16) -> bool {
    supported_range(api).is_some_and(|r| r.min <= version && version <= r.max)
}
