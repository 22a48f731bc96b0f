//! Hostile or broken bytes on the wire: the broker must drop the offending
//! connection, keep serving others, and answer unknown ApiVersions versions
//! the way Kafka does (so clients can downgrade).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use common::Broker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Waits until the peer closes (EOF or reset). Any bytes sent before closing
/// are ignored; the point is that the connection does not stay open.
fn assert_closed(mut s: TcpStream, what: &str) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{what}: unexpected read error {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "{what}: broker kept the connection open"
        );
    }
}

fn try_read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    assert!(
        (0..16 << 20).contains(&len),
        "implausible response size {len}"
    );
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    try_read_frame(s).expect("reading response")
}

/// A well-formed ApiVersions v3 exchange (encoded with kafka-protocol),
/// proving the broker survived and still serves new connections.
fn assert_serves(broker: &mut Broker) {
    let version = 3;
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("sluice-tests"))
        .with_client_software_version(StrBytes::from_static_str("0.1"));
    let frame = common::request_frame(version, 7, &req);

    let exchange = TcpStream::connect(broker.addr()).and_then(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(&frame)?;
        try_read_frame(&mut s)
    });
    let resp = match exchange {
        Ok(r) => r,
        Err(e) => {
            // A crashing broker can still accept for a moment while it dies;
            // tell that apart from a live broker refusing to talk.
            std::thread::sleep(Duration::from_millis(500));
            assert!(
                broker.is_running(),
                "the broker process died (see its log below)"
            );
            panic!("broker alive but the ApiVersions exchange failed: {e}");
        }
    };
    let mut resp = bytes::Bytes::from(resp);
    let rh = ResponseHeader::decode(
        &mut resp,
        ApiKey::ApiVersions.response_header_version(version),
    )
    .unwrap();
    assert_eq!(rh.correlation_id, 7);
    let r = ApiVersionsResponse::decode(&mut resp, version).unwrap();
    assert_eq!(r.error_code, 0, "ApiVersions v3 error");
    assert!(
        r.api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16),
        "no Produce in {r:?}"
    );
}

#[test]
fn negative_size_closes_connection() {
    let mut broker = Broker::start(&[]);
    let mut s = connect(broker.addr());
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    s.write_all(b"whatever follows").unwrap();
    assert_closed(s, "negative size");
    assert_serves(&mut broker);
}

