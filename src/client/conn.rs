//! One TCP connection to one broker: framing, headers, correlation ids and
//! API version negotiation. All message bodies are encoded and decoded by
//! `kafka_protocol`; this file only moves size-prefixed frames around.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes, VersionRange};

use super::error::{check_code, io_reason, ClientError, Result};
use crate::protocol::client::{self, HeaderError};

/// Largest response frame we are willing to allocate for.
const MAX_FRAME: usize = 1 << 30;
/// The ApiVersions version tried first; older brokers make us fall back.
const API_VERSIONS_FIRST_TRY: i16 = 3;

/// A connected, version-negotiated broker connection.
pub(crate) struct Connection {
    stream: TcpStream,
    addr: String,
    client_id: StrBytes,
    timeout: Duration,
    next_correlation_id: i32,
    versions: HashMap<i16, VersionRange>,
}

impl Connection {
    /// Connects to `addr` ("host:port") and negotiates API versions.
    pub fn open(addr: &str, client_id: &str, timeout: Duration) -> Result<Self> {
        let stream = connect(addr, timeout)?;
        let mut conn = Connection {
            stream,
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            timeout,
            next_correlation_id: 1,
            versions: HashMap::new(),
        };
        conn.handshake()?;
        Ok(conn)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Highest version of `api` both sides support, never above `cap`.
    pub fn negotiate_capped(&self, api: ApiKey, cap: i16) -> Result<i16> {
        let ours = api.valid_versions();
        let ours = VersionRange {
            min: ours.min,
            max: ours.max.min(cap),
        };
        let unsupported = |detail: String| ClientError::Unsupported {
            addr: self.addr.clone(),
            api: format!("{api:?}"),
            detail,
        };
        let theirs = self
            .versions
            .get(&(api as i16))
            .ok_or_else(|| unsupported("(the API is not advertised by the broker)".into()))?;
        let both = ours.intersect(theirs);
        if both.is_empty() {
            return Err(unsupported(format!(
                "(client supports versions {ours}, broker supports {theirs})"
            )));
        }
        Ok(both.max)
    }

    /// Sends `req` at `version` and waits for its response. `extra` is added
    /// to the request timeout (used for long-polling fetches).
    pub fn send<R: Request>(
        &mut self,
        req: &R,
        version: i16,
        extra: Duration,
    ) -> Result<R::Response> {
        let api = api_key(R::KEY)?;
        let correlation_id = self.write_request(api, version, req)?;
        let mut body = self.read_response(api, version, correlation_id, extra)?;
        R::Response::decode(&mut body, version).map_err(|e| self.protocol(api, e))
    }

    /// Sends `req` without waiting for a response (Produce with acks=0).
    pub fn send_oneway<R: Request>(&mut self, req: &R, version: i16) -> Result<()> {
        let api = api_key(R::KEY)?;
        self.write_request(api, version, req).map(|_| ())
    }

    fn handshake(&mut self) -> Result<()> {
        let ours = ApiKey::ApiVersions.valid_versions();
        let mut version = API_VERSIONS_FIRST_TRY.min(ours.max);
        loop {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("sluice"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let corr = self.write_request(ApiKey::ApiVersions, version, &req)?;
            let mut body =
                self.read_response(ApiKey::ApiVersions, version, corr, Duration::ZERO)?;
            if body.len() < 2 {
                return Err(self.protocol(ApiKey::ApiVersions, "empty response"));
            }
            if let Some(lower) = client::api_versions_retry(&mut body, version)
                .map_err(|e| self.protocol(ApiKey::ApiVersions, e))?
            {
                version = lower;
                continue;
            }
            let resp = ApiVersionsResponse::decode(&mut body, version)
                .map_err(|e| self.protocol(ApiKey::ApiVersions, e))?;
            check_code(resp.error_code, None, || {
                format!("ApiVersions to broker at {}", self.addr)
            })?;
            self.versions = resp
                .api_keys
                .iter()
                .map(|k| {
                    let range = VersionRange {
                        min: k.min_version,
                        max: k.max_version,
                    };
                    (k.api_key, range)
                })
                .collect();
            return Ok(());
        }
    }

    fn write_request<R: Encodable>(&mut self, api: ApiKey, version: i16, req: &R) -> Result<i32> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1).max(1);
        let mut buf = BytesMut::with_capacity(128);
        client::encode_request(&mut buf, api, version, correlation_id, &self.client_id, req)
            .map_err(|e| self.protocol(api, format!("cannot encode request v{version}: {e}")))?;

        self.stream
            .set_write_timeout(Some(self.timeout))
            .map_err(|e| self.io(e))?;
        match self.stream.write_all(&buf) {
            Ok(()) => Ok(correlation_id),
            Err(e) if is_timeout(&e) => Err(self.timed_out(api, Duration::ZERO)),
            Err(e) => Err(self.io(e)),
        }
    }

    fn read_response(
        &mut self,
        api: ApiKey,
        version: i16,
        correlation_id: i32,
        extra: Duration,
    ) -> Result<Bytes> {
        let deadline = Instant::now() + self.timeout + extra;
        let mut size = [0u8; 4];
        self.read_exact_by(&mut size, deadline, api, extra)?;
        let size = i32::from_be_bytes(size);
        if size < 4 || size as usize > MAX_FRAME {
            return Err(self.protocol(api, format!("invalid response size {size}")));
        }
        let mut frame = vec![0u8; size as usize];
        self.read_exact_by(&mut frame, deadline, api, extra)?;
        let mut body = Bytes::from(frame);
        client::decode_response_header(&mut body, api, version, correlation_id).map_err(
            |e| match e {
                HeaderError::Decode(e) => self.protocol(api, e),
                HeaderError::CorrelationId { expected, got } => self.protocol(
                    api,
                    format!("correlation id mismatch (expected {expected}, got {got})"),
                ),
            },
        )?;
        Ok(body)
    }

    fn read_exact_by(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        api: ApiKey,
        extra: Duration,
    ) -> Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timed_out(api, extra));
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .map_err(|e| self.io(e))?;
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => {
                    return Err(ClientError::Io {
                        addr: self.addr.clone(),
                        reason: "connection closed by broker".into(),
                    })
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => return Err(self.timed_out(api, extra)),
                Err(e) => return Err(self.io(e)),
            }
        }
        Ok(())
    }

    fn io(&self, e: std::io::Error) -> ClientError {
        ClientError::Io {
            addr: self.addr.clone(),
            reason: io_reason(&e),
        }
    }

    fn timed_out(&self, api: ApiKey, extra: Duration) -> ClientError {
        ClientError::Timeout {
            addr: self.addr.clone(),
            api: format!("{api:?}"),
            timeout_ms: (self.timeout + extra).as_millis() as u64,
        }
    }

    fn protocol(&self, api: ApiKey, e: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            addr: self.addr.clone(),
            reason: format!("{api:?}: {e}"),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn api_key(key: i16) -> Result<ApiKey> {
    ApiKey::try_from(key).map_err(|_| ClientError::Other(format!("unknown API key {key}")))
}

/// Resolves `addr` and connects to the first address that accepts.
fn connect(addr: &str, timeout: Duration) -> Result<TcpStream> {
    let fail = |reason: String| ClientError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let candidates: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| fail(io_reason(&e)))?
        .collect();
    let mut last = fail("no address found".into());
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, timeout) {
            Ok(stream) => {
                // Small requests must not wait for Nagle; failure here is harmless.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = fail(io_reason(&e)),
        }
    }
    Err(last)
}
