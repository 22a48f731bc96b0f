//! Record batch building and parsing (v2 batches via `kafka_protocol::records`).

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    TimestampType, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// Offset of `lastOffsetDelta` inside a v2 batch (after baseOffset, length,
/// leader epoch, magic, crc and attributes).
const LAST_OFFSET_DELTA_POS: usize = 8 + 4 + 4 + 1 + 4 + 2;
/// baseOffset + batchLength.
const BATCH_LOG_OVERHEAD: usize = 12;

/// One record as returned by a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    pub offset: i64,
    pub timestamp: i64,
    /// `true` when `timestamp` is the broker's LogAppendTime.
    pub log_append_time: bool,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Records decoded from a fetch response partition.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub records: Vec<FetchedRecord>,
    /// Offset just after the last complete batch seen (control batches included).
    pub next_offset: Option<i64>,
}

/// Encodes `records` as a single uncompressed v2 batch stamped with `timestamp`.
pub fn encode_batch(
    records: &[(Option<Bytes>, Option<Bytes>)],
    timestamp: i64,
) -> anyhow::Result<Bytes> {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence must be constant for the encoder to keep one
            // batch; this also yields baseSequence = -1 (non-idempotent).
            sequence: (i as i32).wrapping_sub(1),
            timestamp,
            key: key.clone(),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options)?;
    Ok(buf.freeze())
}

/// Decodes every complete batch in `data`, dropping control records and
/// records below `min_offset`. A trailing partial batch is ignored.
pub(crate) fn decode_batches(mut data: Bytes, min_offset: i64) -> anyhow::Result<Decoded> {
    let mut out = Decoded::default();
    while data.len() >= BATCH_LOG_OVERHEAD {
        let base_offset = (&data[..8]).get_i64();
        let length = (&data[8..12]).get_i32();
        if length < 0 {
            anyhow::bail!("negative record batch length {length}");
        }
        let total = BATCH_LOG_OVERHEAD + length as usize;
        if data.len() < total {
            break; // truncated by max_bytes
        }
        let mut batch = data.split_to(total);
        if total >= LAST_OFFSET_DELTA_POS + 4 {
            let pos = LAST_OFFSET_DELTA_POS;
            let delta = (&batch[pos..pos + 4]).get_i32();
            out.next_offset = Some(base_offset + i64::from(delta) + 1);
        }
        let magic = batch.get(16).copied().unwrap_or(0);
        if magic != 2 {
            anyhow::bail!("unsupported record batch format v{magic} at offset {base_offset}");
        }
        let set = RecordBatchDecoder::decode(&mut batch)?;
        for record in set.records {
            if record.control || record.offset < min_offset {
                continue;
            }
            out.records.push(FetchedRecord {
                offset: record.offset,
                timestamp: record.timestamp,
                log_append_time: record.timestamp_type == TimestampType::LogAppend,
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: Option<&'static str>, v: Option<&'static str>) -> (Option<Bytes>, Option<Bytes>) {
        (
            k.map(|k| Bytes::from_static(k.as_bytes())),
            v.map(|v| Bytes::from_static(v.as_bytes())),
        )
    }

    fn rebase(batch: &Bytes, base: i64) -> Bytes {
        // The broker assigns the base offset; emulate it (CRC does not cover it).
        let mut b = BytesMut::from(&batch[..]);
        b[..8].copy_from_slice(&base.to_be_bytes());
        b.freeze()
    }

    #[test]
    fn round_trip_single_batch() {
        let input = vec![
            kv(Some("k1"), Some("v1")),
            kv(None, Some("v2")),
            kv(Some("k3"), None),
        ];
        let batch = encode_batch(&input, 1234).unwrap();
        // Exactly one batch: its length covers the whole buffer.
        let len = (&batch[8..12]).get_i32() as usize;
        assert_eq!(len + 12, batch.len());

        let decoded = decode_batches(rebase(&batch, 10), 0).unwrap();
        assert_eq!(decoded.next_offset, Some(13));
        let got: Vec<_> = decoded
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp, r.key.clone(), r.value.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (10, 1234, input[0].0.clone(), input[0].1.clone()),
                (11, 1234, None, input[1].1.clone()),
                (12, 1234, input[2].0.clone(), None),
            ]
        );
        assert!(!decoded.records[0].log_append_time);
    }

    #[test]
    fn skips_below_min_offset_and_partial_tail() {
        let a = rebase(
            &encode_batch(&[kv(None, Some("a")), kv(None, Some("b"))], 1).unwrap(),
            0,
        );
        let b = rebase(&encode_batch(&[kv(None, Some("c"))], 2).unwrap(), 2);
        let mut all = BytesMut::new();
        all.extend_from_slice(&a);
        all.extend_from_slice(&b);
        all.extend_from_slice(&b[..b.len() - 3]); // truncated third batch
        let decoded = decode_batches(all.freeze(), 1).unwrap();
        let offsets: Vec<_> = decoded.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1, 2]);
        assert_eq!(decoded.next_offset, Some(3));
    }

    #[test]
    fn empty_input() {
        let decoded = decode_batches(Bytes::new(), 0).unwrap();
        assert!(decoded.records.is_empty());
        assert_eq!(decoded.next_offset, None);
    }
}
