//! Consumer groups with real clients: librdkafka (rdkafka crate, and
//! confluent-kafka as a killable child process), kafka-python and kafkajs,
//! plus `sluice consumer-groups` / `console-consumer --group` checked against
//! what those clients committed. Each test starts its own broker.

mod common;
mod group_helpers;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    rdk, repo_root, run_ok, run_with_timeout, show_output, sluice_bin, unique_topic, Broker,
};
use group_helpers::*;

const PARTITIONS: i32 = 6;
const PER_PARTITION: i64 = 10_000; // 60,000 records in all
const RANGE: &[(&str, &str)] = &[("partition.assignment.strategy", "range")];
const COOPERATIVE: &[(&str, &str)] = &[("partition.assignment.strategy", "cooperative-sticky")];

/// Three members share six partitions; once the group is stable, 60,000
/// records arrive and each is consumed exactly once, by its partition's owner.
fn three_members_exactly_once(strategy: &[(&str, &str)]) {
    let (_broker, bs, topic, group) = start_group_test("share", PARTITIONS);
    let mut members: Vec<Member> = (0..3)
        .map(|i| Member::start(&bs, &topic, &group, &format!("m{i}"), strategy, None))
        .collect();
    wait_until("a stable 3-member assignment", WAIT, || {
        assignments_partition(&assignments(&members), PARTITIONS)
    });
    let assigned = assignments(&members);
    for a in &assigned {
        assert_eq!(a.len(), 2, "6 partitions over 3 members: {assigned:?}");
    }
    let watcher = CommitWatcher::start(&bs, &group, &topic, PARTITIONS);
    produce_numbered(&bs, &topic, PARTITIONS, PER_PARTITION, 0);
    let total = (PARTITIONS as i64 * PER_PARTITION) as usize;
    wait_until("all records consumed", WAIT, || {
        total_count(&members) >= total
    });
    // Nothing more may arrive (a duplicate would show up here).
    thread::sleep(Duration::from_millis(500));
    stop_all(&mut members);
    let mut all = Vec::new();
    for (m, a) in members.iter().zip(&assigned) {
        let recs = m.records();
        let foreign: BTreeSet<i32> = recs
            .iter()
            .map(|r| r.0)
            .filter(|p| !a.contains(p))
            .collect();
        assert!(
            foreign.is_empty(),
            "{} was assigned {a:?} but consumed from {foreign:?}",
            m.name
        );
        all.extend(recs);
    }
    let dups = check_complete(&all, PARTITIONS, PER_PARTITION);
    assert!(
        dups.is_empty(),
        "{} records consumed more than once, e.g. {:?}",
        dups.len(),
        dups.iter().next()
    );
    assert_eq!(all.len(), total);
    assert_monotonic(&watcher.finish());
    assert_committed_all(&bs, &group, &topic, PARTITIONS, PER_PARTITION);
}

#[test]
fn rdkafka_three_members_consume_each_record_once() {
    three_members_exactly_once(RANGE);
}

#[test]
fn rdkafka_three_members_consume_each_record_once_cooperative_sticky() {
    three_members_exactly_once(COOPERATIVE);
}

/// A confluent-kafka member in a child process (librdkafka, like the rdkafka
/// crate) so it can die without leaving the group: SIGKILL.
struct ChildMember {
    child: Child,
    state: Arc<Mutex<ChildSeen>>,
    reader: Option<thread::JoinHandle<()>>,
}

#[derive(Default)]
struct ChildSeen {
    records: Vec<(i32, i64, String)>,
    assignment: BTreeSet<i32>,
    /// Records printed since the assignment last changed.
    since_assignment: usize,
}

