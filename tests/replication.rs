//! Replication between brokers on one host: followers fetch their leaders'
//! batches byte for byte, the ISR follows who keeps up, acks=all waits for
//! the ISR, a new leader taken from the ISR has every acknowledged record,
//! and a returning broker cuts what its new leader does not have
//! (OffsetForLeaderEpoch) before it follows again.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::cluster::*;
use common::{rdk, Broker};

fn segment(b: &Broker, topic: &str, partition: i32) -> PathBuf {
    b.data_dir()
        .join(format!("{topic}-{partition}"))
        .join("00000000000000000000.log")
}

/// The bytes of the first segment of a partition on a broker (empty if it
/// has none yet).
fn segment_bytes(b: &Broker, topic: &str, partition: i32) -> Vec<u8> {
    let bytes = fs::read(segment(b, topic, partition)).unwrap_or_default();
    common::segment_batches(&bytes).to_vec()
}

/// The partition's (leader, replicas, isr) as broker `asked` says.
fn partition_of(c: &Cluster, asked: i32, topic: &str, partition: i32) -> (i32, Vec<i32>, Vec<i32>) {
    let l = layout(&metadata(c.broker(asked)));
    let (leader, replicas, isr, _) = l
        .get(topic)
        .and_then(|t| t.get(&partition))
        .cloned()
        .unwrap_or((-1, vec![], vec![], -1));
    (leader, replicas, isr)
}

fn sorted(mut v: Vec<i32>) -> Vec<i32> {
    v.sort();
    v
}

/// `sluice topics --create` through broker 1, as Kafka's tool is run.
fn create_topic(
    c: &Cluster,
    topic: &str,
    replication_factor: i32,
    partitions: i32,
    configs: &[&str],
) {
    let (rf, n) = (replication_factor.to_string(), partitions.to_string());
    let mut args = vec!["topics", "--bootstrap-server"];
    let bootstrap = c.broker(1).bootstrap();
    args.push(&bootstrap);
    args.extend([
        "--create",
        "--replication-factor",
        &rf,
        "--partitions",
        &n,
        "--topic",
        topic,
    ]);
    for kv in configs {
        args.extend(["--config", kv]);
    }
    let (ok, out) = cli(&args);
    assert!(ok, "{out}");
}

fn describe(bootstrap: &str, topic: &str) -> String {
    let (ok, out) = cli(&[
        "topics",
        "--bootstrap-server",
        bootstrap,
        "--describe",
        "--topic",
        topic,
    ]);
    assert!(ok, "{out}");
    out
}

