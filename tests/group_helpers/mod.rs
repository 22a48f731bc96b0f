//! Helpers for tests/consumer_groups.rs: rdkafka group members running on
//! their own threads, a committed-offsets observer, numbered test data, and
//! running / parsing `sluice consumer-groups`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use sluice::cli::OFFSETS_COLUMNS;

use crate::common::rdk;
use crate::common::{run_with_timeout, show_output, sluice_bin, unique_topic, Broker};

/// Broker settings every group test uses: no initial rebalance delay, so a
/// fresh group forms as soon as its first member joins.
pub const BROKER_OVERRIDES: &[&str] = &["group.initial.rebalance.delay.ms=0"];
/// Member session timeout: short so dead members are evicted quickly.
pub const SESSION_TIMEOUT_MS: u64 = 6_000;
pub const HEARTBEAT_MS: u64 = 500;
/// Generous bound for things that should take well under a second.
pub const WAIT: Duration = Duration::from_secs(30);

/// What most group tests start from: their own broker (with
/// [`BROKER_OVERRIDES`]), a fresh topic `<prefix>-...` of `partitions`
/// partitions and a group named after it. Returns (broker, bootstrap, topic,
/// group); the broker runs until dropped.
pub fn start_group_test(prefix: &str, partitions: i32) -> (Broker, String, String, String) {
    let broker = Broker::start(BROKER_OVERRIDES);
    let bs = broker.bootstrap();
    let topic = unique_topic(prefix);
    rdk::create_topic(&bs, &topic, partitions);
    let group = format!("{topic}-g");
    (broker, bs, topic, group)
}

/// Record value for offset `i` of partition `p`: unique and self-describing.
pub fn value(p: i32, i: i64) -> String {
    format!("{p}:{i}")
}

/// Produces `per_partition` numbered records to every partition (acks=all)
/// and checks they landed at offsets `start..start+per_partition`.
pub fn produce_numbered(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    per_partition: i64,
    start: i64,
) {
    let producer = rdk::producer(
        bootstrap,
        &[("linger.ms", "20"), ("batch.num.messages", "2000")],
    );
    let mut pending = Vec::new();
    for i in start..start + per_partition {
        for p in 0..partitions {
            let v = value(p, i);
            pending.push((p, i, rdk::send(&producer, topic, p, None, v.as_bytes())));
        }
    }
    for (p, i, f) in pending {
        let d = rdk::wait_delivery(f);
        assert_eq!(
            (d.partition, d.offset),
            (p, i),
            "record {} landed elsewhere",
            value(p, i)
        );
    }
}

fn nothing_to_commit(e: &KafkaError) -> bool {
    matches!(e, KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
}

/// Commits everything consumed so far whenever partitions are taken away,
/// so the next owner starts exactly after it (no duplicates on rebalance).
pub struct CommitOnRevoke;

impl ClientContext for CommitOnRevoke {}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if tpl.count() > 0 {
                // Anything but "nothing to commit" shows up as duplicates later.
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    if !nothing_to_commit(&e) {
                        eprintln!("commit on revoke: {e}");
                    }
                }
            }
        }
    }
}

/// A group consumer as the tests configure it.
pub fn group_consumer(
    bootstrap: &str,
    group: &str,
    client_id: &str,
    extra: &[(&str, &str)],
) -> BaseConsumer<CommitOnRevoke> {
    let session = SESSION_TIMEOUT_MS.to_string();
    let heartbeat = HEARTBEAT_MS.to_string();
    let mut c = rdk::config(
        bootstrap,
        &[
            ("group.id", group),
            ("client.id", client_id),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", &session),
            ("heartbeat.interval.ms", &heartbeat),
        ],
    );
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create_with_context(CommitOnRevoke)
        .expect("group consumer")
}

/// What a member thread has seen.
#[derive(Default, Debug)]
pub struct Seen {
    /// (partition, offset, value) in consumption order.
    pub records: Vec<(i32, i64, String)>,
    /// Current assignment.
    pub assignment: BTreeSet<i32>,
}

