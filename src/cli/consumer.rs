//! `sluice console-consumer`: print records from one or more topics.

use std::io::{self, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::ArgGroup;
use kafka_protocol::ResponseError;

use super::common::{is_internal, ConnArgs, TopicFilter};
use super::format::Formatter;
use super::group_consumer;
use super::props::parse_pairs;
use crate::client::{Client, ClientError, FetchPosition, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};

/// Long-poll wait per fetch.
const MAX_WAIT_MS: u64 = 500;
/// Bytes per fetch (and per partition).
const FETCH_MAX_BYTES: i32 = 4 * 1024 * 1024;
/// How often to look for new partitions / matching topics.
const METADATA_REFRESH: Duration = Duration::from_secs(5);
/// Pause after a transient error before fetching again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Arguments of `sluice console-consumer` (shaped like kafka-console-consumer.sh).
#[derive(Debug, Clone, clap::Args)]
#[command(group(ArgGroup::new("source").required(true).args(["topic", "include"])))]
pub struct ConsumerArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to consume from.
    #[arg(long, value_name = "TOPIC")]
    pub topic: Option<String>,
    /// Regular expression of topics to consume from.
    #[arg(long, alias = "whitelist", value_name = "REGEX")]
    pub include: Option<String>,
    /// Start at the earliest offset instead of the latest.
    #[arg(long = "from-beginning")]
    pub from_beginning: bool,
    /// Consume only this partition.
    #[arg(long, value_name = "N")]
    pub partition: Option<i32>,
    /// Start offset: a number, `earliest` or `latest` (needs --partition).
    #[arg(long, value_name = "OFFSET", allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Exit after printing this many messages.
    #[arg(long = "max-messages", value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit when no message arrives for this long.
    #[arg(long = "timeout-ms", value_name = "MS")]
    pub timeout_ms: Option<u64>,
    /// Formatter property: print.key, print.offset, print.timestamp, key.separator, ...
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub property: Vec<String>,
    /// Consumer group to join: partitions are shared with its other members
    /// and progress is committed to it.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
    /// Consumer config: group.id, auto.offset.reset, client.id,
    /// session.timeout.ms, heartbeat.interval.ms, enable.auto.commit, ...
    #[arg(long = "consumer-property", value_name = "KEY=VALUE")]
    pub consumer_property: Vec<String>,
}

/// Where to start in partitions we have no position for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    Earliest,
    Latest,
    At(i64),
}

impl Start {
    fn timestamp(self) -> Option<i64> {
        match self {
            Start::Earliest => Some(EARLIEST_TIMESTAMP),
            Start::Latest => Some(LATEST_TIMESTAMP),
            Start::At(_) => None,
        }
    }
}

fn start_of(args: &ConsumerArgs) -> Result<Start> {
    if args.partition.is_some() && args.topic.is_none() {
        bail!("The topic is required when partition is specified.");
    }
    if matches!(args.partition, Some(p) if p < 0) {
        bail!("The partition must be non-negative.");
    }
    let Some(raw) = args.offset.as_deref() else {
        return Ok(if args.from_beginning {
            Start::Earliest
        } else {
            Start::Latest
        });
    };
    if args.partition.is_none() {
        bail!("The partition is required when offset is specified.");
    }
    if args.from_beginning {
        bail!("Options from-beginning and offset cannot be specified together.");
    }
    match raw.trim().to_ascii_lowercase().as_str() {
        "earliest" => Ok(Start::Earliest),
        "latest" => Ok(Start::Latest),
        n => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(Start::At(n)),
            _ => bail!(
                "The provided offset value '{raw}' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long."
            ),
        },
    }
}

