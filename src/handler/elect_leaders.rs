//! ElectLeaders (API 43): preferred or unclean leader elections, made by the
//! controller (`Change::Elect`) and committed to the metadata log.

use kafka_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_response::{
    ElectLeadersResponse, PartitionResult, ReplicaElectionResult,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::controller::{self, Change};
use crate::broker::State;
use crate::cluster::leadership::Election;

pub async fn handle(state: &State, req: ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    let election = match (version, req.election_type) {
        (0, _) | (_, 0) => Election::Preferred,
        (_, 1) => Election::Unclean,
        (_, other) => {
            tracing::debug!(election_type = other, "unknown election type");
            return ElectLeadersResponse::default()
                .with_error_code(ResponseError::InvalidRequest.code());
        }
    };
    // No list: every partition, and (as Kafka) only those an election was
    // needed for are answered.
    let all = req.topic_partitions.is_none();
    let mut partitions: Vec<(String, i32)> = match req.topic_partitions {
        Some(tps) => tps
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect(),
        None => state
            .catalog()
            .topics
            .values()
            .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p)))
            .collect(),
    };
    let mut seen = std::collections::HashSet::new();
    partitions.retain(|tp| seen.insert(tp.clone()));
    let results = if partitions.is_empty() {
        Vec::new()
    } else {
        controller::submit(Change::Elect {
            election,
            partitions: partitions.clone(),
        })
        .await
    };
    // One result per partition; a controller that failed as a whole answered
    // one: every partition gets its error.
    let results = if results.len() == partitions.len() {
        results
    } else {
        let err = results.into_iter().find_map(|(_, r)| r.err()).unwrap_or((
            ResponseError::UnknownServerError,
            "the controller answered no result".into(),
        ));
        partitions
            .iter()
            .map(|(t, _)| (t.clone(), Err(err.clone())))
            .collect()
    };
    let mut by_topic: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, partition), (_, r)) in partitions.into_iter().zip(results) {
        let (code, message) = match r {
            Ok(_) => (0, None),
            Err((e, _)) if all && e == ResponseError::ElectionNotNeeded => continue,
            Err((e, msg)) => (e.code(), Some(StrBytes::from_string(msg))),
        };
        let result = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(code)
            .with_error_message(message);
        match by_topic.iter_mut().find(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partition_result.push(result),
            None => by_topic.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from_string(topic)))
                    .with_partition_result(vec![result]),
            ),
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(by_topic)
}
