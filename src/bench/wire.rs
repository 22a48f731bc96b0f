//! One load-generator connection on the shard runtime: size-prefixed frames,
//! request headers, and ApiVersions negotiation. Bodies are encoded and
//! decoded by `kafka_protocol`. After the handshake the connection splits into
//! a writer and a reader so requests can be pipelined (responses come back in
//! request order on one Kafka connection).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};
use kafka_protocol::ResponseError;

use super::error::BenchError;
use crate::protocol::client::{self, HeaderError};
use crate::shard::{self, net};

/// Largest response frame we accept (a fetch is bounded by fetch.max.bytes).
const MAX_FRAME_BYTES: usize = 1 << 30;
/// Bytes asked of the socket per read; small responses arrive many at a time.
const READ_CHUNK_BYTES: usize = 256 << 10;
const API_VERSIONS_FIRST_TRY: i16 = 3;

pub struct Writer {
    half: net::WriteHalf,
    addr: SocketAddr,
    client_id: StrBytes,
    next_correlation_id: i32,
    /// Reused for every request: no allocation per request once warm.
    buf: BytesMut,
}

pub struct Reader {
    half: net::ReadHalf,
    addr: SocketAddr,
    buf: BytesMut,
}

/// API versions both sides support, highest first choice.
#[derive(Clone, Debug, Default)]
pub struct Versions(HashMap<i16, VersionRange>);

impl Versions {
    /// Highest version of `api` both sides speak, capped at `cap`.
    pub fn pick(&self, api: ApiKey, cap: i16) -> Option<i16> {
        let ours = api.valid_versions();
        let theirs = self.0.get(&(api as i16))?;
        let max = ours.max.min(theirs.max).min(cap);
        let min = ours.min.max(theirs.min);
        (min <= max).then_some(max)
    }
}

fn io_err(addr: SocketAddr, api: &'static str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Broker {
        addr: addr.to_string(),
        api,
        reason: e.to_string(),
    }
}

/// Connect, negotiate versions, split. Every step is bounded by `timeout`.
pub async fn connect(
    addr: SocketAddr,
    client_id: &str,
    timeout: Duration,
) -> Result<(Writer, Reader, Versions), BenchError> {
    let stream =
        net::Stream::connect(addr, timeout)
            .await
            .map_err(|e| BenchError::Unreachable {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
    // Latency is what we measure: never let Nagle hold a small request back.
    stream
        .set_nodelay(true)
        .map_err(|e| io_err(addr, "connect", e))?;
    let (r, w) = stream.split();
    let mut writer = Writer {
        half: w,
        addr,
        client_id: StrBytes::from_string(client_id.to_string()),
        next_correlation_id: 1,
        buf: BytesMut::with_capacity(64 << 10),
    };
    let mut reader = Reader {
        half: r,
        addr,
        buf: BytesMut::with_capacity(READ_CHUNK_BYTES),
    };
    let mut version = API_VERSIONS_FIRST_TRY.min(ApiKey::ApiVersions.valid_versions().max);
    loop {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-bench"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let corr = writer.send(ApiKey::ApiVersions, version, &req).await?;
        let frame =
            shard::timeout(timeout, reader.next_frame())
                .await
                .ok_or(BenchError::Timeout {
                    addr: addr.to_string(),
                    api: "ApiVersions",
                    timeout_ms: timeout.as_millis() as u64,
                })??;
        // ApiVersions responses always use header v0 (KIP-511).
        let mut body = check_header(frame, ApiKey::ApiVersions, version, corr, addr)?;
        if let Some(lower) = client::api_versions_retry(&mut body, version)
            .map_err(|e| io_err(addr, "ApiVersions", e))?
        {
            version = lower;
            continue;
        }
        let resp = ApiVersionsResponse::decode(&mut body, version)
            .map_err(|e| io_err(addr, "ApiVersions", e))?;
        if resp.error_code != 0 {
            return Err(io_err(addr, "ApiVersions", error_name(resp.error_code)));
        }
        let versions = resp
            .api_keys
            .iter()
            .map(|k| {
                (
                    k.api_key,
                    VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    },
                )
            })
            .collect();
        return Ok((writer, reader, Versions(versions)));
    }
}

pub fn error_name(code: i16) -> String {
    crate::client::error_name(
        ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError),
    ) + &format!(" (code {code})")
}

/// Strip and check the response header; returns the body.
pub fn check_header(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    addr: SocketAddr,
) -> Result<Bytes, BenchError> {
    client::decode_response_header(&mut frame, api, version, correlation_id).map_err(|e| {
        let reason = match e {
            HeaderError::Decode(e) => e.to_string(),
            HeaderError::CorrelationId { expected, got } => format!(
                "correlation id {got} where {expected} was expected (responses out of order)"
            ),
        };
        io_err(addr, "response header", reason)
    })?;
    Ok(frame)
}

impl Writer {
    /// Encode and write one request; returns its correlation id.
    pub async fn send<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<i32, BenchError> {
        let corr = self.encode(api, version, req)?;
        self.flush_buf().await?;
        Ok(corr)
    }

    /// Encode one request into the write buffer without writing it yet.
    pub fn encode<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &R,
    ) -> Result<i32, BenchError> {
        let corr = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        client::encode_request(&mut self.buf, api, version, corr, &self.client_id, req)
            .map_err(|e| io_err(self.addr, "encode", e))?;
        Ok(corr)
    }

    /// Write everything encoded so far.
    pub async fn flush_buf(&mut self) -> Result<(), BenchError> {
        let r = self.half.write_all(&self.buf).await;
        self.buf.clear();
        r.map_err(|e| io_err(self.addr, "write", e))
    }
}

impl Reader {
    /// The next whole frame (without its size prefix). Not bounded in time:
    /// callers wrap it in `shard::timeout` when they expect an answer.
    pub async fn next_frame(&mut self) -> Result<Bytes, BenchError> {
        loop {
            if self.buf.len() >= 4 {
                let len = i32::from_be_bytes(self.buf[..4].try_into().unwrap());
                if len < 0 || len as usize > MAX_FRAME_BYTES {
                    return Err(io_err(self.addr, "read", format!("bad frame length {len}")));
                }
                let need = 4 + len as usize;
                if self.buf.len() >= need {
                    self.buf.advance(4);
                    return Ok(self.buf.split_to(len as usize).freeze());
                }
                self.buf.reserve(need - self.buf.len());
            }
            let filled = self.buf.len();
            let room = (self.buf.capacity() - filled).max(READ_CHUNK_BYTES.min(MAX_FRAME_BYTES));
            self.buf.resize(filled + room, 0);
            let n = self.half.read(&mut self.buf[filled..]).await;
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(io_err(self.addr, "read", e));
                }
            };
            self.buf.truncate(filled + n);
            if n == 0 {
                return Err(io_err(self.addr, "read", "connection closed by the broker"));
            }
        }
    }
}
