use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use kafka_protocol::messages::{ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::controller::{self, Change, TopicSpec};
use crate::broker::State;

pub async fn handle(_state: &State, req: CreateTopicsRequest, version: i16) -> ResponseKind {
    let specs: Vec<TopicSpec> = req
        .topics
        .iter()
        .map(|t| TopicSpec {
            name: t.name.0.to_string(),
            partitions: t.num_partitions,
            replication_factor: t.replication_factor,
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect(),
        })
        .collect();
    let results = controller::submit(Change::Create {
        specs,
        validate_only: req.validate_only,
    })
    .await;
    let topics = results
        .into_iter()
        .map(|(name, r)| {
            let base =
                CreatableTopicResult::default().with_name(TopicName(StrBytes::from_string(name)));
            match r {
                Ok(t) if version >= 7 => base
                    .with_topic_id(t.id)
                    .with_num_partitions(t.partitions)
                    .with_replication_factor(1),
                Ok(t) if version >= 5 => base
                    .with_num_partitions(t.partitions)
                    .with_replication_factor(1),
                Ok(_) => base,
                Err((e, msg)) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(msg))),
            }
        })
        .collect();
    ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(topics))
}