fn console_consume(bootstrap: &str, topic: &str, n: usize) -> Vec<String> {
    let out = common::run_ok(
        Command::new(common::sluice_bin()).args([
            "console-consumer",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
            "--from-beginning",
            "--max-messages",
            &n.to_string(),
            "--timeout-ms",
            "30000",
        ]),
        None,
        Duration::from_secs(90),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn console_produce(bootstrap: &str, topic: &str, lines: &[String]) {
    let input = lines.join("\n") + "\n";
    common::run_ok(
        Command::new(common::sluice_bin()).args([
            "console-producer",
            "--bootstrap-server",
            bootstrap,
            "--topic",
            topic,
        ]),
        Some(input.as_bytes()),
        Duration::from_secs(90),
    );
}

/// The quickstart's fault-tolerance story (Kafka's documentation, step 6):
/// three brokers, a topic with three replicas, messages in, kill -9 the
/// leader, leadership moves to an in-sync follower that has every message,
/// and the killed broker rejoins the ISR when it comes back.
#[test]
fn a_replicated_topic_survives_kill_9_of_its_leader() {
    let mut c = Cluster::start(3, FAST_SESSIONS);
    create_topic(&c, "my-replicated-topic", 3, 1, &[]);
    let (leader, replicas, isr) = partition_of(&c, 2, "my-replicated-topic", 0);
    assert_eq!(sorted(replicas.clone()), vec![1, 2, 3]);
    assert_eq!(
        sorted(isr.clone()),
        vec![1, 2, 3],
        "a new partition's replicas are all in sync"
    );
    let out = describe(&c.broker(2).bootstrap(), "my-replicated-topic");
    assert!(
        out.contains(&format!("\tLeader: {leader}\tReplicas: ")) && out.contains("\tIsr: "),
        "{out}"
    );

    let first: Vec<String> = (1..=200).map(|i| format!("my test message {i}")).collect();
    console_produce(&c.broker(3).bootstrap(), "my-replicated-topic", &first);
    // acks=all (the console producer's default): every replica has them,
    // stored exactly as the leader stored them.
    let on_leader = segment_bytes(c.broker(leader), "my-replicated-topic", 0);
    assert!(!on_leader.is_empty());
    for id in 1..=3 {
        assert_eq!(
            segment_bytes(c.broker(id), "my-replicated-topic", 0),
            on_leader,
            "broker {id}'s copy differs from the leader's"
        );
    }

    c.brokers[leader as usize - 1].kill9();
    let alive: Vec<i32> = (1..=3).filter(|i| *i != leader).collect();
    until("a new leader from the ISR, without the dead one", || {
        let (l, _, isr) = partition_of(&c, alive[0], "my-replicated-topic", 0);
        alive.contains(&l) && !isr.contains(&leader)
    });
    let out = describe(&c.broker(alive[0]).bootstrap(), "my-replicated-topic");
    eprintln!("{out}");
    let (new_leader, _, isr) = partition_of(&c, alive[0], "my-replicated-topic", 0);
    assert_eq!(sorted(isr), alive);
    assert!(out.contains(&format!("\tLeader: {new_leader}\t")), "{out}");

    // The messages are still there, read from the new leader.
    let got = console_consume(&c.broker(alive[1]).bootstrap(), "my-replicated-topic", 200);
    assert_eq!(got, first);
    // And new ones flow (acks=all now waits for the two left).
    let second: Vec<String> = (1..=50).map(|i| format!("after the crash {i}")).collect();
    console_produce(
        &c.broker(alive[0]).bootstrap(),
        "my-replicated-topic",
        &second,
    );

    // The killed broker comes back, catches up and rejoins the ISR.
    let b = &mut c.brokers[leader as usize - 1];
    b.relaunch();
    b.wait_until_ready();
    until("the restarted broker back in the ISR", || {
        let (_, _, isr) = partition_of(&c, alive[0], "my-replicated-topic", 0);
        sorted(isr) == vec![1, 2, 3]
    });
    let on_leader = segment_bytes(c.broker(new_leader), "my-replicated-topic", 0);
    until("the restarted broker's copy equal to the leader's", || {
        segment_bytes(c.broker(leader), "my-replicated-topic", 0) == on_leader
    });
    let all: Vec<String> = first.iter().chain(&second).cloned().collect();
    assert_eq!(
        console_consume(&c.broker(leader).bootstrap(), "my-replicated-topic", 250),
        all
    );
}

/// The entries of a replica's `leader-epoch-checkpoint` (Kafka's text format).
fn leader_epochs(b: &Broker, topic: &str, partition: i32) -> Vec<(i32, i64)> {
    let path = b
        .data_dir()
        .join(format!("{topic}-{partition}"))
        .join("leader-epoch-checkpoint");
    let text = fs::read_to_string(&path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let mut it = line.split_whitespace();
        if let (Some(e), Some(s)) = (it.next(), it.next()) {
            out.push((e.parse().unwrap(), s.parse().unwrap()));
        }
    }
    out
}

/// A failover that hands several partitions to the survivors writes their
/// new leaders' epochs together, off the shard threads, made durable by one
/// syncfs per shard, before they lead: each new leader's checkpoint ends
/// with the new epoch starting at the log end it took over, and the
/// partitions take acks=all records at once. The surviving follower writes
/// the new epoch off its shard thread too, before appending the first
/// records it fetches of it, at their offset.
#[test]
fn a_failover_writes_the_new_leaders_epochs_together_before_they_lead() {
    let extra: Vec<&str> = FAST_SESSIONS
        .iter()
        .copied()
        .chain(["sluice.log.sync.filesystem.min.partitions=1"])
        .collect();
    let mut c = Cluster::start(3, &extra);
    let topic = "epochs";
    let n = 12;
    create_topic(&c, topic, 3, n, &[]);
    // Partition p holds p + 1 records.
    let p = rdk::producer(&c.bootstrap_all(), &[("acks", "all")]);
    let sent: Vec<_> = (0..n)
        .flat_map(|part| (0..=part).map(move |i| (part, i)))
        .map(|(part, i)| rdk::send(&p, topic, part, None, format!("{part}/{i}").as_bytes()))
        .collect();
    for f in sent {
        rdk::wait_delivery(f);
    }
    let leaders: Vec<i32> = (0..n)
        .map(|part| partition_of(&c, 2, topic, part).0)
        .collect();
    let dead = leaders[0];
    let moved: Vec<i32> = (0..n)
        .filter(|part| leaders[*part as usize] == dead)
        .collect();
    c.brokers[dead as usize - 1].kill9();
    let alive: Vec<i32> = (1..=3).filter(|i| *i != dead).collect();
    until("every partition led by a survivor", || {
        (0..n).all(|part| alive.contains(&partition_of(&c, alive[0], topic, part).0))
    });
    for &part in &moved {
        let (leader, _, _) = partition_of(&c, alive[0], topic, part);
        let epochs = leader_epochs(c.broker(leader), topic, part);
        let (epoch, start) = *epochs.last().unwrap();
        assert!(
            epoch >= 1 && start == part as i64 + 1,
            "{topic}-{part} on broker {leader}: {epochs:?}"
        );
    }
    let taken = alive
        .iter()
        .flat_map(|id| {
            c.broker(*id)
                .logs()
                .lines()
                .filter(|l| {
                    l.contains("leader epochs made durable before leading")
                        && l.contains("syncfs=true")
                })
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>();
    assert!(
        !taken.is_empty(),
        "no batched epoch write in the survivors' logs"
    );
    let p = rdk::producer(
        &alive
            .iter()
            .map(|id| c.broker(*id).bootstrap())
            .collect::<Vec<_>>()
            .join(","),
        &[("acks", "all")],
    );
    for &part in &moved {
        let d = rdk::wait_delivery(rdk::send(&p, topic, part, None, b"after"));
        assert_eq!(d.offset, part as i64 + 1, "{topic}-{part}");
    }
    // acks=all: the surviving follower holds each record, so its epochs too.
    for &part in &moved {
        let (leader, _, isr) = partition_of(&c, alive[0], topic, part);
        let follower = *alive.iter().find(|id| **id != leader).unwrap();
        assert!(isr.contains(&follower), "{topic}-{part}: isr {isr:?}");
        // The epoch the record was written in (a later epoch with no
        // records yet is the leader's alone).
        let written_in = leader_epochs(c.broker(leader), topic, part)
            .into_iter()
            .rfind(|(_, start)| *start <= part as i64 + 1);
        assert!(written_in.is_some_and(|(e, s)| e >= 1 && s == part as i64 + 1));
        let epochs = leader_epochs(c.broker(follower), topic, part);
        assert_eq!(
            epochs.last().copied(),
            written_in,
            "{topic}-{part} on follower {follower}: {epochs:?}"
        );
    }
    let ahead = alive.iter().any(|id| {
        c.broker(*id).logs().lines().any(|l| {
            l.contains("leader epochs made durable before appending fetched records")
                && l.contains("syncfs=true")
        })
    });
    assert!(ahead, "no follower wrote its new epochs ahead");
}

/// A leader takes records with acks=1 while its followers are stopped, then
/// dies: those records were never committed. The new leader (from the ISR)
/// does not have them; when the old leader returns it asks where their logs
/// part (OffsetForLeaderEpoch), cuts its own tail there and follows, so
/// every replica ends up byte for byte the same.
#[test]
fn a_returning_leader_truncates_what_was_never_committed() {
    let mut c = Cluster::start(3, FAST_SESSIONS);
    create_topic(&c, "diverge", 3, 1, &[]);
    let (leader, _, _) = partition_of(&c, 1, "diverge", 0);
    let followers: Vec<i32> = (1..=3).filter(|i| *i != leader).collect();
    let committed: Vec<String> = (0..20).map(|i| format!("committed {i}")).collect();
    console_produce(&c.broker(leader).bootstrap(), "diverge", &committed);

    // Followers stopped (briefly: well within their session), records taken
    // by the leader alone, then the leader dies.
    for f in &followers {
        c.broker(*f).pause(true);
    }
    let p = rdk::producer(&c.broker(leader).bootstrap(), &[("acks", "1")]);
    for i in 0..10 {
        rdk::wait_delivery(rdk::send(
            &p,
            "diverge",
            0,
            None,
            format!("lost {i}").as_bytes(),
        ));
    }
    drop(p);
    let dead_copy = segment_bytes(c.broker(leader), "diverge", 0);
    c.brokers[leader as usize - 1].kill9();
    for f in &followers {
        c.broker(*f).pause(false);
    }
    until("a follower leads", || {
        followers.contains(&partition_of(&c, followers[0], "diverge", 0).0)
    });
    let after: Vec<String> = (0..5).map(|i| format!("new leader {i}")).collect();
    console_produce(&c.broker(followers[0]).bootstrap(), "diverge", &after);

    let b = &mut c.brokers[leader as usize - 1];
    b.relaunch();
    b.wait_until_ready();
    until("the old leader back in the ISR", || {
        sorted(partition_of(&c, followers[0], "diverge", 0).2) == vec![1, 2, 3]
    });
    let new_leader = partition_of(&c, followers[0], "diverge", 0).0;
    let on_leader = segment_bytes(c.broker(new_leader), "diverge", 0);
    until("the old leader's copy equal to the new leader's", || {
        segment_bytes(c.broker(leader), "diverge", 0) == on_leader
    });
    // What survives: everything committed, then the new leader's records.
    // Between them, at most the start of the records the old leader took
    // alone (a fetch already answered before the followers stopped may have
    // carried some: uncommitted records may survive, as in Kafka), never
    // all of them: the rest was cut from the old leader.
    let got: Vec<String> = rdk::consume_all(
        &c.broker(new_leader).bootstrap(),
        "diverge",
        1,
        rdk::TIMEOUT,
    )
    .remove(&0)
    .unwrap_or_default()
    .into_iter()
    .map(|r| String::from_utf8(r.value.unwrap_or_default()).unwrap())
    .collect();
    assert!(
        got.starts_with(&committed) && got.ends_with(&after),
        "{got:?}"
    );
    let kept = &got[committed.len()..got.len() - after.len()];
    assert!(kept.len() < 10, "{got:?}");
    for (i, v) in kept.iter().enumerate() {
        assert_eq!(*v, format!("lost {i}"));
    }
    assert_ne!(
        dead_copy, on_leader,
        "the old leader held records no one else had"
    );
    assert!(
        c.broker(leader)
            .logs()
            .contains("this replica has records its leader lacks; truncating"),
        "{}",
        c.broker(leader).logs()
    );
}

/// min.insync.replicas=2 on a two-replica topic: with the follower gone the
/// ISR is the leader alone, and acks=all is refused (NOT_ENOUGH_REPLICAS)
/// while acks=1 is still taken; once the follower is back and in sync,
/// acks=all works again.
#[test]
fn acks_all_needs_min_insync_replicas() {
    let mut c = Cluster::start(3, FAST_SESSIONS);
    create_topic(&c, "guarded", 2, 1, &["min.insync.replicas=2"]);
    let (leader, replicas, isr) = partition_of(&c, 1, "guarded", 0);
    assert_eq!(sorted(isr), sorted(replicas.clone()));
    let follower = *replicas.iter().find(|r| **r != leader).unwrap();
    let p = rdk::producer(&c.broker(leader).bootstrap(), &[]);
    rdk::wait_delivery(rdk::send(&p, "guarded", 0, None, b"both in sync"));

    c.brokers[follower as usize - 1].kill9();
    until("the follower out of the ISR", || {
        partition_of(&c, leader, "guarded", 0).2 == vec![leader]
    });
    let strict = rdk::producer(
        &c.broker(leader).bootstrap(),
        &[("message.timeout.ms", "3000"), ("retries", "0")],
    );
    let refused = futures::executor::block_on(rdk::send(&strict, "guarded", 0, None, b"refused"))
        .expect("a delivery report");
    let err = refused.expect_err("acks=all with one in-sync replica of two required");
    assert!(
        format!("{:?}", err.0).contains("NotEnoughReplicas"),
        "{:?}",
        err.0
    );
    let loose = rdk::producer(&c.broker(leader).bootstrap(), &[("acks", "1")]);
    rdk::wait_delivery(rdk::send(&loose, "guarded", 0, None, b"acks=1 is fine"));

    let b = &mut c.brokers[follower as usize - 1];
    b.relaunch();
    b.wait_until_ready();
    until("the follower back in the ISR", || {
        sorted(partition_of(&c, leader, "guarded", 0).2) == sorted(replicas.clone())
    });
    rdk::wait_delivery(rdk::send(&p, "guarded", 0, None, b"in sync again"));
    let got: BTreeMap<i32, Vec<_>> =
        rdk::consume_all(&c.broker(leader).bootstrap(), "guarded", 1, rdk::TIMEOUT);
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 3);
}

/// Every `.log` file of a partition on a broker, by name.
fn partition_logs(b: &Broker, topic: &str, partition: i32) -> BTreeMap<String, Vec<u8>> {
    let dir = b.data_dir().join(format!("{topic}-{partition}"));
    let Ok(entries) = fs::read_dir(&dir) else {
        return BTreeMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                common::segment_batches(&fs::read(e.path()).unwrap_or_default()).to_vec(),
            )
        })
        .collect()
}

/// What an acks=all producer got acknowledged: (partition, offset, value)
/// of every acknowledged record, and how many were not.
type Acked = (Vec<(i32, i64, String)>, usize);

/// An idempotent acks=all librdkafka producer writing "id-N" round-robin
/// to `topic`'s partitions until `stop`, at most 200 records in flight.
fn acked_producer(
    bootstrap: String,
    topic: &'static str,
    partitions: i32,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Acked> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let p = rdk::producer(
            &bootstrap,
            &[
                ("enable.idempotence", "true"),
                ("message.timeout.ms", "20000"),
                ("linger.ms", "2"),
            ],
        );
        let mut acked: Vec<(i32, i64, String)> = Vec::new();
        let mut failed = 0usize;
        let mut inflight = std::collections::VecDeque::new();
        let mut settle = |f: rdkafka::producer::DeliveryFuture,
                          value: String,
                          acked: &mut Vec<(i32, i64, String)>| {
            match futures::executor::block_on(f) {
                Ok(Ok(d)) => acked.push((d.partition, d.offset, value)),
                Ok(Err((e, _))) => {
                    failed += 1;
                    eprintln!("not acknowledged: {value}: {e}");
                }
                Err(_) => failed += 1,
            }
        };
        let mut seq = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let value = format!("id-{seq}");
            let f = rdk::send(
                &p,
                topic,
                (seq % partitions as u64) as i32,
                None,
                value.as_bytes(),
            );
            inflight.push_back((f, value));
            seq += 1;
            while inflight.len() > 200 {
                let (f, v) = inflight.pop_front().unwrap();
                settle(f, v, &mut acked);
            }
        }
        for (f, v) in inflight {
            settle(f, v, &mut acked);
        }
        (acked, failed)
    })
}