impl ChildMember {
    fn start(bs: &str, topic: &str, group: &str, strategy: &str) -> ChildMember {
        let py = repo_root().join("tests/clients/.venv/bin/python");
        assert!(py.exists(), "{} missing: run tests/run", py.display());
        let mut child = Command::new(py)
            .arg(repo_root().join("tests/clients/group_member.py"))
            .args([
                bs,
                topic,
                group,
                strategy,
                &SESSION_TIMEOUT_MS.to_string(),
                &HEARTBEAT_MS.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn group_member.py");
        let state = Arc::new(Mutex::new(ChildSeen::default()));
        let (st, out) = (state.clone(), child.stdout.take().unwrap());
        let reader = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let mut s = st.lock().unwrap();
                if let Some(parts) = line.strip_prefix("A ") {
                    s.assignment = parts
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().unwrap())
                        .collect();
                    s.since_assignment = 0;
                } else if line == "A" {
                    s.assignment.clear();
                    s.since_assignment = 0;
                } else if let Some(rec) = line.strip_prefix("R ") {
                    let f: Vec<&str> = rec.split(' ').collect();
                    s.records.push((
                        f[0].parse().unwrap(),
                        f[1].parse().unwrap(),
                        f[2].to_string(),
                    ));
                    s.since_assignment += 1;
                }
            }
        });
        ChildMember {
            child,
            state,
            reader: Some(reader),
        }
    }

    /// SIGKILL: no LeaveGroup, no last commit. Everything it printed is
    /// still read from the pipe.
    fn kill(&mut self) -> Vec<(i32, i64, String)> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            r.join().expect("reader thread");
        }
        self.state.lock().unwrap().records.clone()
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member dies mid-way (SIGKILL): its partitions move to the survivors
/// within the session timeout, nothing is lost, only its uncommitted tail is
/// consumed twice, and committed offsets never go backwards.
fn killed_member(strategy: &[(&str, &str)]) {
    let (_broker, bs, topic, group) = start_group_test("kill", PARTITIONS);
    produce_numbered(&bs, &topic, PARTITIONS, PER_PARTITION, 0);
    let watcher = CommitWatcher::start(&bs, &group, &topic, PARTITIONS);
    // The doomed member joins first and reads slowly; the survivors join
    // once it is consuming, which rebalances the group three ways.
    let mut doomed = ChildMember::start(&bs, &topic, &group, strategy[0].1);
    wait_until("the child member to consume", WAIT, || {
        doomed.state.lock().unwrap().records.len() >= 100
    });
    let mut survivors: Vec<Member> = (0..2)
        .map(|i| {
            Member::start(
                &bs,
                &topic,
                &group,
                &format!("survivor{i}"),
                strategy,
                Some(50),
            )
        })
        .collect();
    wait_until(
        "a 3-way split with the child consuming its share",
        WAIT,
        || {
            let s = doomed.state.lock().unwrap();
            let mut all: Vec<BTreeSet<i32>> = survivors.iter().map(Member::assignment).collect();
            all.push(s.assignment.clone());
            assignments_partition(&all, PARTITIONS) && s.since_assignment >= 200
        },
    );
    let orphaned = doomed.state.lock().unwrap().assignment.clone();
    let killed_at = Instant::now();
    let child_records = doomed.kill();
    wait_until(
        "the survivors to own every partition",
        Duration::from_millis(SESSION_TIMEOUT_MS) + WAIT,
        || {
            let owned: BTreeSet<i32> = survivors.iter().flat_map(Member::assignment).collect();
            owned.len() == PARTITIONS as usize
        },
    );
    let moved_after = killed_at.elapsed();
    // Kafka: evicted after the session timeout, then one rebalance (the
    // survivors learn of it on their next heartbeat).
    assert!(
        moved_after <= Duration::from_millis(SESSION_TIMEOUT_MS + 3_000),
        "partitions {orphaned:?} of the dead member moved only after {moved_after:?} (session timeout {SESSION_TIMEOUT_MS} ms)"
    );
    let covered = |survivors: &[Member]| {
        let mut seen: BTreeSet<(i32, i64)> = child_records.iter().map(|r| (r.0, r.1)).collect();
        for m in survivors {
            seen.extend(m.records().into_iter().map(|r| (r.0, r.1)));
        }
        seen.len()
    };
    let total = (PARTITIONS as i64 * PER_PARTITION) as usize;
    wait_until("every record consumed by someone", WAIT, || {
        covered(&survivors) >= total
    });
    thread::sleep(Duration::from_millis(500));
    stop_all(&mut survivors);
    let mut all = child_records.clone();
    let mut survivor_records = Vec::new();
    for m in &survivors {
        survivor_records.extend(m.records());
    }
    all.extend(survivor_records.iter().cloned());
    let dups = check_complete(&all, PARTITIONS, PER_PARTITION);
    // At-least-once: only records the dead member printed but had not
    // committed may come again; survivors never duplicate each other.
    let child_set: BTreeSet<(i32, i64)> = child_records.iter().map(|r| (r.0, r.1)).collect();
    let foreign: Vec<_> = dups.keys().filter(|k| !child_set.contains(k)).collect();
    assert!(
        foreign.is_empty(),
        "{} records duplicated between survivors, e.g. {:?}",
        foreign.len(),
        foreign.first()
    );
    for (p, _) in dups.keys() {
        assert!(
            orphaned.contains(p),
            "duplicate in partition {p}, which the dead member did not own last ({orphaned:?})"
        );
    }
    assert_monotonic(&watcher.finish());
    assert_committed_all(&bs, &group, &topic, PARTITIONS, PER_PARTITION);
    eprintln!(
        "partitions {orphaned:?} moved {moved_after:?} after the kill; {} records consumed twice",
        dups.len()
    );
}

