//! Topic administration: create/delete topics, add partitions, configs.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::error::{check_code, ClientError, Result};
use super::{Client, ConfigEntry, Target};

/// ConfigResource type id for topics.
const RESOURCE_TOPIC: i8 = 2;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

/// Per-partition items grouped by topic, topics in first-seen order (the
/// shape of every request that names partitions topic by topic).
fn by_topic<'a, P>(items: impl IntoIterator<Item = (&'a str, P)>) -> Vec<(&'a str, Vec<P>)> {
    let mut out: Vec<(&str, Vec<P>)> = Vec::new();
    for (t, p) in items {
        match out.iter_mut().find(|(o, _)| *o == t) {
            Some((_, v)) => v.push(p),
            None => out.push((t, vec![p])),
        }
    }
    out
}

/// One partition's answer to ElectLeaders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionResult {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub message: Option<String>,
}

/// One partition's reassignment in progress (ListPartitionReassignments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OngoingReassignment {
    pub topic: String,
    pub partition: i32,
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl Client {
    /// Creates one topic. `partitions` / `replication_factor` of -1 mean
    /// "broker default" (CreateTopics v4+; older brokers get 1).
    pub fn create_topics(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: Vec<(String, String)>,
    ) -> Result<()> {
        self.create_topic_placed(name, partitions, replication_factor, &[], configs)
    }

    /// Creates one topic; a non-empty `assignments` places partition i on
    /// the brokers `assignments[i]` (the first leads), and then
    /// `partitions` / `replication_factor` must be -1, as in Kafka.
    pub fn create_topic_placed(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignments: &[Vec<i32>],
        configs: Vec<(String, String)>,
    ) -> Result<()> {
        let timeout_ms = self.timeout_ms_i32();
        self.admin(|c, target| {
            let (_, resp) = c.call(target, ApiKey::CreateTopics, i16::MAX, 0, |v| {
                build_create_topics(
                    v,
                    name,
                    partitions,
                    replication_factor,
                    assignments,
                    &configs,
                    timeout_ms,
                )
            })?;
            for t in &resp.topics {
                check_code(t.error_code, t.error_message.as_deref(), || {
                    format!("cannot create topic '{}'", t.name.0)
                })?;
            }
            Ok(())
        })
    }

    /// Deletes the named topics.
    pub fn delete_topics(&mut self, names: Vec<String>) -> Result<()> {
        let timeout_ms = self.timeout_ms_i32();
        self.admin(|c, target| {
            let (_, resp) = c.call(target, ApiKey::DeleteTopics, i16::MAX, 0, |v| {
                build_delete_topics(v, &names, timeout_ms)
            })?;
            for t in &resp.responses {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                check_code(t.error_code, t.error_message.as_deref(), || {
                    format!("cannot delete topic '{name}'")
                })?;
            }
            Ok(())
        })?;
        for name in &names {
            self.invalidate(name);
        }
        Ok(())
    }

    /// Grows `topic` to `total_count` partitions.
    pub fn create_partitions(&mut self, topic: &str, total_count: i32) -> Result<()> {
        let timeout_ms = self.timeout_ms_i32();
        self.admin(|c, target| {
            let (_, resp) = c.call(target, ApiKey::CreatePartitions, i16::MAX, 0, |_| {
                CreatePartitionsRequest::default()
                    .with_topics(vec![CreatePartitionsTopic::default()
                        .with_name(topic_name(topic))
                        .with_count(total_count)
                        .with_assignments(None)])
                    .with_timeout_ms(timeout_ms)
            })?;
            for r in &resp.results {
                check_code(r.error_code, r.error_message.as_deref(), || {
                    format!("cannot add partitions to topic '{}'", r.name.0)
                })?;
            }
            Ok(())
        })?;
        self.invalidate(topic);
        Ok(())
    }

    /// All configuration entries of `topic`.
    pub fn describe_configs(&mut self, topic: &str) -> Result<Vec<ConfigEntry>> {
        let (_, resp) = self.call(Target::Any, ApiKey::DescribeConfigs, i16::MAX, 0, |_| {
            DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(s(topic))
                    .with_configuration_keys(None),
            ])
        })?;
        let result = resp
            .results
            .into_iter()
            .find(|r| r.resource_name.as_str() == topic)
            .ok_or_else(|| {
                ClientError::Other(format!("DescribeConfigs response omits topic '{topic}'"))
            })?;
        check_code(result.error_code, result.error_message.as_deref(), || {
            format!("cannot describe configs of topic '{topic}'")
        })?;
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: c.config_source,
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            })
            .collect())
    }

    /// Sets the `set` entries and removes the `delete` keys on `topic`.
    pub fn incremental_alter_configs(
        &mut self,
        topic: &str,
        set: Vec<(String, String)>,
        delete: Vec<String>,
    ) -> Result<()> {
        let configs: Vec<AlterableConfig> = set
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(OP_SET)
                    .with_value(Some(s(v)))
            })
            .chain(delete.iter().map(|k| {
                AlterableConfig::default()
                    .with_name(s(k))
                    .with_config_operation(OP_DELETE)
                    .with_value(None)
            }))
            .collect();
        let (_, resp) = self.call(
            Target::Any,
            ApiKey::IncrementalAlterConfigs,
            i16::MAX,
            0,
            |_| {
                IncrementalAlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(RESOURCE_TOPIC)
                        .with_resource_name(s(topic))
                        .with_configs(configs),
                ])
            },
        )?;
        for r in &resp.responses {
            check_code(r.error_code, r.error_message.as_deref(), || {
                format!("cannot alter configs of topic '{topic}'")
            })?;
        }
        Ok(())
    }

    /// Runs `op` against any broker, retrying on the controller if the broker
    /// says it is not the controller (ZooKeeper-mode Kafka).
    /// ElectLeaders (API 43): `unclean` false = preferred; `partitions`
    /// None = every partition. One result per partition answered:
    /// (topic, partition, error code, message).
    pub fn elect_leaders(
        &mut self,
        unclean: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionResult>> {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use kafka_protocol::messages::ElectLeadersRequest;
        let timeout_ms = self.timeout_ms_i32();
        let (_, resp) = self.call(Target::Any, ApiKey::ElectLeaders, i16::MAX, 0, |_| {
            let topics = partitions.as_ref().map(|ps| {
                by_topic(ps.iter().map(|(t, p)| (t.as_str(), *p)))
                    .into_iter()
                    .map(|(t, parts)| {
                        TopicPartitions::default()
                            .with_topic(topic_name(t))
                            .with_partitions(parts)
                    })
                    .collect()
            });
            ElectLeadersRequest::default()
                .with_election_type(i8::from(unclean))
                .with_topic_partitions(topics)
                .with_timeout_ms(timeout_ms)
        })?;
        check_code(resp.error_code, None, || "cannot elect leaders".into())?;
        Ok(resp
            .replica_election_results
            .iter()
            .flat_map(|t| {
                t.partition_result.iter().map(|p| ElectionResult {
                    topic: t.topic.0.to_string(),
                    partition: p.partition_id,
                    error_code: p.error_code,
                    message: p.error_message.as_ref().map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// AlterPartitionReassignments (API 45): move each partition to its
    /// target replicas, or (None) cancel its reassignment. One result per
    /// partition, in order: (topic, partition, error code, message).
    pub fn alter_partition_reassignments(
        &mut self,
        targets: &[(String, i32, Option<Vec<i32>>)],
    ) -> Result<Vec<ElectionResult>> {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, BrokerId};
        let timeout_ms = self.timeout_ms_i32();
        let (_, resp) = self.call(
            Target::Any,
            ApiKey::AlterPartitionReassignments,
            i16::MAX,
            0,
            |_| {
                let topics = by_topic(targets.iter().map(|(t, p, replicas)| {
                    let part = ReassignablePartition::default()
                        .with_partition_index(*p)
                        .with_replicas(
                            replicas
                                .as_ref()
                                .map(|r| r.iter().map(|b| BrokerId(*b)).collect()),
                        );
                    (t.as_str(), part)
                }))
                .into_iter()
                .map(|(t, parts)| {
                    ReassignableTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(parts)
                })
                .collect();
                AlterPartitionReassignmentsRequest::default()
                    .with_timeout_ms(timeout_ms)
                    .with_allow_replication_factor_change(true)
                    .with_topics(topics)
            },
        )?;
        check_code(resp.error_code, resp.error_message.as_deref(), || {
            "cannot alter partition reassignments".into()
        })?;
        Ok(resp
            .responses
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| ElectionResult {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    error_code: p.error_code,
                    message: p.error_message.as_ref().map(|m| m.to_string()),
                })
            })
            .collect())
    }

    /// ListPartitionReassignments (API 46): every partition being moved.
    pub fn list_partition_reassignments(&mut self) -> Result<Vec<OngoingReassignment>> {
        use kafka_protocol::messages::ListPartitionReassignmentsRequest;
        let timeout_ms = self.timeout_ms_i32();
        let (_, resp) = self.call(
            Target::Any,
            ApiKey::ListPartitionReassignments,
            i16::MAX,
            0,
            |_| ListPartitionReassignmentsRequest::default().with_timeout_ms(timeout_ms),
        )?;
        check_code(resp.error_code, resp.error_message.as_deref(), || {
            "cannot list partition reassignments".into()
        })?;
        let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect();
        Ok(resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| OngoingReassignment {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                })
            })
            .collect())
    }

    fn admin<T>(&mut self, mut op: impl FnMut(&mut Client, Target) -> Result<T>) -> Result<T> {
        match op(self, Target::Any) {
            Err(e) if e.kafka_code() == Some(ResponseError::NotController) => {
                self.metadata(Some(Vec::new()))?;
                let target = if self.controller_id >= 0 {
                    Target::Node(self.controller_id)
                } else {
                    Target::Any
                };
                op(self, target)
            }
            other => other,
        }
    }
}