/// Every acknowledged record is read back at the offset it was
/// acknowledged at, exactly once.
fn assert_acked_present(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    acked: &[(i32, i64, String)],
) {
    let got = rdk::consume_all(bootstrap, topic, partitions, rdk::TIMEOUT);
    let mut at: BTreeMap<(i32, i64), String> = BTreeMap::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for recs in got.values() {
        for r in recs {
            let v = String::from_utf8(r.value.clone().unwrap_or_default()).unwrap();
            *seen.entry(v.clone()).or_default() += 1;
            at.insert((r.partition, r.offset), v);
        }
    }
    for (partition, offset, value) in acked {
        assert_eq!(
            at.get(&(*partition, *offset)),
            Some(value),
            "acknowledged {value} at {partition}/{offset} is not there"
        );
        assert_eq!(seen[value], 1, "{value} stored more than once");
    }
}

/// How long the fault loop of the no-loss test runs.
const FAULT_LOOP: Duration = Duration::from_secs(60);

/// Jepsen-style, bounded: an idempotent acks=all producer (librdkafka)
/// writes to an RF 3 topic with min.insync.replicas=2 while brokers,
/// leaders and the quorum leader among them, are killed -9 and restarted
/// one at a time for a minute. Afterwards every acknowledged record is read
/// back at the offset it was acknowledged at, exactly once, and every
/// replica's log is byte for byte the same.
#[test]
fn no_acknowledged_record_is_lost_while_brokers_are_killed() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    const PARTITIONS: i32 = 3;
    let mut c = Cluster::start(3, FAST_SESSIONS);
    create_topic(&c, "ledger", 3, PARTITIONS, &["min.insync.replicas=2"]);

    let stop = Arc::new(AtomicBool::new(false));
    let producer = acked_producer(c.bootstrap_all(), "ledger", PARTITIONS, stop.clone());

    // One broker down at a time: killed -9, left down for 0.5-5 s (beyond
    // the 3 s session: fenced, its leaderships moved), restarted.
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let started = Instant::now();
    let mut faults = 0;
    while started.elapsed() < FAULT_LOOP {
        let victim = if next() % 3 == 0 {
            c.quorum_leader()
        } else {
            (next() % 3) as i32 + 1
        };
        let down_ms = 500 + next() % 4500;
        eprintln!("fault {faults}: kill -9 broker {victim} for {down_ms} ms");
        c.brokers[victim as usize - 1].kill9();
        std::thread::sleep(Duration::from_millis(down_ms));
        let b = &mut c.brokers[victim as usize - 1];
        b.relaunch();
        b.wait_until_ready();
        std::thread::sleep(Duration::from_millis(1000 + next() % 2000));
        faults += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = producer.join().unwrap();
    eprintln!(
        "{} acknowledged, {failed} not, over {faults} faults",
        acked.len()
    );
    assert!(!acked.is_empty());

    // Writes still work once the faults stop, and every ISR fills again.
    let p = rdk::producer(&c.bootstrap_all(), &[]);
    for part in 0..PARTITIONS {
        rdk::wait_delivery(rdk::send(&p, "ledger", part, None, b"after the faults"));
    }
    until("every ISR whole again", || {
        let l = layout(&metadata(c.broker(1)));
        (0..PARTITIONS).all(|p| sorted(l["ledger"][&p].2.clone()) == vec![1, 2, 3])
    });

    assert_acked_present(&c.bootstrap_all(), "ledger", PARTITIONS, &acked);
    for part in 0..PARTITIONS {
        until("replicas byte for byte the same", || {
            let reference = partition_logs(c.broker(1), "ledger", part);
            !reference.is_empty()
                && (2..=3).all(|id| partition_logs(c.broker(id), "ledger", part) == reference)
        });
    }
}

/// `sluice topics --create --replica-assignment` (Kafka's format: the
/// brokers of each partition, the first leading).
fn create_assigned(c: &Cluster, topic: &str, assignment: &str) {
    let (ok, out) = cli(&[
        "topics",
        "--bootstrap-server",
        &c.broker(1).bootstrap(),
        "--create",
        "--topic",
        topic,
        "--replica-assignment",
        assignment,
    ]);
    assert!(ok, "{out}");
}