#[test]
fn rdkafka_killed_member_partitions_move_nothing_lost() {
    killed_member(RANGE);
}

#[test]
fn rdkafka_killed_member_partitions_move_nothing_lost_cooperative_sticky() {
    killed_member(COOPERATIVE);
}

/// Two groups on one topic: each gets every record (pub-sub), exactly once
/// within the group.
#[test]
fn two_groups_each_receive_every_record() {
    let (_broker, bs, topic, _) = start_group_test("pubsub", PARTITIONS);
    let per = 1_000;
    produce_numbered(&bs, &topic, PARTITIONS, per, 0);
    let mut groups: Vec<Vec<Member>> = ["a", "b"]
        .iter()
        .map(|g| {
            (0..2)
                .map(|i| {
                    Member::start(
                        &bs,
                        &topic,
                        &format!("{topic}-{g}"),
                        &format!("{g}{i}"),
                        RANGE,
                        None,
                    )
                })
                .collect()
        })
        .collect();
    let total = (PARTITIONS as i64 * per) as usize;
    wait_until("both groups to consume everything", WAIT, || {
        groups.iter().all(|ms| total_count(ms) >= total)
    });
    thread::sleep(Duration::from_millis(300));
    for (g, members) in ["a", "b"].iter().zip(&mut groups) {
        stop_all(members);
        let all: Vec<_> = members.iter().flat_map(Member::records).collect();
        let dups = check_complete(&all, PARTITIONS, per);
        assert!(dups.is_empty(), "group {g}: {} duplicates", dups.len());
        assert_committed_all(&bs, &format!("{topic}-{g}"), &topic, PARTITIONS, per);
    }
}

/// Committed offsets and `--describe` (offsets, log end, lag) are the same
/// after the broker is killed and restarted; a member then resumes exactly.
#[test]
fn commits_and_lag_survive_broker_restart() {
    let (mut broker, bs, topic, group) = start_group_test("restart", 3);
    produce_numbered(&bs, &topic, 3, 500, 0);
    let mut m = Member::start(&bs, &topic, &group, "m", RANGE, None);
    wait_until("everything consumed", WAIT, || m.count() >= 1_500);
    m.stop();
    produce_numbered(&bs, &topic, 3, 40, 500);
    let before_commits = committed(&bs, &group, &topic, 3);
    assert_eq!(before_commits, (0..3).map(|p| (p, 500)).collect());
    let (ok, before, err) = consumer_groups(&bs, &["--describe", "--group", &group]);
    assert!(ok, "{err}");
    let rows = parse_describe(&before);
    assert_eq!(rows.len(), 3, "{before}");
    for (p, r) in rows.iter().enumerate() {
        assert_eq!(
            (r.partition, r.current, r.log_end, r.lag),
            (p as i32, Some(500), Some(540), Some(40)),
            "{before}"
        );
        assert_eq!(
            (
                r.consumer_id.as_str(),
                r.host.as_str(),
                r.client_id.as_str()
            ),
            ("-", "-", "-")
        );
    }
    assert_eq!(
        err,
        format!("\nConsumer group '{group}' has no active members.\n")
    );

    broker.kill9();
    broker.restart();
    assert_eq!(committed(&bs, &group, &topic, 3), before_commits);
    let (ok, after, err2) = consumer_groups(&bs, &["--describe", "--group", &group]);
    assert!(ok, "{err2}");
    assert_eq!(after, before);
    assert_eq!(err2, err);
    let mut m = Member::start(&bs, &topic, &group, "m2", RANGE, None);
    wait_until("the new records", WAIT, || m.count() >= 120);
    thread::sleep(Duration::from_millis(300));
    m.stop();
    let recs = m.records();
    assert_eq!(recs.len(), 120, "resumed at the wrong place");
    assert!(
        recs.iter().all(|(_, o, _)| (500..540).contains(o)),
        "resumed at the wrong place"
    );
}

