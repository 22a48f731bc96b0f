use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::State;
use crate::cluster::topic_config::{broker_overrides, default_value};
use crate::cluster::topic_keys::{config_source, TOPIC_KEYS};

/// (name, value, source, read_only, config type)
type Entry = (String, String, i8, bool, i8);

pub async fn handle(state: &State, req: DescribeConfigsRequest, version: i16) -> ResponseKind {
    let catalog = state.catalog();
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let name = r.resource_name.to_string();
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .map(|k| k.iter().map(|s| s.to_string()).collect());
            let wanted = |k: &str| keys.as_ref().is_none_or(|ks| ks.iter().any(|x| x == k));
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            let entries: Result<Vec<Entry>, (ResponseError, String)> = match r.resource_type {
                RESOURCE_TOPIC => match catalog.topics.get(&name) {
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic '{name}' does not exist"),
                    )),
                    Some(t) => Ok(TOPIC_KEYS
                        .iter()
                        .filter(|k| wanted(k.name))
                        .map(|k| {
                            let kind = k.kind.wire_id();
                            match t.configs.get(k.name) {
                                Some(v) => (
                                    k.name.to_string(),
                                    v.clone(),
                                    config_source::TOPIC_CONFIG,
                                    false,
                                    kind,
                                ),
                                None => (
                                    k.name.to_string(),
                                    default_value(k.name, &state.cfg),
                                    if broker_overrides(k.name, &state.cfg) {
                                        config_source::STATIC_BROKER_CONFIG
                                    } else {
                                        config_source::DEFAULT_CONFIG
                                    },
                                    false,
                                    kind,
                                ),
                            }
                        })
                        .collect()),
                },
                RESOURCE_BROKER if name.is_empty() || name == state.cfg.broker_id.to_string() => {
                    Ok(TOPIC_KEYS
                        .iter()
                        .filter_map(|k| Some((k, k.broker_key?)))
                        .filter(|(_, bk)| wanted(bk))
                        .map(|(k, bk)| {
                            (
                                bk.to_string(),
                                default_value(k.name, &state.cfg),
                                if broker_overrides(k.name, &state.cfg) {
                                    config_source::STATIC_BROKER_CONFIG
                                } else {
                                    config_source::DEFAULT_CONFIG
                                },
                                true,
                                k.kind.wire_id(),
                            )
                        })
                        .collect())
                }
                RESOURCE_BROKER => Err((
                    ResponseError::InvalidRequest,
                    format!("no broker {name} here"),
                )),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            match entries {
                Ok(list) => base.with_configs(
                    list.into_iter()
                        .map(|(k, v, source, read_only, kind)| {
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_string(k))
                                .with_read_only(read_only)
                                .with_config_source(source);
                            if version >= 3 {
                                c = c.with_config_type(kind);
                            }
                            c.with_value(Some(StrBytes::from_string(v)))
                        })
                        .collect(),
                ),
                Err((e, msg)) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(StrBytes::from_string(msg))),
            }
        })
        .collect();
    ResponseKind::DescribeConfigs(DescribeConfigsResponse::default().with_results(results))
}
