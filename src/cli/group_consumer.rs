//! `sluice console-consumer --group G`: consume as a member of a consumer
//! group, like kafka-console-consumer.sh with a group. Partitions come from
//! the group's assignment, reading starts at the group's committed offsets
//! (else `auto.offset.reset`), and progress is committed periodically, before
//! every rebalance and on exit, after which the member leaves the group.
//!
//! Unlike Kafka's auto-commit, which commits whatever `poll()` returned, we
//! commit only what was printed, so `--max-messages N` resumes at record N+1.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use kafka_protocol::ResponseError;

use super::common::{is_internal, TopicFilter};
use super::consumer::{ConsumerArgs, Progress};
use super::format::Formatter;
use super::props::{flag, lookup, parse_pairs};
use crate::client::{
    Client, ClientError, FetchPosition, GroupMember, MemberConfig, EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
};

/// Longest single fetch wait; heartbeats are sent between fetches.
const MAX_WAIT_MS: u64 = 500;
const FETCH_MAX_BYTES: i32 = 4 * 1024 * 1024;
/// How often to look for new matching topics / partitions.
const METADATA_REFRESH: Duration = Duration::from_secs(5);

/// `auto.offset.reset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reset {
    Earliest,
    Latest,
    None,
}

/// Everything group mode needs from the flags and `--consumer-property`.
#[derive(Debug, Clone)]
pub(crate) struct GroupSettings {
    pub member: MemberConfig,
    pub client_id: String,
    pub reset: Reset,
    pub auto_commit: bool,
    pub auto_commit_interval: Duration,
}

fn number<T: std::str::FromStr>(props: &[(String, String)], key: &str, default: T) -> Result<T> {
    match lookup(props, key) {
        None => Ok(default),
        Some(v) => match v.trim().parse() {
            Ok(n) => Ok(n),
            Err(_) => bail!("Invalid value {v} for configuration {key}: Not a number of type INT"),
        },
    }
}

/// Group settings when a group is given (`--group` or `group.id`), else None.
pub(crate) fn settings(args: &ConsumerArgs) -> Result<Option<GroupSettings>> {
    let props = parse_pairs(&args.consumer_property, "--consumer-property")?;
    let group = match (args.group.as_deref(), lookup(&props, "group.id")) {
        (Some(a), Some(b)) if a != b => bail!(
            "The group ids provided in different places (directly using '--group', via '--consumer-property', or via '--consumer.config') do not match. Detected group ids: '{a}', '{b}'"
        ),
        (Some(g), _) | (None, Some(g)) => g.to_string(),
        // --partition / --offset: read that partition directly, no group.
        (None, None) if args.partition.is_some() || args.offset.is_some() => return Ok(None),
        // Like Kafka's console consumer: a generated group (visible in
        // `consumer-groups --list`) that commits nothing unless asked to.
        (None, None) => generated_group_id(),
    };
    let generated = args.group.is_none() && lookup(&props, "group.id").is_none();
    if args.partition.is_some() {
        bail!("Options group and partition cannot be specified together.");
    }
    if args.offset.is_some() {
        bail!("Options group and offset cannot be specified together.");
    }
    // Like Kafka's console consumer: latest unless --from-beginning.
    let default_reset = if args.from_beginning {
        "earliest"
    } else {
        "latest"
    };
    let reset = match lookup(&props, "auto.offset.reset").unwrap_or(default_reset) {
        "earliest" => Reset::Earliest,
        "latest" => Reset::Latest,
        "none" => Reset::None,
        other => bail!(
            "Invalid value {other} for configuration auto.offset.reset: String must be one of: latest, earliest, none"
        ),
    };
    let mut member = MemberConfig::new(&group);
    member.group_instance_id = lookup(&props, "group.instance.id").map(str::to_string);
    member.session_timeout_ms = number(&props, "session.timeout.ms", member.session_timeout_ms)?;
    member.rebalance_timeout_ms =
        number(&props, "max.poll.interval.ms", member.rebalance_timeout_ms)?;
    member.heartbeat_interval_ms = number(
        &props,
        "heartbeat.interval.ms",
        member.heartbeat_interval_ms,
    )?;
    Ok(Some(GroupSettings {
        member,
        client_id: lookup(&props, "client.id")
            .unwrap_or("console-consumer")
            .to_string(),
        reset,
        auto_commit: flag(&props, "enable.auto.commit", !generated),
        auto_commit_interval: Duration::from_millis(number(
            &props,
            "auto.commit.interval.ms",
            5_000u64,
        )?),
    }))
}

/// `console-consumer-NNNNN`, as Kafka's console consumer names the group it
/// joins when given none.
fn generated_group_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 100_000;
    format!("console-consumer-{n}")
}

