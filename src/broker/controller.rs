//! Catalogue changes. They run on shard 0 (the controller), are persisted, and
//! then every shard adopts the new version before the caller is answered.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::ResponseError;

use super::state::{local, ShardState};
use crate::cluster::catalog::valid_topic_name;
use crate::cluster::{topic_config, Catalog, TopicMeta};
use crate::shard;

pub const CONTROLLER_SHARD: shard::ShardId = 0;

/// Kafka error code and message for one failed item.
pub type ApiError = (ResponseError, String);

#[derive(Clone, Debug)]
pub struct TopicSpec {
    pub name: String,
    /// -1: broker default (`num.partitions`).
    pub partitions: i32,
    /// -1: broker default (`default.replication.factor`).
    pub replication_factor: i16,
    /// Manual placement: (partition, broker ids), or empty.
    pub assignments: Vec<(i32, Vec<i32>)>,
    pub configs: Vec<(String, String)>,
}

/// One edit of a topic's config overrides (IncrementalAlterConfigs' ops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigEdit {
    Set(String),
    /// Back to the default.
    Delete,
    /// Add these values to a list-valued key (those not already there).
    Append(String),
    /// Remove these values from a list-valued key.
    Subtract(String),
}

pub enum Change {
    Create {
        specs: Vec<TopicSpec>,
        validate_only: bool,
    },
    Delete {
        names: Vec<String>,
    },
    AddPartitions {
        topic: String,
        total: i32,
        validate_only: bool,
    },
    /// Replace or edit dynamic broker configs of a scope (CLUSTER_DEFAULT
    /// or a broker id). The result's TopicMeta is a stand-in named after the
    /// scope, holding its new configs.
    BrokerConfigs {
        scope: String,
        edits: Vec<(String, ConfigEdit)>,
        replace: bool,
        validate_only: bool,
    },
    /// Replace or edit a KIP-848 group's configs (a stand-in TopicMeta
    /// named after the group holds its new configs).
    GroupConfigs {
        group: String,
        edits: Vec<(String, ConfigEdit)>,
        replace: bool,
        validate_only: bool,
    },
    /// Replace or edit a topic's overrides.
    Configs {
        topic: String,
        edits: Vec<(String, ConfigEdit)>,
        replace: bool,
        validate_only: bool,
    },
}

/// Apply a change through the controller; one result per item, in order.
pub async fn submit(change: Change) -> Vec<(String, Result<TopicMeta, ApiError>)> {
    shard::submit_to(CONTROLLER_SHARD, move || apply_on_controller(change))
        .await
        .unwrap_or_else(|e| {
            vec![(
                String::new(),
                Err((ResponseError::NotController, e.to_string())),
            )]
        })
}

async fn apply_on_controller(change: Change) -> Vec<(String, Result<TopicMeta, ApiError>)> {
    let state = local();
    let _guard = state.controller_lock.lock().await;
    let mut next = (*state.catalog()).clone();
    let results = edit(&state, &mut next, change);
    let changed = results.iter().any(|(_, r)| r.is_ok()) && next != *state.catalog();
    if !changed {
        return results;
    }
    next.version += 1;
    if let Err(e) = next.save(&state.cfg.log_dir) {
        let msg = format!("cannot persist cluster metadata: {e}");
        return results
            .into_iter()
            .map(|(n, _)| (n, Err((ResponseError::KafkaStorageError, msg.clone()))))
            .collect();
    }
    let mut apply_error = None;
    for s in 0..shard::count() {
        let c = next.clone();
        let r = shard::submit_to(s, move || async move {
            local()
                .apply_catalog(Rc::new(c))
                .await
                .map_err(|e| e.to_string())
        })
        .await;
        if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
            tracing::error!(shard = s, error = %e, "shard failed to apply metadata version {}", next.version);
            apply_error.get_or_insert(e);
        }
    }
    match apply_error {
        // The change is recorded, but a shard could not act on it (e.g. open
        // the new partitions): the caller must not be told it worked.
        Some(e) => results
            .into_iter()
            .map(|(n, r)| {
                let r = r.and(Err((
                    ResponseError::KafkaStorageError,
                    format!("the change was recorded but not applied on every shard: {e}"),
                )));
                (n, r)
            })
            .collect(),
        None => results,
    }
}