pub(super) fn build_create_topics(
    version: i16,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    assignments: &[Vec<i32>],
    configs: &[(String, String)],
    timeout_ms: i32,
) -> CreateTopicsRequest {
    use kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment;
    use kafka_protocol::messages::BrokerId;
    // "Use the broker default" (-1) only exists from v4 on.
    let (partitions, replication_factor) = if version < 4 {
        (partitions.max(1), replication_factor.max(1))
    } else {
        (partitions, replication_factor)
    };
    let topic = CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor)
        .with_assignments(
            assignments
                .iter()
                .enumerate()
                .map(|(i, brokers)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(i as i32)
                        .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())
                })
                .collect(),
        )
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        );
    CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(timeout_ms)
}

pub(super) fn build_delete_topics(
    version: i16,
    names: &[String],
    timeout_ms: i32,
) -> DeleteTopicsRequest {
    let req = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
    if version >= 6 {
        req.with_topics(
            names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect(),
        )
    } else {
        req.with_topic_names(names.iter().map(|n| topic_name(n)).collect())
    }
}

/// The metadata quorum as DescribeQuorum reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    /// (id, log end offset, last fetch ms, last caught up ms; -1 unknown).
    pub voters: Vec<(i32, i64, i64, i64)>,
    pub observers: Vec<(i32, i64, i64, i64)>,
    /// Voter id → its controller endpoints (`NAME://host:port`), v2+.
    pub endpoints: std::collections::BTreeMap<i32, Vec<String>>,
}

