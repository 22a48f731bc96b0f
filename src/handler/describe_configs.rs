use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::broker::State;
use crate::cluster::topic_config::{default_value, TOPIC_KEYS};

// Kafka's ConfigSource and ConfigType codes.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
const TYPE_STRING: i8 = 2;
const TYPE_LONG: i8 = 5;

/// (name, value, source, read_only)
type Entry = (String, String, i8, bool);

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
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, _)| match t.configs.get(*k) {
                            Some(v) => (k.to_string(), v.clone(), DYNAMIC_TOPIC_CONFIG, false),
                            None => (
                                k.to_string(),
                                default_value(k, &state.cfg),
                                DEFAULT_CONFIG,
                                false,
                            ),
                        })
                        .collect()),
                },
                RESOURCE_BROKER if name.is_empty() || name == state.cfg.broker_id.to_string() => {
                    Ok(TOPIC_KEYS
                        .iter()
                        .filter(|(_, bk)| wanted(bk))
                        .map(|(k, bk)| {
                            (
                                bk.to_string(),
                                default_value(k, &state.cfg),
                                STATIC_BROKER_CONFIG,
                                true,
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
                        .map(|(k, v, source, read_only)| {
                            let mut c = DescribeConfigsResourceResult::default()
                                .with_name(StrBytes::from_string(k))
                                .with_read_only(read_only)
                                .with_config_source(source);
                            if version >= 3 {
                                let numeric = v.parse::<i64>().is_ok();
                                c = c.with_config_type(if numeric {
                                    TYPE_LONG
                                } else {
                                    TYPE_STRING
                                });
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
