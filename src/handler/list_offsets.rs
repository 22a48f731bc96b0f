use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::ResponseError;

use super::{on_partition, storage_error_code};
use crate::broker::State;
use crate::storage::read::{offset_for_timestamp, offset_of_max_timestamp};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
/// KIP-734 (v7+): the record with the largest timestamp.
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405 (v8+): the earliest offset on local disk; all of it, here.
const EARLIEST_LOCAL: i64 = -4;
/// KIP-1005 (v9+): the latest offset in tiered storage; none here.
const LATEST_TIERED: i64 = -5;

pub async fn handle(state: &State, req: ListOffsetsRequest, version: i16) -> ResponseKind {
    // A follower asks for the leader's log end, not the high watermark.
    let replica = req.replica_id.0 >= 0;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let ts = p.timestamp;
            let r = on_partition(state, &name, p.partition_index, move |log| async move {
                let epoch = log.borrow().leader_epoch;
                let found = match ts {
                    EARLIEST | EARLIEST_LOCAL => Ok((-1, log.borrow().log_start_offset)),
                    LATEST if replica => Ok((-1, log.borrow().written_end)),
                    LATEST => Ok((-1, log.borrow().high_watermark)),
                    // Kafka without remote storage answers "no offset".
                    LATEST_TIERED => Ok((-1, -1)),
                    MAX_TIMESTAMP => match offset_of_max_timestamp(&log).await {
                        Ok(Some(found)) => Ok(found),
                        Ok(None) => Ok((-1, -1)),
                        Err(e) => Err(storage_error_code(&e)),
                    },
                    ts if ts >= 0 => match offset_for_timestamp(&log, ts).await {
                        Ok(Some((found_ts, off))) => Ok((found_ts, off)),
                        Ok(None) => Ok((-1, -1)),
                        Err(e) => Err(storage_error_code(&e)),
                    },
                    _ => Err(ResponseError::InvalidRequest),
                };
                found.map(|(ts, off)| (ts, off, epoch))
            })
            .await
            .unwrap_or_else(|| Err(state.not_served_error(&name, p.partition_index)));
            let mut resp =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            resp = match r {
                Ok((ts, off, epoch)) => resp
                    .with_timestamp(ts)
                    .with_offset(off)
                    .with_leader_epoch(if version >= 4 { epoch } else { -1 }),
                Err(e) => resp
                    .with_error_code(e.code())
                    .with_timestamp(-1)
                    .with_offset(-1),
            };
            parts.push(resp);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(topics))
}