#[test]
fn garbage_header_closes_connection() {
    let mut broker = Broker::start(&[]);
    let mut s = connect(broker.addr());
    // Well-sized frame whose header names no existing API (key 0x7abc).
    let junk: Vec<u8> = [0x7a, 0xbc, 0x12, 0x34]
        .into_iter()
        .chain((0..28).map(|i| (i * 37) as u8))
        .collect();
    s.write_all(&(junk.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&junk).unwrap();
    assert_closed(s, "garbage header");

    // A known API with a body that cannot be decoded (Metadata v9 whose
    // compact array length claims billions of topics).
    let mut s = connect(broker.addr());
    let mut f = vec![0, 3, 0, 9, 0, 0, 0, 1, 0, 1, b'x', 0];
    f.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    s.write_all(&(f.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&f).unwrap();
    assert_closed(s, "undecodable body");

    // A client that vanishes mid-frame must not upset anything either.
    let mut s = connect(broker.addr());
    s.write_all(&100i32.to_be_bytes()).unwrap();
    s.write_all(&[0, 18, 0]).unwrap();
    drop(s);

    assert_serves(&mut broker);
}

#[test]
fn oversized_request_is_rejected_without_reading_it() {
    let mut broker = Broker::start(&["socket.request.max.bytes=1048576"]);
    let mut s = connect(broker.addr());
    // Only the 2 MiB size prefix: a broker that tried to buffer the body
    // would wait for it and never close.
    s.write_all(&(2i32 << 20).to_be_bytes()).unwrap();
    assert_closed(s, "2 MiB size prefix over socket.request.max.bytes");
    assert_serves(&mut broker);
}

#[test]
fn unknown_api_versions_version_gets_unsupported_version() {
    let broker = Broker::start(&[]);
    let mut s = connect(broker.addr());
    // ApiVersions (18) version 99, correlation id 42, laid out the way a
    // future client would send it (flexible header v2 + v3-style body).
    let mut req = vec![0, 18, 0, 99, 0, 0, 0, 42];
    req.extend_from_slice(&[0, 4]);
    req.extend_from_slice(b"test");
    req.push(0); // header tagged fields
    req.extend_from_slice(b"\x0csluice-test\x040.1\x00"); // compact strings + tags
    s.write_all(&(req.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&req).unwrap();

    // Kafka answers with a v0 response body: error_code, api_keys array.
    let body = read_frame(&mut s);
    let mut b = &body[..];
    assert_eq!(b.get_i32(), 42, "correlation id");
    assert_eq!(b.get_i16(), 35, "error code must be UNSUPPORTED_VERSION");
    let n = b.get_i32();
    assert!(
        n > 0,
        "the error response must still list supported versions"
    );
    assert_eq!(
        b.remaining(),
        n as usize * 6,
        "v0 layout: {n} x (key, min, max) and nothing else"
    );
    let mut found = false;
    for _ in 0..n {
        let (key, min, max) = (b.get_i16(), b.get_i16(), b.get_i16());
        assert!(min <= max, "api {key}: min {min} > max {max}");
        if key == ApiKey::ApiVersions as i16 {
            found = true;
            assert_eq!(min, 0);
            assert!(max >= 3, "ApiVersions max version {max}");
        }
    }
    assert!(found, "ApiVersions itself missing from the list");
    // The connection stays usable: librdkafka retries on it with a version
    // from the list. ApiVersions v0: header v1, empty body.
    let mut req = vec![0, 18, 0, 0, 0, 0, 0, 43, 0, 4];
    req.extend_from_slice(b"test");
    s.write_all(&(req.len() as i32).to_be_bytes()).unwrap();
    s.write_all(&req).unwrap();
    let body = read_frame(&mut s);
    let mut b = &body[..];
    assert_eq!(b.get_i32(), 43, "correlation id of the retry");
    assert_eq!(b.get_i16(), 0, "ApiVersions v0 retry error code");
}

/// An idle connection is closed after `connections.max.idle.ms`; a client
/// that sends a size prefix (or part of one, or part of a body) and then
/// nothing is cut off after `sluice.request.read.timeout.ms` instead of
/// holding its connection forever; a client that keeps talking stays.
#[test]
fn idle_and_stalled_connections_are_closed() {
    let mut broker = Broker::start(&[
        "connections.max.idle.ms=1000",
        "sluice.request.read.timeout.ms=500",
    ]);
    let idle = connect(broker.addr());
    let mut prefix_only = connect(broker.addr());
    prefix_only.write_all(&64i32.to_be_bytes()).unwrap();
    let mut half_prefix = connect(broker.addr());
    half_prefix.write_all(&[0, 0]).unwrap();
    let mut half_body = connect(broker.addr());
    half_body.write_all(&64i32.to_be_bytes()).unwrap();
    half_body.write_all(&[0, 18, 0, 3, 0, 0]).unwrap();
    // Meanwhile a live client keeps using its connection for longer than
    // the idle limit.
    let mut live = connect(broker.addr());
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2500) {
        let mut f = Vec::new();
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::ApiVersions as i16)
            .with_request_api_version(3)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("live")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, ApiKey::ApiVersions.request_header_version(3))
            .unwrap();
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("t"))
            .with_client_software_version(StrBytes::from_static_str("1"))
            .encode(&mut body, 3)
            .unwrap();
        f.extend_from_slice(&(body.len() as i32).to_be_bytes());
        f.extend_from_slice(&body);
        live.write_all(&f).unwrap();
        read_frame(&mut live);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_closed(idle, "idle connection");
    assert_closed(prefix_only, "size prefix only");
    assert_closed(half_prefix, "half a size prefix");
    assert_closed(half_body, "half a body");
    assert_serves(&mut broker);
    let log = broker.logs();
    assert!(
        log.contains("connections.max.idle.ms"),
        "idle close not logged:\n{log}"
    );
    assert!(
        log.contains("sluice.request.read.timeout.ms"),
        "stall close not logged:\n{log}"
    );
}

