//! OffsetForLeaderEpoch (API 23): where a leader epoch ends in the leader's
//! log (KIP-101). Followers ask it before fetching, to cut records the
//! leader does not have; consumers ask it to detect truncation (KIP-320).

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::ResponseError;

use super::on_partition;
use crate::broker::State;

pub async fn handle(state: &State, req: OffsetForLeaderEpochRequest) -> ResponseKind {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.topic.0.to_string();
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let (current, wanted) = (p.current_leader_epoch, p.leader_epoch);
            let r = on_partition(state, &name, p.partition, move |log| async move {
                let l = log.borrow();
                // -1: the asker does not check the epoch (older versions).
                if current >= 0 && current != l.leader_epoch {
                    return Err(if current < l.leader_epoch {
                        ResponseError::FencedLeaderEpoch
                    } else {
                        ResponseError::UnknownLeaderEpoch
                    });
                }
                Ok(l.end_offset_for_epoch(wanted))
            })
            .await
            .unwrap_or_else(|| Err(state.not_served_error(&name, p.partition)));
            let e = EpochEndOffset::default().with_partition(p.partition);
            parts.push(match r {
                Ok((epoch, end)) => e.with_leader_epoch(epoch).with_end_offset(end),
                Err(code) => e
                    .with_error_code(code.code())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(parts),
        );
    }
    ResponseKind::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