/// Per-partition progress of this member.
#[derive(Debug, Clone, Copy)]
struct Position {
    /// Next offset to fetch.
    fetch: i64,
    /// Offset after the last record printed (what we commit).
    printed: i64,
    /// Last offset committed.
    committed: i64,
}

/// Runs the group consumer until --max-messages, --timeout-ms or `stop`.
pub(crate) fn consume_group(
    args: &ConsumerArgs,
    settings: &GroupSettings,
    formatter: &Formatter,
    out: &mut impl Write,
    progress: &mut Progress,
    stop: &AtomicBool,
) -> Result<()> {
    let include = match &args.include {
        Some(pattern) => Some(TopicFilter::strict(pattern)?),
        None => None,
    };
    let mut client = args.conn.connect(&settings.client_id, false)?;
    let mut member = GroupMember::new(settings.member.clone());
    let mut counts = subscription(&mut client, args, include.as_ref())?;
    member.subscribe(counts.keys().cloned().collect());
    progress.started = true;
    let mut c = GroupConsumer {
        args,
        settings,
        member,
        positions: BTreeMap::new(),
        last_commit: Instant::now(),
    };
    let result = c.run(
        &mut client,
        formatter,
        out,
        progress,
        stop,
        include.as_ref(),
        &mut counts,
    );
    // Commit what was printed (with auto-commit on, as Kafka's consumer
    // does on close) and leave, even after an error.
    let committed = if settings.auto_commit {
        c.commit(&mut client)
    } else {
        Ok(())
    };
    let left = c.member.leave(&mut client);
    result.and(committed).and(left.map_err(Into::into))
}

/// Topics to subscribe to, with their partition counts.
fn subscription(
    client: &mut Client,
    args: &ConsumerArgs,
    include: Option<&TopicFilter>,
) -> Result<BTreeMap<String, usize>> {
    let md = client.metadata(args.topic.clone().map(|t| vec![t]))?;
    if let Some(topic) = &args.topic {
        return match md.topic(topic) {
            Some(t) if t.error.is_none() => {
                Ok(BTreeMap::from([(topic.clone(), t.partitions.len())]))
            }
            _ => bail!("Topic '{topic}' does not exist (UNKNOWN_TOPIC_OR_PARTITION)"),
        };
    }
    Ok(md
        .topics
        .iter()
        .filter(|t| include.is_some_and(|f| f.matches(&t.name)))
        .filter(|t| !is_internal(&t.name, t.is_internal) && t.error.is_none())
        .map(|t| (t.name.clone(), t.partitions.len()))
        .collect())
}

struct GroupConsumer<'a> {
    args: &'a ConsumerArgs,
    settings: &'a GroupSettings,
    member: GroupMember,
    positions: BTreeMap<(String, i32), Position>,
    last_commit: Instant,
}

