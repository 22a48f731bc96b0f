use std::collections::BTreeMap;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::offsets;

pub async fn handle(state: &State, req: OffsetDeleteRequest) -> ResponseKind {
    let group = req.group_id.0.to_string();
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.partitions
                    .into_iter()
                    .map(|p| p.partition_index)
                    .collect(),
            )
        })
        .collect();
    let g = group.clone();
    let result = on_coordinator(state, &group, move |c, _| async move {
        offsets::delete(&c, &g, topics).await
    })
    .await
    .and_then(|r| r);
    let resp = match result {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(parts) => {
            let mut by_topic: BTreeMap<String, Vec<OffsetDeleteResponsePartition>> =
                BTreeMap::new();
            for (t, p, e) in parts {
                by_topic.entry(t).or_default().push(
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(super::code(e)),
                );
            }
            OffsetDeleteResponse::default().with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(StrBytes::from_string(t).into())
                            .with_partitions(parts)
                    })
                    .collect(),
            )
        }
    };
    ResponseKind::OffsetDelete(resp)
}
