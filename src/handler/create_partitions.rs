use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::controller::{self, Change};
use crate::broker::State;

pub async fn handle(state: &State, req: CreatePartitionsRequest) -> ResponseKind {
    let me = state.cfg.broker_id;
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let foreign = t
            .assignments
            .iter()
            .flatten()
            .flat_map(|a| a.broker_ids.iter())
            .any(|b| b.0 != me);
        let r = if foreign {
            Err((
                ResponseError::InvalidReplicaAssignment,
                format!("only broker {me} exists"),
            ))
        } else {
            let change = Change::AddPartitions {
                topic: t.name.0.to_string(),
                total: t.count,
                validate_only: req.validate_only,
            };
            controller::submit(change)
                .await
                .pop()
                .map_or(Ok(()), |(_, r)| r.map(|_| ()))
        };
        let mut res = CreatePartitionsTopicResult::default().with_name(t.name);
        if let Err((e, msg)) = r {
            res = res
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(msg)));
        }
        results.push(res);
    }
    ResponseKind::CreatePartitions(CreatePartitionsResponse::default().with_results(results))
}
