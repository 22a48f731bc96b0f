//! Reading a log: batch scanning from disk, fetch reads (tail cache first,
//! then the segment through its index), and timestamp lookups.

use std::io;

use bytes::Bytes;

use super::format::{self, BatchError, BatchHeader};
use super::log::SharedLog;
use super::StorageError;
use crate::shard::io::{DmaFile, ReadBuf};

/// Read-ahead of the scanner: large enough to amortise a read over many
/// batches, small enough to stay a fraction of a shard's DMA memory.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// Record bytes on their way to a consumer. `Disk` is the DMA buffer the read
/// landed in (no copy), `Mem` is a shared tail-cache buffer (no copy).
pub enum Chunk {
    Disk(ReadBuf),
    Mem(Bytes),
}

impl Chunk {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Disk(b) => b,
            Chunk::Mem(b) => b,
        }
    }
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct FetchData {
    pub chunks: Vec<Chunk>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// The offset the read was bounded by: the high watermark for a
    /// consumer, the log end for a follower.
    pub read_end: i64,
}

impl FetchData {
    pub fn bytes(&self) -> usize {
        self.chunks.iter().map(Chunk::len).sum()
    }
}

/// Walks batches from a position, reading ahead in large chunks.
pub struct Scanner<'a> {
    file: &'a DmaFile,
    pub pos: u64,
    end: u64,
    buf: Option<(u64, ReadBuf)>,
    verify_crc: bool,
}

pub enum Scanned {
    Batch {
        pos: u64,
        header: BatchHeader,
        bytes: ReadBuf,
    },
    /// Bytes at `pos` are not a valid batch (torn, corrupt or padding).
    Invalid { pos: u64, error: BatchError },
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a DmaFile, pos: u64, end: u64, verify_crc: bool) -> Self {
        Self {
            file,
            pos,
            end,
            buf: None,
            verify_crc,
        }
    }

    async fn window(&mut self, len: usize) -> io::Result<ReadBuf> {
        if let Some((start, b)) = &self.buf {
            let off = (self.pos - start) as usize;
            if off + len <= b.len() {
                return Ok(b.slice(off, len).expect("in range"));
            }
        }
        let want = len
            .max(SCAN_CHUNK_BYTES)
            .min((self.end - self.pos) as usize);
        let b = self.file.read_at(self.pos, want).await?;
        self.buf = Some((self.pos, b.clone()));
        Ok(b.slice(0, len.min(b.len())).expect("in range"))
    }

    pub async fn next(&mut self) -> io::Result<Option<Scanned>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let left = (self.end - self.pos) as usize;
        let pos = self.pos;
        let head = self.window(format::BATCH_HEADER_BYTES.min(left)).await?;
        let header = match format::parse_header(&head) {
            Ok(h) => h,
            Err(error) => return Ok(Some(Scanned::Invalid { pos, error })),
        };
        if header.size_bytes > left {
            let error = BatchError::Truncated {
                have: left,
                need: header.size_bytes,
            };
            return Ok(Some(Scanned::Invalid { pos, error }));
        }
        let bytes = self.window(header.size_bytes).await?;
        if bytes.len() < header.size_bytes {
            let error = BatchError::Truncated {
                have: bytes.len(),
                need: header.size_bytes,
            };
            return Ok(Some(Scanned::Invalid { pos, error }));
        }
        if self.verify_crc {
            if let Err(error) = format::validate_batch(&bytes) {
                return Ok(Some(Scanned::Invalid { pos, error }));
            }
        }
        self.pos += header.size_bytes as u64;
        Ok(Some(Scanned::Batch { pos, header, bytes }))
    }
}

/// Everything a fetch needs from one partition, starting at `offset`, at most
/// `max_bytes` (but always the whole first batch, as Kafka does).
pub async fn read(
    log: &SharedLog,
    offset: i64,
    max_bytes: usize,
) -> Result<FetchData, StorageError> {
    read_limited(log, offset, max_bytes, true, false).await
}

/// `read` that, without `min_one_batch`, returns nothing rather than a first
/// batch larger than `max_bytes`: Kafka lets only the first batch of a fetch
/// response exceed the client's limits (KIP-74), so the consumer always
/// progresses and a response never grows past what it asked for otherwise.
pub async fn read_limited(
    log: &SharedLog,
    offset: i64,
    max_bytes: usize,
    min_one_batch: bool,
    to_log_end: bool,
) -> Result<FetchData, StorageError> {
    // `end` bounds the read: the high watermark, or for a follower the
    // written log end. `hw` is what the answer reports.
    let (end, hw, start) = {
        let l = log.borrow();
        let end = if to_log_end {
            l.written_end
        } else {
            l.high_watermark
        };
        (end, l.high_watermark, l.log_start_offset)
    };
    let empty = |hw, start| FetchData {
        chunks: Vec::new(),
        high_watermark: hw,
        log_start_offset: start,
        read_end: end,
    };
    {
        let l = log.borrow();
        if offset < start || offset > l.next_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start,
                end: l.next_offset,
            });
        }
    }
    if offset >= end {
        return Ok(empty(hw, start));
    }
    // (Nothing from the cache when its first entry reaches past `end`: the
    // disk has the batches below it.)
    let cached = log
        .borrow()
        .tail
        .read(offset, end, max_bytes)
        .filter(|c| !c.is_empty());
    if let Some(cached) = cached {
        if !min_one_batch && cached.first().is_some_and(|b| b.len() > max_bytes) {
            return Ok(empty(hw, start));
        }
        return Ok(FetchData {
            chunks: cached.into_iter().map(Chunk::Mem).collect(),
            high_watermark: hw,
            log_start_offset: start,
            read_end: end,
        });
    }
    ensure_index_loaded(log, offset);
    let (file, pos, seg_size) = {
        let l = log.borrow();
        let Some(seg) = l.segment_for(offset) else {
            return Ok(empty(hw, start));
        };
        (
            seg.reader.clone(),
            seg.index.position_for(offset),
            seg.size_bytes,
        )
    };
    let mut scan = Scanner::new(&file, pos, seg_size, false);
    let mut first: Option<(u64, usize)> = None;
    while let Some(item) = scan.next().await? {
        match item {
            Scanned::Batch { pos, header, .. } => {
                if header.next_offset() <= offset {
                    continue;
                }
                // Written but not yet committed: not for consumers.
                if header.base_offset >= end {
                    break;
                }
                match &mut first {
                    None if !min_one_batch && header.size_bytes > max_bytes => break,
                    None => first = Some((pos, header.size_bytes)),
                    Some((_, len)) if *len + header.size_bytes <= max_bytes => {
                        *len += header.size_bytes
                    }
                    Some(_) => break,
                }
            }
            Scanned::Invalid { pos, error } => {
                return Err(StorageError::Io(io::Error::other(format!(
                    "invalid batch at {pos}: {error}"
                ))));
            }
        }
    }
    let chunks = match first {
        Some((pos, len)) => vec![Chunk::Disk(file.read_at(pos, len).await?)],
        None => Vec::new(),
    };
    Ok(FetchData {
        chunks,
        high_watermark: hw,
        log_start_offset: start,
        read_end: end,
    })
}

