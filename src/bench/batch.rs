//! Record batches (magic v2) written straight into a reused buffer: no
//! allocation per record, one CRC32C pass per batch. Compression uses
//! kafka-protocol's codecs, which frame snappy and lz4 the way Kafka does.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor};

use super::workload::Compression;
use crate::storage::format::{ATTRIBUTES_AT, BATCH_HEADER_BYTES, BATCH_LENGTH_AT, LOG_OVERHEAD};

/// Bytes a record adds besides its key and value in the worst case
/// (length, attributes, timestamp delta, offset delta, key/value lengths, headers).
pub const RECORD_OVERHEAD_MAX_BYTES: usize = 5 + 1 + 10 + 5 + 5 + 5 + 1;

fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_varlong(buf: &mut BytesMut, v: i64) {
    put_varint(buf, zigzag64(v));
}

/// One partition's open batch.
pub struct BatchBuilder {
    /// Header space followed by the uncompressed records.
    buf: BytesMut,
    count: i32,
    base_timestamp_ms: i64,
    max_timestamp_ms: i64,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new(BytesMut::new())
    }
}

impl BatchBuilder {
    /// Start a batch in `buf` (a recycled buffer keeps its capacity).
    pub fn new(mut buf: BytesMut) -> Self {
        buf.clear();
        buf.resize(BATCH_HEADER_BYTES, 0);
        BatchBuilder {
            buf,
            count: 0,
            base_timestamp_ms: 0,
            max_timestamp_ms: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn record_count(&self) -> usize {
        self.count as usize
    }

    /// Uncompressed size so far, header included.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Append one record stamped `timestamp_ms` (CreateTime).
    pub fn append(&mut self, timestamp_ms: i64, key: Option<&[u8]>, value: &[u8]) {
        if self.count == 0 {
            self.base_timestamp_ms = timestamp_ms;
            self.max_timestamp_ms = timestamp_ms;
        }
        self.max_timestamp_ms = self.max_timestamp_ms.max(timestamp_ms);
        let ts_delta = zigzag64(timestamp_ms - self.base_timestamp_ms);
        let offset_delta = zigzag64(i64::from(self.count));
        let key_len = key.map_or(-1, |k| k.len() as i64);
        let body = 1
            + varint_len(ts_delta)
            + varint_len(offset_delta)
            + varint_len(zigzag64(key_len))
            + key.map_or(0, |k| k.len())
            + varint_len(zigzag64(value.len() as i64))
            + value.len()
            + 1;
        self.buf.reserve(body + 5);
        put_varlong(&mut self.buf, body as i64);
        self.buf.put_u8(0); // attributes
        put_varint(&mut self.buf, ts_delta);
        put_varint(&mut self.buf, offset_delta);
        put_varlong(&mut self.buf, key_len);
        if let Some(k) = key {
            self.buf.put_slice(k);
        }
        put_varlong(&mut self.buf, value.len() as i64);
        self.buf.put_slice(value);
        put_varint(&mut self.buf, 0); // no headers
        self.count += 1;
    }

    /// Close the batch: compress if asked, fill the header, CRC. Leaves the
    /// builder empty, reusing `spare` (if any) as its next buffer.
    pub fn finish(&mut self, compression: Compression, spare: BytesMut) -> anyhow::Result<Bytes> {
        self.finish_as(compression, spare, None)
    }

    /// `finish` for an idempotent producer: `producer` is (producer id,
    /// epoch, base sequence) for the header.
    pub fn finish_as(
        &mut self,
        compression: Compression,
        spare: BytesMut,
        producer: Option<(i64, i16, i32)>,
    ) -> anyhow::Result<Bytes> {
        let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
        let mut out = std::mem::replace(&mut self.buf, spare);
        let count = std::mem::take(&mut self.count);
        self.buf.clear();
        self.buf.resize(BATCH_HEADER_BYTES, 0);
        if compression != Compression::None {
            let mut compressed = BytesMut::with_capacity(out.len() / 2 + BATCH_HEADER_BYTES);
            compressed.resize(BATCH_HEADER_BYTES, 0);
            let records = &out[BATCH_HEADER_BYTES..];
            let put = |b: &mut BytesMut| {
                b.put_slice(records);
                Ok(())
            };
            match compression {
                Compression::Gzip => codec::Gzip::compress(&mut compressed, put)?,
                Compression::Snappy => codec::Snappy::compress(&mut compressed, put)?,
                Compression::Lz4 => codec::Lz4::compress(&mut compressed, put)?,
                Compression::Zstd => codec::Zstd::compress(&mut compressed, put)?,
                Compression::None => unreachable!(),
            }
            out = compressed;
        }
        let h = &mut out[..BATCH_HEADER_BYTES];
        h[..8].copy_from_slice(&0i64.to_be_bytes()); // base offset: the broker assigns it
        let batch_length = (out.len() - LOG_OVERHEAD) as i32;
        let h = &mut out[..BATCH_HEADER_BYTES];
        h[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        h[16] = 2; // magic
        h[ATTRIBUTES_AT..ATTRIBUTES_AT + 2]
            .copy_from_slice(&compression.attribute_bits().to_be_bytes());
        h[23..27].copy_from_slice(&(count - 1).to_be_bytes()); // last offset delta
        h[27..35].copy_from_slice(&self.base_timestamp_ms.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp_ms.to_be_bytes());
        h[43..51].copy_from_slice(&producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES_AT..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::format::validate_batch;
    use bytes::Buf;
    use kafka_protocol::records::RecordBatchDecoder;

    fn build(c: Compression) -> Bytes {
        let mut b = BatchBuilder::default();
        b.append(1_000, None, b"hello");
        b.append(1_007, Some(b"k1"), &[7u8; 300]);
        b.append(1_003, Some(b""), b"");
        b.finish(c, BytesMut::new()).unwrap()
    }

    #[test]
    fn batches_validate_and_decode_with_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = build(c);
            let h = validate_batch(&batch).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(h.records_count, 3);
            assert_eq!(h.max_timestamp, 1_007);
            let mut bytes = batch.clone();
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            assert!(!bytes.has_remaining());
            let r = &set.records;
            assert_eq!(r.len(), 3, "{c:?}");
            assert_eq!(r[0].value.as_deref(), Some(&b"hello"[..]));
            assert_eq!(r[0].key, None);
            assert_eq!(r[1].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(r[1].timestamp, 1_007);
            assert_eq!(r[2].timestamp, 1_003);
            assert_eq!(r[2].offset, 2);
        }
    }

    #[test]
    fn idempotent_batches_carry_producer_and_sequence() {
        let mut b = BatchBuilder::default();
        b.append(1, None, b"a");
        b.append(2, None, b"b");
        let batch = b
            .finish_as(Compression::Lz4, BytesMut::new(), Some((42, 3, 7)))
            .unwrap();
        let h = validate_batch(&batch).unwrap();
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 7)
        );
        assert_eq!(h.last_sequence(), 8);
        let set = RecordBatchDecoder::decode(&mut batch.clone()).unwrap();
        assert_eq!(set.records[1].sequence, 8);
    }

    #[test]
    fn builder_is_reusable() {
        let mut b = BatchBuilder::default();
        b.append(1, None, b"a");
        let first = b.finish(Compression::None, BytesMut::new()).unwrap();
        assert!(b.is_empty());
        b.append(2, None, b"b");
        let second = b.finish(Compression::None, BytesMut::new()).unwrap();
        assert_eq!(validate_batch(&first).unwrap().base_timestamp, 1);
        assert_eq!(validate_batch(&second).unwrap().base_timestamp, 2);
    }
}