/// `sluice console-consumer` arguments: `topic` until idle for `timeout_ms`.
fn console_args<'a>(
    bs: &'a str,
    topic: &'a str,
    timeout_ms: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "console-consumer",
        "--bootstrap-server",
        bs,
        "--topic",
        topic,
        "--timeout-ms",
        timeout_ms,
    ];
    args.extend_from_slice(extra);
    args
}

fn sluice(args: &[&str]) -> String {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args);
    String::from_utf8_lossy(&run_ok(&mut cmd, None, Duration::from_secs(60)).stdout).into_owned()
}

/// `consumer-groups` against live rdkafka members, then against the empty
/// group: describe/members/state agree with what librdkafka reports and
/// committed; reset-offsets is refused while active, and a member resumes
/// from the reset point afterwards.
#[test]
fn cli_agrees_with_clients_and_reset_is_honoured() {
    use rdkafka::consumer::Consumer;
    let (_broker, bs, topic, group) = start_group_test("cli", 4);
    produce_numbered(&bs, &topic, 4, 300, 0);
    let mut members: Vec<Member> = (0..2)
        .map(|i| Member::start(&bs, &topic, &group, &format!("cli-client-{i}"), RANGE, None))
        .collect();
    wait_until("all consumed by a stable group", WAIT, || {
        total_count(&members) >= 1_200 && assignments_partition(&assignments(&members), 4)
    });
    wait_until("commits to land", WAIT, || {
        committed(&bs, &group, &topic, 4)
            .values()
            .all(|&o| o == 300)
    });

    // librdkafka's own view of the group (ListGroups + DescribeGroups).
    let observer: rdkafka::consumer::BaseConsumer = rdk::config(&bs, &[("group.id", "observer")])
        .create()
        .unwrap();
    let list = observer
        .fetch_group_list(Some(&group), rdk::TIMEOUT)
        .expect("DescribeGroups");
    let info = &list.groups()[0];
    assert_eq!((info.state(), info.protocol()), ("Stable", "range"));
    let mut rd_members: Vec<(String, String, String)> = info
        .members()
        .iter()
        .map(|m| {
            (
                m.id().to_string(),
                m.client_host().to_string(),
                m.client_id().to_string(),
            )
        })
        .collect();
    rd_members.sort();

    let out = consumer_groups_ok(&bs, &["--describe", "--group", &group]);
    let rows = parse_describe(&out);
    assert_eq!(rows.len(), 4, "{out}");
    for r in &rows {
        assert_eq!(
            (r.current, r.log_end, r.lag),
            (Some(300), Some(300), Some(0)),
            "{out}"
        );
        let m = rd_members
            .iter()
            .find(|m| m.0 == r.consumer_id)
            .unwrap_or_else(|| panic!("unknown consumer {} in\n{out}", r.consumer_id));
        assert_eq!((&r.host, &r.client_id), (&m.1, &m.2));
        let owner = members
            .iter()
            .find(|x| x.name == r.client_id)
            .expect("client id is a member name");
        assert!(owner.assignment().contains(&r.partition), "{out}");
    }
    // Kafka's order: members with the most partitions first, partitions sorted.
    let members_out = consumer_groups_ok(&bs, &["--describe", "--group", &group, "--members"]);
    let mut listed: Vec<(String, String, String, String)> = members_out
        .lines()
        .skip(2)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[1].to_string(),
                f[2].to_string(),
                f[3].to_string(),
                f[4].to_string(),
            )
        })
        .collect();
    listed.sort();
    let expected: Vec<_> = rd_members
        .iter()
        .map(|(id, h, c)| (id.clone(), h.clone(), c.clone(), "2".to_string()))
        .collect();
    assert_eq!(listed, expected, "{members_out}");
    let state_out = consumer_groups_ok(&bs, &["--describe", "--group", &group, "--state"]);
    let state_row: Vec<&str> = state_out
        .lines()
        .nth(2)
        .unwrap()
        .split_whitespace()
        .collect();
    let md = observer
        .fetch_metadata(None, rdk::TIMEOUT)
        .expect("metadata");
    let broker_id = format!("({})", md.brokers()[0].id());
    assert_eq!(
        state_row,
        vec![group.as_str(), &bs, &broker_id, "range", "Stable", "2"],
        "{state_out}"
    );
    let (ok, _, err) = consumer_groups(
        &bs,
        &reset_args(&group, &topic, &["--to-earliest", "--execute"]),
    );
    assert!(!ok);
    assert!(err.contains(&format!("Assignments can only be reset if the group '{group}' is inactive, but the current state is Stable.")), "{err}");
    assert!(consumer_groups_ok(&bs, &["--list"])
        .lines()
        .any(|l| l == group));

    stop_all(&mut members);
    wait_until("the group to empty", WAIT, || {
        consumer_groups(&bs, &["--describe", "--group", &group])
            .2
            .contains("has no active members")
    });
    // Dry run: plan only.
    let plan = consumer_groups_ok(
        &bs,
        &reset_args(&group, &topic, &["--shift-by", "-50", "--dry-run"]),
    );
    assert_eq!(
        plan.lines()
            .skip(2)
            .map(|l| l.split_whitespace().nth(3).unwrap())
            .collect::<Vec<_>>(),
        vec!["250"; 4],
        "{plan}"
    );
    assert_committed_all(&bs, &group, &topic, 4, 300);
    // Execute on two partitions only.
    let spec = format!("{topic}:1,3");
    consumer_groups_ok(
        &bs,
        &reset_args(&group, &spec, &["--to-offset", "120", "--execute"]),
    );
    assert_eq!(
        committed(&bs, &group, &topic, 4),
        BTreeMap::from([(0, 300), (1, 120), (2, 300), (3, 120)])
    );
    let out = consumer_groups_ok(&bs, &["--describe", "--group", &group]);
    let lags: Vec<_> = parse_describe(&out)
        .iter()
        .map(|r| (r.partition, r.lag))
        .collect();
    assert_eq!(
        lags,
        vec![(0, Some(0)), (1, Some(180)), (2, Some(0)), (3, Some(180))],
        "{out}"
    );
    let mut m = Member::start(&bs, &topic, &group, "resumer", RANGE, None);
    wait_until("the reset range", WAIT, || m.count() >= 360);
    thread::sleep(Duration::from_millis(300));
    m.stop();
    let mut got: Vec<(i32, i64)> = m.records().iter().map(|r| (r.0, r.1)).collect();
    got.sort();
    let want: Vec<(i32, i64)> = [1, 3]
        .iter()
        .flat_map(|&p| (120..300).map(move |o| (p, o)))
        .collect();
    assert_eq!(got, want);

    let deleted = consumer_groups_ok(&bs, &["--delete", "--group", &group]);
    assert_eq!(
        deleted,
        format!("Deletion of requested consumer groups ('{group}') was successful.\n")
    );
    assert!(!consumer_groups_ok(&bs, &["--list"])
        .lines()
        .any(|l| l == group));
    assert!(committed(&bs, &group, &topic, 4).is_empty());
}

