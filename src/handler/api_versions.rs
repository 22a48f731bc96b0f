use std::collections::VecDeque;

use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::ResponseError;

use super::Reply;
use crate::protocol::versions::{supported_range, SUPPORTED};

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|api| {
            let r = supported_range(*api).expect("listed");
            ApiVersion::default()
                .with_api_key(*api as i16)
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect()
}

pub fn handle() -> ResponseKind {
    ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(api_list()))
}

/// KIP-511: a client asking in a version we do not know gets a v0 answer with
/// UNSUPPORTED_VERSION and our ranges, and retries with a version we know.
pub fn unsupported_version() -> Reply {
    let body = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    Reply {
        body: ResponseKind::ApiVersions(body),
        records: VecDeque::new(),
        version: Some(0),
    }
}
