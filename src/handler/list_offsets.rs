use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::ResponseError;

use super::{on_partition, storage_error_code};
use crate::broker::State;
use crate::storage::read::offset_for_timestamp;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub async fn handle(state: &State, req: ListOffsetsRequest, version: i16) -> ResponseKind {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let ts = p.timestamp;
            let r = on_partition(state, &name, p.partition_index, move |log| async move {
                match ts {
                    EARLIEST => Ok((-1, log.borrow().log_start_offset)),
                    LATEST => Ok((-1, log.borrow().high_watermark)),
                    ts if ts >= 0 => match offset_for_timestamp(&log, ts).await {
                        Ok(Some((found_ts, off))) => Ok((found_ts, off)),
                        Ok(None) => Ok((-1, -1)),
                        Err(e) => Err(storage_error_code(&e)),
                    },
                    // -3 (max timestamp), -4, -5 (KIP-734/1005) are not served.
                    _ => Err(ResponseError::InvalidRequest),
                }
            })
            .await
            .unwrap_or(Err(ResponseError::UnknownTopicOrPartition));
            let mut resp =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            resp = match r {
                Ok((ts, off)) => resp
                    .with_timestamp(ts)
                    .with_offset(off)
                    .with_leader_epoch(if version >= 4 { 0 } else { -1 }),
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
