use futures::future::join_all;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, ResponseKind};

use super::coordinator::on_coordinator;
use crate::broker::State;
use crate::group::admin;

pub async fn handle(state: &State, req: DeleteGroupsRequest) -> ResponseKind {
    let results = join_all(req.groups_names.into_iter().map(|id| async move {
        let group = id.0.to_string();
        let g = group.clone();
        let error = on_coordinator(state, &group, move |c, _| async move {
            admin::delete(&c, &g).await
        })
        .await
        .unwrap_or_else(Some);
        DeletableGroupResult::default()
            .with_group_id(id)
            .with_error_code(super::code(error))
    }))
    .await;
    ResponseKind::DeleteGroups(DeleteGroupsResponse::default().with_results(results))
}
