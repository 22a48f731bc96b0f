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
        log.borrow_mut().tail.drop_read_ahead_at(offset);
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
    let (file, index_pos, seg_size, slack, seg_base, ahead, generation) = {
        let mut l = log.borrow_mut();
        let generation = l.tail.generation();
        let slack = l.config.index_interval_bytes as usize;
        let Some(seg) = l.segment_for(offset) else {
            return Ok(empty(hw, start));
        };
        let (file, pos, size, base) = (
            seg.reader.clone(),
            seg.index.position_for(offset),
            seg.size_bytes,
            seg.base_offset,
        );
        let ahead = l.tail.take_read_ahead(base, offset);
        (file, pos, size, slack, base, ahead, generation)
    };
    // A sequential reader's next bytes may already be read (or on their way).
    let (pos, prefetched) = match ahead {
        Some(mut ahead) => match (&mut ahead.read).await {
            Ok(buf) => (ahead.pos, Some(buf)),
            Err(_) => (index_pos, None),
        },
        None => (index_pos, None),
    };
    let (chunk, next) = read_batches(
        &file,
        pos,
        seg_size,
        Want {
            offset,
            end,
            max_bytes,
            index_slack: slack,
            min_one_batch,
        },
        prefetched,
    )
    .await?;
    // Read the next window now, while this answer travels: the reader's next
    // fetch (if it is catching up, not at the head) finds it in memory.
    if let Some((next_pos, next_offset)) = next {
        if next_offset < end && next_pos < seg_size {
            // It starts at a batch: no index slack.
            let len = read_window(max_bytes, 0).min((seg_size - next_pos) as usize);
            let reader = file.clone();
            log.borrow_mut().tail.read_ahead_if_current(
                generation,
                seg_base,
                next_offset,
                next_pos,
                len,
                move || crate::shard::spawn(async move { reader.read_at(next_pos, len).await }),
            );
        }
    }
    Ok(FetchData {
        chunks: chunk.into_iter().collect(),
        high_watermark: hw,
        log_start_offset: start,
        read_end: end,
    })
}

/// How much one fetch read takes: the answer's bytes, the distance an index
/// entry may lie behind the wanted batch, and a header.
fn read_window(max_bytes: usize, index_slack: usize) -> usize {
    max_bytes
        .saturating_add(index_slack)
        .saturating_add(format::BATCH_HEADER_BYTES)
}

/// What a fetch asks of one partition.
#[derive(Clone, Copy)]
struct Want {
    offset: i64,
    end: i64,
    max_bytes: usize,
    index_slack: usize,
    min_one_batch: bool,
}

