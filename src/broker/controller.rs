//! Catalogue changes. They run on shard 0 (the controller): the edit is
//! validated on a copy of the catalogue, its records are committed to the
//! metadata log, and every shard adopts the new version before the caller is
//! answered.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::metadata::CommitError;
use super::state::{local, ShardState};
use crate::cluster::catalog::valid_topic_name;
use crate::cluster::catalog::{PartitionMeta, NO_LEADER};
use crate::cluster::controller_rpc::ControllerReply;
use crate::cluster::leadership::{self, Election, NotElected};
use crate::cluster::records;
use crate::cluster::{placement, topic_config, Catalog, TopicMeta};
use crate::quorum::QuorumError;
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

#[derive(Clone, Debug)]
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
        /// Manual placement of the new partitions, in order, or empty.
        assignments: Vec<Vec<i32>>,
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
    /// A partition leader's new ISR (Kafka's AlterPartition): made only if
    /// the leader, its epoch and the partition epoch are still current, so
    /// a deposed leader cannot rewrite it.
    AlterIsr {
        topic: String,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<i32>,
    },
    /// Elect leaders (ElectLeaders): one result per partition, named after
    /// its topic, in order.
    Elect {
        election: Election,
        partitions: Vec<(String, i32)>,
    },
    /// Start, replace or (target None) cancel partition reassignments
    /// (AlterPartitionReassignments): one result per partition, named after
    /// its topic, in order.
    Reassign {
        partitions: Vec<(String, i32, Option<Vec<i32>>)>,
        /// KIP-860: false refuses a target of another replication factor.
        allow_rf_change: bool,
    },
}

/// How a change travels to the quorum leader (`ControllerRequest::Change`).
mod wire {
    use bytes::{Buf, BufMut};

    pub fn put_str(b: &mut Vec<u8>, s: &str) {
        b.put_u32(s.len() as u32);
        b.put_slice(s.as_bytes());
    }

    pub fn put_bool(b: &mut Vec<u8>, v: bool) {
        b.put_u8(v as u8);
    }

    /// Reads what `put_*` wrote; None once anything is missing.
    pub struct Reader<'a>(pub &'a [u8]);

    impl Reader<'_> {
        fn take(&mut self, n: usize) -> Option<&[u8]> {
            if self.0.len() < n {
                return None;
            }
            let (h, t) = self.0.split_at(n);
            self.0 = t;
            Some(h)
        }
        pub fn u8(&mut self) -> Option<u8> {
            self.take(1).map(|b| b[0])
        }
        pub fn bool(&mut self) -> Option<bool> {
            self.u8().map(|v| v != 0)
        }
        pub fn i16(&mut self) -> Option<i16> {
            self.take(2).map(|mut b| b.get_i16())
        }
        pub fn i32(&mut self) -> Option<i32> {
            self.take(4).map(|mut b| b.get_i32())
        }
        pub fn len(&mut self) -> Option<usize> {
            let n = self.take(4).map(|mut b| b.get_u32() as usize)?;
            // No count larger than the bytes left can be true.
            (n <= self.0.len()).then_some(n)
        }
        pub fn str(&mut self) -> Option<String> {
            let n = self.len()?;
            String::from_utf8(self.take(n)?.to_vec()).ok()
        }
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

/// A scope's name, its edits, replace, validate_only.
type NamedEdits = (String, Vec<(String, ConfigEdit)>, bool, bool);

impl ConfigEdit {
    fn encode(&self, b: &mut Vec<u8>) {
        use bytes::BufMut;
        let (tag, v) = match self {
            ConfigEdit::Set(v) => (0, v.as_str()),
            ConfigEdit::Delete => (1, ""),
            ConfigEdit::Append(v) => (2, v.as_str()),
            ConfigEdit::Subtract(v) => (3, v.as_str()),
        };
        b.put_u8(tag);
        wire::put_str(b, v);
    }

    fn decode(r: &mut wire::Reader) -> Option<Self> {
        let (tag, v) = (r.u8()?, r.str()?);
        Some(match tag {
            0 => ConfigEdit::Set(v),
            1 => ConfigEdit::Delete,
            2 => ConfigEdit::Append(v),
            3 => ConfigEdit::Subtract(v),
            _ => return None,
        })
    }
}