/// `--to-datetime` picks the first record at or after the time.
#[test]
fn cli_reset_to_datetime() {
    let (_broker, bs, topic, group) = start_group_test("dt", 1);
    // 2024-01-01T00:00:00Z plus i minutes for record i.
    let base = 1_704_067_200_000i64;
    for i in 0..10 {
        produce_at(&bs, &topic, 0, &value(0, i), base + i * 60_000);
    }
    let reset_to = |datetime: &str, mode: &str| {
        consumer_groups_ok(
            &bs,
            &reset_args(&group, &topic, &["--to-datetime", datetime, mode]),
        )
    };
    let out = reset_to("2024-01-01T00:03:30.000", "--execute");
    assert!(
        out.contains(&format!("\n{group:<15} {topic:<15} 0          4\n")),
        "{out}"
    );
    assert_eq!(committed(&bs, &group, &topic, 1), BTreeMap::from([(0, 4)]));
    let out = reset_to("2024-01-01T02:00:00.000+02:00", "--dry-run");
    assert!(out.ends_with(" 0\n"), "{out}");
    let out = reset_to("2030-01-01T00:00:00.000", "--dry-run");
    assert!(
        out.contains("Warn: Partition 0 from topic") && out.ends_with(" 10\n"),
        "{out}"
    );
}