/// `sluice leader-election` through `bootstrap`: (exit ok, output).
fn leader_election(bootstrap: &str, args: &[&str]) -> (bool, String) {
    let mut all = vec!["leader-election", "--bootstrap-server", bootstrap];
    all.extend(args);
    cli(&all)
}

/// Run a client script of tests/clients in its venv: its stdout.
fn python_client(script: &str, args: &[&str]) -> String {
    let clients = common::repo_root().join("tests/clients");
    let python = clients.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: run tests/run",
        python.display()
    );
    let out = common::run_ok(
        Command::new(python)
            .arg(clients.join(script))
            .args(args)
            .current_dir(&clients),
        None,
        Duration::from_secs(90),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// confluent-kafka's `AdminClient.elect_leaders` (tests/clients/confluent_elect.py):
/// one "topic-partition STATUS" line per partition answered.
fn confluent_elect(bootstrap: &str, kind: &str, partitions: &[&str]) -> String {
    let mut args = vec![bootstrap, kind];
    args.extend(partitions);
    python_client("confluent_elect.py", &args)
}

/// Every replica's copy of a partition's first segment is the same.
fn replicas_agree(c: &Cluster, topic: &str, partition: i32, replicas: &[i32]) {
    until(
        &format!("every copy of {topic}-{partition} the same"),
        || {
            let first = segment_bytes(c.broker(replicas[0]), topic, partition);
            replicas
                .iter()
                .all(|r| segment_bytes(c.broker(*r), topic, partition) == first)
        },
    );
}

/// Preferred leader election (ElectLeaders, API 43) moves leadership back
/// to the first replica once it is in sync again, asked through
/// `sluice leader-election` and through confluent-kafka; nothing written
/// before or after is lost.
#[test]
fn preferred_leader_election_moves_leadership_back_to_the_first_replica() {
    let mut extra = FAST_SESSIONS.to_vec();
    extra.push("auto.leader.rebalance.enable=false");
    let mut c = Cluster::start(3, &extra);
    create_assigned(&c, "pref", "1:2:3,1:3:2");
    produce(&c.broker(2).bootstrap(), "pref", 2, 100);

    c.brokers[0].kill9();
    until("both partitions led elsewhere", || {
        (0..2).all(|p| ![1, -1].contains(&partition_of(&c, 2, "pref", p).0))
    });
    c.brokers[0].relaunch();
    c.brokers[0].wait_until_ready();
    until("broker 1 back in both ISRs", || {
        (0..2).all(|p| sorted(partition_of(&c, 2, "pref", p).2) == vec![1, 2, 3])
    });
    for p in 0..2 {
        assert_ne!(
            partition_of(&c, 2, "pref", p).0,
            1,
            "leadership came back without being asked (auto rebalance is off)"
        );
    }

    let b2 = c.broker(2).bootstrap();
    let prefer_pref0 = || {
        leader_election(
            &b2,
            &[
                "--election-type",
                "preferred",
                "--topic",
                "pref",
                "--partition",
                "0",
            ],
        )
    };
    let (ok, out) = prefer_pref0();
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "Successfully completed leader election (PREFERRED) for partitions pref-0\n"
    );
    until("broker 1 leads pref-0", || {
        partition_of(&c, 3, "pref", 0).0 == 1
    });
    let (ok, out) = prefer_pref0();
    assert!(ok, "{out}");
    assert_eq!(out, "Valid replica already elected for partitions pref-0\n");

    // A client nobody here wrote: librdkafka's admin API.
    assert_eq!(
        confluent_elect(&b2, "preferred", &["pref:1"]),
        "pref-1 OK\n"
    );
    until("broker 1 leads pref-1", || {
        partition_of(&c, 3, "pref", 1).0 == 1
    });
    assert_eq!(
        confluent_elect(&b2, "preferred", &["pref:0", "pref:7"]),
        "pref-0 ELECTION_NOT_NEEDED\npref-7 UNKNOWN_TOPIC_OR_PART\n"
    );
    // Nothing left to move: --all-topic-partitions answers nothing, and
    // an unclean election of led partitions is not needed either.
    let (ok, out) = leader_election(
        &c.broker(3).bootstrap(),
        &["--election-type", "preferred", "--all-topic-partitions"],
    );
    assert!(ok && out.is_empty(), "{out}");
    assert_eq!(
        confluent_elect(&b2, "unclean", &["pref:0"]),
        "pref-0 ELECTION_NOT_NEEDED\n"
    );

    // The moves lost nothing, and new records flow through the new leader.
    produce(&c.broker(1).bootstrap(), "pref", 2, 50);
    assert_eq!(consumed(&c.broker(3).bootstrap(), "pref", 2), 150);
    for p in 0..2 {
        replicas_agree(&c, "pref", p, &[1, 2, 3]);
    }
}

/// `auto.leader.rebalance.enable` (on by default): once the preferred
/// replica is back in sync, the controller gives leadership back to it at
/// the next `leader.imbalance.check.interval.seconds`.
#[test]
fn auto_leader_rebalance_gives_leadership_back_to_the_preferred_replica() {
    let mut extra = FAST_SESSIONS.to_vec();
    extra.push("leader.imbalance.check.interval.seconds=1");
    let mut c = Cluster::start(3, &extra);
    create_assigned(&c, "rebalanced", "1:2:3");
    produce(&c.broker(1).bootstrap(), "rebalanced", 1, 20);
    c.brokers[0].kill9();
    until("another leader", || {
        ![1, -1].contains(&partition_of(&c, 2, "rebalanced", 0).0)
    });
    c.brokers[0].relaunch();
    c.brokers[0].wait_until_ready();
    until("broker 1 leads again, with every replica in sync", || {
        let (leader, _, isr) = partition_of(&c, 2, "rebalanced", 0);
        leader == 1 && sorted(isr) == vec![1, 2, 3]
    });
    assert!(
        c.brokers.iter().any(|b| b
            .logs()
            .contains("leadership moved back to preferred replicas")),
        "the controller did not say it rebalanced"
    );
    produce(&c.broker(3).bootstrap(), "rebalanced", 1, 5);
    assert_eq!(consumed(&c.broker(2).bootstrap(), "rebalanced", 1), 25);
}