impl Change {
    pub fn encode(&self) -> Vec<u8> {
        use bytes::BufMut;
        use wire::{put_bool, put_str};
        let mut b = Vec::new();
        let edits = |b: &mut Vec<u8>,
                     name: &str,
                     edits: &[(String, ConfigEdit)],
                     replace: bool,
                     validate_only: bool| {
            put_str(b, name);
            b.put_u32(edits.len() as u32);
            for (k, e) in edits {
                put_str(b, k);
                e.encode(b);
            }
            put_bool(b, replace);
            put_bool(b, validate_only);
        };
        match self {
            Change::Create {
                specs,
                validate_only,
            } => {
                b.put_u8(1);
                b.put_u32(specs.len() as u32);
                for s in specs {
                    put_str(&mut b, &s.name);
                    b.put_i32(s.partitions);
                    b.put_i16(s.replication_factor);
                    b.put_u32(s.assignments.len() as u32);
                    for (p, brokers) in &s.assignments {
                        b.put_i32(*p);
                        b.put_u32(brokers.len() as u32);
                        for id in brokers {
                            b.put_i32(*id);
                        }
                    }
                    b.put_u32(s.configs.len() as u32);
                    for (k, v) in &s.configs {
                        put_str(&mut b, k);
                        put_str(&mut b, v);
                    }
                }
                put_bool(&mut b, *validate_only);
            }
            Change::Delete { names } => {
                b.put_u8(2);
                b.put_u32(names.len() as u32);
                for n in names {
                    put_str(&mut b, n);
                }
            }
            Change::AddPartitions {
                topic,
                total,
                assignments,
                validate_only,
            } => {
                b.put_u8(3);
                put_str(&mut b, topic);
                b.put_i32(*total);
                put_bool(&mut b, *validate_only);
                // Last and only when given: a broker of the version before
                // assignments reads the same bytes as it always did.
                if !assignments.is_empty() {
                    b.put_u32(assignments.len() as u32);
                    for brokers in assignments {
                        b.put_u32(brokers.len() as u32);
                        for id in brokers {
                            b.put_i32(*id);
                        }
                    }
                }
            }
            Change::BrokerConfigs {
                scope,
                edits: e,
                replace,
                validate_only,
            } => {
                b.put_u8(4);
                edits(&mut b, scope, e, *replace, *validate_only);
            }
            Change::GroupConfigs {
                group,
                edits: e,
                replace,
                validate_only,
            } => {
                b.put_u8(5);
                edits(&mut b, group, e, *replace, *validate_only);
            }
            Change::Configs {
                topic,
                edits: e,
                replace,
                validate_only,
            } => {
                b.put_u8(6);
                edits(&mut b, topic, e, *replace, *validate_only);
            }
            Change::AlterIsr {
                topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => {
                b.put_u8(7);
                put_str(&mut b, topic);
                for v in [*partition, *leader, *leader_epoch, *partition_epoch] {
                    b.put_i32(v);
                }
                b.put_u32(isr.len() as u32);
                for r in isr {
                    b.put_i32(*r);
                }
            }
            Change::Elect {
                election,
                partitions,
            } => {
                b.put_u8(8);
                b.put_u8(match election {
                    Election::Preferred => 0,
                    Election::Unclean => 1,
                });
                b.put_u32(partitions.len() as u32);
                for (t, p) in partitions {
                    put_str(&mut b, t);
                    b.put_i32(*p);
                }
            }
            Change::Reassign {
                partitions,
                allow_rf_change,
            } => {
                b.put_u8(9);
                put_bool(&mut b, *allow_rf_change);
                b.put_u32(partitions.len() as u32);
                for (t, p, target) in partitions {
                    put_str(&mut b, t);
                    b.put_i32(*p);
                    match target {
                        None => put_bool(&mut b, false),
                        Some(ids) => {
                            put_bool(&mut b, true);
                            b.put_u32(ids.len() as u32);
                            for id in ids {
                                b.put_i32(*id);
                            }
                        }
                    }
                }
            }
        }
        b
    }

    pub fn decode(bytes: &[u8]) -> Option<Change> {
        let mut r = wire::Reader(bytes);
        let r = &mut r;
        let edits = |r: &mut wire::Reader| -> Option<NamedEdits> {
            let name = r.str()?;
            let n = r.len()?;
            let mut e = Vec::with_capacity(n);
            for _ in 0..n {
                e.push((r.str()?, ConfigEdit::decode(r)?));
            }
            Some((name, e, r.bool()?, r.bool()?))
        };
        let change = match r.u8()? {
            1 => {
                let n = r.len()?;
                let mut specs = Vec::with_capacity(n);
                for _ in 0..n {
                    let name = r.str()?;
                    let partitions = r.i32()?;
                    let replication_factor = r.i16()?;
                    let na = r.len()?;
                    let mut assignments = Vec::with_capacity(na);
                    for _ in 0..na {
                        let p = r.i32()?;
                        let nb = r.len()?;
                        let brokers = (0..nb).map(|_| r.i32()).collect::<Option<Vec<_>>>()?;
                        assignments.push((p, brokers));
                    }
                    let nc = r.len()?;
                    let configs = (0..nc)
                        .map(|_| Some((r.str()?, r.str()?)))
                        .collect::<Option<Vec<_>>>()?;
                    specs.push(TopicSpec {
                        name,
                        partitions,
                        replication_factor,
                        assignments,
                        configs,
                    });
                }
                Change::Create {
                    specs,
                    validate_only: r.bool()?,
                }
            }
            2 => {
                let n = r.len()?;
                Change::Delete {
                    names: (0..n).map(|_| r.str()).collect::<Option<_>>()?,
                }
            }
            3 => {
                let topic = r.str()?;
                let total = r.i32()?;
                let validate_only = r.bool()?;
                let mut assignments = Vec::new();
                if !r.is_empty() {
                    let n = r.len()?;
                    for _ in 0..n {
                        let nb = r.len()?;
                        assignments.push((0..nb).map(|_| r.i32()).collect::<Option<Vec<_>>>()?);
                    }
                }
                Change::AddPartitions {
                    topic,
                    total,
                    assignments,
                    validate_only,
                }
            }
            4 => {
                let (scope, edits, replace, validate_only) = edits(r)?;
                Change::BrokerConfigs {
                    scope,
                    edits,
                    replace,
                    validate_only,
                }
            }
            5 => {
                let (group, edits, replace, validate_only) = edits(r)?;
                Change::GroupConfigs {
                    group,
                    edits,
                    replace,
                    validate_only,
                }
            }
            7 => {
                let topic = r.str()?;
                let (partition, leader, leader_epoch, partition_epoch) =
                    (r.i32()?, r.i32()?, r.i32()?, r.i32()?);
                let n = r.len()?;
                Change::AlterIsr {
                    topic,
                    partition,
                    leader,
                    leader_epoch,
                    partition_epoch,
                    isr: (0..n).map(|_| r.i32()).collect::<Option<_>>()?,
                }
            }
            6 => {
                let (topic, edits, replace, validate_only) = edits(r)?;
                Change::Configs {
                    topic,
                    edits,
                    replace,
                    validate_only,
                }
            }
            8 => {
                let election = match r.u8()? {
                    0 => Election::Preferred,
                    1 => Election::Unclean,
                    _ => return None,
                };
                let n = r.len()?;
                Change::Elect {
                    election,
                    partitions: (0..n)
                        .map(|_| Some((r.str()?, r.i32()?)))
                        .collect::<Option<_>>()?,
                }
            }
            9 => {
                let allow_rf_change = r.bool()?;
                let n = r.len()?;
                let mut partitions = Vec::with_capacity(n);
                for _ in 0..n {
                    let (t, p) = (r.str()?, r.i32()?);
                    let target = if r.bool()? {
                        let nb = r.len()?;
                        Some((0..nb).map(|_| r.i32()).collect::<Option<Vec<_>>>()?)
                    } else {
                        None
                    };
                    partitions.push((t, p, target));
                }
                Change::Reassign {
                    partitions,
                    allow_rf_change,
                }
            }
            _ => return None,
        };
        r.is_empty().then_some(change)
    }
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

/// Edits made against metadata that moved on are made again, this often.
const MAX_EDIT_ATTEMPTS: usize = 5;

type Results = Vec<(String, Result<TopicMeta, ApiError>)>;

async fn apply_on_controller(change: Change) -> Results {
    let state = local();
    let Some(plane) = super::metadata::plane() else {
        let results = edit(&state, &mut (*state.catalog()).clone(), change);
        return fail_all(
            results,
            ResponseError::NotController,
            "no metadata quorum on this shard",
        );
    };
    if plane.is_leader() {
        return commit_change(&state, &plane, change).await.0;
    }
    // Another broker leads: validate here (nothing to send if nothing would
    // change), then have the leader make the change against its metadata,
    // as Kafka forwards admin requests to the active controller.
    let local_results = {
        let current = state.catalog();
        let mut next = (*current).clone();
        // A reassignment is always decided by the leader: against an image
        // that lags, "nothing to change" could answer a move back to the
        // current replicas (or a cancel) wrongly.
        let decide_here = !matches!(change, Change::Reassign { .. });
        let results = edit(&state, &mut next, change.clone());
        if decide_here
            && (records::diff(&current, &next).is_empty()
                || results.iter().all(|(_, r)| r.is_err()))
        {
            return results;
        }
        results
    };
    match plane.forward_change(change.encode()).await {
        Ok((_, errors)) => {
            let image = state.catalog();
            local_results
                .into_iter()
                .zip(errors.into_iter().chain(std::iter::repeat(None)))
                .map(|((name, local), err)| match err {
                    Some((code, msg)) => (name, Err((code_of(code), msg))),
                    // The leader's result, as this broker now holds it.
                    None => {
                        let meta = match local {
                            Ok(m) if m.id.is_nil() => m,
                            local => image
                                .topics
                                .get(&name)
                                .cloned()
                                .or(local.ok())
                                .unwrap_or_default(),
                        };
                        (name, Ok(meta))
                    }
                })
                .collect()
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin change not forwarded to the quorum leader");
            fail_with(local_results, e)
        }
    }
}

fn code_of(code: i16) -> ResponseError {
    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
}

/// On the quorum leader, for another broker: make the change it forwarded.
pub async fn serve_forwarded(from: u64, payload: Vec<u8>) -> ControllerReply {
    let Some(change) = Change::decode(&payload) else {
        tracing::warn!(from, "malformed forwarded admin change");
        return ControllerReply::Failed {
            code: ResponseError::InvalidRequest.code(),
            message: "malformed forwarded admin change".into(),
        };
    };
    let state = local();
    let Some(plane) = super::metadata::plane() else {
        return ControllerReply::Failed {
            code: ResponseError::NotController.code(),
            message: "no metadata quorum".into(),
        };
    };
    let (results, index) = commit_change(&state, &plane, change).await;
    ControllerReply::Applied {
        index,
        errors: results
            .into_iter()
            .map(|(_, r)| r.err().map(|(code, msg)| (code.code(), msg)))
            .collect(),
    }
}

/// On the quorum leader: edit the newest metadata and commit the records;
/// the results, and the metadata version holding them.
async fn commit_change(
    state: &ShardState,
    plane: &super::metadata::MetadataPlane,
    change: Change,
) -> (Results, u64) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let guard = state.controller_lock.lock().await;
        // Edit the newest image: what earlier leaders committed first.
        let _ = plane.catch_up().await;
        let current = state.catalog();
        let mut next = (*current).clone();
        let results = edit(state, &mut next, change.clone());
        let recs = records::diff(&current, &next);
        if recs.is_empty() || results.iter().all(|(_, r)| r.is_err()) {
            return (results, current.version);
        }
        let outcome = plane.commit(recs).await;
        drop(guard);
        return match outcome {
            Ok((index, None)) => (results, index),
            // The change is recorded, but a shard could not act on it (e.g.
            // open the new partitions): the caller must not be told it worked.
            Ok((index, Some(e))) => (
                fail_all(
                    results,
                    ResponseError::KafkaStorageError,
                    &format!("the change was recorded but not applied on every shard: {e}"),
                ),
                index,
            ),
            // The image moved under the edit (this node just became leader):
            // edit again.
            Err(CommitError::Stale(_)) if attempt < MAX_EDIT_ATTEMPTS => continue,
            Err(e) => (fail_with(results, e), state.catalog().version),
        };
    }
}

