use futures::future::join_all;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::api;
use crate::group::offsets::{self, FetchedTopic};

struct GroupQuery {
    group: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
    /// v9: a KIP-848 member fetching must hold the current epoch.
    member: Option<(String, i32)>,
}

pub async fn handle(state: &State, req: OffsetFetchRequest, version: i16) -> ResponseKind {
    if version <= 7 {
        let q = GroupQuery {
            group: req.group_id.0.to_string(),
            topics: req.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            }),
            member: None,
        };
        let (topics, error) = match fetch(state, q).await {
            Ok(t) => (t, None),
            Err(e) => (vec![], Some(e)),
        };
        let mut resp = OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(t, parts)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(StrBytes::from_string(t).into())
                        .with_partitions(
                            parts
                                .into_iter()
                                .map(|(p, o, epoch, md)| {
                                    let r = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(o)
                                        .with_metadata(Some(StrBytes::from_string(md)));
                                    if version >= 5 {
                                        r.with_committed_leader_epoch(epoch)
                                    } else {
                                        r
                                    }
                                })
                                .collect(),
                        )
                })
                .collect(),
        );
        if version >= 2 {
            resp = resp.with_error_code(super::code(error));
        }
        return ResponseKind::OffsetFetch(resp);
    }
    let queries = req.groups.into_iter().map(|g| GroupQuery {
        group: g.group_id.0.to_string(),
        topics: g.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes))
                .collect()
        }),
        member: g
            .member_id
            .filter(|m| !m.is_empty())
            .map(|m| (m.to_string(), g.member_epoch)),
    });
    let groups = join_all(queries.map(|q| async move {
        let id = q.group.clone();
        let r = fetch(state, q).await;
        let (topics, error) = match r {
            Ok(t) => (t, None),
            Err(e) => (vec![], Some(e)),
        };
        OffsetFetchResponseGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(id)))
            .with_error_code(super::code(error))
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(StrBytes::from_string(t).into())
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, o, epoch, md)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(o)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(StrBytes::from_string(md)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
    }))
    .await;
    ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_groups(groups))
}

async fn fetch(state: &State, q: GroupQuery) -> Result<Vec<FetchedTopic>, ResponseError> {
    let group = q.group.clone();
    on_coordinator(state, &group, move |c, _| async move {
        if let Some((m, epoch)) = &q.member {
            if let Some(e) = api::check_fetch_member(&c, &q.group, m, *epoch) {
                return Err(e);
            }
        }
        Ok(offsets::fetch(&c, &q.group, q.topics))
    })
    .await
    .and_then(|r| r)
}
