use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;

use crate::broker::controller::{self, Change};

pub async fn handle(req: CreatePartitionsRequest) -> ResponseKind {
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let change = Change::AddPartitions {
            topic: t.name.0.to_string(),
            total: t.count,
            assignments: t
                .assignments
                .iter()
                .flatten()
                .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                .collect(),
            validate_only: req.validate_only,
        };
        let r = controller::submit(change)
            .await
            .pop()
            .map_or(Ok(()), |(_, r)| r.map(|_| ()));
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
