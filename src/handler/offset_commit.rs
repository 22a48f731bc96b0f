use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse, ResponseKind};

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::offsets::{self, CommitPartition, Committer};

pub async fn handle(state: &State, req: OffsetCommitRequest) -> ResponseKind {
    let group = req.group_id.0.to_string();
    let who = Committer {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_or_epoch: req.generation_id_or_member_epoch,
    };
    let parts: Vec<CommitPartition> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| CommitPartition {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let g = group.clone();
    let all = parts.clone();
    let results = on_coordinator(state, &group, move |c, p| async move {
        offsets::commit(&c, p, &g, who, parts).await
    })
    .await
    .unwrap_or_else(|e| {
        all.into_iter()
            .map(|p| (p.topic, p.partition, Some(e)))
            .collect()
    });
    let mut by_topic: BTreeMap<String, Vec<OffsetCommitResponsePartition>> = BTreeMap::new();
    for (t, p, e) in results {
        by_topic.entry(t).or_default().push(
            OffsetCommitResponsePartition::default()
                .with_partition_index(p)
                .with_error_code(super::code(e)),
        );
    }
    // Answer topics in request order.
    let topics = req
        .topics
        .into_iter()
        .filter_map(|t| {
            let parts = by_topic.remove(t.name.0.as_str())?;
            Some(
                OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(parts),
            )
        })
        .collect();
    ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(topics))
}