/// When every in-sync replica is gone, a partition stays offline, as
/// Kafka's default `unclean.leader.election.enable=false` wants, until an
/// operator asks for an unclean election (`sluice leader-election
/// --election-type unclean`) or enables the topic config; then an
/// out-of-sync replica leads, and the old leader, when it returns, cuts the
/// acknowledged records the new one never had (and says how many) so the
/// replicas agree again.
#[test]
fn unclean_leader_election_revives_a_partition_whose_in_sync_replicas_are_gone() {
    let mut c = Cluster::start(3, FAST_SESSIONS);
    // Both partitions led by 1 and followed by 2; 3 keeps the quorum.
    create_assigned(&c, "stranded", "1:2,1:2");
    produce(&c.broker(1).bootstrap(), "stranded", 2, 10);
    replicas_agree(&c, "stranded", 0, &[1, 2]);
    replicas_agree(&c, "stranded", 1, &[1, 2]);

    c.brokers[1].kill9();
    until("the ISRs shrunk to broker 1", || {
        (0..2).all(|p| partition_of(&c, 3, "stranded", p).2 == vec![1])
    });
    // Acknowledged (acks=all, ISR of one, min.insync.replicas=1) by 1 alone.
    produce(&c.broker(1).bootstrap(), "stranded", 2, 20);
    // 1 stops answering before 2 returns, so 2 cannot catch up; 2 and 3
    // keep the quorum, which fences 1.
    c.broker(1).pause(true);
    c.brokers[1].relaunch();
    c.brokers[1].wait_until_ready();
    until("both partitions offline", || {
        (0..2).all(|p| partition_of(&c, 3, "stranded", p).0 == -1)
    });
    c.brokers[0].kill9();

    // Unclean election is off: broker 2 is live but not in sync, so the
    // partitions stay offline (over several controller ticks).
    std::thread::sleep(Duration::from_secs(3));
    for p in 0..2 {
        assert_eq!(
            partition_of(&c, 3, "stranded", p),
            (-1, vec![1, 2], vec![1])
        );
    }
    let (ok, out) = cli(&[
        "topics",
        "--bootstrap-server",
        &c.broker(3).bootstrap(),
        "--describe",
        "--unavailable-partitions",
    ]);
    assert!(
        ok && out.matches("Topic: stranded\tPartition:").count() == 2,
        "{out}"
    );

    // By request, one partition.
    let (ok, out) = leader_election(
        &c.broker(2).bootstrap(),
        &[
            "--election-type",
            "unclean",
            "--topic",
            "stranded",
            "--partition",
            "0",
        ],
    );
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "Successfully completed leader election (UNCLEAN) for partitions stranded-0\n"
    );
    until("broker 2 leads stranded-0 alone", || {
        partition_of(&c, 3, "stranded", 0) == (2, vec![1, 2], vec![2])
    });
    assert_eq!(partition_of(&c, 3, "stranded", 1).0, -1);

    // By config: the controller elects the other one itself.
    let (ok, out) = cli(&[
        "topics",
        "--bootstrap-server",
        &c.broker(3).bootstrap(),
        "--alter",
        "--topic",
        "stranded",
        "--config",
        "unclean.leader.election.enable=true",
    ]);
    assert!(ok, "{out}");
    until("broker 2 leads stranded-1 alone", || {
        partition_of(&c, 3, "stranded", 1) == (2, vec![1, 2], vec![2])
    });
    assert!(
        c.brokers
            .iter()
            .any(|b| b.logs().contains("unclean leader election")),
        "the controller did not warn about the unclean election"
    );

    // What only broker 1 held is gone; what 2 had, and new records, are there.
    produce(&c.broker(2).bootstrap(), "stranded", 2, 6);
    assert_eq!(consumed(&c.broker(3).bootstrap(), "stranded", 2), 16);

    // Broker 1 returns: it truncates to the new leader's log and follows.
    c.brokers[0].relaunch();
    c.brokers[0].wait_until_ready();
    until("broker 1 back in both ISRs", || {
        (0..2).all(|p| sorted(partition_of(&c, 3, "stranded", p).2) == vec![1, 2])
    });
    for p in 0..2 {
        replicas_agree(&c, "stranded", p, &[2, 1]);
    }
    let logs = c.broker(1).logs();
    assert!(
        logs.contains("acknowledged offsets are lost"),
        "broker 1 did not say what it lost:\n{logs}"
    );
}

/// A leader restarted with records its follower never confirmed does not
/// hand them to consumers: its high watermark comes back from
/// `replication-offset-checkpoint`, not from its log end, and moves on only
/// when the follower has fetched them (Kafka's rule; otherwise a consumer
/// could read records a later leader never had).
#[test]
fn a_restarted_leader_serves_only_what_its_followers_confirmed() {
    let mut c = Cluster::start(
        3,
        &[
            // Long sessions: nobody is fenced while a broker restarts.
            "broker.session.timeout.ms=30000",
            "broker.heartbeat.interval.ms=500",
            "replica.high.watermark.checkpoint.interval.ms=100",
        ],
    );
    create_assigned(&c, "hwm", "1:2");
    produce(&c.broker(1).bootstrap(), "hwm", 1, 5);
    c.broker(2).pause(true);
    let p = rdk::producer(&c.broker(1).bootstrap(), &[("acks", "1")]);
    for i in 0..5 {
        rdk::wait_delivery(rdk::send(
            &p,
            "hwm",
            0,
            None,
            format!("unconfirmed {i}").as_bytes(),
        ));
    }
    drop(p);
    assert_eq!(rdk::watermarks(&c.broker(1).bootstrap(), "hwm", 0).1, 5);
    // Well past a checkpoint interval, then a crash and a restart.
    std::thread::sleep(Duration::from_millis(500));
    c.brokers[0].relaunch();
    c.brokers[0].wait_until_ready();
    until("broker 1 leads hwm-0 again", || {
        partition_of(&c, 1, "hwm", 0).0 == 1
    });
    let high = |c: &Cluster| {
        rdkafka::consumer::Consumer::fetch_watermarks(
            &rdk::consumer(&c.broker(1).bootstrap()),
            "hwm",
            0,
            rdk::TIMEOUT,
        )
        .map(|w| w.1)
        .unwrap_or(-1)
    };
    until("broker 1 answers ListOffsets", || high(&c) >= 0);
    assert_eq!(
        high(&c),
        5,
        "the unconfirmed tail is served after a restart"
    );
    // The follower fetches them: now they are committed and served.
    c.broker(2).pause(false);
    until("the follower confirms the tail", || high(&c) == 10);
    assert_eq!(consumed(&c.broker(3).bootstrap(), "hwm", 1), 10);
}

/// The node FindCoordinator names for `group`, asked of broker `asked`
/// (None while there is none).
fn coordinator_of(c: &Cluster, asked: i32, group: &str) -> Option<i32> {
    use kafka_protocol::messages::FindCoordinatorRequest;
    use kafka_protocol::protocol::StrBytes;
    let mut s = std::net::TcpStream::connect(c.broker(asked).addr()).ok()?;
    let r = common::call(
        &mut s,
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_string(group.to_string())),
    );
    (r.error_code == 0).then_some(r.node_id.0)
}

/// A raw OffsetCommit (v2, no generation: a standalone commit) of
/// `work-0` at `offset` to broker `to`; the partition's error code.
fn raw_commit(c: &Cluster, to: i32, group: &str, offset: i64) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut s = std::net::TcpStream::connect(c.broker(to).addr()).unwrap();
    let r = common::call(
        &mut s,
        2,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
            .with_generation_id_or_member_epoch(-1)
            .with_retention_time_ms(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("work")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]),
    );
    r.topics[0].partitions[0].error_code
}