/// Older segments load their index files on first use.
fn ensure_index_loaded(log: &SharedLog, offset: i64) {
    let mut l = log.borrow_mut();
    let Some((_, seg)) = l.segments.range_mut(..=offset).next_back() else {
        return;
    };
    if !seg.index_loaded && !seg.load_indexes() {
        // Without an index a read scans the segment from its start: slower,
        // still correct. Recovery rebuilds missing indexes at the next start.
        seg.index_loaded = true;
    }
}

/// First record with timestamp >= `ts`: (timestamp, offset), as ListOffsets
/// answers it; `None` if every record is older.
/// The record with the largest timestamp, (timestamp, offset), as
/// ListOffsets' MAX_TIMESTAMP (KIP-734) answers it: the first record holding
/// the largest timestamp of the log. `None` for an empty log.
pub async fn offset_of_max_timestamp(log: &SharedLog) -> Result<Option<(i64, i64)>, StorageError> {
    let bases: Vec<i64> = log.borrow().segments.keys().copied().collect();
    let mut best: Option<(i64, i64)> = None; // (max timestamp, segment base)
    for base in bases {
        ensure_index_loaded(log, base);
        let l = log.borrow();
        let Some(seg) = l.segments.get(&base) else {
            continue;
        };
        if seg.size_bytes > 0 && best.is_none_or(|(ts, _)| seg.index.max_timestamp_ms > ts) {
            best = Some((seg.index.max_timestamp_ms, base));
        }
    }
    let Some((max_ts, base)) = best else {
        return Ok(None);
    };
    let (file, pos, end) = {
        let l = log.borrow();
        let seg = &l.segments[&base];
        let at = seg.index.offset_of_max_timestamp();
        (
            seg.reader.clone(),
            seg.index.position_for(at),
            seg.size_bytes,
        )
    };
    // The index points at (or before) the batch; older index files may
    // only narrow it to the segment, so scan from there.
    for start in [pos, 0] {
        let mut scan = Scanner::new(&file, start, end, false);
        while let Some(Scanned::Batch { header, bytes, .. }) = scan.next().await? {
            if header.max_timestamp != max_ts {
                continue;
            }
            if header.attributes & format::ATTR_LOG_APPEND_TIME != 0 {
                return Ok(Some((max_ts, header.base_offset)));
            }
            let mut b = Bytes::copy_from_slice(&bytes);
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut b)
                .map_err(|e| StorageError::Io(io::Error::other(e.to_string())))?;
            if let Some(r) = set.records.iter().find(|r| r.timestamp == max_ts) {
                return Ok(Some((max_ts, r.offset)));
            }
        }
    }
    Ok(None)
}

pub async fn offset_for_timestamp(
    log: &SharedLog,
    ts: i64,
) -> Result<Option<(i64, i64)>, StorageError> {
    let bases: Vec<i64> = log.borrow().segments.keys().copied().collect();
    for base in bases {
        ensure_index_loaded(log, base);
        let (file, pos, end) = {
            let l = log.borrow();
            let Some(seg) = l.segments.get(&base) else {
                continue;
            };
            if seg.index.max_timestamp_ms < ts {
                continue;
            }
            let from = seg.index.time_scan_start(ts).max(l.log_start_offset);
            (
                seg.reader.clone(),
                seg.index.position_for(from),
                seg.size_bytes,
            )
        };
        let mut scan = Scanner::new(&file, pos, end, false);
        while let Some(item) = scan.next().await? {
            let Scanned::Batch { header, bytes, .. } = item else {
                break;
            };
            if header.max_timestamp < ts {
                continue;
            }
            if header.attributes & format::ATTR_LOG_APPEND_TIME != 0 {
                return Ok(Some((header.max_timestamp, header.base_offset)));
            }
            let mut b = Bytes::copy_from_slice(&bytes);
            let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut b)
                .map_err(|e| StorageError::Io(io::Error::other(e.to_string())))?;
            if let Some(r) = set.records.iter().find(|r| r.timestamp >= ts) {
                return Ok(Some((r.timestamp, r.offset)));
            }
        }
    }
    Ok(None)
}