/// Every item that had succeeded fails with the Kafka error for `e`.
fn fail_with(results: Results, e: CommitError) -> Results {
    let code = match &e {
        CommitError::Stale(_) => {
            tracing::warn!("metadata edit given up: {e}");
            ResponseError::NotController
        }
        CommitError::TimedOut(_) | CommitError::Quorum(QuorumError::TimedOut(_)) => {
            ResponseError::RequestTimedOut
        }
        CommitError::Quorum(QuorumError::NotLeader { .. } | QuorumError::Busy) => {
            ResponseError::NotController
        }
        CommitError::Quorum(_) => ResponseError::KafkaStorageError,
        CommitError::Remote(code, _) => code_of(*code),
    };
    fail_all(results, code, &e.to_string())
}

/// Every item that had succeeded gets this error instead.
fn fail_all(
    results: Vec<(String, Result<TopicMeta, ApiError>)>,
    code: ResponseError,
    msg: &str,
) -> Vec<(String, Result<TopicMeta, ApiError>)> {
    results
        .into_iter()
        .map(|(n, r)| (n, r.and(Err((code, msg.to_string())))))
        .collect()
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
        Change::AddPartitions {
            topic,
            total,
            assignments,
            ..
        } => {
            let live = target.live_brokers();
            let registered: Vec<i32> = target.brokers.keys().copied().collect();
            let r = match target.topics.get_mut(&topic) {
                None => Err((ResponseError::UnknownTopicOrPartition, format!("Topic '{topic}' does not exist"))),
                Some(t) if total <= t.partitions => Err((
                    ResponseError::InvalidPartitions,
                    format!("Topic currently has {} partitions, which is higher than the requested {total}.", t.partitions),
                )),
                Some(t) if !assignments.is_empty() => {
                    add_partitions_on(t, total, assignments, &live, &registered)
                }
                Some(t) => add_partitions(t, total, &live),
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
        Change::AlterIsr {
            topic,
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            isr,
        } => {
            let live = target.live_brokers();
            let r = alter_isr(
                target,
                &topic,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
                &live,
            );
            vec![(topic, r)]
        }
        Change::Elect {
            election,
            partitions,
        } => partitions
            .into_iter()
            .map(|(topic, partition)| {
                let r = elect(target, &topic, partition, election);
                (topic, r)
            })
            .collect(),
        Change::Reassign {
            partitions,
            allow_rf_change,
        } => partitions
            .into_iter()
            .map(|(topic, partition, to)| {
                let r = reassign(state, target, &topic, partition, to, allow_rf_change);
                (topic, r)
            })
            .collect(),
    }
}

/// One partition's reassignment (or its cancel), with Kafka's errors.
fn reassign(
    state: &ShardState,
    c: &mut Catalog,
    topic: &str,
    partition: i32,
    to: Option<Vec<i32>>,
    allow_rf_change: bool,
) -> Result<TopicMeta, ApiError> {
    use crate::cluster::reassignment::{self, Refused};
    let live = c.live_brokers();
    let registered: Vec<i32> = c.brokers.keys().copied().collect();
    let default = state
        .effective_cfg()
        .replication
        .unclean_leader_election_enable;
    let unclean = c.topics.get(topic).is_some_and(|t| {
        t.configs
            .get("unclean.leader.election.enable")
            .map_or(default, |v| v.eq_ignore_ascii_case("true"))
    });
    let Some(p) = c.topics.get_mut(topic).and_then(|t| {
        usize::try_from(partition)
            .ok()
            .and_then(|i| t.parts.get_mut(i))
    }) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find partition {topic}:{partition}."),
        ));
    };
    let before = p.clone();
    let r = match &to {
        Some(target) => reassignment::start(p, target, &registered, &live, allow_rf_change),
        None => reassignment::cancel(p, &live, unclean),
    };
    match r {
        Ok(()) => {
            if *p != before {
                tracing::info!(topic, partition, replicas = ?p.replicas, adding = ?p.adding,
                    removing = ?p.removing, leader = p.leader,
                    "{}", if to.is_some() { "partition reassignment" } else { "partition reassignment cancelled" });
            }
            // A stand-in, as for elections: nobody reads the topic back.
            Ok(TopicMeta {
                name: topic.to_string(),
                ..Default::default()
            })
        }
        Err(Refused::Invalid(m)) => Err((ResponseError::InvalidReplicaAssignment, m)),
        Err(Refused::ReplicationFactor(m)) => Err((ResponseError::InvalidReplicationFactor, m)),
        Err(Refused::NoneInProgress) => Err((
            ResponseError::NoReassignmentInProgress,
            "No partition reassignment is in progress for the topic partition.".into(),
        )),
    }
}

