use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use kafka_protocol::messages::{ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::controller::{self, Change};
use crate::broker::State;

pub async fn handle(state: &State, req: DeleteTopicsRequest, version: i16) -> ResponseKind {
    let catalog = state.catalog();
    // v6 names topics by name or id; older versions by name only.
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut names = Vec::new();
    let mut unknown_ids = Vec::new();
    for (name, id) in &wanted {
        match name {
            Some(n) => names.push(n.clone()),
            None => match catalog.by_id(*id) {
                Some(t) => names.push(t.name.clone()),
                None => unknown_ids.push(*id),
            },
        }
    }
    let results = controller::submit(Change::Delete { names }).await;
    let mut responses: Vec<DeletableTopicResult> = results
        .into_iter()
        .map(|(name, r)| {
            let id = catalog
                .topics
                .get(&name)
                .map_or(uuid::Uuid::nil(), |t| t.id);
            let mut base = DeletableTopicResult::default()
                .with_name(Some(TopicName(StrBytes::from_string(name))));
            if version >= 6 {
                base = base.with_topic_id(id);
            }
            match r {
                Ok(_) => base,
                Err((e, _)) if version < 5 => base.with_error_code(e.code()),
                Err((e, msg)) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(msg))),
            }
        })
        .collect();
    responses.extend(unknown_ids.into_iter().map(|id| {
        DeletableTopicResult::default()
            .with_topic_id(id)
            .with_error_code(ResponseError::UnknownTopicId.code())
    }));
    ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(responses))
}
