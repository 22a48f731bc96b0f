//! ListPartitionReassignments (API 46): the partitions whose reassignment is
//! in progress, from this broker's metadata image (every broker holds the
//! committed image, as Kafka's brokers do).

use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsRequest;
use kafka_protocol::messages::list_partition_reassignments_response::{
    ListPartitionReassignmentsResponse, OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::State;
use crate::cluster::catalog::PartitionMeta;

pub fn handle(
    state: &State,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = state.catalog();
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let ongoing = |i: i32, p: &PartitionMeta| {
        OngoingPartitionReassignment::default()
            .with_partition_index(i)
            .with_replicas(ids(&p.replicas))
            .with_adding_replicas(ids(&p.adding))
            .with_removing_replicas(ids(&p.removing))
    };
    // None: every topic; else the named partitions (unknown ones are
    // left out, as Kafka does).
    let wanted: Vec<(String, Option<Vec<i32>>)> = match req.topics {
        None => image.topics.keys().map(|t| (t.clone(), None)).collect(),
        Some(ts) => ts
            .into_iter()
            .map(|t| (t.name.0.to_string(), Some(t.partition_indexes)))
            .collect(),
    };
    let mut topics = Vec::new();
    for (name, partitions) in wanted {
        let Some(t) = image.topics.get(&name) else {
            continue;
        };
        let parts: Vec<OngoingPartitionReassignment> = match partitions {
            None => t
                .parts
                .iter()
                .enumerate()
                .filter(|(_, p)| p.reassigning())
                .map(|(i, p)| ongoing(i as i32, p))
                .collect(),
            Some(list) => list
                .into_iter()
                .filter_map(|i| {
                    let p = usize::try_from(i).ok().and_then(|u| t.parts.get(u))?;
                    p.reassigning().then(|| ongoing(i, p))
                })
                .collect(),
        };
        if !parts.is_empty() {
            topics.push(
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(parts),
            );
        }
    }
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