/// Group state is replicated like any partition: `__consumer_offsets` has
/// `offsets.topic.replication.factor` (3) replicas; a commit is answered only
/// once every in-sync replica holds it (Kafka writes group state with
/// acks=all); when the coordinator's broker is killed, the new leader of the
/// group's partition is its coordinator and serves what was committed.
#[test]
fn committed_offsets_survive_the_death_of_the_group_coordinator() {
    use rdkafka::consumer::{CommitMode, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let mut extra = FAST_SESSIONS.to_vec();
    extra.extend([
        "offsets.topic.num.partitions=3",
        "offsets.commit.timeout.ms=1000",
    ]);
    let mut c = Cluster::start(3, &extra);
    create_topic(&c, "work", 3, 1, &[]);
    produce(&c.broker(1).bootstrap(), "work", 1, 100);
    let group_consumer = |bootstrap: &str| -> rdkafka::consumer::BaseConsumer {
        rdk::config(
            bootstrap,
            &[("group.id", "survivors"), ("enable.auto.commit", "false")],
        )
        .create()
        .unwrap()
    };
    let at = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("work", 0, Offset::Offset(offset))
            .unwrap();
        tpl
    };
    let committed = |bootstrap: &str| -> i64 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("work", 0);
        let got = group_consumer(bootstrap)
            .committed_offsets(tpl, rdk::TIMEOUT)
            .expect("OffsetFetch");
        match got.find_partition("work", 0).unwrap().offset() {
            Offset::Offset(o) => o,
            other => panic!("no committed offset: {other:?}"),
        }
    };
    // librdkafka finds the coordinator (creating __consumer_offsets) and commits.
    group_consumer(&c.bootstrap_all())
        .commit(&at(40), CommitMode::Sync)
        .expect("commit 40");
    let coordinator = coordinator_of(&c, 1, "survivors").expect("a coordinator");
    let others: Vec<i32> = (1..=3).filter(|b| *b != coordinator).collect();

    // With a follower of the group's partition stopped (still in its ISR),
    // a commit is written but not acknowledged: it is not on every replica.
    c.broker(others[1]).pause(true);
    let code = raw_commit(&c, coordinator, "survivors", 50);
    c.broker(others[1]).pause(false);
    assert_eq!(
        code, 15,
        "COORDINATOR_NOT_AVAILABLE while an in-sync replica lacks the commit"
    );
    until("commit 60 acknowledged", || {
        raw_commit(&c, coordinator, "survivors", 60) == 0
    });

    c.brokers[coordinator as usize - 1].kill9();
    until("another broker coordinates the group", || {
        coordinator_of(&c, others[0], "survivors").is_some_and(|n| n != coordinator)
    });
    let survivors = format!(
        "{},{}",
        c.broker(others[0]).bootstrap(),
        c.broker(others[1]).bootstrap()
    );
    assert_eq!(
        committed(&survivors),
        60,
        "the new coordinator lost the commit"
    );
    // The group goes on under the new coordinator; Kafka's tool, pointed at
    // the restarted broker, finds it and shows the later commit.
    group_consumer(&survivors)
        .commit(&at(70), CommitMode::Sync)
        .expect("commit 70");
    let b = &mut c.brokers[coordinator as usize - 1];
    b.relaunch();
    b.wait_until_ready();
    let out = common::run_ok(
        Command::new(common::sluice_bin()).args([
            "consumer-groups",
            "--bootstrap-server",
            &c.broker(coordinator).bootstrap(),
            "--describe",
            "--group",
            "survivors",
        ]),
        None,
        Duration::from_secs(60),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(5).collect::<Vec<_>>()
                == ["survivors", "work", "0", "70", "100"]),
        "{table}"
    );
}

/// SIGTERM is a controlled shutdown (`controlled.shutdown.enable`): the
/// broker has the controller move its leadership to another in-sync replica
/// and take it out of the ISR before it exits, so clients do not wait out
/// its session; it comes back as a follower and rejoins the ISR.
#[test]
fn sigterm_moves_leadership_away_before_the_broker_exits() {
    // Kafka's default sessions (9 s): nobody is fenced for a missed session
    // while this test runs.
    let mut c = Cluster::start(3, &[]);
    create_assigned(&c, "graceful", "1:2:3");
    produce(&c.broker(2).bootstrap(), "graceful", 1, 50);
    let status = c.brokers[0].terminate();
    assert!(status.success(), "{status:?}");
    let logs = c.broker(1).logs();
    assert!(
        logs.contains("controlled shutdown: no partition is led here any more"),
        "{logs}"
    );
    until("a new leader without broker 1 in the ISR", || {
        let (leader, _, isr) = partition_of(&c, 2, "graceful", 0);
        [2, 3].contains(&leader) && sorted(isr) == vec![2, 3]
    });
    for b in &c.brokers[1..] {
        assert!(
            !b.logs().contains("broker missed its session"),
            "broker 1 was fenced for its session, not by its shutdown:\n{}",
            b.logs()
        );
    }
    produce(&c.broker(3).bootstrap(), "graceful", 1, 50);
    c.brokers[0].relaunch();
    c.brokers[0].wait_until_ready();
    until("broker 1 back in the ISR", || {
        sorted(partition_of(&c, 2, "graceful", 0).2) == vec![1, 2, 3]
    });
    assert_eq!(consumed(&c.broker(1).bootstrap(), "graceful", 1), 100);
}

/// Partition reassignments through kafka-python's admin client
/// (tests/clients/kafka_python_reassign.py): "alter" lines
/// "topic-partition OK|<error>", or "list" lines.
fn kafka_python_reassign(bootstrap: &str, args: &[&str]) -> String {
    let mut all = vec![bootstrap];
    all.extend(args);
    python_client("kafka_python_reassign.py", &all)
}

/// `sluice reassign-partitions` through `bootstrap` with a reassignment
/// JSON file holding `json`: (exit ok, output).
fn reassign_cli(bootstrap: &str, action: &str, json: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("reassignment.json");
    fs::write(&file, json).unwrap();
    cli(&[
        "reassign-partitions",
        "--bootstrap-server",
        bootstrap,
        action,
        "--reassignment-json-file",
        file.to_str().unwrap(),
    ])
}