/// One partition's election, with Kafka's error for each way it elects no one.
fn elect(
    c: &mut Catalog,
    topic: &str,
    partition: i32,
    election: Election,
) -> Result<TopicMeta, ApiError> {
    match leadership::elect(c, topic, partition, election) {
        Ok(e) => {
            if e.unclean {
                tracing::warn!(topic, partition, leader = e.leader,
                    "unclean leader election requested: an out-of-sync replica leads; records only the old in-sync replicas held are lost");
            }
            // A stand-in: nobody reads the topic back, and cloning it per
            // partition would make electing all partitions quadratic.
            Ok(TopicMeta {
                name: topic.to_string(),
                ..Default::default()
            })
        }
        Err(NotElected::NotNeeded) => Err((
            ResponseError::ElectionNotNeeded,
            "Leader election not needed for topic partition.".into(),
        )),
        Err(NotElected::PreferredNotAvailable) => Err((
            ResponseError::PreferredLeaderNotAvailable,
            format!("Failed to elect leader for partition {topic}-{partition} under strategy PreferredReplicaPartitionLeaderElectionStrategy"),
        )),
        Err(NotElected::EligibleNotAvailable) => Err((
            ResponseError::EligibleLeadersNotAvailable,
            format!("Failed to elect leader for partition {topic}-{partition} under strategy OfflinePartitionLeaderElectionStrategy(true)"),
        )),
        Err(NotElected::Unknown) => Err((
            ResponseError::UnknownTopicOrPartition,
            format!("The partition {topic}-{partition} does not exist."),
        )),
    }
}

