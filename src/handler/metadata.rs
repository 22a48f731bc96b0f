use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::controller::{self, Change, TopicSpec};
use crate::broker::State;
use crate::cluster::catalog::NO_LEADER;
use crate::cluster::TopicMeta;

pub async fn handle(state: &State, req: MetadataRequest, version: i16) -> ResponseKind {
    let cfg = &state.cfg;
    let me = BrokerId(cfg.broker_id);
    let (req_topic_ops, req_cluster_ops) = (
        req.include_topic_authorized_operations,
        req.include_cluster_authorized_operations,
    );
    // v0 has no null list: an empty list means "all topics" there.
    let wanted: Option<Vec<(Option<String>, uuid::Uuid)>> = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(
            t.into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let auto_create =
        cfg.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    if let (Some(w), true) = (&wanted, auto_create) {
        let catalog = state.catalog();
        let missing: Vec<TopicSpec> = w
            .iter()
            .filter_map(|(n, _)| n.clone())
            .filter(|n| {
                !catalog.topics.contains_key(n) && crate::cluster::catalog::valid_topic_name(n)
            })
            .map(|name| TopicSpec {
                name,
                partitions: -1,
                replication_factor: -1,
                assignments: Vec::new(),
                configs: vec![],
            })
            .collect();
        if !missing.is_empty() {
            for (name, r) in controller::submit(Change::Create {
                specs: missing,
                validate_only: false,
            })
            .await
            {
                if let Err((_, msg)) = r {
                    tracing::debug!(topic = name, msg, "auto-create skipped");
                }
            }
        }
    }
    let catalog = state.catalog();
    let live = catalog.live_brokers();
    let topics: Vec<MetadataResponseTopic> = match wanted {
        None => catalog
            .topics
            .values()
            .map(|t| topic_entry(t, &live, version))
            .collect(),
        Some(w) => w
            .into_iter()
            .map(|(name, id)| {
                let found = match &name {
                    Some(n) => catalog.topics.get(n),
                    None => catalog.by_id(id),
                };
                match found {
                    Some(t) => topic_entry(t, &live, version),
                    None => {
                        let err = match &name {
                            Some(n) if !crate::cluster::catalog::valid_topic_name(n) => {
                                ResponseError::InvalidTopicException
                            }
                            Some(_) => ResponseError::UnknownTopicOrPartition,
                            None => ResponseError::UnknownTopicId,
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(err.code())
                            .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                            .with_topic_id(if version >= 10 { id } else { uuid::Uuid::nil() })
                    }
                }
            })
            .collect(),
    };
    // Every live broker, by its registration.
    let brokers: Vec<MetadataResponseBroker> = catalog
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(b.port as i32)
        })
        .collect();
    let mut topics = topics;
    if version >= 8 && req_topic_ops {
        for t in topics.iter_mut().filter(|t| t.error_code == 0) {
            t.topic_authorized_operations = super::acl_ops::TOPIC;
        }
    }
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(topics);
    if (8..=10).contains(&version) && req_cluster_ops {
        resp.cluster_authorized_operations = super::acl_ops::CLUSTER;
    }
    if version >= 1 {
        // As KRaft brokers do: clients cannot reach the quorum, so the
        // "controller" is a live broker, which forwards admin requests.
        resp = resp.with_controller_id(me);
    }
    if version >= 2 {
        resp = resp.with_cluster_id(Some(StrBytes::from_string(state.cluster_id())));
    }
    ResponseKind::Metadata(resp)
}

fn topic_entry(t: &TopicMeta, live: &[i32], version: i16) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions = (0..t.partitions)
        .map(|p| {
            let meta = t.parts.get(p as usize).cloned().unwrap_or_default();
            let leader = if meta.replicas.is_empty() {
                NO_LEADER
            } else {
                meta.leader
            };
            let offline: Vec<i32> = meta
                .replicas
                .iter()
                .copied()
                .filter(|r| !live.contains(r))
                .collect();
            let mut entry = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(if version >= 7 { meta.leader_epoch } else { -1 })
                .with_replica_nodes(ids(&meta.replicas))
                .with_isr_nodes(ids(&meta.isr));
            if version >= 5 {
                entry = entry.with_offline_replicas(ids(&offline));
            }
            if leader == NO_LEADER {
                entry = entry.with_error_code(ResponseError::LeaderNotAvailable.code());
            }
            entry
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(t.name.clone()))))
        .with_topic_id(if version >= 10 {
            t.id
        } else {
            uuid::Uuid::nil()
        })
        .with_is_internal(version >= 1 && t.name.starts_with("__"))
        .with_partitions(partitions)
}
