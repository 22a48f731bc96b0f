//! Durability across restarts: kill -9 mid-produce, a torn segment tail, and
//! plain clean restarts. All use the real binary and its on-disk Kafka layout.

mod common;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::rdk;
use common::Broker;

/// Record values by (partition, offset).
type Stored = BTreeMap<(i32, i64), Vec<u8>>;
use rdkafka::producer::DeliveryFuture;

/// Produce `n` records to partition 0, one acks=all round trip per `batch`
/// records (so the log holds several batches), returning their values in
/// offset order.
fn produce_rounds(bs: &str, topic: &str, n: usize, batch: usize, tag: &str) -> Vec<(i64, Vec<u8>)> {
    let p = rdk::producer(bs, &[]);
    let mut out = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(batch) {
        let futs: Vec<_> = chunk
            .iter()
            .map(|i| {
                let v = format!("{tag}-{i:05}-some-padding-to-make-records-longer").into_bytes();
                (v.clone(), rdk::send(&p, topic, 0, None, &v))
            })
            .collect();
        for (v, f) in futs {
            out.push((rdk::wait_delivery(f).offset, v));
        }
    }
    out
}

fn read_partition0(bs: &str, topic: &str) -> Vec<(i64, Vec<u8>)> {
    let got = rdk::consume_all(bs, topic, 1, Duration::from_secs(60));
    got[&0]
        .iter()
        .map(|r| (r.offset, r.value.clone().unwrap()))
        .collect()
}

#[test]
fn kill9_during_acks_all_produce_keeps_acknowledged_records() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("kill9");
    rdk::create_topic(&bs, &topic, 2);

    let acked: Arc<Mutex<Stored>> = Default::default();
    let acked_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (acked, acked_count, stop, bs, topic) = (
            acked.clone(),
            acked_count.clone(),
            stop.clone(),
            bs.clone(),
            topic.clone(),
        );
        thread::spawn(move || {
            // Short timeouts: after the kill, outstanding records should fail
            // quickly rather than wait for the broker to return.
            let p = rdk::producer(&bs, &[("message.timeout.ms", "5000"), ("retries", "0")]);
            // A sliding window of outstanding records, so that whenever the
            // kill lands, batches are in flight.
            let mut window = VecDeque::new();
            let mut failed = 0;
            let mut settle =
                |(part, v, f): (i32, Vec<u8>, DeliveryFuture)| match futures::executor::block_on(f)
                {
                    Ok(Ok(d)) => {
                        assert_eq!(d.partition, part);
                        acked.lock().unwrap().insert((part, d.offset), v);
                        acked_count.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => failed += 1, // not acknowledged: may or may not be stored
                };
            for i in 0u64.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let part = (i % 2) as i32;
                let v = format!("rec-{i}").into_bytes();
                window.push_back((part, v.clone(), rdk::send(&p, &topic, part, None, &v)));
                if window.len() > 2000 {
                    settle(window.pop_front().unwrap());
                }
            }
            window.into_iter().for_each(&mut settle);
            failed
        })
    };

    // Let a good amount of data in, then pull the plug while batches are in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_count.load(Ordering::Relaxed) < 20_000 {
        assert!(
            Instant::now() < deadline,
            "producer too slow: {} acked",
            acked_count.load(Ordering::Relaxed)
        );
        assert!(!producer.is_finished(), "producer thread died");
        thread::sleep(Duration::from_millis(5));
    }
    broker.kill9();
    stop.store(true, Ordering::Relaxed);
    let failed = producer.join().expect("producer thread panicked");
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    eprintln!(
        "{} records acknowledged before kill -9, {failed} not",
        acked.len()
    );
    assert!(
        failed > 0,
        "no record was in flight at the kill; the test proved nothing"
    );

    broker.restart();
    let got = rdk::consume_all(&bs, &topic, 2, Duration::from_secs(60));
    let mut stored = BTreeMap::new();
    for (p, recs) in got {
        for r in recs {
            stored.insert((p, r.offset), r.value.unwrap());
        }
    }
    for p in 0..2 {
        let offsets: Vec<i64> = stored
            .range((p, 0)..(p + 1, 0))
            .map(|((_, o), _)| *o)
            .collect();
        assert!(
            offsets.iter().enumerate().all(|(i, o)| *o == i as i64),
            "partition {p}: offsets not dense after recovery"
        );
    }
    for ((p, off), v) in &acked {
        match stored.get(&(*p, *off)) {
            Some(s) if s == v => {}
            Some(s) => panic!(
                "{p}/{off}: acknowledged {:?}, read back {:?}",
                String::from_utf8_lossy(v),
                String::from_utf8_lossy(s)
            ),
            None => panic!("{p}/{off}: acknowledged record lost after kill -9"),
        }
    }
    // The broker keeps serving writes after recovery.
    let after = produce_rounds(&bs, &topic, 10, 10, "after");
    assert!(
        after.iter().all(|(o, _)| !stored.contains_key(&(0, *o))),
        "new records reused an existing offset"
    );
}

