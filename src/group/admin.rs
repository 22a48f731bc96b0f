//! ListGroups, DescribeGroups and DeleteGroups on one shard's coordinator.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::coordinator::{GroupKind, Shared};
use super::format::RecordKey;
use super::store::{self, Entry};

#[derive(Debug, Clone)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    /// "classic" or "consumer" (KIP-848).
    pub group_type: String,
}

/// Groups on this shard, filtered by state and type names (case-insensitive,
/// empty filter = all), as ListGroups v4/v5 do.
pub fn list(c: &Shared, states: &[String], types: &[String]) -> Vec<ListedGroup> {
    let co = c.borrow();
    co.groups
        .iter()
        .map(|(id, e)| ListedGroup {
            group_id: id.clone(),
            protocol_type: e.protocol_type(),
            state: e.state_name().to_string(),
            group_type: match e.kind {
                GroupKind::Classic(_) => "classic".into(),
                GroupKind::Consumer(_) => "consumer".into(),
            },
        })
        .filter(|g| states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(&g.state)))
        .filter(|g| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(&g.group_type)))
        .collect()
}

#[derive(Debug, Clone)]
pub struct DescribedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct DescribedGroup {
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<DescribedMember>,
}

/// A classic group as DescribeGroups shows it; `None` if unknown here.
/// KIP-848 groups answer in the classic shape too (Kafka does the same for
/// old admin clients), with the "consumer" protocol and empty metadata.
pub fn describe(c: &Shared, group: &str) -> Option<DescribedGroup> {
    let co = c.borrow();
    let e = co.groups.get(group)?;
    Some(match &e.kind {
        GroupKind::Classic(g) => DescribedGroup {
            state: g.state.name().into(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            // Kafka shows the protocol only once members are assigned.
            protocol: match g.state {
                super::classic::GroupState::Stable
                | super::classic::GroupState::CompletingRebalance => {
                    g.protocol.clone().unwrap_or_default()
                }
                _ => String::new(),
            },
            members: g
                .members_in_order()
                .into_iter()
                .map(|m| DescribedMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: g
                        .protocol
                        .as_deref()
                        .map(|p| m.metadata_for(p))
                        .unwrap_or_default(),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        },
        GroupKind::Consumer(g) => g.describe_classic(),
    })
}

/// DeleteGroups for one group: only an empty group may go; its offsets and
/// metadata are tombstoned.
pub async fn delete(c: &Shared, group: &str) -> Option<ResponseError> {
    let (partition, entries) = {
        let mut co = c.borrow_mut();
        let Some(e) = co.groups.get(group) else {
            return Some(ResponseError::GroupIdNotFound);
        };
        if !e.is_empty() {
            return Some(ResponseError::NonEmptyGroup);
        }
        let e = co.groups.remove(group).expect("present");
        let mut entries: Vec<Entry> = e
            .offsets
            .keys()
            .map(|(t, p)| (RecordKey::offset(group, t, *p), None))
            .collect();
        entries.push((RecordKey::group(group), None));
        (e.partition, entries)
    };
    tracing::info!(%group, "group deleted");
    store::write(partition, entries).await.err()
}