/// The whole batches from the one holding `offset` (below `end`, at most
/// `max_bytes` unless the first is larger and `min_one_batch`), read from
/// the segment once: one read from the indexed position `pos` (at most about
/// `index_slack` bytes before the wanted batch) through `max_bytes` past it,
/// batch boundaries found in memory, and the answer a slice of that buffer.
/// Only a first batch larger than the read gets a read of its own.
/// Also where the answer ends: the position of the next batch and its offset.
async fn read_batches(
    file: &DmaFile,
    mut pos: u64,
    seg_size: u64,
    want: Want,
    mut prefetched: Option<ReadBuf>,
) -> Result<(Option<Chunk>, Option<(u64, i64)>), StorageError> {
    let Want {
        offset,
        end,
        max_bytes,
        index_slack,
        min_one_batch,
    } = want;
    let window = read_window(max_bytes, index_slack);
    let invalid = |at: u64, error: BatchError| {
        StorageError::Io(io::Error::other(format!("invalid batch at {at}: {error}")))
    };
    loop {
        if pos >= seg_size {
            return Ok((None, None));
        }
        let buf = match prefetched.take() {
            Some(buf) => buf,
            None => {
                file.read_at(pos, window.min((seg_size - pos) as usize))
                    .await?
            }
        };
        let mut at = 0usize;
        // (start in `buf`, length) of the batches taken so far, and the
        // offset after them.
        let mut taken: Option<(usize, usize)> = None;
        let mut taken_next = offset;
        // Set when the read ended before the wanted batch's header.
        let mut read_on = false;
        loop {
            let left_in_segment = (seg_size - pos) as usize - at;
            if left_in_segment == 0 {
                break;
            }
            // (A skipped batch may end past the read: `at` beyond `buf`.)
            if buf.len().saturating_sub(at) < format::BATCH_HEADER_BYTES.min(left_in_segment) {
                read_on = taken.is_none();
                break; // the next header is past this read
            }
            let header =
                format::parse_header(&buf[at..]).map_err(|e| invalid(pos + at as u64, e))?;
            if header.size_bytes > left_in_segment {
                let error = BatchError::Truncated {
                    have: left_in_segment,
                    need: header.size_bytes,
                };
                return Err(invalid(pos + at as u64, error));
            }
            if header.next_offset() <= offset {
                at += header.size_bytes;
                continue;
            }
            // Written but not yet committed: not for consumers.
            if header.base_offset >= end {
                break;
            }
            // The index entry was further behind than the window allowed
            // for: read again from this batch, so that everything up to
            // `max_bytes` is in one read (rare: a large batch before it).
            if taken.is_none() && at > index_slack {
                read_on = true;
                break;
            }
            let whole_in_buf = at + header.size_bytes <= buf.len();
            match &mut taken {
                None if !min_one_batch && header.size_bytes > max_bytes => return Ok((None, None)),
                // The first batch is larger than the read: read it alone.
                None if !whole_in_buf => {
                    let b = file.read_at(pos + at as u64, header.size_bytes).await?;
                    if b.len() < header.size_bytes {
                        let error = BatchError::Truncated {
                            have: b.len(),
                            need: header.size_bytes,
                        };
                        return Err(invalid(pos + at as u64, error));
                    }
                    let next = (pos + (at + header.size_bytes) as u64, header.next_offset());
                    return Ok((Some(Chunk::Disk(b)), Some(next)));
                }
                None => taken = Some((at, header.size_bytes)),
                Some((_, len)) if whole_in_buf && *len + header.size_bytes <= max_bytes => {
                    *len += header.size_bytes
                }
                Some(_) => break,
            }
            taken_next = header.next_offset();
            at += header.size_bytes;
        }
        match taken {
            Some((from, len)) => {
                let next = (pos + (from + len) as u64, taken_next);
                return Ok((
                    Some(Chunk::Disk(buf.slice(from, len).expect("in range"))),
                    Some(next),
                ));
            }
            // Only batches before `offset` in this read (a sparse index
            // entry far behind): go on after them.
            None if read_on && at > 0 => pos += at as u64,
            None if read_on => {
                let error = BatchError::Truncated {
                    have: buf.len(),
                    need: format::BATCH_HEADER_BYTES,
                };
                return Err(invalid(pos, error));
            }
            None => return Ok((None, None)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch in a test segment: (pos, size, base offset, next offset).
    type Placed = (usize, usize, i64, i64);

    /// A segment of batches of `records[i]` records of `value_bytes` each,
    /// offsets from 0: its bytes and where each batch is.
    fn segment(records: &[usize], value_bytes: usize) -> (Vec<u8>, Vec<Placed>) {
        let mut out = Vec::new();
        let mut batches = Vec::new();
        let mut next = 0i64;
        for &n in records {
            let recs: Vec<_> = (0..n)
                .map(|_| (None, Some(bytes::Bytes::from(vec![b'x'; value_bytes]))))
                .collect();
            let mut b = crate::client::records::encode_batch(&recs, 1_700_000_000_000)
                .unwrap()
                .to_vec();
            format::stamp_offset_and_epoch(&mut b, next, 0);
            batches.push((out.len(), b.len(), next, next + n as i64));
            out.extend_from_slice(&b);
            next += n as i64;
        }
        (out, batches)
    }

    /// What a fetch should get, worked out batch by batch.
    fn expected(
        batches: &[Placed],
        offset: i64,
        end: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Option<(usize, usize)> {
        let mut taken: Option<(usize, usize)> = None;
        for &(pos, size, base, next) in batches {
            if next <= offset {
                continue;
            }
            if base >= end {
                break;
            }
            match &mut taken {
                None if !min_one_batch && size > max_bytes => return None,
                None => taken = Some((pos, size)),
                Some((_, len)) if *len + size <= max_bytes => *len += size,
                Some(_) => break,
            }
        }
        taken
    }

    #[test]
    fn a_fetch_reads_whole_batches_once_whatever_the_index_says() {
        // Small and large batches mixed; one larger than any window below.
        let sizes = [1, 3, 40, 2, 1, 300, 5, 1, 1, 60, 2, 7];
        let (bytes, batches) = segment(&sizes, 100);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        std::fs::write(&path, &bytes).unwrap();
        let total: i64 = sizes.iter().sum::<usize>() as i64;
        crate::shard::block_on(async move {
            let file = DmaFile::open_read(&path).await.unwrap();
            let seg_size = bytes.len() as u64;
            let mut cases = 0;
            for offset in [0, 1, 4, 44, 47, 50, 400, total - 1, total] {
                for max_bytes in [1, 200, 5_000, 40_000, 1 << 20] {
                    for (end, min_one) in [(total, true), (total, false), (350, true)] {
                        // The index entry: the batch holding `offset`, the
                        // start of the segment (sparse index), or between.
                        let holding = batches
                            .iter()
                            .find(|b| b.3 > offset)
                            .map_or(seg_size, |b| b.0 as u64);
                        for (pos, slack, ahead) in [
                            (holding, 0, false),
                            (0, 4096, false),
                            (0, 0, false),
                            (holding, 0, true),
                        ] {
                            let want_ = Want {
                                offset,
                                end,
                                max_bytes,
                                index_slack: slack,
                                min_one_batch: min_one,
                            };
                            // As a read ahead would have it: the window from
                            // the wanted batch, read before the fetch.
                            let prefetched = if ahead && pos < seg_size {
                                let len =
                                    read_window(max_bytes, slack).min((seg_size - pos) as usize);
                                Some(file.read_at(pos, len).await.unwrap())
                            } else {
                                None
                            };
                            let (chunk, next) =
                                read_batches(&file, pos, seg_size, want_, prefetched)
                                    .await
                                    .unwrap();
                            let got = chunk.map(|c| c.as_slice().to_vec());
                            let exp = expected(&batches, offset, end, max_bytes, min_one);
                            let want = exp.map(|(p, l)| bytes[p..p + l].to_vec());
                            // The answer's end: the next batch's position and offset.
                            let want_next = exp.map(|(p, l)| {
                                let last = batches.iter().find(|b| b.0 + b.1 == p + l).unwrap();
                                ((p + l) as u64, last.3)
                            });
                            assert_eq!(next, want_next, "offset {offset} max {max_bytes}");
                            assert_eq!(
                                got.as_ref().map(Vec::len),
                                want.as_ref().map(Vec::len),
                                "offset {offset} max {max_bytes} end {end} min_one {min_one} pos {pos} slack {slack}"
                            );
                            assert!(got == want);
                            cases += 1;
                        }
                    }
                }
            }
            assert_eq!(cases, 9 * 5 * 3 * 4);
        });
    }

    #[test]
    fn a_torn_tail_is_an_error_not_a_short_answer() {
        let (mut bytes, batches) = segment(&[2, 2], 50);
        bytes.truncate(bytes.len() - 10);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        std::fs::write(&path, &bytes).unwrap();
        crate::shard::block_on(async move {
            let file = DmaFile::open_read(&path).await.unwrap();
            let want = Want {
                offset: 2,
                end: 4,
                max_bytes: 1 << 20,
                index_slack: 0,
                min_one_batch: true,
            };
            let r = read_batches(&file, batches[1].0 as u64, bytes.len() as u64, want, None).await;
            assert!(
                matches!(r, Err(StorageError::Io(_))),
                "{:?}",
                r.map(|(c, _)| c.map(|c| c.len()))
            );
        });
    }
}
