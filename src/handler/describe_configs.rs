use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::configs::{RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};
use crate::broker::State;
use crate::cluster::catalog::CLUSTER_DEFAULT;
use crate::cluster::topic_config::{broker_overrides, default_value};
use crate::cluster::topic_keys::{config_source, Kind, TOPIC_KEYS};
use crate::config::{BrokerConfig, DYNAMIC_BROKER_KEYS};

/// Where a broker-level value comes from: this broker's dynamic configs,
/// the cluster-wide dynamic default, the static file, or Kafka's default.
fn broker_source(
    catalog: &crate::cluster::Catalog,
    broker_id: i32,
    broker_key: Option<&str>,
    static_differs: bool,
) -> i8 {
    let dynamic = |scope: &str| {
        broker_key.is_some_and(|bk| {
            catalog
                .broker_configs
                .get(scope)
                .is_some_and(|m| m.contains_key(bk))
        })
    };
    if dynamic(&broker_id.to_string()) {
        config_source::DYNAMIC_BROKER_CONFIG
    } else if dynamic(CLUSTER_DEFAULT) {
        config_source::DYNAMIC_DEFAULT_BROKER_CONFIG
    } else if static_differs {
        config_source::STATIC_BROKER_CONFIG
    } else {
        config_source::DEFAULT_CONFIG
    }
}

/// The type of a broker key (that of the topic key it is the default of).
fn broker_key_type(bk: &str) -> i8 {
    TOPIC_KEYS
        .iter()
        .find(|k| k.broker_key == Some(bk))
        .map_or(Kind::Long.wire_id(), |k| k.kind.wire_id())
}

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
                                None => {
                                    let source = broker_source(
                                        &catalog,
                                        state.cfg.broker_id,
                                        k.broker_key,
                                        broker_overrides(k.name, &state.cfg),
                                    );
                                    (
                                        k.name.to_string(),
                                        default_value(k.name, &state.effective_cfg()),
                                        source,
                                        false,
                                        kind,
                                    )
                                }
                            }
                        })
                        .collect()),
                },
                RESOURCE_BROKER if name.is_empty() => {
                    // The cluster-wide dynamic defaults, as Kafka lists them.
                    Ok(catalog
                        .broker_configs
                        .get(CLUSTER_DEFAULT)
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.clone(),
                                config_source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                                false,
                                broker_key_type(k),
                            )
                        })
                        .collect())
                }
                RESOURCE_BROKER if name == state.cfg.broker_id.to_string() => {
                    let effective = state.effective_cfg();
                    let stock = BrokerConfig::default();
                    let source = |bk: &str, static_differs: bool| {
                        broker_source(&catalog, state.cfg.broker_id, Some(bk), static_differs)
                    };
                    let mut list: Vec<Entry> = TOPIC_KEYS
                        .iter()
                        .filter_map(|k| Some((k, k.broker_key?)))
                        .filter(|(_, bk)| wanted(bk))
                        .map(|(k, bk)| {
                            let differs =
                                default_value(k.name, &state.cfg) != default_value(k.name, &stock);
                            (
                                bk.to_string(),
                                default_value(k.name, &effective),
                                source(bk, differs),
                                !DYNAMIC_BROKER_KEYS.contains(&bk),
                                k.kind.wire_id(),
                            )
                        })
                        .collect();
                    let pid = "producer.id.expiration.ms";
                    if wanted(pid) {
                        let ms = |c: &BrokerConfig| c.log.producer_id_expiration_ms;
                        list.push((
                            pid.to_string(),
                            ms(&effective).to_string(),
                            source(pid, ms(&state.cfg) != ms(&stock)),
                            false,
                            Kind::Int.wire_id(),
                        ));
                    }
                    Ok(list)
                }
                RESOURCE_GROUP if !name.is_empty() => {
                    use crate::group::{GROUP_HEARTBEAT_INTERVAL, GROUP_SESSION_TIMEOUT};
                    let set = catalog.group_configs.get(&name);
                    let g = state.cfg.groups.consumer_group();
                    let defaults = [
                        (GROUP_SESSION_TIMEOUT, g.session_timeout_ms.to_string()),
                        (
                            GROUP_HEARTBEAT_INTERVAL,
                            g.heartbeat_interval_ms.to_string(),
                        ),
                    ];
                    Ok(defaults
                        .into_iter()
                        .filter(|(k, _)| wanted(k))
                        .map(|(k, default)| match set.and_then(|m| m.get(k)) {
                            Some(v) => (
                                k.to_string(),
                                v.clone(),
                                config_source::GROUP_CONFIG,
                                false,
                                Kind::Int.wire_id(),
                            ),
                            None => (
                                k.to_string(),
                                default,
                                config_source::DEFAULT_CONFIG,
                                false,
                                Kind::Int.wire_id(),
                            ),
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