/// Runs `sluice console-consumer`, printing to stdout.
pub fn run(args: ConsumerArgs) -> Result<()> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut progress = Progress::default();
    // A group member must commit and leave on Ctrl-C / SIGTERM, as Kafka's
    // shutdown hook does; the loop polls this flag between fetches.
    let stop = Arc::new(AtomicBool::new(false));
    // Every run without --partition is a group member (a generated group
    // when none is given).
    if args.partition.is_none() {
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(sig, stop.clone())?;
        }
    }
    let result = consume_to(&args, &mut out, &mut progress, &stop);
    let flushed = out.flush();
    if progress.started {
        eprintln!("Processed a total of {} messages", progress.printed);
    }
    match (result, flushed) {
        (Err(e), _) if is_broken_pipe(&e) => Ok(()),
        (Err(e), _) => Err(e),
        (Ok(()), Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        (Ok(()), Err(e)) => Err(e.into()),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// How far a run got.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Setup (flags, connection, topic lookup) succeeded.
    pub started: bool,
    /// Records written so far.
    pub printed: u64,
}

/// Consumes into `out`, recording progress as it goes.
pub(crate) fn consume_to(
    args: &ConsumerArgs,
    out: &mut impl Write,
    progress: &mut Progress,
    stop: &AtomicBool,
) -> Result<()> {
    let formatter = Formatter::from_props(&parse_pairs(&args.property, "--property")?)?;
    if let Some(settings) = group_consumer::settings(args)? {
        return group_consumer::consume_group(args, &settings, &formatter, out, progress, stop);
    }
    let start = start_of(args)?;
    let include = match &args.include {
        Some(pattern) => Some(TopicFilter::strict(pattern)?),
        None => None,
    };
    let mut client = args.conn.connect("sluice-console-consumer", false)?;
    let mut state = Consumer {
        args,
        include,
        start,
        positions: Vec::new(),
        refreshed: Instant::now(),
    };
    state.discover(&mut client)?;
    progress.started = true;
    let mut last_message = Instant::now();
    state.consume(
        &mut client,
        &formatter,
        out,
        &mut progress.printed,
        &mut last_message,
    )
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

struct Consumer<'a> {
    args: &'a ConsumerArgs,
    include: Option<TopicFilter>,
    start: Start,
    positions: Vec<FetchPosition>,
    refreshed: Instant,
}

impl Consumer<'_> {
    fn consume(
        &mut self,
        client: &mut Client,
        formatter: &Formatter,
        out: &mut impl Write,
        printed: &mut u64,
        last_message: &mut Instant,
    ) -> Result<()> {
        let max = self.args.max_messages;
        let timeout = self.args.timeout_ms.map(Duration::from_millis);
        loop {
            if max.is_some_and(|m| *printed >= m) {
                return Ok(());
            }
            let mut wait = MAX_WAIT_MS;
            if let Some(timeout) = timeout {
                let idle = last_message.elapsed();
                if idle >= timeout {
                    return Ok(());
                }
                wait = wait.min((timeout - idle).as_millis() as u64).max(1);
            }
            if self.refreshed.elapsed() >= METADATA_REFRESH {
                if let Err(e) = self.discover(client) {
                    tracing::debug!("metadata refresh failed: {e:#}");
                }
            }
            if self.positions.is_empty() {
                std::thread::sleep(Duration::from_millis(wait));
                continue;
            }
            let results = client.fetch_many(&self.positions, wait as i32, FETCH_MAX_BYTES)?;
            let mut transient = false;
            for (pos, result) in results {
                let fetched = match result {
                    Ok(fetched) => fetched,
                    Err(e) => {
                        transient |= self.recover(client, &pos, e)?;
                        continue;
                    }
                };
                for record in &fetched.records {
                    if max.is_some_and(|m| *printed >= m) {
                        break;
                    }
                    formatter.write(out, pos.partition, record)?;
                    *printed += 1;
                    *last_message = Instant::now();
                }
                self.set_offset(&pos, fetched.next_offset);
            }
            out.flush()?;
            if transient {
                std::thread::sleep(RETRY_BACKOFF);
            }
        }
    }

    /// Handles a failed partition fetch; true if it is worth retrying.
    fn recover(
        &mut self,
        client: &mut Client,
        pos: &FetchPosition,
        e: ClientError,
    ) -> Result<bool> {
        if e.kafka_code() == Some(ResponseError::OffsetOutOfRange) {
            // Like auto.offset.reset: earliest with --from-beginning, else latest.
            let reset = if self.args.from_beginning {
                EARLIEST_TIMESTAMP
            } else {
                LATEST_TIMESTAMP
            };
            let offset = client.list_offsets(&pos.topic, pos.partition, reset)?;
            self.set_offset(pos, offset);
            return Ok(false);
        }
        let retriable = e.kafka_code().map_or(
            matches!(e, ClientError::Io { .. } | ClientError::Timeout { .. }),
            |code| code.is_retriable(),
        );
        if retriable {
            tracing::debug!(
                "fetch {}-{} failed, retrying: {e}",
                pos.topic,
                pos.partition
            );
            Ok(true)
        } else {
            Err(e.into())
        }
    }

    fn set_offset(&mut self, pos: &FetchPosition, offset: i64) {
        if let Some(p) = self
            .positions
            .iter_mut()
            .find(|p| p.topic == pos.topic && p.partition == pos.partition)
        {
            p.offset = offset;
        }
    }

    /// Adds positions for partitions we are not consuming yet.
    fn discover(&mut self, client: &mut Client) -> Result<()> {
        self.refreshed = Instant::now();
        let wanted = self.wanted_partitions(client)?;
        for (topic, partition) in wanted {
            let known = self
                .positions
                .iter()
                .any(|p| p.topic == topic && p.partition == partition);
            if known {
                continue;
            }
            let offset = match (self.start, self.start.timestamp()) {
                (Start::At(n), _) => n,
                (_, Some(ts)) => client.list_offsets(&topic, partition, ts)?,
                (_, None) => 0,
            };
            self.positions.push(FetchPosition {
                topic,
                partition,
                offset,
            });
        }
        Ok(())
    }

    fn wanted_partitions(&self, client: &mut Client) -> Result<Vec<(String, i32)>> {
        if let Some(topic) = &self.args.topic {
            let metadata = client.metadata(Some(vec![topic.clone()]))?;
            let meta = match metadata.topic(topic) {
                Some(t) if t.error == Some(ResponseError::UnknownTopicOrPartition) => {
                    bail!("Topic '{topic}' does not exist (UNKNOWN_TOPIC_OR_PARTITION)")
                }
                Some(t) if t.error.is_none() => t,
                Some(t) => {
                    let code = t.error.map(crate::client::error_name).unwrap_or_default();
                    bail!("cannot read metadata of topic '{topic}': {code}")
                }
                None => bail!("Topic '{topic}' does not exist (UNKNOWN_TOPIC_OR_PARTITION)"),
            };
            let ids: Vec<i32> = meta.partitions.iter().map(|p| p.partition).collect();
            return match self.args.partition {
                Some(p) if !ids.contains(&p) => bail!(
                    "Partition {p} of topic '{topic}' does not exist (the topic has {} partitions)",
                    ids.len()
                ),
                Some(p) => Ok(vec![(topic.clone(), p)]),
                None => Ok(ids.into_iter().map(|p| (topic.clone(), p)).collect()),
            };
        }
        let metadata = client.metadata(None)?;
        let mut wanted = Vec::new();
        for t in &metadata.topics {
            let selected = self.include.as_ref().is_some_and(|f| f.matches(&t.name));
            if selected && !is_internal(&t.name, t.is_internal) && t.error.is_none() {
                wanted.extend(t.partitions.iter().map(|p| (t.name.clone(), p.partition)));
            }
        }
        wanted.sort();
        Ok(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ConsumerArgs,
    }

    fn parse(argv: &[&str]) -> std::result::Result<ConsumerArgs, clap::Error> {
        let mut full = vec!["c", "--bootstrap-server", "h:1"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).map(|c| c.args)
    }

    #[test]
    fn topic_or_include_required() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--topic", "a", "--include", "b.*"]).is_err());
        let a = parse(&["--whitelist", "b.*"]).unwrap();
        assert_eq!(a.include.as_deref(), Some("b.*"));
    }

    #[test]
    fn start_positions() {
        let start = |argv: &[&str]| start_of(&parse(argv).unwrap());
        assert_eq!(start(&["--topic", "t"]).unwrap(), Start::Latest);
        assert_eq!(
            start(&["--topic", "t", "--from-beginning"]).unwrap(),
            Start::Earliest
        );
        assert_eq!(
            start(&["--topic", "t", "--partition", "0", "--offset", "42"]).unwrap(),
            Start::At(42)
        );
        assert_eq!(
            start(&["--topic", "t", "--partition", "0", "--offset", "earliest"]).unwrap(),
            Start::Earliest
        );
        assert!(start(&["--topic", "t", "--offset", "5"]).is_err());
        assert!(start(&["--topic", "t", "--partition", "0", "--offset", "-3"]).is_err());
        assert!(start(&[
            "--topic",
            "t",
            "--partition",
            "0",
            "--offset",
            "1",
            "--from-beginning"
        ])
        .is_err());
        assert!(start(&["--include", "x", "--partition", "0"]).is_err());
    }

    #[test]
    fn parses_limits_and_props() {
        let a = parse(&[
            "--topic",
            "t",
            "--max-messages",
            "10",
            "--timeout-ms",
            "2000",
            "--property",
            "print.key=true",
        ])
        .unwrap();
        assert_eq!(a.max_messages, Some(10));
        assert_eq!(a.timeout_ms, Some(2000));
        assert_eq!(a.property, vec!["print.key=true"]);
    }
}
