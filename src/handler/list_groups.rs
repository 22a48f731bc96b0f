use futures::future::join_all;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::broker::state::local;
use crate::broker::State;
use crate::group::admin;
use crate::shard;

pub async fn handle(_state: &State, req: ListGroupsRequest, version: i16) -> ResponseKind {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_string()).collect();
    // Groups are spread over the shards owning their offsets partitions.
    let per_shard = join_all((0..shard::count()).map(|s| {
        let (states, types) = (states.clone(), types.clone());
        shard::submit_to(s, move || async move {
            admin::list(&local().groups, &states, &types)
        })
    }))
    .await;
    let mut groups: Vec<admin::ListedGroup> = per_shard.into_iter().flatten().flatten().collect();
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    let groups = groups
        .into_iter()
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            if version >= 4 {
                l = l.with_group_state(StrBytes::from_string(g.state));
            }
            if version >= 5 {
                l = l.with_group_type(StrBytes::from_string(g.group_type));
            }
            l
        })
        .collect();
    ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(groups))
}