fn edit(
    state: &ShardState,
    c: &mut Catalog,
    change: Change,
) -> Vec<(String, Result<TopicMeta, ApiError>)> {
    let validate_only = matches!(
        change,
        Change::Create {
            validate_only: true,
            ..
        } | Change::AddPartitions {
            validate_only: true,
            ..
        } | Change::Configs {
            validate_only: true,
            ..
        } | Change::BrokerConfigs {
            validate_only: true,
            ..
        } | Change::GroupConfigs {
            validate_only: true,
            ..
        }
    );
    let mut scratch = c.clone();
    let target = if validate_only { &mut scratch } else { c };
    match change {
        Change::Create { specs, .. } => specs
            .into_iter()
            .map(|s| (s.name.clone(), create(state, target, s)))
            .collect(),
        Change::Delete { names } => names
            .into_iter()
            .map(|n| {
                let r = target.topics.remove(&n).ok_or((
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{n}' does not exist"),
                ));
                (n, r)
            })
            .collect(),
        Change::AddPartitions { topic, total, .. } => {
            let r = match target.topics.get_mut(&topic) {
                None => Err((ResponseError::UnknownTopicOrPartition, format!("Topic '{topic}' does not exist"))),
                Some(t) if total <= t.partitions => Err((
                    ResponseError::InvalidPartitions,
                    format!("Topic currently has {} partitions, which is higher than the requested {total}.", t.partitions),
                )),
                Some(t) => {
                    t.partitions = total;
                    Ok(t.clone())
                }
            };
            vec![(topic, r)]
        }
        Change::BrokerConfigs {
            scope,
            edits,
            replace,
            ..
        } => {
            let r = edit_broker_configs(state, target, &scope, edits, replace);
            vec![(scope, r)]
        }
        Change::GroupConfigs {
            group,
            edits,
            replace,
            ..
        } => {
            let r = edit_group_configs(state, target, &group, edits, replace);
            vec![(group, r)]
        }
        Change::Configs {
            topic,
            edits,
            replace,
            ..
        } => {
            let r = match target.topics.get_mut(&topic) {
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{topic}' does not exist"),
                )),
                Some(t) => edit_configs(&mut t.configs, edits, replace).map(|()| t.clone()),
            };
            vec![(topic, r)]
        }
    }
}

/// Apply config edits over `next`, Kafka's way. SET values and the results
/// of APPEND/SUBTRACT go through `check`; APPEND/SUBTRACT take list-valued
/// keys only, starting from the override or else `list_default(key)` (None:
/// not a list key, INVALID_CONFIG). Removing an absent override is no error,
/// whatever the name.
fn apply_edits(
    mut next: BTreeMap<String, String>,
    edits: Vec<(String, ConfigEdit)>,
    list_default: impl Fn(&str) -> Option<&'static str>,
    check: impl Fn(&str, &str) -> Result<(), ApiError>,
) -> Result<BTreeMap<String, String>, ApiError> {
    for (k, edit) in edits {
        let (values, append) = match edit {
            ConfigEdit::Set(v) => {
                check(&k, &v)?;
                next.insert(k, v);
                continue;
            }
            ConfigEdit::Delete => {
                next.remove(&k);
                continue;
            }
            ConfigEdit::Append(v) => (v, true),
            ConfigEdit::Subtract(v) => (v, false),
        };
        let op = if append { "APPEND" } else { "SUBTRACT" };
        let default = list_default(&k).ok_or_else(|| {
            (
                ResponseError::InvalidConfig,
                crate::cluster::topic_keys::not_list_message(op, &k),
            )
        })?;
        // As Kafka's controller: split on "," as sent.
        let current = next.get(&k).map_or(default, String::as_str);
        let mut list: Vec<String> = if current.is_empty() {
            Vec::new()
        } else {
            current.split(',').map(str::to_string).collect()
        };
        for v in values.split(',') {
            if append {
                if !list.iter().any(|x| x == v) {
                    list.push(v.to_string());
                }
            } else {
                list.retain(|x| x != v);
            }
        }
        let value = list.join(",");
        check(&k, &value)?;
        next.insert(k, value);
    }
    Ok(next)
}

/// Broker and group configs have no list-valued keys and are checked as a
/// whole afterwards.
fn plain_edits(
    next: BTreeMap<String, String>,
    edits: Vec<(String, ConfigEdit)>,
) -> Result<BTreeMap<String, String>, ApiError> {
    apply_edits(next, edits, |_| None, |_, _| Ok(()))
}

fn edit_group_configs(
    state: &ShardState,
    c: &mut Catalog,
    group: &str,
    edits: Vec<(String, ConfigEdit)>,
    replace: bool,
) -> Result<TopicMeta, ApiError> {
    if group.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            "a group config needs a group id".into(),
        ));
    }
    let current = if replace {
        BTreeMap::new()
    } else {
        c.group_configs.get(group).cloned().unwrap_or_default()
    };
    let next = plain_edits(current, edits)?;
    state
        .cfg
        .groups
        .validate_group_configs(&next)
        .map_err(|m| (ResponseError::InvalidConfig, m))?;
    if next.is_empty() {
        c.group_configs.remove(group);
    } else {
        c.group_configs.insert(group.to_string(), next.clone());
    }
    Ok(TopicMeta {
        name: group.to_string(),
        id: uuid::Uuid::nil(),
        partitions: 0,
        configs: next,
    })
}