#[test]
fn truncated_segment_tail_is_recovered() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("torn");
    rdk::create_topic(&bs, &topic, 1);
    // 20 batches of 50: cutting 100 bytes only damages the last one.
    let sent = produce_rounds(&bs, &topic, 1000, 50, "before");
    let status = broker.terminate();
    assert!(status.success(), "clean shutdown exited with {status}");

    let seg = last_segment(&broker.data_dir().join(format!("{topic}-0")));
    let len = std::fs::metadata(&seg).unwrap().len();
    assert!(
        len > 1000,
        "segment {} suspiciously small ({len} bytes)",
        seg.display()
    );
    common::truncate_file(&seg, len - 100);

    broker.restart();
    let (low, high) = rdk::watermarks(&bs, &topic, 0);
    assert_eq!(low, 0);
    assert!(
        high < 1000,
        "high watermark {high}: the torn batch must be dropped"
    );
    assert!(
        high >= 900,
        "high watermark {high}: recovery dropped more than the torn tail"
    );
    let got = read_partition0(&bs, &topic);
    assert_eq!(got.len() as i64, high);
    assert!(
        got[..] == sent[..high as usize],
        "records before the torn batch changed"
    );

    // New writes continue right after the recovered end.
    let more = produce_rounds(&bs, &topic, 20, 20, "after");
    let offsets: Vec<i64> = more.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (high..high + 20).collect::<Vec<_>>());
    let got = read_partition0(&bs, &topic);
    assert!(
        got[high as usize..] == more[..],
        "records written after recovery"
    );
}

#[test]
fn clean_restart_keeps_data() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("restart");
    rdk::create_topic(&bs, &topic, 1);
    let first = produce_rounds(&bs, &topic, 500, 100, "one");
    for round in 0..2 {
        let status = broker.terminate();
        assert!(
            status.success(),
            "clean shutdown #{round} exited with {status}"
        );
        broker.restart();
    }
    assert_eq!(read_partition0(&bs, &topic), first);
    let second = produce_rounds(&bs, &topic, 100, 100, "two");
    assert_eq!(second[0].0, 500, "offsets continue after restart");
    let all = [first, second].concat();
    assert_eq!(read_partition0(&bs, &topic), all);
}

/// The newest segment of a partition directory (names are zero-padded base
/// offsets, so the lexicographically largest is the active one).
fn last_segment(dir: &std::path::Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop()
        .unwrap_or_else(|| panic!("no .log segment in {}", dir.display()))
}

