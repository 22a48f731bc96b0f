//! Turning one frame (without its size prefix) into a header and a body.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::protocol::StrBytes;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("frame too short ({0} bytes) for a request header")]
    TooShort(usize),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("malformed request header: {0}")]
    BadHeader(String),
    #[error("malformed {api:?} v{version} request: {why}")]
    BadBody {
        api: ApiKey,
        version: i16,
        why: String,
    },
}

/// What the header says before the body is decoded; enough to answer
/// UNSUPPORTED_VERSION without understanding the body.
pub struct Parsed {
    pub header: RequestHeader,
    pub api: ApiKey,
    pub body: Bytes,
}

pub fn parse_header(mut frame: Bytes) -> Result<Parsed, RequestError> {
    if frame.len() < 8 {
        return Err(RequestError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| RequestError::UnknownApi(key))?;
    // A version we do not know still has a decodable header for ApiVersions
    // (KIP-511: clients send their newest; we answer in v0). Kafka reads it as
    // the flexible header v2, as for every ApiVersions version >= 3.
    let header_version = if api == ApiKey::ApiVersions && version > api.valid_versions().max {
        2
    } else {
        api.request_header_version(
            version.clamp(api.valid_versions().min, api.valid_versions().max),
        )
    };
    let mut header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| RequestError::BadHeader(e.to_string()))?;
    // Decoded strings are slices of the frame: owned copies here, so a
    // handler holding the header does not keep a whole (1 MB) produce frame
    // alive after it has stored the records.
    header.client_id = header
        .client_id
        .map(|c| StrBytes::from_string(c.as_str().to_owned()));
    for v in header.unknown_tagged_fields.values_mut() {
        *v = Bytes::copy_from_slice(v);
    }
    Ok(Parsed {
        header,
        api,
        body: frame,
    })
}

pub fn decode_body(p: &mut Parsed) -> Result<RequestKind, RequestError> {
    let version = p.header.request_api_version;
    RequestKind::decode(p.api, &mut p.body, version).map_err(|e| RequestError::BadBody {
        api: p.api,
        version,
        why: e.to_string(),
    })
}