/// Kafka's AlterPartition checks, in its order: the partition exists, the
/// request comes from its current leader in its current epoch, the
/// partition epoch is current, and the new ISR is made of live replicas
/// that include the leader.
#[allow(clippy::too_many_arguments)]
fn alter_isr(
    c: &mut Catalog,
    topic: &str,
    partition: i32,
    leader: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: Vec<i32>,
    live: &[i32],
) -> Result<TopicMeta, ApiError> {
    let Some(t) = c.topics.get_mut(topic) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{topic}' does not exist"),
        ));
    };
    let Some(p) = t.parts.get_mut(partition as usize) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("{topic}-{partition} does not exist"),
        ));
    };
    if p.leader != leader {
        return Err((
            ResponseError::NotLeaderOrFollower,
            format!(
                "broker {leader} does not lead {topic}-{partition} (leader {})",
                p.leader
            ),
        ));
    }
    if p.leader_epoch != leader_epoch {
        return Err((
            ResponseError::FencedLeaderEpoch,
            format!(
                "leader epoch {leader_epoch} of {topic}-{partition} is not the current {}",
                p.leader_epoch
            ),
        ));
    }
    if p.partition_epoch != partition_epoch {
        return Err((
            ResponseError::InvalidUpdateVersion,
            format!(
                "partition epoch {partition_epoch} of {topic}-{partition} is not the current {}",
                p.partition_epoch
            ),
        ));
    }
    if !isr.contains(&leader) || isr.iter().any(|r| !p.replicas.contains(r)) {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "ISR {isr:?} of {topic}-{partition} must be replicas {:?} including the leader",
                p.replicas
            ),
        ));
    }
    if let Some(r) = isr.iter().find(|r| !p.isr.contains(r) && !live.contains(r)) {
        return Err((ResponseError::IneligibleReplica, format!("replica {r} is fenced or not registered and cannot join the ISR of {topic}-{partition}")));
    }
    p.isr = isr;
    p.partition_epoch += 1;
    // The ISR a reassignment waited for: it completes now.
    if crate::cluster::reassignment::maybe_complete(p, live) {
        tracing::info!(topic, partition, replicas = ?p.replicas, leader = p.leader,
            "partition reassignment completed");
    }
    Ok(t.clone())
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
        configs: next,
        ..Default::default()
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
        configs: next,
        ..Default::default()
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
    if s.name == crate::cluster::catalog::METADATA_TOPIC {
        return Err((
            ResponseError::InvalidRequest,
            format!("Creation of internal topic {} is prohibited.", s.name),
        ));
    }
    if c.topics.contains_key(&s.name) {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("Topic '{}' already exists.", s.name),
        ));
    }
    if !s.assignments.is_empty() {
        check_assignments(&s, c)?;
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
    let live = c.live_brokers();
    let mut rf = rf;
    if s.name == crate::group::OFFSETS_TOPIC && rf as usize > live.len() && !live.is_empty() {
        // Kafka's default (3) would stop a small cluster from ever having
        // consumer groups: as the issue of a single broker asks, cap it.
        tracing::warn!(
            wanted = rf,
            brokers = live.len(),
            "{} created with replication factor {} (offsets.topic.replication.factor exceeds the live brokers)",
            s.name,
            live.len()
        );
        rf = live.len() as i16;
    }
    if rf as usize > live.len() {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.", live.len()),
        ));
    }
    let parts: Vec<PartitionMeta> = if s.assignments.is_empty() {
        let (start, shift) = placement::random_offsets();
        placement::assign(&live, 0, partitions, rf as usize, start, shift)
            .into_iter()
            .map(PartitionMeta::new)
            .collect()
    } else {
        s.assignments
            .iter()
            .map(|(_, replicas)| new_partition_on(replicas.clone(), &live))
            .collect()
    };
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
        parts,
    };
    c.topics.insert(s.name, meta.clone());
    Ok(meta)
}

