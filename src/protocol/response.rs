//! Response encoding that keeps record bytes out of the response buffer.
//!
//! kafka-protocol encodes a `records: Option<Bytes>` field by writing its length
//! and then `put_slice(records)`. We hand it a placeholder `Bytes` of the right
//! length that points into a static all-zero region, and the encoder's buffer
//! recognises that pointer in `put_slice`: instead of copying, it closes the
//! current header segment and queues the real record chunks (DMA buffers or
//! tail-cache `Bytes`) to be written to the socket in their place. The zero
//! region is never read, so it costs address space, not memory.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;

use crate::storage::Chunk;

/// Largest record set one partition may contribute to a response.
pub const MAX_RECORDS_PER_PARTITION_BYTES: usize = 128 << 20;
static PLACEHOLDER: [u8; MAX_RECORDS_PER_PARTITION_BYTES] = [0; MAX_RECORDS_PER_PARTITION_BYTES];

/// The placeholder for `len` record bytes (see the module comment).
pub fn records_placeholder(len: usize) -> Bytes {
    assert!(len <= MAX_RECORDS_PER_PARTITION_BYTES);
    Bytes::from_static(&PLACEHOLDER[..len])
}

pub enum Segment {
    Encoded(Bytes),
    Records(Chunk),
}

/// An encoded response: header and body bytes interleaved with record chunks,
/// written to the socket in order.
pub struct Response {
    pub segments: Vec<Segment>,
    /// Record bytes carried without a copy (for the bytes-copied counter).
    pub zero_copy_bytes: usize,
}

impl Response {
    pub fn len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Encoded(b) => b.len(),
                Segment::Records(c) => c.len(),
            })
            .sum()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct SegmentedBuf {
    done: Vec<Segment>,
    current: BytesMut,
    /// Bytes in `done` (for `offset`).
    done_len: usize,
    /// Record chunk lists, in the order their placeholders will be encoded.
    pending: VecDeque<Vec<Chunk>>,
    zero_copy_bytes: usize,
}

impl SegmentedBuf {
    fn is_placeholder(src: &[u8]) -> bool {
        let r: Range<usize> = {
            let p = PLACEHOLDER.as_ptr() as usize;
            p..p + PLACEHOLDER.len()
        };
        !src.is_empty() && r.contains(&(src.as_ptr() as usize))
    }
}

// SAFETY: every method delegates to the inner `BytesMut`, which upholds the
// `BufMut` contract; `put_slice` only diverts placeholder slices.
unsafe impl BufMut for SegmentedBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }
    unsafe fn advance_mut(&mut self, cnt: usize) {
        self.current.advance_mut(cnt)
    }
    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }
    fn put_slice(&mut self, src: &[u8]) {
        if !Self::is_placeholder(src) {
            self.current.extend_from_slice(src);
            return;
        }
        let chunks = self
            .pending
            .pop_front()
            .expect("a record chunk list per placeholder");
        let total: usize = chunks.iter().map(Chunk::len).sum();
        assert_eq!(total, src.len(), "placeholder length must match its chunks");
        let head = self.current.split().freeze();
        self.done_len += head.len() + total;
        self.done.push(Segment::Encoded(head));
        self.zero_copy_bytes += total;
        self.done.extend(chunks.into_iter().map(Segment::Records));
    }
}

impl ByteBufMut for SegmentedBuf {
    fn offset(&self) -> usize {
        self.done_len + self.current.len()
    }
    fn seek(&mut self, offset: usize) {
        let local = offset
            .checked_sub(self.done_len)
            .expect("seek into a finished segment");
        self.current.seek(local)
    }
    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let start = r
            .start
            .checked_sub(self.done_len)
            .expect("range in a finished segment");
        self.current.range(start..r.end - self.done_len)
    }
}

