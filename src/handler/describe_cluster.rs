use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use kafka_protocol::messages::{BrokerId, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::State;

const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(state: &State, req: DescribeClusterRequest, version: i16) -> ResponseKind {
    let me = BrokerId(state.cfg.broker_id);
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(state.cluster_id()))
        .with_controller_id(me);
    if version >= 1 {
        resp = resp.with_endpoint_type(ENDPOINT_BROKERS);
        if req.endpoint_type != ENDPOINT_BROKERS {
            return ResponseKind::DescribeCluster(
                resp.with_error_code(ResponseError::UnsupportedEndpointType.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "only broker endpoints are served",
                    ))),
            );
        }
    }
    // Every live broker, by its registration.
    let brokers: Vec<DescribeClusterBroker> = state
        .catalog()
        .brokers
        .values()
        .filter(|b| !b.fenced)
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host.clone()))
                .with_port(b.port as i32)
        })
        .collect();
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = super::acl_ops::CLUSTER;
    }
    ResponseKind::DescribeCluster(resp.with_brokers(brokers))
}
