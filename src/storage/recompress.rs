//! `compression.type` on a topic: as Kafka's broker does, a batch whose
//! codec differs from the topic's (`uncompressed`, `gzip`, `snappy`, `lz4`,
//! `zstd`; `producer` keeps batches as sent) is decoded and encoded again in
//! the topic's codec, keeping every record field (offsets, timestamps,
//! producer id, epoch and sequences). Such batches leave the zero-copy path:
//! it is the price Kafka pays too.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::format::{self, BatchHeader};

/// The topic's `compression.type`, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// Store batches as the producer sent them.
    #[default]
    Producer,
    Codec(Compression),
}

impl TopicCompression {
    pub fn parse(v: &str) -> Option<Self> {
        Some(match v.trim() {
            "producer" => TopicCompression::Producer,
            "uncompressed" => TopicCompression::Codec(Compression::None),
            "gzip" => TopicCompression::Codec(Compression::Gzip),
            "snappy" => TopicCompression::Codec(Compression::Snappy),
            "lz4" => TopicCompression::Codec(Compression::Lz4),
            "zstd" => TopicCompression::Codec(Compression::Zstd),
            _ => return None,
        })
    }

    /// The config value that names it.
    pub fn name(self) -> &'static str {
        match self {
            TopicCompression::Producer => "producer",
            TopicCompression::Codec(Compression::None) => "uncompressed",
            TopicCompression::Codec(Compression::Gzip) => "gzip",
            TopicCompression::Codec(Compression::Snappy) => "snappy",
            TopicCompression::Codec(Compression::Lz4) => "lz4",
            TopicCompression::Codec(Compression::Zstd) => "zstd",
        }
    }

    /// Does a batch with these attributes need re-encoding?
    pub fn differs(self, attributes: i16) -> bool {
        match self {
            TopicCompression::Producer => false,
            TopicCompression::Codec(c) => (attributes & 0x07) != c as i16,
        }
    }
}

/// Re-encode one batch in `codec`. Control batches are left as they are.
pub fn recompress(batch: &[u8], h: &BatchHeader, codec: Compression) -> Result<Bytes, String> {
    if h.attributes & format::ATTR_CONTROL != 0 {
        return Ok(Bytes::copy_from_slice(batch));
    }
    let mut b = Bytes::copy_from_slice(batch);
    let set =
        RecordBatchDecoder::decode(&mut b).map_err(|e| format!("cannot decode batch: {e}"))?;
    let mut out = BytesMut::with_capacity(batch.len());
    let opts = RecordEncodeOptions {
        version: 2,
        compression: codec,
    };
    RecordBatchEncoder::encode(&mut out, &set.records, &opts)
        .map_err(|e| format!("cannot encode batch in {codec:?}: {e}"))?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Record, TimestampType};

    fn batch(codec: Compression) -> Vec<u8> {
        let records: Vec<Record> = (0..5)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: 42,
                producer_epoch: 3,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: 7 + i as i32,
                timestamp: 1_000 + i,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; 200])),
                headers: Default::default(),
            })
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: codec,
            },
        )
        .unwrap();
        out.to_vec()
    }

    #[test]
    fn every_codec_round_trips_with_producer_fields_kept() {
        for (from, to) in [
            (Compression::None, Compression::Lz4),
            (Compression::Gzip, Compression::None),
            (Compression::Snappy, Compression::Zstd),
            (Compression::Zstd, Compression::Gzip),
        ] {
            let b = batch(from);
            let h = format::validate_batch(&b).unwrap();
            assert!(TopicCompression::Codec(to).differs(h.attributes));
            let out = recompress(&b, &h, to).unwrap();
            let h2 = format::validate_batch(&out).unwrap();
            assert_eq!(h2.attributes & 0x07, to as i16);
            assert_eq!(
                (
                    h2.producer_id,
                    h2.producer_epoch,
                    h2.base_sequence,
                    h2.last_offset_delta
                ),
                (42, 3, 7, 4)
            );
            assert_eq!((h2.base_timestamp, h2.max_timestamp), (1_000, 1_004));
            let set = RecordBatchDecoder::decode(&mut Bytes::from(out.to_vec())).unwrap();
            assert_eq!(set.records.len(), 5);
            assert_eq!(set.records[4].key.as_deref(), Some(&b"k4"[..]));
        }
        assert!(!TopicCompression::Producer.differs(3));
        assert_eq!(
            TopicCompression::parse("lz4"),
            Some(TopicCompression::Codec(Compression::Lz4))
        );
        assert_eq!(TopicCompression::parse("brotli"), None);
    }
}
