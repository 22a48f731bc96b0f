//! AlterPartitionReassignments (API 45): start, replace or cancel partition
//! reassignments (KIP-455), made by the controller (`Change::Reassign`) and
//! committed to the metadata log. The request is answered once the
//! reassignment is recorded; the data moves afterwards (ListPartitionReassignments
//! shows it until the new replicas are in sync).

use kafka_protocol::messages::alter_partition_reassignments_request::AlterPartitionReassignmentsRequest;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    AlterPartitionReassignmentsResponse, ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::controller::{self, Change};

pub async fn handle(
    req: AlterPartitionReassignmentsRequest,
    version: i16,
) -> AlterPartitionReassignmentsResponse {
    // v0 has no such field: a replication factor may change, as before KIP-860.
    let allow_rf_change = version < 1 || req.allow_replication_factor_change;
    let mut partitions: Vec<(String, i32, Option<Vec<i32>>)> = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            partitions.push((
                t.name.0.to_string(),
                p.partition_index,
                p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
            ));
        }
    }
    let resp = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change);
    let mut seen = std::collections::HashSet::new();
    if let Some((t, p, _)) = partitions.iter().find(|(t, p, _)| !seen.insert((t, p))) {
        // Kafka's AdminClient refuses this before sending; a hand-made
        // request gets INVALID_REQUEST for all of it.
        return resp
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(StrBytes::from_string(format!(
                "partition {t}-{p} appears more than once"
            ))));
    }
    let results = if partitions.is_empty() {
        Vec::new()
    } else {
        controller::submit(Change::Reassign {
            partitions: partitions.clone(),
            allow_rf_change,
        })
        .await
    };
    if results.len() != partitions.len() {
        // The controller failed as a whole (it answered one error).
        let (code, msg) = results.into_iter().find_map(|(_, r)| r.err()).unwrap_or((
            ResponseError::UnknownServerError,
            "the controller answered no result".into(),
        ));
        return resp
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(msg)));
    }
    let mut results = results.into_iter();
    let responses = req
        .topics
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .iter()
                .map(|p| {
                    let (code, message) = match results.next().map(|(_, r)| r) {
                        Some(Ok(_)) => (0, None),
                        Some(Err((e, msg))) => (e.code(), Some(StrBytes::from_string(msg))),
                        None => unreachable!("one result per partition, checked above"),
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts)
        })
        .collect();
    resp.with_responses(responses)
}