/// New partitions of `t` up to `total`, placed as a new topic's would be
/// (continuing its partition numbering), with the topic's replication factor.
fn add_partitions(t: &mut TopicMeta, total: i32, live: &[i32]) -> Result<TopicMeta, ApiError> {
    let rf = t.parts.first().map_or(1, |p| p.replicas.len()).max(1);
    if rf > live.len() {
        return Err((
            ResponseError::InvalidReplicationFactor,
            format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.", live.len()),
        ));
    }
    let (start, shift) = placement::random_offsets();
    let added = placement::assign(live, t.partitions, total - t.partitions, rf, start, shift);
    t.parts.extend(added.into_iter().map(PartitionMeta::new));
    t.partitions = total;
    Ok(t.clone())
}

/// CreatePartitions with assignments: Kafka's checks, then each new
/// partition on its brokers.
fn add_partitions_on(
    t: &mut TopicMeta,
    total: i32,
    assignments: Vec<Vec<i32>>,
    live: &[i32],
    registered: &[i32],
) -> Result<TopicMeta, ApiError> {
    let bad = |m: String| Err((ResponseError::InvalidReplicaAssignment, m));
    let added = (total - t.partitions) as usize;
    if assignments.len() != added {
        return bad(format!("Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.", assignments.len()));
    }
    let rf = t.parts.first().map_or(0, |p| p.replicas.len());
    for brokers in &assignments {
        if brokers.is_empty() {
            return bad("The manual partition assignment includes an empty replica list.".into());
        }
        if rf > 0 && brokers.len() != rf {
            return bad(format!("The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).", brokers.len()));
        }
        for (i, b) in brokers.iter().enumerate() {
            if brokers[..i].contains(b) {
                return bad(format!(
                    "The manual partition assignment includes the broker {b} more than once."
                ));
            }
            if !registered.contains(b) {
                return bad(format!("The manual partition assignment includes broker {b}, but no such broker is registered."));
            }
        }
        if !brokers.iter().any(|b| live.contains(b)) {
            return bad(format!("All brokers specified in the manual partition assignment {brokers:?} are fenced or in controlled shutdown."));
        }
    }
    t.parts.extend(
        assignments
            .into_iter()
            .map(|brokers| new_partition_on(brokers, live)),
    );
    t.partitions = total;
    Ok(t.clone())
}

