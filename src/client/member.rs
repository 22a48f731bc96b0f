//! A minimal classic-protocol group member (eager rebalancing, `range`
//! assignor), driven by its owner's poll loop: the owner calls
//! [`GroupMember::heartbeat_if_due`] between fetches, and when a rebalance is
//! needed commits what it has processed and calls [`GroupMember::join`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;

use super::assignor::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, range_assign,
    Subscriber, CONSUMER_PROTOCOL_TYPE, RANGE_ASSIGNOR,
};
use super::error::{ClientError, Result};
use super::group::{Generation, JoinParams};
use super::Client;

/// Bound on join/sync round trips in one `join` call before giving up.
const MAX_JOIN_ATTEMPTS: u32 = 20;

/// Timeouts of a member, with Kafka consumer defaults.
#[derive(Debug, Clone)]
pub struct MemberConfig {
    pub group_id: String,
    /// Static membership (`group.instance.id`).
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms`: how long the broker waits for us to rejoin.
    pub rebalance_timeout_ms: i32,
    pub heartbeat_interval_ms: u64,
}

impl MemberConfig {
    pub fn new(group_id: &str) -> MemberConfig {
        MemberConfig {
            group_id: group_id.to_string(),
            group_instance_id: None,
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 300_000,
            heartbeat_interval_ms: 3_000,
        }
    }
}

/// Membership state of one consumer.
pub struct GroupMember {
    config: MemberConfig,
    topics: Vec<String>,
    generation: Generation,
    assignment: Vec<(String, i32)>,
    needs_join: bool,
    last_heartbeat: Instant,
}

impl GroupMember {
    pub fn new(config: MemberConfig) -> GroupMember {
        let generation = Generation {
            group_instance_id: config.group_instance_id.clone(),
            ..Generation::none()
        };
        GroupMember {
            config,
            topics: Vec::new(),
            generation,
            assignment: Vec::new(),
            needs_join: true,
            last_heartbeat: Instant::now(),
        }
    }

    pub fn group_id(&self) -> &str {
        &self.config.group_id
    }

    /// The current generation (for commits); generation -1 before joining.
    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// Partitions assigned in the current generation.
    pub fn assignment(&self) -> &[(String, i32)] {
        &self.assignment
    }

    /// Sets the subscription; a change triggers a rejoin.
    pub fn subscribe(&mut self, mut topics: Vec<String>) {
        topics.sort();
        topics.dedup();
        if topics != self.topics {
            self.topics = topics;
            self.needs_join = true;
        }
    }

    /// True when the owner must (commit and) call [`join`](Self::join).
    pub fn needs_join(&self) -> bool {
        self.needs_join
    }

    /// Forces a rejoin (e.g. the leader saw partition counts change).
    pub fn request_rejoin(&mut self) {
        self.needs_join = true;
    }

    /// Joins and syncs until this member has an assignment in a stable
    /// generation, and returns that assignment.
    pub fn join(&mut self, client: &mut Client) -> Result<Vec<(String, i32)>> {
        self.assignment.clear();
        let mut last_error = None;
        for _ in 0..MAX_JOIN_ATTEMPTS {
            match self.join_once(client) {
                Ok(assignment) => {
                    self.assignment = assignment.clone();
                    self.needs_join = false;
                    self.last_heartbeat = Instant::now();
                    return Ok(assignment);
                }
                Err(e) if self.recover(&e) => {
                    tracing::debug!("group '{}': {e}; rejoining", self.config.group_id);
                    last_error = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| ClientError::Other("join never completed".into())))
    }

    fn join_once(&mut self, client: &mut Client) -> Result<Vec<(String, i32)>> {
        let params = JoinParams {
            group_id: self.config.group_id.clone(),
            member_id: self.generation.member_id.clone(),
            group_instance_id: self.config.group_instance_id.clone(),
            session_timeout_ms: self.config.session_timeout_ms,
            rebalance_timeout_ms: self.config.rebalance_timeout_ms,
            protocol_type: CONSUMER_PROTOCOL_TYPE.to_string(),
            protocols: vec![(
                RANGE_ASSIGNOR.to_string(),
                encode_subscription(&self.topics),
            )],
        };
        let joined = client.join_group(&params)?;
        self.generation.member_id = joined.member_id.clone();
        self.generation.generation_id = joined.generation_id;
        let protocol = joined
            .protocol_name
            .clone()
            .unwrap_or_else(|| RANGE_ASSIGNOR.to_string());
        let assignments = if joined.is_leader() {
            self.assign(client, &joined.members)?
        } else {
            Vec::new()
        };
        let bytes = client.sync_group(
            &self.config.group_id,
            &self.generation,
            CONSUMER_PROTOCOL_TYPE,
            &protocol,
            assignments,
        )?;
        decode_assignment(bytes)
    }

    /// The leader's job: range-assign every member's subscription.
    fn assign(
        &self,
        client: &mut Client,
        members: &[super::group::JoinedMember],
    ) -> Result<Vec<(String, bytes::Bytes)>> {
        let mut subscribers = Vec::with_capacity(members.len());
        for m in members {
            subscribers.push(Subscriber {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                topics: decode_subscription(m.metadata.clone())?,
            });
        }
        let mut all: Vec<String> = subscribers.iter().flat_map(|s| s.topics.clone()).collect();
        all.sort();
        all.dedup();
        let md = client.metadata(Some(all.clone()))?;
        let counts: BTreeMap<String, i32> = md
            .topics
            .iter()
            .filter(|t| t.error.is_none() && all.contains(&t.name))
            .map(|t| (t.name.clone(), t.partitions.len() as i32))
            .collect();
        Ok(range_assign(&subscribers, &counts)
            .into_iter()
            .map(|(member, parts)| (member, encode_assignment(&parts)))
            .collect())
    }

    /// Adjusts state after a group error; true if rejoining can fix it.
    fn recover(&mut self, e: &ClientError) -> bool {
        match e.kafka_code() {
            Some(ResponseError::UnknownMemberId) => {
                self.generation.member_id.clear();
                self.generation.generation_id = -1;
                true
            }
            Some(ResponseError::IllegalGeneration | ResponseError::RebalanceInProgress) => true,
            Some(ResponseError::FencedInstanceId) => false,
            Some(code) => code.is_retriable(),
            None => false,
        }
    }

    /// Heartbeats if the interval has passed. Returns true when the group is
    /// rebalancing (or has dropped us): the owner should commit and rejoin.
    pub fn heartbeat_if_due(&mut self, client: &mut Client) -> Result<bool> {
        if self.needs_join {
            return Ok(true);
        }
        let interval = Duration::from_millis(self.config.heartbeat_interval_ms);
        if self.last_heartbeat.elapsed() < interval {
            return Ok(false);
        }
        self.last_heartbeat = Instant::now();
        match client.heartbeat(&self.config.group_id, &self.generation) {
            Ok(()) => Ok(false),
            Err(e) if self.recover(&e) => {
                tracing::debug!("group '{}': heartbeat: {e}", self.config.group_id);
                self.needs_join = true;
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }

    /// Commits `offsets` in the current generation. A rebalance in progress
    /// fails the commit (the partitions may already belong to someone else)
    /// and schedules a rejoin.
    pub fn commit(&mut self, client: &mut Client, offsets: &[(String, i32, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let result = client.offset_commit(&self.config.group_id, &self.generation, offsets);
        if let Err(e) = &result {
            if self.recover(e) {
                self.needs_join = true;
            }
        }
        result
    }

    /// Leaves the group so its partitions move at once. Static members stay
    /// (their session timeout decides), as in Kafka.
    pub fn leave(&mut self, client: &mut Client) -> Result<()> {
        let joined = !self.generation.member_id.is_empty();
        let result = if joined && self.config.group_instance_id.is_none() {
            client.leave_group(&self.config.group_id, &self.generation.member_id, None)
        } else {
            Ok(())
        };
        self.generation = Generation {
            group_instance_id: self.config.group_instance_id.clone(),
            ..Generation::none()
        };
        self.assignment.clear();
        self.needs_join = true;
        result
    }
}