/// Partition reassignment (KIP-455) while an acks=all producer keeps
/// writing: `sluice reassign-partitions --execute` moves a partition off
/// its leader's broker and another onto a new broker; the new replicas copy
/// the log, join the ISR, the old ones leave (their data deleted) and
/// leadership moves, and every acknowledged record is still there, the same
/// bytes on every replica. Then a move that cannot finish (its new broker
/// is down) is listed in progress (sluice's tool and kafka-python agree),
/// refused to a second --execute, cancelled, and finishes once started again
/// with the broker back.
#[test]
fn reassigning_partitions_moves_replicas_while_producers_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut c = Cluster::start(3, FAST_SESSIONS);
    create_assigned(&c, "moving", "1:2,2:1");
    produce(&c.broker(1).bootstrap(), "moving", 2, 2000);
    let stop = Arc::new(AtomicBool::new(false));
    let producer = acked_producer(c.bootstrap_all(), "moving", 2, stop.clone());
    std::thread::sleep(Duration::from_millis(500));

    // moving-0 leaves its leader's broker (1); moving-1 moves from 1 to 3.
    let b2 = c.broker(2).bootstrap();
    let target = r#"{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[3,2]},{"topic":"moving","partition":1,"replicas":[2,3],"log_dirs":["any","any"]}]}"#;
    let (ok, out) = reassign_cli(&b2, "--execute", target);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "Current partition replica assignment\n\n\
         {\"version\":1,\"partitions\":[{\"topic\":\"moving\",\"partition\":0,\"replicas\":[1,2],\"log_dirs\":[\"any\",\"any\"]},\
         {\"topic\":\"moving\",\"partition\":1,\"replicas\":[2,1],\"log_dirs\":[\"any\",\"any\"]}]}\n\n\
         Save this to use as the --reassignment-json-file option during rollback\n\
         Successfully started partition reassignments for moving-0,moving-1\n"
    );
    until("the reassignment verified complete", || {
        let (ok, out) = reassign_cli(&b2, "--verify", target);
        assert!(ok, "{out}");
        out == "Status of partition reassignment:\n\
                Reassignment of partition moving-0 is completed.\n\
                Reassignment of partition moving-1 is completed.\n\n"
    });
    for (p, want) in [(0, vec![3, 2]), (1, vec![2, 3])] {
        // Broker 2 (the controller) answered --verify; broker 1 learns of
        // the change when it applies the next metadata version, a moment
        // later (this once failed with broker 1 still at [3, 2, 1]).
        until(&format!("broker 1 sees moving-{p} on {want:?}"), || {
            partition_of(&c, 1, "moving", p).1 == want
        });
        let (leader, replicas, isr) = partition_of(&c, 1, "moving", p);
        assert_eq!(replicas, want, "moving-{p}");
        assert_eq!(sorted(isr), vec![2, 3], "moving-{p}");
        assert!([2, 3].contains(&leader), "moving-{p} led by {leader}");
    }
    until("broker 1 deleted its copies", || {
        (0..2).all(|p| !c.broker(1).data_dir().join(format!("moving-{p}")).exists())
    });
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = producer.join().unwrap();
    eprintln!("{} acknowledged, {failed} not", acked.len());
    assert!(!acked.is_empty());
    assert_eq!(failed, 0, "a reassignment made writes fail");
    assert_acked_present(&c.bootstrap_all(), "moving", 2, &acked);
    for p in 0..2 {
        until("replicas byte for byte the same", || {
            let reference = partition_logs(c.broker(2), "moving", p);
            !reference.is_empty() && partition_logs(c.broker(3), "moving", p) == reference
        });
    }

    // A move onto a broker that is down cannot complete: it stays listed.
    c.brokers[0].kill9();
    until("broker 1 fenced", || {
        !metadata(c.broker(2))
            .brokers
            .iter()
            .any(|b| b.node_id.0 == 1)
    });
    // sluice's tool refuses it, as Kafka's does...
    let onto_1 = r#"{"partitions":[{"topic":"moving","partition":1,"replicas":[2,1]}]}"#;
    let (ok, out) = reassign_cli(&b2, "--execute", onto_1);
    assert!(!ok && out.contains("Unknown broker id 1"), "{out}");
    // ...a client without that check can still ask (broker 1 is registered).
    assert_eq!(
        kafka_python_reassign(&b2, &["alter", "moving:1:2,1", "moving:0:2,9"]),
        "moving-0 InvalidReplicationAssignmentError\nmoving-1 OK\n"
    );
    let (ok, out) = cli(&["reassign-partitions", "--bootstrap-server", &b2, "--list"]);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "Current partition reassignments:\nmoving-1: replicas: 2,1,3. adding: 1. removing: 3.\n"
    );
    assert_eq!(
        kafka_python_reassign(&c.broker(3).bootstrap(), &["list"]),
        "moving-1 replicas=2,1,3 adding=1 removing=3\n"
    );
    let (ok, out) = reassign_cli(&b2, "--verify", onto_1);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "Status of partition reassignment:\nReassignment of partition moving-1 is still in progress.\n\n"
    );
    let (ok, out) = reassign_cli(&b2, "--execute", target);
    assert!(
        !ok && out.contains("Cannot execute because there is an existing partition assignment."),
        "{out}"
    );
    // Records still flow through the widened replica set.
    produce(&b2, "moving", 2, 100);
    let (ok, out) = reassign_cli(&b2, "--cancel", onto_1);
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "Successfully cancelled partition reassignment for: moving-1\n"
    );
    assert_eq!(sorted(partition_of(&c, 3, "moving", 1).1), vec![2, 3]);
    let (ok, out) = cli(&["reassign-partitions", "--bootstrap-server", &b2, "--list"]);
    assert!(ok && out == "No partition reassignments found.\n", "{out}");
    assert_eq!(
        kafka_python_reassign(&b2, &["alter", "moving:1:none"]),
        "moving-1 NoReassignmentInProgressError\n"
    );

    // With broker 1 back, the same move completes. (A partition directory
    // whose deletion a stop interrupted is removed when it starts.)
    let interrupted = c.broker(1).data_dir().join("gone-0.0123abcd-delete");
    fs::create_dir_all(&interrupted).unwrap();
    fs::write(interrupted.join("00000000000000000000.log"), b"old").unwrap();
    c.brokers[0].relaunch();
    c.brokers[0].wait_until_ready();
    until("the interrupted deletion finished", || {
        !interrupted.exists()
    });
    // Broker 3, which the move removes, is down while it happens: it
    // deletes its copy when it comes back (Kafka's stray replica).
    c.brokers[2].kill9();
    until("broker 3 fenced", || {
        !metadata(c.broker(2))
            .brokers
            .iter()
            .any(|b| b.node_id.0 == 3)
    });
    assert_eq!(
        kafka_python_reassign(&b2, &["alter", "moving:1:2,1"]),
        "moving-1 OK\n"
    );
    until("moving-1 on brokers 2 and 1", || {
        let (_, replicas, isr) = partition_of(&c, 2, "moving", 1);
        replicas == vec![2, 1] && sorted(isr) == vec![1, 2]
    });
    assert!(c.broker(3).data_dir().join("moving-1").exists());
    c.brokers[2].relaunch();
    c.brokers[2].wait_until_ready();
    until("broker 3 deleted its copy of moving-1", || {
        let names: Vec<String> = fs::read_dir(c.broker(3).data_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        !names.iter().any(|n| n.starts_with("moving-1"))
    });
    replicas_agree(&c, "moving", 1, &[2, 1]);
    assert_eq!(
        consumed(&c.bootstrap_all(), "moving", 2),
        2000 + acked.len() + 100
    );
}

/// An acks=all produce of one record straight to broker `to` (raw, no
/// client retries), answered within `timeout_ms`: its error code.
fn raw_acks_all(c: &Cluster, to: i32, topic: &str, partition: i32, timeout_ms: i32) -> i16 {
    let mut s = std::net::TcpStream::connect(c.broker(to).addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = one_record_produce(topic, partition).with_timeout_ms(timeout_ms);
    let r = common::call(&mut s, 9, &req);
    r.responses[0].partition_responses[0].error_code
}

/// Brokers `among` agree the partition is led by one of them and its ISR is
/// `isr` (sorted).
fn settled(c: &Cluster, among: &[i32], topic: &str, partition: i32, isr: &[i32]) -> bool {
    among.iter().all(|&b| {
        let (leader, _, got) = partition_of(c, b, topic, partition);
        among.contains(&leader) && sorted(got) == isr
    })
}

/// One acks=all record to every partition through a producer that only
/// knows brokers `via`, acknowledged.
fn writes_flow(c: &Cluster, via: &[i32], topic: &str, partitions: i32, value: &str) {
    let bootstrap = via
        .iter()
        .map(|&b| c.broker(b).bootstrap())
        .collect::<Vec<_>>()
        .join(",");
    let p = rdk::producer(&bootstrap, &[]);
    for part in 0..partitions {
        rdk::wait_delivery(rdk::send(&p, topic, part, None, value.as_bytes()));
    }
}

/// Partitions of the network-partition test's topic `split`.
const SPLIT_PARTITIONS: i32 = 3;

/// Cut `victim` off from the other brokers; run `during` while it is; the
/// others must settle `split-p` among themselves (a leader and ISR of just
/// them) and take acks=all writes on every partition; then heal.
fn cut_off(
    net: &mut common::netns::Net,
    c: &Cluster,
    victim: i32,
    p: i32,
    what: &str,
    during: impl FnOnce(),
) {
    let rest: Vec<i32> = (1..=c.brokers.len() as i32)
        .filter(|&b| b != victim)
        .collect();
    net.isolate(&[victim as usize]);
    during();
    until(&format!("split-{p} settled without {what}"), || {
        settled(c, &rest, "split", p, &rest)
    });
    writes_flow(
        c,
        &rest,
        "split",
        SPLIT_PARTITIONS,
        &format!("while {what} is cut off"),
    );
    net.heal();
}

/// Network partitions, in network namespaces the test makes (clients on
/// their own host reach every broker; the cut is between brokers), while an
/// idempotent acks=all producer writes to an RF 3 topic with
/// min.insync.replicas=2:
/// - leader isolation: the isolated leader acknowledges no acks=all write
///   (it cannot replicate it), the majority elects a new leader from the ISR
///   and takes writes;
/// - follower isolation: the ISR drops the follower, writes go on;
/// - controller isolation: the rest elect a new quorum leader, fence the
///   old one and move its leaderships; writes go on.
///
/// After each heal the ISR is whole again; at the end every acknowledged
/// record is read back where it was acknowledged, exactly once, and every
/// replica's log is byte for byte the same.
#[test]
fn network_partitions_lose_no_acknowledged_record() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    const PARTITIONS: i32 = SPLIT_PARTITIONS;
    const ALL: [i32; 3] = [1, 2, 3];
    let mut net = common::netns::Net::create(3);
    net.enter_client();
    let mut extra = FAST_SESSIONS.to_vec();
    extra.push("replica.lag.time.max.ms=3000");
    let c = Cluster::start_in(&net, 3, &extra);
    create_topic(&c, "split", 3, PARTITIONS, &["min.insync.replicas=2"]);
    let whole = |c: &Cluster| {
        until("every ISR whole", || {
            (0..PARTITIONS).all(|p| settled(c, &ALL, "split", p, &ALL))
        })
    };
    whole(&c);

    let stop = Arc::new(AtomicBool::new(false));
    let producer = acked_producer(c.bootstrap_all(), "split", PARTITIONS, stop.clone());
    std::thread::sleep(Duration::from_secs(2));

    // Leader isolation: a partition led by a broker that does not lead the
    // quorum.
    let q = c.quorum_leader();
    let (p, leader) = (0..PARTITIONS)
        .map(|p| (p, partition_of(&c, q, "split", p).0))
        .find(|&(_, l)| l != q)
        .expect("a partition not led by the quorum leader");
    eprintln!("isolating broker {leader}, leader of split-{p}");
    cut_off(&mut net, &c, leader, p, "the leader", || {
        let code = raw_acks_all(&c, leader, "split", p, 5000);
        eprintln!("acks=all produce to the isolated leader: error code {code}");
        assert_ne!(
            code, 0,
            "the isolated leader acknowledged an acks=all write it cannot replicate"
        );
    });
    whole(&c);

    // Follower isolation: a broker that leads neither the partition nor the
    // quorum.
    let q = c.quorum_leader();
    let p = 0;
    let leader = partition_of(&c, q, "split", p).0;
    let follower = ALL.into_iter().find(|&b| b != leader && b != q).unwrap();
    eprintln!("isolating broker {follower}, follower of split-{p}");
    cut_off(&mut net, &c, follower, p, "a follower", || {});
    whole(&c);

    // Controller isolation.
    let q = c.quorum_leader();
    let rest: Vec<i32> = ALL.into_iter().filter(|&b| b != q).collect();
    eprintln!("isolating broker {q}, the quorum leader");
    cut_off(&mut net, &c, q, 0, "the controller", || {
        until("a new quorum leader among the rest", || {
            c.quorum_leader() != q
        });
        until("the old controller fenced, its leaderships moved", || {
            rest.iter().all(|&b| {
                let m = metadata(c.broker(b));
                !brokers_of(&m).iter().any(|&(id, _)| id == q)
            }) && (0..PARTITIONS).all(|p| settled(&c, &rest, "split", p, &rest))
        });
    });
    whole(&c);

    stop.store(true, Ordering::Relaxed);
    let (acked, failed) = producer.join().unwrap();
    eprintln!("{} acknowledged, {failed} not", acked.len());
    assert!(!acked.is_empty());
    assert_acked_present(&c.bootstrap_all(), "split", PARTITIONS, &acked);
    for part in 0..PARTITIONS {
        until("replicas byte for byte the same", || {
            let reference = partition_logs(c.broker(1), "split", part);
            !reference.is_empty()
                && (2..=3).all(|id| partition_logs(c.broker(id), "split", part) == reference)
        });
    }
    drop(c);
}