/// An rdkafka group member consuming on its own thread until stopped.
pub struct Member {
    pub name: String,
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Member {
    /// Subscribes to `topic` and consumes; commits synchronously every
    /// `commit_every` records, when idle, on revoke and when stopped.
    /// `pause_every`: sleep 1 ms after that many records (throttling).
    pub fn start(
        bootstrap: &str,
        topic: &str,
        group: &str,
        name: &str,
        extra: &[(&str, &str)],
        pause_every: Option<usize>,
    ) -> Member {
        let consumer = group_consumer(bootstrap, group, name, extra);
        consumer.subscribe(&[topic]).expect("subscribe");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2, name2) = (seen.clone(), stop.clone(), name.to_string());
        let handle = thread::spawn(move || {
            let mut uncommitted = 0usize;
            let commit = |c: &BaseConsumer<CommitOnRevoke>| {
                if let Err(e) = c.commit_consumer_state(CommitMode::Sync) {
                    if !nothing_to_commit(&e) {
                        eprintln!("{name2}: commit: {e}");
                    }
                }
            };
            while !stop2.load(Ordering::Relaxed) {
                let polled = consumer.poll(Duration::from_millis(100));
                let assignment = consumer
                    .assignment()
                    .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                    .unwrap_or_default();
                seen2.lock().unwrap().assignment = assignment;
                match polled {
                    None => {
                        if uncommitted > 0 {
                            commit(&consumer);
                            uncommitted = 0;
                        }
                    }
                    Some(Ok(m)) => {
                        let v =
                            String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
                        let count = {
                            let mut s = seen2.lock().unwrap();
                            s.records.push((m.partition(), m.offset(), v));
                            s.records.len()
                        };
                        uncommitted += 1;
                        if uncommitted >= 500 {
                            commit(&consumer);
                            uncommitted = 0;
                        }
                        if pause_every.is_some_and(|n| count % n == 0) {
                            thread::sleep(Duration::from_millis(1));
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => eprintln!("{name2}: consume error: {e}"),
                }
            }
            commit(&consumer);
            // Dropping closes the consumer: it leaves the group.
        });
        Member {
            name: name.to_string(),
            seen,
            stop,
            handle: Some(handle),
        }
    }

    pub fn assignment(&self) -> BTreeSet<i32> {
        self.seen.lock().unwrap().assignment.clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().records.len()
    }

    pub fn records(&self) -> Vec<(i32, i64, String)> {
        self.seen.lock().unwrap().records.clone()
    }

    /// Stops consuming, commits, leaves the group and joins the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("member thread panicked");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Waits until `cond` holds, panicking with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Each member's current assignment.
pub fn assignments(members: &[Member]) -> Vec<BTreeSet<i32>> {
    members.iter().map(Member::assignment).collect()
}

/// How many records the members have consumed together.
pub fn total_count(members: &[Member]) -> usize {
    members.iter().map(Member::count).sum()
}

/// Stops every member (see [`Member::stop`]).
pub fn stop_all(members: &mut [Member]) {
    for m in members {
        m.stop();
    }
}

/// True when the members' assignments are disjoint, non-empty and cover 0..n.
pub fn assignments_partition(assignments: &[BTreeSet<i32>], n: i32) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assignments.iter().all(|a| !a.is_empty()) && total == n as usize && union == (0..n).collect()
}

/// Committed offsets of `group` as a non-member rdkafka consumer sees them
/// (partitions without a commit are left out).
pub fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let c: BaseConsumer = rdk::config(
        bootstrap,
        &[("group.id", group), ("enable.auto.commit", "false")],
    )
    .create()
    .expect("observer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, rdk::TIMEOUT).expect("OffsetFetch");
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Panics unless `group` has committed `offset` on each of partitions 0..n.
pub fn assert_committed_all(bootstrap: &str, group: &str, topic: &str, n: i32, offset: i64) {
    assert_eq!(
        committed(bootstrap, group, topic, n),
        (0..n).map(|p| (p, offset)).collect(),
        "committed offsets of group {group}"
    );
}

/// Polls committed offsets every 50 ms on a thread and records every change.
pub struct CommitWatcher {
    pub history: Arc<Mutex<BTreeMap<i32, Vec<i64>>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl CommitWatcher {
    pub fn start(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> CommitWatcher {
        let history = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h2, s2) = (history.clone(), stop.clone());
        let (bs, g, t) = (bootstrap.to_string(), group.to_string(), topic.to_string());
        let handle = thread::spawn(move || {
            let c: BaseConsumer =
                rdk::config(&bs, &[("group.id", &g), ("enable.auto.commit", "false")])
                    .create()
                    .expect("watcher");
            while !s2.load(Ordering::Relaxed) {
                let mut tpl = TopicPartitionList::new();
                for p in 0..partitions {
                    tpl.add_partition(&t, p);
                }
                if let Ok(got) = c.committed_offsets(tpl, Duration::from_secs(5)) {
                    let mut h = h2.lock().unwrap();
                    for e in got.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            let seq: &mut Vec<i64> = h.entry(e.partition()).or_default();
                            if seq.last() != Some(&o) {
                                seq.push(o);
                            }
                        }
                    }
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        CommitWatcher {
            history,
            stop,
            handle: Some(handle),
        }
    }

    /// Stops watching and returns each partition's sequence of committed offsets.
    pub fn finish(mut self) -> BTreeMap<i32, Vec<i64>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("watcher thread panicked");
        }
        self.history.lock().unwrap().clone()
    }
}

impl Drop for CommitWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Panics unless every partition's committed offsets never went backwards.
pub fn assert_monotonic(history: &BTreeMap<i32, Vec<i64>>) {
    for (p, seq) in history {
        assert!(
            seq.windows(2).all(|w| w[0] <= w[1]),
            "partition {p}: committed offsets went backwards: {seq:?}"
        );
    }
}

/// Checks consumed records against what was produced: every record at least
/// once, values matching offsets. Returns the (partition, offset) pairs seen
/// more than once, with how many times.
pub fn check_complete(
    records: &[(i32, i64, String)],
    partitions: i32,
    per_partition: i64,
) -> BTreeMap<(i32, i64), usize> {
    let mut counts: BTreeMap<(i32, i64), usize> = BTreeMap::new();
    for (p, o, v) in records {
        assert_eq!(v, &value(*p, *o), "record at {p}/{o} has the wrong value");
        *counts.entry((*p, *o)).or_default() += 1;
    }
    for p in 0..partitions {
        let missing: Vec<i64> = (0..per_partition)
            .filter(|o| !counts.contains_key(&(p, *o)))
            .collect();
        assert!(
            missing.is_empty(),
            "partition {p}: {} records never consumed, first {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    counts.retain(|_, n| *n > 1);
    counts
}

fn run_consumer_groups(bootstrap: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(sluice_bin());
    cmd.arg("consumer-groups")
        .arg("--bootstrap-server")
        .arg(bootstrap)
        .args(args);
    run_with_timeout(&mut cmd, None, Duration::from_secs(60))
}

/// Runs `sluice consumer-groups --bootstrap-server B ARGS`; returns
/// (success, stdout, stderr).
pub fn consumer_groups(bootstrap: &str, args: &[&str]) -> (bool, String, String) {
    let out = run_consumer_groups(bootstrap, args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `consumer-groups` arguments that reset `group`'s offsets on `topic` (a
/// topic, or `topic:p,p`) as `how` says: scenario, then --dry-run / --execute.
pub fn reset_args<'a>(group: &'a str, topic: &'a str, how: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--reset-offsets", "--group", group, "--topic", topic];
    args.extend_from_slice(how);
    args
}

/// Like [`consumer_groups`] but panics unless it succeeds; returns stdout.
pub fn consumer_groups_ok(bootstrap: &str, args: &[&str]) -> String {
    let out = run_consumer_groups(bootstrap, args);
    assert!(
        out.status.success(),
        "consumer-groups {args:?} failed\n{}",
        show_output(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One row of `consumer-groups --describe` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribeRow {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub current: Option<i64>,
    pub log_end: Option<i64>,
    pub lag: Option<i64>,
    pub consumer_id: String,
    pub host: String,
    pub client_id: String,
}

/// Parses the `--describe` table, checking Kafka's layout on the way: an
/// empty first line, then the header, columns where the header puts them.
pub fn parse_describe(out: &str) -> Vec<DescribeRow> {
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(""),
        "describe output must start with an empty line:\n{out}"
    );
    let header = lines.next().expect("header line");
    // The names are the CLI's own (its unit tests pin them to Kafka's).
    let names = OFFSETS_COLUMNS;
    let starts: Vec<usize> = names
        .iter()
        .map(|n| {
            header
                .find(n)
                .unwrap_or_else(|| panic!("no {n} in {header:?}"))
        })
        .collect();
    assert_eq!(starts[0], 0);
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "header columns out of order: {header:?}"
    );
    // Kafka: PARTITION is 10 wide, the three offset columns 15 wide, one space apart.
    assert_eq!(starts[3] - starts[2], 11, "{header:?}");
    assert_eq!(starts[4] - starts[3], 16, "{header:?}");
    assert_eq!(starts[5] - starts[4], 16, "{header:?}");
    assert_eq!(starts[6] - starts[5], 16, "{header:?}");
    let num = |s: &str| {
        if s == "-" {
            None
        } else {
            Some(
                s.parse::<i64>()
                    .unwrap_or_else(|_| panic!("not a number: {s:?}")),
            )
        }
    };
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            // Every value starts where its header does.
            for (i, &s) in starts.iter().enumerate().skip(1) {
                assert!(
                    l.len() > s && &l[s - 1..s] == " " && &l[s..s + 1] != " ",
                    "column {} misaligned in {l:?} (header {header:?})",
                    names[i]
                );
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 9, "{l:?}");
            DescribeRow {
                group: f[0].into(),
                topic: f[1].into(),
                partition: f[2].parse().unwrap(),
                current: num(f[3]),
                log_end: num(f[4]),
                lag: num(f[5]),
                consumer_id: f[6].into(),
                host: f[7].into(),
                client_id: f[8].into(),
            }
        })
        .collect()
}

/// Produces one record with an explicit timestamp.
pub fn produce_at(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    value: &str,
    timestamp_ms: i64,
) -> i64 {
    let producer = rdk::producer(bootstrap, &[]);
    let rec = FutureRecord::<[u8], [u8]>::to(topic)
        .partition(partition)
        .payload(value.as_bytes())
        .timestamp(timestamp_ms);
    let f = producer
        .send_result(rec)
        .map_err(|(e, _)| e)
        .expect("enqueue");
    rdk::wait_delivery(f).offset
}