impl Client {
    /// DescribeQuorum (API 55) on `__cluster_metadata-0`, from any broker.
    pub fn describe_quorum(&mut self) -> Result<QuorumInfo> {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        use kafka_protocol::messages::DescribeQuorumRequest;
        let (_, resp) = self.call(Target::Any, ApiKey::DescribeQuorum, i16::MAX, 0, |_| {
            DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                .with_topic_name(topic_name("__cluster_metadata"))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)])])
        })?;
        check_code(resp.error_code, resp.error_message.as_deref(), || {
            "cannot describe the metadata quorum".into()
        })?;
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::Other("DescribeQuorum answered no partition".into()))?;
        check_code(p.error_code, p.error_message.as_deref(), || {
            "cannot describe the metadata quorum".into()
        })?;
        let rows = |v: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
            v.iter()
                .map(|r| {
                    (
                        r.replica_id.0,
                        r.log_end_offset,
                        r.last_fetch_timestamp,
                        r.last_caught_up_timestamp,
                    )
                })
                .collect::<Vec<_>>()
        };
        Ok(QuorumInfo {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: rows(&p.current_voters),
            observers: rows(&p.observers),
            endpoints: resp
                .nodes
                .iter()
                .map(|n| {
                    let eps = n
                        .listeners
                        .iter()
                        .map(|l| {
                            let host = if l.host.contains(':') {
                                format!("[{}]", l.host)
                            } else {
                                l.host.to_string()
                            };
                            format!("{}://{host}:{}", l.name, l.port)
                        })
                        .collect();
                    (n.node_id.0, eps)
                })
                .collect(),
        })
    }
}