/// A batch over `message.max.bytes` gets MESSAGE_TOO_LARGE, nothing of it is
/// written, and the same connection goes on producing.
#[test]
fn an_oversized_batch_is_refused_and_the_connection_stays_usable() {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let broker = Broker::start(&["message.max.bytes=10000"]);
    let topic = common::unique_topic("too-large");
    common::rdk::create_topic(&broker.bootstrap(), &topic, 1);
    let batch = |value_bytes: usize| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: now,
            key: None,
            value: Some(bytes::Bytes::from(vec![b'x'; value_bytes])),
            headers: Default::default(),
        };
        let mut b = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut b, &[r], &opts).unwrap();
        b.freeze()
    };
    let produce = |records: bytes::Bytes| {
        ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.clone())))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(records))])])
    };
    let mut s = connect(broker.addr());
    let r: ProduceResponse = common::call(&mut s, 9, &produce(batch(20_000)));
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 10, "MESSAGE_TOO_LARGE: {p:?}");
    let r: ProduceResponse = common::call(&mut s, 9, &produce(batch(100)));
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(
        (p.error_code, p.base_offset),
        (0, 0),
        "nothing of the refused batch was written"
    );
}

/// A log dir that is a file stops start-up with a message naming it.
#[test]
fn a_log_dir_that_is_a_file_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("data");
    std::fs::write(&file, b"not a directory").unwrap();
    let out = common::run_with_timeout(
        std::process::Command::new(common::sluice_bin())
            .arg("broker")
            .arg("--listeners")
            .arg(format!("PLAINTEXT://127.0.0.1:{}", common::free_port()))
            .arg("--log-dirs")
            .arg(&file)
            .arg("--cores")
            .arg("1"),
        None,
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started on a file:\n{err}");
    assert!(
        err.contains(&file.display().to_string()),
        "the message should name {}:\n{err}",
        file.display()
    );
}

/// `queued.max.request.bytes` (KIP-72): once the shard's request memory is
/// used up, no connection of that shard has another request read until a
/// request gives its bytes back. A fetch waiting for data holds its (small)
/// share; with a budget of 1 byte, a second connection's ApiVersions is read
/// only once that fetch is answered. With the default budget it is answered
/// while the fetch still waits.
#[test]
fn a_used_up_request_memory_holds_back_reading_until_bytes_come_back() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    const FETCH_WAIT_MS: i32 = 4000;
    for (limit, held_back) in [(Some("queued.max.request.bytes=1"), true), (None, false)] {
        // One shard: both connections share its budget.
        let broker = Broker::start_with_cores(1, limit.as_slice());
        let topic = common::unique_topic("request-memory");
        common::rdk::create_topic(&broker.bootstrap(), &topic, 1);
        let fetch = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(FETCH_WAIT_MS)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        let mut waiting = connect(broker.addr());
        waiting
            .write_all(&common::request_frame(4, 1, &fetch))
            .unwrap();
        // Time for the broker to read the fetch (it takes microseconds).
        std::thread::sleep(Duration::from_millis(1000));
        let mut other = connect(broker.addr());
        let versions = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("sluice-tests"))
            .with_client_software_version(StrBytes::from_static_str("0.1"));
        other
            .write_all(&common::request_frame(3, 2, &versions))
            .unwrap();
        let _ = read_frame(&mut other);
        // Was the fetch answered before the ApiVersions (it waits 4 s for
        // records that never come)?
        waiting.set_nonblocking(true).unwrap();
        let mut first = [0u8; 4];
        let fetch_answered = match waiting.read(&mut first) {
            Ok(n) => n > 0,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("reading the fetch response: {e}"),
        };
        assert_eq!(
            fetch_answered,
            held_back,
            "budget {limit:?}: the second connection's request {} wait for the fetch",
            if held_back { "must" } else { "must not" }
        );
        // Both connections still work: the fetch answers in time.
        waiting.set_nonblocking(false).unwrap();
        if !fetch_answered {
            let _ = read_frame(&mut waiting);
        }
        assert_serves(&mut { broker });
    }
}