/// A partition on manually chosen replicas, led by the first that is live;
/// its live replicas are in sync (the log is empty).
fn new_partition_on(replicas: Vec<i32>, live: &[i32]) -> PartitionMeta {
    let isr: Vec<i32> = replicas
        .iter()
        .copied()
        .filter(|r| live.contains(r))
        .collect();
    let leader = isr.first().copied().unwrap_or(NO_LEADER);
    PartitionMeta {
        isr,
        leader,
        ..PartitionMeta::new(replicas)
    }
}

/// Kafka's checks of a manual replica assignment (ReplicationControlManager),
/// against the registered brokers.
fn check_assignments(s: &TopicSpec, c: &Catalog) -> Result<(), ApiError> {
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
            if !c.brokers.contains_key(b) {
                return bad(format!(
                    "The manual partition assignment includes broker {b}, but no such broker is registered."
                ));
            }
        }
        if !brokers.iter().any(|b| !c.brokers[b].fenced) {
            return bad(format!("All brokers specified in the manual partition assignment for partition {partition} are fenced or in controlled shutdown."));
        }
    }
    Ok(())
}

#[cfg(test)]
mod wire_tests {
    use super::*;

    fn same(a: &Change, b: &Change) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    #[test]
    fn changes_round_trip_and_cut_ones_are_refused() {
        let edits = vec![
            ("retention.ms".to_string(), ConfigEdit::Set("1000".into())),
            (
                "cleanup.policy".to_string(),
                ConfigEdit::Append("compact".into()),
            ),
            ("x".to_string(), ConfigEdit::Subtract("a,b".into())),
            ("y".to_string(), ConfigEdit::Delete),
        ];
        for c in [
            Change::Create {
                specs: vec![
                    TopicSpec {
                        name: "t".into(),
                        partitions: -1,
                        replication_factor: 3,
                        assignments: vec![],
                        configs: vec![("k".into(), "v".into())],
                    },
                    TopicSpec {
                        name: "u".into(),
                        partitions: -1,
                        replication_factor: -1,
                        assignments: vec![(0, vec![1, 2]), (1, vec![2, 3])],
                        configs: vec![],
                    },
                ],
                validate_only: true,
            },
            Change::Delete {
                names: vec!["a".into(), "b".into()],
            },
            Change::AddPartitions {
                topic: "t".into(),
                total: 9,
                assignments: vec![vec![1, 2], vec![3, 1]],
                validate_only: false,
            },
            Change::Elect {
                election: Election::Unclean,
                partitions: vec![("t".into(), 0), ("u".into(), 7)],
            },
            Change::Elect {
                election: Election::Preferred,
                partitions: vec![],
            },
            Change::Reassign {
                partitions: vec![("t".into(), 0, Some(vec![3, 1, 2])), ("u".into(), 2, None)],
                allow_rf_change: true,
            },
            Change::BrokerConfigs {
                scope: "".into(),
                edits: edits.clone(),
                replace: true,
                validate_only: false,
            },
            Change::GroupConfigs {
                group: "g ∆".into(),
                edits: edits.clone(),
                replace: false,
                validate_only: true,
            },
            Change::Configs {
                topic: "t".into(),
                edits,
                replace: false,
                validate_only: false,
            },
        ] {
            let bytes = c.encode();
            assert!(same(&Change::decode(&bytes).unwrap(), &c));
            for cut in 0..bytes.len() {
                // A cut may only ever decode as the older form of the same
                // change (AddPartitions without its optional assignments).
                if let Some(d) = Change::decode(&bytes[..cut]) {
                    let Change::AddPartitions { assignments, .. } = &d else {
                        panic!("cut at {cut} decoded as {d:?}");
                    };
                    assert!(assignments.is_empty(), "cut at {cut}");
                }
            }
        }
        assert!(Change::decode(&[9]).is_none());
    }
}