/// Our console consumer as a group member: two runs share progress through
/// the group's commits, and `--describe` shows it.
#[test]
fn console_consumer_group_commits_and_resumes() {
    let (_broker, bs, topic, group) = start_group_test("console", 3);
    produce_numbered(&bs, &topic, 3, 100, 0);
    let run = |extra: &[&str]| -> Vec<String> {
        sluice(&console_args(&bs, &topic, "3000", extra))
            .lines()
            .map(str::to_string)
            .collect()
    };
    let first = run(&[
        "--group",
        &group,
        "--from-beginning",
        "--max-messages",
        "130",
    ]);
    assert_eq!(first.len(), 130);
    let commits = committed(&bs, &group, &topic, 3);
    assert_eq!(commits.values().sum::<i64>(), 130, "{commits:?}");
    let rows = parse_describe(&consumer_groups_ok(&bs, &["--describe", "--group", &group]));
    let described: BTreeMap<i32, i64> = rows
        .iter()
        .map(|r| (r.partition, r.current.unwrap()))
        .collect();
    assert_eq!(described, commits);
    let group_prop = format!("group.id={group}");
    let second = run(&["--consumer-property", &group_prop]);
    assert_eq!(second.len(), 170);
    let all: BTreeSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(all.len(), 300, "the two runs overlap");
    assert_committed_all(&bs, &group, &topic, 3, 100);
    // Two console consumers at once split the partitions. They read a fresh
    // topic that gets its records only once both are in the group: otherwise
    // whichever starts first may read everything before the other joins.
    let topic2 = unique_topic("console-split");
    rdk::create_topic(&bs, &topic2, 3);
    let group2 = format!("{group}-2");
    let spawn = || {
        Command::new(sluice_bin())
            .args(console_args(
                &bs,
                &topic2,
                "6000",
                &["--group", &group2, "--from-beginning"],
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    wait_until(
        "two console consumers in a Stable group",
        Duration::from_secs(30),
        || {
            let rows = consumer_groups(&bs, &["--describe", "--group", &group2, "--state"]).1;
            rows.contains("Stable") && rows.split_whitespace().last() == Some("2")
        },
    );
    produce_numbered(&bs, &topic2, 3, 100, 0);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        show_output(&a),
        show_output(&b)
    );
    let lines = |o: &std::process::Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let (la, lb) = (lines(&a), lines(&b));
    let union: BTreeSet<&String> = la.iter().chain(&lb).collect();
    assert_eq!(union.len(), 300, "together they read everything");
    assert_eq!(la.len() + lb.len(), 300, "no record read by both");
    assert!(
        !la.is_empty() && !lb.is_empty(),
        "both got partitions: {} / {}",
        la.len(),
        lb.len()
    );
}

fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

/// Runs a client script (it checks its own consumption and exits non-zero
/// on a mismatch), then compares `--describe` with the committed offsets it
/// printed as its last line: `COMMITTED group topic p:o,p:o,...`.
fn run_group_script(interpreter: PathBuf, script: &str) {
    let broker = Broker::start(BROKER_OVERRIDES);
    let mut cmd = Command::new(interpreter);
    cmd.arg(clients_dir().join(script))
        .arg(broker.bootstrap())
        .current_dir(clients_dir());
    let out = run_with_timeout(&mut cmd, None, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "{script} failed ({})\n{}",
        out.status,
        show_output(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout
        .lines()
        .rfind(|l| l.starts_with("COMMITTED "))
        .unwrap_or_else(|| panic!("no COMMITTED line\n{stdout}"));
    let f: Vec<&str> = last.split(' ').collect();
    let (group, topic) = (f[1], f[2]);
    let client_view: BTreeMap<i32, i64> = f[3]
        .split(',')
        .map(|po| {
            let (p, o) = po.split_once(':').unwrap();
            (p.parse().unwrap(), o.parse().unwrap())
        })
        .collect();
    let rows = parse_describe(&consumer_groups_ok(
        &broker.bootstrap(),
        &["--describe", "--group", group],
    ));
    let ours: BTreeMap<i32, i64> = rows
        .iter()
        .filter(|r| r.topic == topic)
        .map(|r| (r.partition, r.current.unwrap()))
        .collect();
    assert_eq!(
        ours, client_view,
        "consumer-groups --describe disagrees with {script}"
    );
    assert!(
        rows.iter().all(|r| r.lag == Some(0)),
        "everything was consumed"
    );
    println!("{}", stdout.trim());
}

fn python() -> PathBuf {
    let py = clients_dir().join(".venv/bin/python");
    assert!(py.exists(), "{} missing: run tests/run", py.display());
    py
}

#[test]
fn kafka_python_group_consumers() {
    run_group_script(python(), "kafka_python_group.py");
}

#[test]
fn kafkajs_group_consumers() {
    let node = common::require_tool("node");
    assert!(
        clients_dir()
            .join("node_modules/kafkajs/package.json")
            .exists(),
        "run tests/run (npm ci in tests/clients)"
    );
    run_group_script(node, "kafkajs_group.js");
}

/// KIP-848 (`group.protocol=consumer`): ConsumerGroupHeartbeat with
/// server-side assignment.
#[test]
fn confluent_kafka_kip848_group_consumers() {
    run_group_script(python(), "confluent_group848.py");
}