/// A second broker pointed at a running broker's log dir (another port)
/// refuses to start, naming the dir and the other process, and touches
/// nothing: the first keeps serving every acknowledged record.
#[test]
fn a_second_broker_on_the_same_log_dir_refuses_to_start() {
    let broker = Broker::start(&["log.segment.bytes=2048"]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("lock");
    rdk::create_topic(&bs, &topic, 1);
    let before = produce_rounds(&bs, &topic, 200, 10, "first");
    let port = common::free_port();
    let out = common::run_with_timeout(
        std::process::Command::new(common::sluice_bin())
            .arg("broker")
            .arg("--listeners")
            .arg(format!("PLAINTEXT://127.0.0.1:{port}"))
            .arg("--log-dirs")
            .arg(broker.data_dir())
            .arg("--cores")
            .arg("1")
            // Logs to a pipe must be plain text even without NO_COLOR.
            .env_remove("NO_COLOR"),
        None,
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second broker started:\n{err}");
    let dir = broker.data_dir().display().to_string();
    let pid = format!("pid {}", broker.pid().unwrap());
    assert!(
        err.contains(&dir) && err.contains(&pid),
        "message should name {dir} and {pid}:\n{err}"
    );
    assert!(
        !err.contains('\x1b'),
        "colour codes in a log that is not a terminal:\n{err:?}"
    );
    assert_eq!(
        read_partition0(&bs, &topic),
        before,
        "records changed under the first broker"
    );
}

/// Two brokers started at the same moment on one port (each with its own
/// data dir) both find the port free at start-up; SO_REUSEPORT would then let
/// both listen and split clients between them. At most one keeps the port,
/// and one that stops says why.
#[test]
fn two_brokers_started_at_once_on_one_port_do_not_share_it() {
    let port = common::free_port();
    let mut brokers = [
        Broker::launch(common::DEFAULT_CORES, port, &[]),
        Broker::launch(common::DEFAULT_CORES, port, &[]),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    for b in brokers.iter_mut() {
        while b.is_running() && !b.logs().contains("sluice broker listening on") {
            assert!(Instant::now() < deadline, "neither listening nor stopped");
            thread::sleep(Duration::from_millis(20));
        }
    }
    // One that listened and then saw the other stops right after.
    thread::sleep(Duration::from_millis(500));
    let running: Vec<bool> = brokers.iter_mut().map(|b| b.is_running()).collect();
    assert!(
        running.iter().filter(|r| **r).count() <= 1,
        "both brokers serve port {port}"
    );
    for (b, _) in brokers.iter().zip(&running).filter(|(_, r)| !**r) {
        let logs = b.logs();
        assert!(
            logs.contains("another process listens there too")
                || logs.contains(&format!("cannot listen on 127.0.0.1:{port}")),
            "a broker stopped without saying why:\n{logs}"
        );
    }
}

/// The offset value of `topic`-0 in one of Kafka's checkpoint files.
fn checkpointed(data: &std::path::Path, file: &str, topic: &str) -> Option<i64> {
    let text = std::fs::read_to_string(data.join(file)).ok()?;
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "{file}: version line");
    let n: usize = lines.next()?.parse().ok()?;
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), n, "{file}: count line says {n}:\n{text}");
    rows.iter().find_map(|l| {
        let mut it = l.split(' ');
        (it.next() == Some(topic) && it.next() == Some("0")).then(|| it.next()?.parse().ok())?
    })
}

/// Kafka's checkpoint files are written and kept current; after a kill -9
/// recovery checks the active segment only from the recovery point on (and
/// still cuts garbage found past it); a clean stop leaves final values.
/// kill -9, then garbage after the last batch of the partition's active
/// segment (a torn write), then a restart (`machine_too`: as after a crash of
/// the machine, which leaves no record of the boot the run began in). The
/// restart's log lines, and the segment's size before it.
fn crash_with_a_torn_tail(broker: &mut Broker, topic: &str, machine_too: bool) -> (String, u64) {
    let data = broker.data_dir();
    broker.kill9();
    if machine_too {
        std::fs::remove_file(data.join(".sluice_boot_id")).unwrap();
    }
    let seg = last_segment(&data.join(format!("{topic}-0")));
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &[0x5a; 300]).unwrap();
    drop(f);
    let seg_bytes = std::fs::metadata(&seg).unwrap().len();
    let marker = broker.logs().lines().count();
    broker.restart();
    let log = broker
        .logs()
        .lines()
        .skip(marker)
        .collect::<Vec<_>>()
        .join("\n");
    (log, seg_bytes)
}

