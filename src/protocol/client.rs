//! The client side of the wire format, shared by the blocking client and the
//! bench load generator: request frames out, response headers and the
//! ApiVersions fallback in. No I/O here; callers move the bytes.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;

/// Append one size-prefixed request frame (header, then `req`) to `buf`.
/// On error `buf` is left as it was.
pub fn encode_request<R: Encodable>(
    buf: &mut BytesMut,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
    req: &R,
) -> anyhow::Result<()> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let start = buf.len();
    buf.put_i32(0); // size placeholder
    let encoded = header
        .encode(buf, api.request_header_version(version))
        .and_then(|_| req.encode(buf, version));
    if let Err(e) = encoded {
        buf.truncate(start);
        return Err(e);
    }
    let size = (buf.len() - start - 4) as i32;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Why a response header was not the one expected.
#[derive(Debug)]
pub enum HeaderError {
    /// The header did not decode.
    Decode(anyhow::Error),
    /// A well-formed header for another request.
    CorrelationId { expected: i32, got: i32 },
}

/// Strip the response header from `frame` (a whole frame without its size
/// prefix) and check it answers `correlation_id`; `frame` is left holding the
/// body. ApiVersions responses always use header v0 (KIP-511), which
/// `response_header_version` already says.
pub fn decode_response_header(
    frame: &mut Bytes,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
) -> Result<(), HeaderError> {
    let header = ResponseHeader::decode(frame, api.response_header_version(version))
        .map_err(HeaderError::Decode)?;
    if header.correlation_id != correlation_id {
        return Err(HeaderError::CorrelationId {
            expected: correlation_id,
            got: header.correlation_id,
        });
    }
    Ok(())
}

/// The ApiVersions version to try next when the broker rejected `version`,
/// or `None` when `body` (an ApiVersions response body to a request at
/// `version`) is to be decoded at `version` as usual. The broker answers an
/// unsupported ApiVersions version in v0 format, listing the ApiVersions range
/// it does support.
pub fn api_versions_retry(body: &mut Bytes, version: i16) -> anyhow::Result<Option<i16>> {
    let code = body.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    if code != Some(ResponseError::UnsupportedVersion.code()) || version == 0 {
        return Ok(None);
    }
    let resp = ApiVersionsResponse::decode(body, 0)?;
    let max = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .map_or(0, |k| k.max_version);
    Ok(Some(max.min(version - 1).max(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::ApiVersionsRequest;

    #[test]
    fn request_frame_is_size_prefixed_and_appended() {
        let mut buf = BytesMut::from(&b"xy"[..]);
        let req = ApiVersionsRequest::default();
        let id = StrBytes::from_static_str("c");
        encode_request(&mut buf, ApiKey::ApiVersions, 3, 7, &id, &req).unwrap();
        assert_eq!(&buf[..2], b"xy");
        let size = i32::from_be_bytes(buf[2..6].try_into().unwrap()) as usize;
        assert_eq!(size, buf.len() - 6);
        let parsed = super::super::request::parse_header(buf.split_off(6).freeze()).unwrap();
        assert_eq!(parsed.api, ApiKey::ApiVersions);
        assert_eq!(parsed.header.correlation_id, 7);
        assert_eq!(parsed.header.request_api_version, 3);
    }

    #[test]
    fn response_header_checks_the_correlation_id() {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(5)
            .encode(&mut buf, 0)
            .unwrap();
        buf.put_slice(b"body");
        let frame = buf.freeze();
        let mut ok = frame.clone();
        decode_response_header(&mut ok, ApiKey::ApiVersions, 3, 5).unwrap();
        assert_eq!(&ok[..], b"body");
        let mut bad = frame;
        assert!(matches!(
            decode_response_header(&mut bad, ApiKey::ApiVersions, 3, 6),
            Err(HeaderError::CorrelationId {
                expected: 6,
                got: 5
            })
        ));
    }

    fn rejection(api_versions_max: Option<i16>) -> Bytes {
        let keys = api_versions_max
            .map(|max| {
                ApiVersion::default()
                    .with_api_key(ApiKey::ApiVersions as i16)
                    .with_max_version(max)
            })
            .into_iter()
            .collect();
        let mut buf = BytesMut::new();
        ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(keys)
            .encode(&mut buf, 0)
            .unwrap();
        buf.freeze()
    }

    #[test]
    fn api_versions_retry_steps_down_only_when_rejected() {
        let mut ok = Bytes::from_static(&[0, 0]);
        assert_eq!(api_versions_retry(&mut ok, 3).unwrap(), None);
        let retry = |body: Bytes, v| api_versions_retry(&mut body.clone(), v).unwrap();
        assert_eq!(retry(rejection(Some(2)), 3), Some(2));
        assert_eq!(retry(rejection(Some(9)), 3), Some(2));
        assert_eq!(retry(rejection(None), 3), Some(0));
        assert_eq!(retry(rejection(Some(2)), 0), None);
    }
}