/// A leader whose disk dies (ext4 on a loop device, shut down under it):
/// its producer gets KAFKA_STORAGE_ERROR, the broker takes the log dir
/// offline, moves its leadership away and exits with an error, as Kafka
/// does when its last log dir fails, and an in-sync follower leads with
/// every acknowledged record. The broker also leads the metadata quorum,
/// whose log fails with the disk: the others elect a new quorum leader,
/// which takes its controlled shutdown. Repaired and restarted, the broker
/// recovers what reached its disk, catches up and rejoins the ISR, byte for
/// byte.
#[test]
fn a_leader_whose_disk_fails_hands_over_its_leadership() {
    let mut disk = None;
    let mut c = Cluster::start_with_setup(3, FAST_SESSIONS, |id, dir| {
        if id == 1 {
            disk = Some(common::disk::LoopDisk::mount(dir, 512));
        }
    });
    let disk = disk.unwrap();
    // The harder case: the broker whose disk dies also leads the metadata
    // quorum (its own metadata log fails under it).
    for attempt in 0.. {
        let q = c.quorum_leader();
        if q == 1 {
            break;
        }
        assert!(attempt < 20, "broker 1 never came to lead the quorum");
        c.brokers[q as usize - 1].kill9();
        until("another quorum leader", || c.quorum_leader() != q);
        c.brokers[q as usize - 1].relaunch();
        c.brokers[q as usize - 1].wait_until_ready();
    }
    create_assigned(&c, "fragile", "1:2:3");
    until("broker 1 leads with the ISR whole", || {
        partition_of(&c, 2, "fragile", 0) == (1, vec![1, 2, 3], vec![1, 2, 3])
    });
    let p = rdk::producer(&c.broker(1).bootstrap(), &[]);
    let futures: Vec<_> = (0..200)
        .map(|i| {
            let v = format!("before-{i}");
            (rdk::send(&p, "fragile", 0, None, v.as_bytes()), v)
        })
        .collect();
    let mut acked: Vec<(i32, i64, String)> = futures
        .into_iter()
        .map(|(f, v)| {
            let d = rdk::wait_delivery(f);
            (d.partition, d.offset, v)
        })
        .collect();
    drop(p);

    disk.fail();
    assert_eq!(
        raw_acks_all(&c, 1, "fragile", 0, 5000),
        56,
        "a produce to the leader whose disk failed: KAFKA_STORAGE_ERROR"
    );
    let mut status = None;
    until("broker 1 exits", || {
        status = c.brokers[0].exited();
        status.is_some()
    });
    let logs = c.broker(1).logs();
    assert!(!status.unwrap().success(), "{logs}");
    assert!(logs.contains("log dir failed"), "{logs}");
    assert!(
        logs.contains("moving leadership away, then shutting down"),
        "{logs}"
    );
    assert!(
        logs.contains("the controller moved leadership off this broker"),
        "{logs}"
    );
    until("an in-sync follower leads", || {
        settled(&c, &[2, 3], "fragile", 0, &[2, 3])
    });
    writes_flow(&c, &[2, 3], "fragile", 1, "after the disk failed");
    let survivors = format!("{},{}", c.broker(2).bootstrap(), c.broker(3).bootstrap());
    let p = rdk::producer(&survivors, &[]);
    let d = rdk::wait_delivery(rdk::send(&p, "fragile", 0, None, b"new leader"));
    acked.push((d.partition, d.offset, "new leader".into()));
    assert_acked_present(&survivors, "fragile", 1, &acked);

    disk.repair();
    c.brokers[0].relaunch();
    c.brokers[0].wait_until_ready();
    until("the repaired broker back in the ISR", || {
        sorted(partition_of(&c, 2, "fragile", 0).2) == vec![1, 2, 3]
    });
    replicas_agree(&c, "fragile", 0, &[1, 2, 3]);
}

/// `queued.max.request.bytes=1`: a leader's shard reads one request at a
/// time. A produce waiting for its follower must have given its bytes back
/// by then, or the follower's fetch (the only thing that can end the wait)
/// is never read and every acks=all produce times out.
#[test]
fn acks_all_waiting_for_followers_does_not_hold_back_their_fetches() {
    let mut extra = FAST_SESSIONS.to_vec();
    extra.push("queued.max.request.bytes=1");
    let c = Cluster::start(2, &extra);
    create_topic(&c, "tight", 2, 1, &[]);
    let (leader, replicas, isr) = partition_of(&c, 1, "tight", 0);
    assert_eq!(sorted(isr), sorted(replicas), "both replicas in sync");
    let p = rdk::producer(
        &c.broker(leader).bootstrap(),
        &[
            ("acks", "all"),
            ("message.timeout.ms", "20000"),
            ("linger.ms", "1"),
        ],
    );
    let sent: Vec<_> = (0..2000)
        .map(|i| rdk::send(&p, "tight", 0, None, format!("r{i}").as_bytes()))
        .collect();
    for f in sent {
        rdk::wait_delivery(f);
    }
    let got = rdk::consume_all(&c.broker(leader).bootstrap(), "tight", 1, rdk::TIMEOUT);
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 2000);
}