impl GroupConsumer<'_> {
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        client: &mut Client,
        formatter: &Formatter,
        out: &mut impl Write,
        progress: &mut Progress,
        stop: &AtomicBool,
        include: Option<&TopicFilter>,
        counts: &mut BTreeMap<String, usize>,
    ) -> Result<()> {
        let max = self.args.max_messages;
        let timeout = self.args.timeout_ms.map(Duration::from_millis);
        let mut last_message = Instant::now();
        let mut refreshed = Instant::now();
        let heartbeat = Duration::from_millis(self.settings.member.heartbeat_interval_ms);
        loop {
            if stop.load(Ordering::Relaxed) || max.is_some_and(|m| progress.printed >= m) {
                return Ok(());
            }
            let mut wait = Duration::from_millis(MAX_WAIT_MS).min(heartbeat);
            if let Some(timeout) = timeout {
                let idle = last_message.elapsed();
                if idle >= timeout {
                    return Ok(());
                }
                wait = wait.min(timeout - idle);
            }
            let wait = wait.max(Duration::from_millis(1));
            if self.member.needs_join() {
                self.rejoin(client)?;
                continue;
            }
            if self.member.heartbeat_if_due(client)? {
                continue;
            }
            if self.settings.auto_commit
                && self.last_commit.elapsed() >= self.settings.auto_commit_interval
            {
                if let Err(e) = self.commit(client) {
                    tracing::warn!("auto-commit failed: {e:#}");
                }
            }
            if refreshed.elapsed() >= METADATA_REFRESH {
                refreshed = Instant::now();
                match subscription(client, self.args, include) {
                    // New topics or partitions: rejoin so the leader reassigns.
                    Ok(now) if now != *counts => {
                        *counts = now;
                        self.member.subscribe(counts.keys().cloned().collect());
                        self.member.request_rejoin();
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("metadata refresh failed: {e:#}"),
                }
            }
            if self.positions.is_empty() {
                std::thread::sleep(wait);
                continue;
            }
            let fetch: Vec<FetchPosition> = self
                .positions
                .iter()
                .map(|((topic, partition), p)| FetchPosition {
                    topic: topic.clone(),
                    partition: *partition,
                    offset: p.fetch,
                })
                .collect();
            let results = client.fetch_many(&fetch, wait.as_millis() as i32, FETCH_MAX_BYTES)?;
            for (pos, result) in results {
                let key = (pos.topic.clone(), pos.partition);
                let fetched = match result {
                    Ok(f) => f,
                    Err(e) => {
                        self.recover(client, &key, e)?;
                        continue;
                    }
                };
                let Some(p) = self.positions.get_mut(&key) else {
                    continue;
                };
                let mut truncated = false;
                for record in &fetched.records {
                    if max.is_some_and(|m| progress.printed >= m) {
                        // Stop exactly after the last printed record.
                        p.fetch = record.offset;
                        truncated = true;
                        break;
                    }
                    formatter.write(out, pos.partition, record)?;
                    progress.printed += 1;
                    p.printed = record.offset + 1;
                    last_message = Instant::now();
                }
                if !truncated {
                    // Everything below the next offset was printed or is not
                    // printable (control batches, compacted gaps).
                    p.fetch = fetched.next_offset;
                    p.printed = fetched.next_offset;
                }
            }
            out.flush()?;
        }
    }

    /// Commits and rejoins, then positions every newly assigned partition.
    fn rejoin(&mut self, client: &mut Client) -> Result<()> {
        if self.settings.auto_commit {
            if let Err(e) = self.commit(client) {
                tracing::debug!("commit before rebalance failed: {e:#}");
            }
        }
        let assignment = self.member.join(client)?;
        let committed = client.offset_fetch(self.member.group_id(), Some(&assignment))?;
        self.positions.clear();
        let mut undefined = Vec::new();
        for (topic, partition) in assignment {
            let found = committed
                .iter()
                .find(|c| c.topic == topic && c.partition == partition && c.offset >= 0);
            let (offset, committed) = match found {
                Some(c) => (c.offset, c.offset),
                None => match self.reset_offset(client, &topic, partition)? {
                    Some(o) => (o, -1),
                    None => {
                        undefined.push(format!("{topic}-{partition}"));
                        continue;
                    }
                },
            };
            let p = Position {
                fetch: offset,
                printed: offset,
                committed,
            };
            self.positions.insert((topic, partition), p);
        }
        if !undefined.is_empty() {
            bail!(
                "Undefined offset with no reset policy for partitions: [{}]",
                undefined.join(", ")
            );
        }
        Ok(())
    }

    fn reset_offset(
        &self,
        client: &mut Client,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>> {
        let ts = match self.settings.reset {
            Reset::Earliest => EARLIEST_TIMESTAMP,
            Reset::Latest => LATEST_TIMESTAMP,
            Reset::None => return Ok(None),
        };
        Ok(Some(client.list_offsets(topic, partition, ts)?))
    }

    /// Handles a failed partition fetch: out-of-range offsets are reset,
    /// retriable errors retried, anything else ends the run.
    fn recover(&mut self, client: &mut Client, key: &(String, i32), e: ClientError) -> Result<()> {
        if e.kafka_code() == Some(ResponseError::OffsetOutOfRange) {
            let Some(offset) = self.reset_offset(client, &key.0, key.1)? else {
                return Err(e.into());
            };
            if let Some(p) = self.positions.get_mut(key) {
                p.fetch = offset;
                p.printed = offset;
            }
            return Ok(());
        }
        let retriable = e.kafka_code().map_or(
            matches!(e, ClientError::Io { .. } | ClientError::Timeout { .. }),
            |code| code.is_retriable(),
        );
        if retriable {
            tracing::debug!("fetch {}-{} failed, retrying: {e}", key.0, key.1);
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        } else {
            Err(e.into())
        }
    }

    /// Commits printed progress that is not committed yet.
    fn commit(&mut self, client: &mut Client) -> Result<()> {
        self.last_commit = Instant::now();
        let pending: Vec<(String, i32, i64)> = self
            .positions
            .iter()
            .filter(|(_, p)| p.printed != p.committed)
            .map(|((t, part), p)| (t.clone(), *part, p.printed))
            .collect();
        if pending.is_empty() || self.member.generation().generation_id < 0 {
            return Ok(());
        }
        self.member.commit(client, &pending)?;
        for (t, part, offset) in pending {
            if let Some(p) = self.positions.get_mut(&(t, part)) {
                p.committed = offset;
            }
        }
        Ok(())
    }
}
