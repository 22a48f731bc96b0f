//! Consumer side of record batches: walk every record of a fetched chunk for
//! its offset, timestamp and value size, without building record structs.
//! Compressed batches are inflated first (a real consumer must do that too).

use bytes::{Buf, Bytes};
use kafka_protocol::compression::{self as codec, Decompressor};

use crate::storage::format::{parse_header, BATCH_HEADER_BYTES, LOG_OVERHEAD};

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_CONTROL: i16 = 0x20;

/// What one chunk held at or after the fetch offset.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    pub records: u64,
    pub value_bytes: u64,
    /// Offset after the last complete batch (control batches included).
    pub next_offset: Option<i64>,
}

fn varint(b: &mut &[u8]) -> Result<i64, String> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let Some((&byte, rest)) = b.split_first() else {
            return Err("truncated varint".into());
        };
        *b = rest;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    Err("varint too long".into())
}

/// Walk `records` (count of them) calling `on_record(offset_delta, timestamp_delta, value_len)`.
fn walk(mut b: &[u8], count: i32, mut on_record: impl FnMut(i64, i64, u64)) -> Result<(), String> {
    for _ in 0..count {
        let len = varint(&mut b)?;
        if len < 0 || len as usize > b.len() {
            return Err(format!("record length {len} beyond the batch"));
        }
        let (mut r, rest) = b.split_at(len as usize);
        b = rest;
        if r.is_empty() {
            return Err("empty record".into());
        }
        r = &r[1..]; // attributes
        let ts_delta = varint(&mut r)?;
        let offset_delta = varint(&mut r)?;
        let key_len = varint(&mut r)?;
        if key_len > 0 {
            if key_len as usize > r.len() {
                return Err("key beyond the record".into());
            }
            r = &r[key_len as usize..];
        }
        let value_len = varint(&mut r)?.max(0) as u64;
        on_record(offset_delta, ts_delta, value_len);
    }
    Ok(())
}

/// Scan every complete batch of `data`, skipping records below `min_offset`
/// and control batches; `on_timestamp` gets each counted record's timestamp.
pub fn scan(
    data: &Bytes,
    min_offset: i64,
    mut on_timestamp: impl FnMut(i64),
) -> Result<Scanned, String> {
    let mut out = Scanned::default();
    let mut rest = &data[..];
    while rest.len() >= LOG_OVERHEAD {
        let len = i32::from_be_bytes(rest[8..12].try_into().unwrap());
        let total = LOG_OVERHEAD + len.max(0) as usize;
        if rest.len() < total || rest.len() < BATCH_HEADER_BYTES {
            break; // cut short by max bytes: fetched again next time
        }
        let h = parse_header(rest).map_err(|e| e.to_string())?;
        let batch = &rest[..total];
        rest = &rest[total..];
        out.next_offset = Some(h.next_offset());
        if h.attributes & ATTR_CONTROL != 0 || h.next_offset() <= min_offset {
            continue;
        }
        let mut count = |offset_delta: i64, ts_delta: i64, value_len: u64| {
            if h.base_offset + offset_delta >= min_offset {
                out.records += 1;
                out.value_bytes += value_len;
                on_timestamp(h.base_timestamp + ts_delta);
            }
        };
        let records = &batch[BATCH_HEADER_BYTES..];
        match h.attributes & ATTR_COMPRESSION_MASK {
            0 => walk(records, h.records_count, &mut count)?,
            c => {
                let inflated = inflate(c, data.slice_ref(records)).map_err(|e| e.to_string())?;
                walk(&inflated, h.records_count, &mut count)?;
            }
        }
    }
    Ok(out)
}

fn inflate(codec_id: i16, mut b: Bytes) -> anyhow::Result<Bytes> {
    let take = |x: &mut Bytes| Ok(x.copy_to_bytes(x.remaining()));
    match codec_id {
        1 => codec::Gzip::decompress(&mut b, take),
        2 => codec::Snappy::decompress(&mut b, take),
        3 => codec::Lz4::decompress(&mut b, take),
        4 => codec::Zstd::decompress(&mut b, take),
        other => anyhow::bail!("unknown compression codec {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::batch::BatchBuilder;
    use crate::bench::workload::Compression;
    use bytes::BytesMut;

    fn batch(base: i64, n: usize, c: Compression) -> Bytes {
        let mut b = BatchBuilder::default();
        for i in 0..n {
            b.append(100 + i as i64, Some(b"key"), &[1u8; 10]);
        }
        let mut out = BytesMut::from(&b.finish(c, BytesMut::new()).unwrap()[..]);
        out[..8].copy_from_slice(&base.to_be_bytes()); // the broker's offset (outside the CRC)
        out.freeze()
    }

    #[test]
    fn counts_from_min_offset_and_ignores_partial_tail() {
        for c in [Compression::None, Compression::Lz4, Compression::Zstd] {
            let mut all = BytesMut::new();
            all.extend_from_slice(&batch(0, 5, c));
            all.extend_from_slice(&batch(5, 5, c));
            let third = batch(10, 5, c);
            all.extend_from_slice(&third[..third.len() - 1]);
            let mut stamps = Vec::new();
            let s = scan(&all.freeze(), 3, |t| stamps.push(t)).unwrap();
            assert_eq!(s.records, 7, "{c:?}");
            assert_eq!(s.value_bytes, 70);
            assert_eq!(s.next_offset, Some(10));
            assert_eq!(stamps[..3], [103, 104, 100]);
        }
    }
}