fn edit_broker_configs(
    state: &ShardState,
    c: &mut Catalog,
    scope: &str,
    edits: Vec<(String, ConfigEdit)>,
    replace: bool,
) -> Result<TopicMeta, ApiError> {
    use crate::config::DynamicConfigError;
    let current = if replace {
        BTreeMap::new()
    } else {
        c.broker_configs.get(scope).cloned().unwrap_or_default()
    };
    let next = plain_edits(current, edits)?;
    // Checked as they will be applied: over the static config, every value.
    let pairs: Vec<(String, String)> = next.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    state.cfg.with_dynamic(&pairs).map_err(|e| match e {
        DynamicConfigError::NotDynamic(m) => (ResponseError::InvalidRequest, m),
        DynamicConfigError::Invalid(m) => (ResponseError::InvalidConfig, m),
    })?;
    if next.is_empty() {
        c.broker_configs.remove(scope);
    } else {
        c.broker_configs.insert(scope.to_string(), next.clone());
    }
    Ok(TopicMeta {
        name: scope.to_string(),
        id: uuid::Uuid::nil(),
        partitions: 0,
        configs: next,
    })
}

fn edit_configs(
    configs: &mut BTreeMap<String, String>,
    edits: Vec<(String, ConfigEdit)>,
    replace: bool,
) -> Result<(), ApiError> {
    use crate::cluster::topic_keys::{lookup, Kind};
    let start = if replace {
        BTreeMap::new()
    } else {
        configs.clone()
    };
    *configs = apply_edits(
        start,
        edits,
        // A topic's list keys start from the key's own default.
        |k| {
            lookup(k)
                .filter(|key| key.kind == Kind::List)
                .map(|key| key.default)
        },
        |k, v| topic_config::validate(k, v).map_err(|m| (ResponseError::InvalidConfig, m)),
    )?;
    Ok(())
}

fn create(state: &ShardState, c: &mut Catalog, s: TopicSpec) -> Result<TopicMeta, ApiError> {
    if !valid_topic_name(&s.name) {
        return Err((
            ResponseError::InvalidTopicException,
            format!(
                "Topic name '{}' is illegal: it must be 1-249 characters of [a-zA-Z0-9._-]",
                s.name
            ),
        ));
    }
    if c.topics.contains_key(&s.name) {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("Topic '{}' already exists.", s.name),
        ));
    }
    if !s.assignments.is_empty() {
        check_assignments(&s, state.cfg.broker_id)?;
    }
    let partitions = if !s.assignments.is_empty() {
        s.assignments.len() as i32
    } else if s.partitions == -1 {
        state.cfg.num_partitions
    } else {
        s.partitions
    };
    if partitions <= 0 {
        return Err((
            ResponseError::InvalidPartitions,
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    let rf = if !s.assignments.is_empty() {
        s.assignments[0].1.len() as i16
    } else if s.replication_factor == -1 {
        state.cfg.default_replication_factor
    } else {
        s.replication_factor
    };
    if rf <= 0 {
        return Err((
            ResponseError::InvalidReplicationFactor,
            "Replication factor must be larger than 0.".into(),
        ));
    }
    if rf > 1 {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered."),
        ));
    }
    let mut configs = BTreeMap::new();
    for (k, v) in s.configs {
        // Only the broker's own offsets topic may be compacted: it is written
        // by the coordinator alone, and its retention never deletes it.
        let internal_compact =
            s.name == crate::group::OFFSETS_TOPIC && k == "cleanup.policy" && v == "compact";
        if !internal_compact {
            topic_config::validate(&k, &v).map_err(|m| (ResponseError::InvalidConfig, m))?;
        }
        configs.insert(k, v);
    }
    let meta = TopicMeta {
        name: s.name.clone(),
        id: uuid::Uuid::new_v4(),
        partitions,
        configs,
    };
    c.topics.insert(s.name, meta.clone());
    Ok(meta)
}

/// Kafka's checks of a manual replica assignment (ReplicationControlManager),
/// against the brokers there are: here, this one.
fn check_assignments(s: &TopicSpec, broker_id: i32) -> Result<(), ApiError> {
    let bad = |m: String| Err((ResponseError::InvalidReplicaAssignment, m));
    if s.partitions != -1 || s.replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
        ));
    }
    let rf = s.assignments[0].1.len();
    for (expected, (partition, brokers)) in s.assignments.iter().enumerate() {
        if *partition != expected as i32 {
            return bad("Partitions should be a consecutive 0-based integer sequence".into());
        }
        if brokers.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        if brokers.len() != rf {
            return bad("All partitions in the manual partition assignment must have the same number of replicas.".into());
        }
        for (i, b) in brokers.iter().enumerate() {
            if brokers[..i].contains(b) {
                return bad(format!(
                    "The manual partition assignment includes the broker {b} more than once."
                ));
            }
            if *b != broker_id {
                return bad(format!(
                    "The manual partition assignment includes broker {b}, but no such broker is registered."
                ));
            }
        }
    }
    Ok(())
}
