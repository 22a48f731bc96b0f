//! InitProducerId for idempotent producers: a new producer id at epoch 0.
//! As in Kafka, a request without a transactional id always gets a fresh id
//! (any producer id / epoch it carries, KIP-360, matters only to
//! transactional producers). Transactional ids are refused until
//! transactions exist.

use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, ResponseKind,
};
use kafka_protocol::ResponseError;

use crate::broker::controller::CONTROLLER_SHARD;
use crate::broker::{metadata, State};

pub async fn handle(_state: &State, req: InitProducerIdRequest) -> ResponseKind {
    let fail = |e: ResponseError| {
        ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(e.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )
    };
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| t.0.is_empty())
    {
        // Kafka: an empty transactional id is a malformed request.
        return fail(ResponseError::InvalidRequest);
    }
    if req.transactional_id.is_some() {
        // The same answer Produce gives a transactional producer: fatal and
        // clear in every client, where a retriable code would loop forever.
        return fail(ResponseError::TransactionalIdAuthorizationFailed);
    }
    // Kafka: both or neither of producer id and epoch (v3+).
    if (req.producer_id.0 == -1) != (req.producer_epoch == -1) {
        return fail(ResponseError::InvalidRequest);
    }
    let id = crate::shard::submit_to(CONTROLLER_SHARD, || async {
        match metadata::plane() {
            Some(p) => p.next_producer_id().await.map_err(|e| e.to_string()),
            None => Err("no metadata quorum".to_string()),
        }
    })
    .await;
    match id {
        Ok(Ok(id)) => ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot allocate producer ids");
            // Retriable for every client: the quorum may have a leader again.
            fail(ResponseError::CoordinatorNotAvailable)
        }
        Err(_) => fail(ResponseError::CoordinatorNotAvailable),
    }
}
