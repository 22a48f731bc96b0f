//! DescribeQuorum (API 55): the metadata quorum's leader, epoch, high
//! watermark and each voter's progress, as the leader sees it (a broker that
//! does not lead asks the one that does, as Kafka's brokers forward it).

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::controller::CONTROLLER_SHARD;
use crate::broker::{metadata, State};
use crate::cluster::catalog::METADATA_TOPIC;
use crate::cluster::controller_rpc::ControllerReply;

pub async fn handle(state: &State, req: DescribeQuorumRequest, version: i16) -> ResponseKind {
    let valid = req.topics.len() == 1
        && req.topics[0].topic_name.0.as_str() == METADATA_TOPIC
        && req.topics[0].partitions.len() == 1
        && req.topics[0].partitions[0].partition_index == 0;
    let topic = |p: PartitionData| {
        TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
            .with_partitions(vec![p])
    };
    if !valid {
        // Kafka's singletonErrorResponse.
        let p =
            PartitionData::default().with_error_code(ResponseError::UnknownTopicOrPartition.code());
        return ResponseKind::DescribeQuorum(
            DescribeQuorumResponse::default().with_topics(vec![topic(p)]),
        );
    }
    let reply = crate::shard::submit_to(CONTROLLER_SHARD, || async {
        match metadata::plane() {
            Some(p) => p.describe_quorum().await,
            None => ControllerReply::Failed {
                code: ResponseError::NotLeaderOrFollower.code(),
                message: "no metadata quorum".into(),
            },
        }
    })
    .await
    .unwrap_or(ControllerReply::Failed {
        code: ResponseError::NotLeaderOrFollower.code(),
        message: "the controller shard is stopping".into(),
    });
    let mut resp = DescribeQuorumResponse::default();
    let part = match reply {
        ControllerReply::Quorum {
            leader,
            epoch,
            high_watermark,
            voters,
        } => PartitionData::default()
            .with_leader_id(BrokerId(leader))
            .with_leader_epoch(epoch)
            .with_high_watermark(high_watermark)
            .with_current_voters(
                voters
                    .iter()
                    .map(|v| {
                        let mut r = ReplicaState::default()
                            .with_replica_id(BrokerId(v.id))
                            .with_log_end_offset(v.log_end);
                        if version >= 1 {
                            r = r
                                .with_last_fetch_timestamp(v.last_fetch_ms)
                                .with_last_caught_up_timestamp(v.last_caught_up_ms);
                        }
                        r
                    })
                    .collect(),
            ),
        ControllerReply::Failed { code, message } => {
            let mut p = PartitionData::default().with_error_code(code);
            if version >= 2 {
                p = p.with_error_message(Some(StrBytes::from_string(message)));
            }
            p
        }
        other => PartitionData::default()
            .with_error_code(ResponseError::UnknownServerError.code())
            .with_error_message(
                (version >= 2).then(|| StrBytes::from_string(format!("{other:?}"))),
            ),
    };
    if version >= 2 {
        // Every voter's controller endpoint, as configured.
        resp = resp.with_nodes(
            state
                .cfg
                .quorum
                .voters
                .iter()
                .map(|(id, host, port)| {
                    Node::default()
                        .with_node_id(BrokerId(*id))
                        .with_listeners(vec![Listener::default()
                            .with_name(StrBytes::from_static_str("CONTROLLER"))
                            .with_host(StrBytes::from_string(host.clone()))
                            .with_port(*port)])
                })
                .collect(),
        );
    }
    ResponseKind::DescribeQuorum(resp.with_topics(vec![topic(part)]))
}
