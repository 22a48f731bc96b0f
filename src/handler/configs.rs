//! AlterConfigs and IncrementalAlterConfigs: topic overrides through the controller.

use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response as inc;
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::controller::{self, ApiError, Change, ConfigEdit};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_GROUP: i8 = 32;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

async fn apply(
    broker_id: i32,
    resource_type: i8,
    name: String,
    edits: Result<Vec<(String, ConfigEdit)>, ApiError>,
    replace: bool,
    validate_only: bool,
) -> Result<(), ApiError> {
    let edits = edits?;
    let change = match resource_type {
        RESOURCE_TOPIC => Change::Configs {
            topic: name,
            edits,
            replace,
            validate_only,
        },
        // "" is the cluster-wide default (`--entity-default`).
        RESOURCE_BROKER if name.is_empty() || name == broker_id.to_string() => {
            Change::BrokerConfigs {
                scope: name,
                edits,
                replace,
                validate_only,
            }
        }
        RESOURCE_BROKER => {
            return Err((
                ResponseError::InvalidRequest,
                format!("broker {name} is not this broker ({broker_id})"),
            ))
        }
        RESOURCE_GROUP => Change::GroupConfigs {
            group: name,
            edits,
            replace,
            validate_only,
        },
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("configs of resource type {other} cannot be altered here"),
            ))
        }
    };
    controller::submit(change)
        .await
        .pop()
        .map_or(Ok(()), |(_, r)| r.map(|_| ()))
}

fn error_fields(r: &Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match r {
        Ok(()) => (0, None),
        Err((e, m)) => (e.code(), Some(StrBytes::from_string(m.clone()))),
    }
}

pub async fn alter(broker_id: i32, req: AlterConfigsRequest) -> ResponseKind {
    let mut out = Vec::new();
    for r in req.resources {
        let edits = Ok(r
            .configs
            .iter()
            .map(|c| {
                let edit = match &c.value {
                    Some(v) => ConfigEdit::Set(v.to_string()),
                    None => ConfigEdit::Delete,
                };
                (c.name.to_string(), edit)
            })
            .collect());
        let res = apply(
            broker_id,
            r.resource_type,
            r.resource_name.to_string(),
            edits,
            true,
            req.validate_only,
        )
        .await;
        let (code, msg) = error_fields(&res);
        out.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(msg),
        );
    }
    ResponseKind::AlterConfigs(AlterConfigsResponse::default().with_responses(out))
}

pub async fn incremental(broker_id: i32, req: IncrementalAlterConfigsRequest) -> ResponseKind {
    let mut out = Vec::new();
    for r in req.resources {
        let edits: Result<Vec<_>, ApiError> = r
            .configs
            .iter()
            .map(|c| {
                let value = c.value.as_ref().map_or(String::new(), |v| v.to_string());
                let edit = match c.config_operation {
                    OP_SET => ConfigEdit::Set(value),
                    OP_DELETE => ConfigEdit::Delete,
                    OP_APPEND => ConfigEdit::Append(value),
                    OP_SUBTRACT => ConfigEdit::Subtract(value),
                    op => {
                        return Err((
                            ResponseError::InvalidRequest,
                            format!("unknown config operation {op} for {}", c.name),
                        ))
                    }
                };
                Ok((c.name.to_string(), edit))
            })
            .collect();
        let res = apply(
            broker_id,
            r.resource_type,
            r.resource_name.to_string(),
            edits,
            false,
            req.validate_only,
        )
        .await;
        let (code, msg) = error_fields(&res);
        out.push(
            inc::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(msg),
        );
    }
    ResponseKind::IncrementalAlterConfigs(
        inc::IncrementalAlterConfigsResponse::default().with_responses(out),
    )
}