#[test]
fn checkpoint_files_and_recovery_from_the_recovery_point() {
    let mut broker = Broker::start(&[
        "log.flush.offset.checkpoint.interval.ms=200",
        "log.flush.start.offset.checkpoint.interval.ms=200",
        "replica.high.watermark.checkpoint.interval.ms=200",
        "log.index.interval.bytes=256",
    ]);
    let bs = broker.bootstrap();
    let data = broker.data_dir();
    let topic = common::unique_topic("ckpt");
    rdk::create_topic(&bs, &topic, 1);
    // Index entries reach their file 512 at a time: 600 batches of 5, each
    // past the 256-byte index interval, put some there.
    let first = produce_rounds(&bs, &topic, 3000, 5, "a");
    let n = first.len() as i64;
    let deadline = Instant::now() + Duration::from_secs(30);
    while checkpointed(&data, "recovery-point-offset-checkpoint", &topic) != Some(n)
        || checkpointed(&data, "replication-offset-checkpoint", &topic) != Some(n)
    {
        assert!(
            Instant::now() < deadline,
            "checkpoints never reached offset {n}"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        checkpointed(&data, "log-start-offset-checkpoint", &topic),
        Some(0)
    );
    let cleaner = std::fs::read_to_string(data.join("cleaner-offset-checkpoint")).unwrap();
    assert_eq!(cleaner, "0\n0\n");

    // Crash, with garbage after the last batch (a torn write past the
    // recovery point): recovery starts at the recovery point and cuts it.
    // The machine "restarts" too: without the record of the boot the last
    // run began in, only what was fsync'ed (the recovery point) is certain.
    let (log, _) = crash_with_a_torn_tail(&mut broker, &topic, true);
    assert!(
        log.contains("checked the segment from its recovery point"),
        "recovery read the whole segment:\n{log}"
    );
    assert!(log.contains("truncated a torn or corrupt tail"), "{log}");
    assert_eq!(read_partition0(&bs, &topic), first, "records changed");

    // More, then a clean stop: final values.
    let second = produce_rounds(&bs, &topic, 50, 25, "b");
    let end = second.last().unwrap().0 + 1;
    assert!(broker.terminate().success());
    for file in [
        "recovery-point-offset-checkpoint",
        "replication-offset-checkpoint",
    ] {
        assert_eq!(checkpointed(&data, file, &topic), Some(end), "{file}");
    }
}

/// kill -9 of the process alone (the machine stays up): every write it
/// completed is in the files, so recovery checks a tail only from its last
/// index entry, however old the recovery point, and still cuts a torn end.
#[test]
fn after_kill_9_of_the_process_alone_a_tail_is_checked_from_its_last_index_entry() {
    let mut broker = Broker::start(&[
        // No recovery point is checkpointed during the test.
        "log.flush.offset.checkpoint.interval.ms=3600000",
        "log.index.interval.bytes=256",
        // Zeros ahead would count as checked (recovery reads them too) and
        // blur what this test counts; they have their own test below.
        "sluice.log.preallocate.bytes=0",
    ]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("process-only");
    rdk::create_topic(&bs, &topic, 1);
    // 600 batches of 5, each past the index interval: index entries reach
    // their file 512 at a time, so most of the segment is behind the last.
    let first = produce_rounds(&bs, &topic, 3000, 5, "a");
    let (log, seg_bytes) = crash_with_a_torn_tail(&mut broker, &topic, false);
    let line = log
        .lines()
        .find(|l| l.contains("checked the segment from its last index entry"))
        .unwrap_or_else(|| panic!("recovery did not start at the last index entry:\n{log}"));
    let checked: u64 = line
        .split("bytes_checked=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no bytes_checked in {line}"));
    assert!(
        checked * 3 < seg_bytes,
        "checked {checked} of the segment's {seg_bytes} bytes"
    );
    assert!(log.contains("truncated a torn or corrupt tail"), "{log}");
    assert_eq!(read_partition0(&bs, &topic), first, "records changed");
    let more = produce_rounds(&bs, &topic, 10, 10, "after");
    assert_eq!(
        more[0].0,
        first.len() as i64,
        "the log goes on after the last record"
    );
}

/// A crash can leave a segment with a zero-filled tail (blocks allocated,
/// data never written): recovery cuts it, keeps every record, and the log
/// goes on from there.
#[test]
fn zero_filled_segment_tail_is_cut() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("zeros");
    rdk::create_topic(&bs, &topic, 1);
    let sent = produce_rounds(&bs, &topic, 200, 20, "z");
    broker.kill9();
    let seg = last_segment(&broker.data_dir().join(format!("{topic}-0")));
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &vec![0u8; 64 << 10]).unwrap();
    drop(f);
    broker.restart();
    assert_eq!(read_partition0(&bs, &topic), sent);
    let more = produce_rounds(&bs, &topic, 10, 10, "after");
    assert_eq!(
        more[0].0, 200,
        "the log goes on right after the last record"
    );
}