/// Encode a size-prefixed response frame. `records` holds, in encoding order,
/// the chunk lists whose placeholders appear in `body`.
pub fn encode(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
    records: VecDeque<Vec<Chunk>>,
) -> anyhow::Result<Response> {
    let mut buf = SegmentedBuf {
        done: Vec::new(),
        current: BytesMut::with_capacity(256),
        done_len: 0,
        pending: records,
        zero_copy_bytes: 0,
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    // Placeholders count their full length, so the size is known up front.
    let size = header.compute_size(header_version)? + body.size(version)?;
    buf.current.put_i32(i32::try_from(size)?);
    header.encode(&mut buf, header_version)?;
    body.encode_into(&mut buf, version)?;
    assert!(
        buf.pending.is_empty(),
        "every record chunk list must be placed"
    );
    let tail = buf.current.split().freeze();
    let mut segments = buf.done;
    segments.push(Segment::Encoded(tail));
    let resp = Response {
        segments,
        zero_copy_bytes: buf.zero_copy_bytes,
    };
    debug_assert_eq!(resp.len(), size + 4);
    Ok(resp)
}

/// `ResponseKind::encode` only takes `BytesMut`; this dispatches to the typed
/// encoder so any `ByteBufMut` works.
trait EncodeInto {
    fn encode_into<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()>;
    fn size(&self, version: i16) -> anyhow::Result<usize>;
}

macro_rules! encode_into_impl {
    ($($v:ident),* $(,)?) => {
        impl EncodeInto for ResponseKind {
            fn encode_into<B: ByteBufMut>(&self, buf: &mut B, version: i16) -> anyhow::Result<()> {
                match self {
                    $(ResponseKind::$v(x) => x.encode(buf, version),)*
                    other => anyhow::bail!("no encoder wired for {other:?}"),
                }
            }
            fn size(&self, version: i16) -> anyhow::Result<usize> {
                match self {
                    $(ResponseKind::$v(x) => x.compute_size(version),)*
                    other => anyhow::bail!("no encoder wired for {other:?}"),
                }
            }
        }
    };
}

encode_into_impl!(
    Produce,
    Fetch,
    ListOffsets,
    Metadata,
    OffsetForLeaderEpoch,
    ApiVersions,
    CreateTopics,
    DeleteTopics,
    CreatePartitions,
    ElectLeaders,
    AlterPartitionReassignments,
    ListPartitionReassignments,
    DescribeConfigs,
    AlterConfigs,
    IncrementalAlterConfigs,
    DescribeCluster,
    DescribeQuorum,
    FindCoordinator,
    JoinGroup,
    SyncGroup,
    Heartbeat,
    LeaveGroup,
    OffsetCommit,
    OffsetFetch,
    OffsetDelete,
    ListGroups,
    DescribeGroups,
    DeleteGroups,
    ConsumerGroupHeartbeat,
    ConsumerGroupDescribe,
    InitProducerId,
);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        FetchResponse, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::protocol::{Decodable, StrBytes};

    #[test]
    fn records_are_spliced_not_copied_and_decode_back() {
        let recs = Bytes::from_static(b"pretend-these-are-record-batches");
        let part = PartitionData::default()
            .with_partition_index(3)
            .with_records(Some(records_placeholder(recs.len())));
        let topic = FetchableTopicResponse::default()
            .with_topic(StrBytes::from_static_str("t").into())
            .with_partitions(vec![part]);
        let body = ResponseKind::Fetch(FetchResponse::default().with_responses(vec![topic]));
        let chunks = VecDeque::from(vec![vec![Chunk::Mem(recs.clone())]]);
        let resp = encode(ApiKey::Fetch, 12, 77, &body, chunks).unwrap();
        assert_eq!(resp.zero_copy_bytes, recs.len());
        let mut wire = Vec::new();
        for s in &resp.segments {
            match s {
                Segment::Encoded(b) => wire.extend_from_slice(b),
                Segment::Records(c) => wire.extend_from_slice(c.as_slice()),
            }
        }
        let mut b = Bytes::from(wire);
        let size = i32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
        assert_eq!(size, b.len() - 4);
        let _ = b.split_to(4);
        let h = ResponseHeader::decode(&mut b, ApiKey::Fetch.response_header_version(12)).unwrap();
        assert_eq!(h.correlation_id, 77);
        let decoded = FetchResponse::decode(&mut b, 12).unwrap();
        assert_eq!(
            decoded.responses[0].partitions[0].records.as_ref().unwrap(),
            &recs
        );
    }
}
