use std::collections::BTreeSet;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::{client_host, on_coordinator};
use crate::broker::State;
use crate::cluster::Catalog;
use crate::group::api;
use crate::group::consumer::{by_topic, HeartbeatRequest, Tp};

pub async fn handle(
    state: &State,
    req: ConsumerGroupHeartbeatRequest,
    client_id: String,
    peer: &str,
) -> ResponseKind {
    let catalog = state.catalog();
    let group = req.group_id.0.to_string();
    // v0 lets the coordinator name a joining member; v1 clients name themselves.
    let member_id = if req.member_id.is_empty() && req.member_epoch == 0 {
        uuid::Uuid::new_v4().to_string()
    } else {
        req.member_id.to_string()
    };
    let owned = req.topic_partitions.map(|tps| {
        tps.into_iter()
            .filter_map(|tp| {
                let name = catalog.by_id(tp.topic_id)?.name.clone();
                Some(tp.partitions.into_iter().map(move |p| (name.clone(), p)))
            })
            .flatten()
            .collect::<BTreeSet<Tp>>()
    });
    let hb = HeartbeatRequest {
        member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.map(|s| s.to_string()),
        rack_id: req.rack_id.map(|s| s.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        topics: req
            .subscribed_topic_names
            .map(|ts| ts.into_iter().map(|t| t.0.to_string()).collect()),
        regex: req.subscribed_topic_regex.map(|s| s.to_string()),
        server_assignor: req.server_assignor.map(|s| s.to_string()),
        owned,
        client_id,
        client_host: client_host(peer),
    };
    let g = group.clone();
    let result = on_coordinator(state, &group, move |c, p| async move {
        api::consumer_heartbeat(&c, p, &g, hb)
    })
    .await
    .unwrap_or_else(|e| Err((e, String::new())));
    let resp = match result {
        Ok(r) => ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(r.member_id)))
            .with_member_epoch(r.member_epoch)
            .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
            .with_assignment(r.assignment.map(|a| {
                Assignment::default().with_topic_partitions(topic_partitions(&catalog, &a))
            })),
        Err((e, msg)) => ConsumerGroupHeartbeatResponse::default()
            .with_error_code(e.code())
            .with_error_message((!msg.is_empty()).then(|| StrBytes::from_string(msg)))
            .with_member_epoch(if e == ResponseError::UnknownMemberId {
                -1
            } else {
                0
            }),
    };
    ResponseKind::ConsumerGroupHeartbeat(resp)
}

fn topic_partitions(catalog: &Catalog, parts: &BTreeSet<Tp>) -> Vec<TopicPartitions> {
    by_topic(parts)
        .into_iter()
        .filter_map(|(t, ps)| {
            let id = catalog.topics.get(t)?.id;
            Some(
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_partitions(ps),
            )
        })
        .collect()
}