/// Small acks=all appends keep zeros written ahead of themselves (at least
/// 64 KiB, at most `sluice.log.preallocate.bytes`, 1 MiB by default), so
/// the next ones overwrite allocated blocks. The zeros never count: kill -9 leaves them
/// past the last batch and recovery cuts them; a clean stop trims them.
#[test]
fn zeros_written_ahead_of_small_appends_are_cut_after_kill_9_and_trimmed_at_a_clean_stop() {
    let mut broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("ahead");
    rdk::create_topic(&bs, &topic, 1);
    let sent = produce_rounds(&bs, &topic, 200, 20, "a");
    let seg = last_segment(&broker.data_dir().join(format!("{topic}-0")));
    let batches_end = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        (
            common::segment_batches(&bytes).len() as u64,
            bytes.len() as u64,
        )
    };
    let (end, on_disk) = batches_end(&seg);
    assert!(end > 0 && end < 64 << 10, "{end} bytes of batches");
    assert!(
        on_disk > end && on_disk <= end + (1 << 20) + 4096,
        "the file holds zeros past its {end} bytes of batches: {on_disk}"
    );

    broker.kill9();
    broker.restart();
    assert_eq!(read_partition0(&bs, &topic), sent);
    assert!(
        broker.logs().contains("trimmed zeros after the last batch"),
        "recovery says what it cut"
    );
    let more = produce_rounds(&bs, &topic, 10, 10, "after");
    assert_eq!(
        more[0].0, 200,
        "the log goes on right after the last record"
    );

    let status = broker.terminate();
    assert!(status.success(), "clean shutdown exited with {status}");
    let (end, on_disk) = batches_end(&seg);
    assert_eq!(end, on_disk, "a clean stop leaves only batches in the file");
    broker.restart();
    assert_eq!(read_partition0(&bs, &topic), [sent, more].concat());
}

/// After a kill -9, the idempotent producers' state is rebuilt from the
/// newest producer snapshot through the log after it. Kafka snapshots only
/// at a roll and a clean close, so a 1 GiB active segment was read whole;
/// sluice also brings a partition's snapshot forward every
/// `log.flush.offset.checkpoint.interval.ms` once 16 MB were written after
/// it, and the rebuild starts there. The producer and every record survive.
#[test]
fn a_restart_after_kill9_rebuilds_producer_state_from_a_snapshot_inside_the_active_segment() {
    let mut broker = Broker::start(&["log.flush.offset.checkpoint.interval.ms=200"]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("snapshot");
    rdk::create_topic(&bs, &topic, 1);
    let p = rdk::producer(&bs, &[("enable.idempotence", "true"), ("linger.ms", "5")]);
    let n = 20_000; // 1 KiB each: 20 MB, past the 16 MB that brings a snapshot forward
    let value = vec![7u8; 1024];
    let futs: Vec<_> = (0..n)
        .map(|_| rdk::send(&p, &topic, 0, None, &value))
        .collect();
    for f in futs {
        rdk::wait_delivery(f);
    }
    let dir = broker.data_dir().join(format!("{topic}-0"));
    let snapshot_inside = || {
        std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".snapshot")?.parse::<i64>().ok())
            .max()
            .filter(|at| *at > 0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let at = loop {
        if let Some(at) = snapshot_inside() {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "no producer snapshot past offset 0 in {}",
            dir.display()
        );
        thread::sleep(Duration::from_millis(50));
    };
    // A little more, too little for another snapshot: the rebuild reads it.
    let more = 100;
    let futs: Vec<_> = (0..more)
        .map(|_| rdk::send(&p, &topic, 0, None, &value))
        .collect();
    for f in futs {
        rdk::wait_delivery(f);
    }
    drop(p);
    broker.kill9();
    broker.restart();
    let log = broker.logs();
    let rebuilt = log
        .lines()
        .find(|l| l.contains("rebuilt producer state") && l.contains(&format!("topic={topic} ")))
        .unwrap_or_else(|| panic!("no rebuild of {topic}-0 in the log:\n{log}"));
    let from: i64 = rebuilt
        .split("from_offset=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{rebuilt}"));
    assert_eq!(from, at, "rebuilt from the snapshot: {rebuilt}");
    assert!(
        rebuilt.contains(&format!("to_offset={} ", n + more)),
        "{rebuilt}"
    );
    assert!(rebuilt.contains("producers=1"), "{rebuilt}");
    let (low, high) = rdk::watermarks(&broker.bootstrap(), &topic, 0);
    assert_eq!((low, high), (0, (n + more) as i64));
}
