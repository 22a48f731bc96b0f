//! Debian's kcat (built on the system librdkafka, a different version from
//! the rdkafka crate's) as a black-box client: produce from stdin, consume
//! to EOF, keys, NULL values, compression and the metadata listing.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{run_ok, Broker};

fn kcat(bs: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new(common::require_tool("kcat"));
    cmd.arg("-b").arg(bs).args(args);
    let out = run_ok(&mut cmd, stdin.map(str::as_bytes), Duration::from_secs(60));
    let err = String::from_utf8_lossy(&out.stderr);
    // kcat reports delivery and broker errors on stderr, not always in the exit code.
    assert!(
        !err.contains("ERROR") && !err.contains("failed"),
        "kcat {args:?} complained:\n{err}"
    );
    String::from_utf8(out.stdout).expect("kcat output is UTF-8")
}

/// Produce lines (acks=all) to one partition.
fn produce(bs: &str, topic: &str, partition: i32, extra: &[&str], lines: &str) {
    let p = partition.to_string();
    let mut args = vec!["-P", "-t", topic, "-p", &p, "-X", "acks=all"];
    args.extend_from_slice(extra);
    kcat(bs, &args, Some(lines));
}

/// Consume the whole topic (all partitions, no consumer group) until EOF.
fn consume(bs: &str, topic: &str, format: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "-C",
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        format,
    ];
    args.extend_from_slice(extra);
    kcat(bs, &args, None).lines().map(String::from).collect()
}

#[test]
fn produce_and_consume_lines() {
    // Topics are auto-created by the first produce, with num.partitions each.
    let broker = Broker::start(&["num.partitions=3"]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("kcat-lines");
    let lines0: Vec<String> = (0..1000)
        .map(|i| format!("line {i} of partition zero"))
        .collect();
    produce(&bs, &topic, 0, &[], &(lines0.join("\n") + "\n"));
    produce(&bs, &topic, 2, &[], "two-a\ntwo-b\n");

    let got = consume(&bs, &topic, "%p %o %s\n", &[]);
    let of = |p: &str| -> Vec<String> {
        got.iter()
            .filter_map(|l| l.strip_prefix(&format!("{p} ")))
            .map(String::from)
            .collect()
    };
    let want0: Vec<String> = lines0
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{i} {l}"))
        .collect();
    assert_eq!(of("0"), want0, "partition 0");
    assert_eq!(of("1"), Vec::<String>::new(), "partition 1 is empty");
    assert_eq!(of("2"), vec!["0 two-a", "1 two-b"], "partition 2");
    assert_eq!(got.len(), 1002);

    // Start mid-partition and stop after a count.
    let some = kcat(
        &bs,
        &[
            "-C", "-t", &topic, "-p", "0", "-o", "500", "-c", "3", "-q", "-f", "%o %s\n",
        ],
        None,
    );
    assert_eq!(
        some.lines().collect::<Vec<_>>(),
        vec![
            "500 line 500 of partition zero",
            "501 line 501 of partition zero",
            "502 line 502 of partition zero"
        ]
    );
}

#[test]
fn keys_and_null_values() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("kcat-keys");
    // -K: splits key from value; -Z turns the empty value into NULL (tombstone).
    produce(
        &bs,
        &topic,
        0,
        &["-K:", "-Z"],
        "k1:v1\nk2:value:with:colons\nk1:v3\nk9:\n",
    );
    // %S is the value size: -1 for NULL.
    let got = consume(&bs, &topic, "%k|%S|%s\n", &["-Z"]);
    assert_eq!(
        got,
        vec![
            "k1|2|v1",
            "k2|17|value:with:colons",
            "k1|2|v3",
            "k9|-1|NULL"
        ]
    );
}

#[test]
fn metadata_lists_broker_topic_and_partitions() {
    let broker = Broker::start(&["num.partitions=4"]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("kcat-meta");
    produce(&bs, &topic, 3, &[], "hello\n");

    let all = kcat(&bs, &["-L"], None);
    let one = kcat(&bs, &["-L", "-t", &topic], None);
    for md in [&all, &one] {
        assert!(
            md.contains(&format!("at {bs}")),
            "broker address missing:\n{md}"
        );
        assert!(
            md.contains(&format!("topic \"{topic}\" with 4 partitions:")),
            "topic missing:\n{md}"
        );
        for p in 0..4 {
            assert!(
                md.contains(&format!("partition {p}, leader ")),
                "partition {p} missing:\n{md}"
            );
        }
        assert!(!md.contains("Broker: "), "metadata carries an error:\n{md}");
    }
}

#[test]
fn compressed_produce_round_trips() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = common::unique_topic(&format!("kcat-{codec}"));
        let lines: Vec<String> = (0..500)
            .map(|i| format!("{codec} {i} {}", "z".repeat(i % 60)))
            .collect();
        produce(
            &bs,
            &topic,
            0,
            &["-z", codec, "-X", "linger.ms=50"],
            &(lines.join("\n") + "\n"),
        );
        assert_eq!(consume(&bs, &topic, "%s\n", &[]), lines, "{codec}");
    }
}

/// A consumer whose request-level `fetch.max.bytes` is far below its
/// per-partition limit (and whose `receive.message.max.bytes` refuses
/// anything larger) reads a topic holding several MB: every response stays
/// within `fetch.max.bytes` (but for one first batch), so it gets everything.
#[test]
fn fetch_answers_stay_within_the_request_limit() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("kcat-fetch-limit");
    // 40 records of 100 KB in partition 0: 4 MB, well past 1 MB.
    let line = "x".repeat(100_000);
    let lines: Vec<String> = (0..40).map(|i| format!("{i:02}{line}")).collect();
    produce(
        &bs,
        &topic,
        0,
        &["-X", "linger.ms=50"],
        &(lines.join("\n") + "\n"),
    );
    let got = consume(
        &bs,
        &topic,
        "%s\n",
        &[
            "-X",
            "fetch.max.bytes=1000000",
            "-X",
            "max.partition.fetch.bytes=20000000",
            "-X",
            "receive.message.max.bytes=1000512",
        ],
    );
    assert_eq!(got.len(), 40, "consumed {} of 40 records", got.len());
    for (i, l) in got.iter().enumerate() {
        assert!(l.starts_with(&format!("{i:02}")), "record {i} out of order");
    }
}

/// What histogram `name{labels}` counted between two scrapes of `GET /metrics`.
fn scraped_since(before: &str, after: &str, name: &str, labels: &str) -> sluice::metrics::Counts {
    use sluice::metrics::parse_histogram;
    parse_histogram(after, name, labels)
        .unwrap_or_else(|| panic!("{name} {labels}:\n{after}"))
        .since(&parse_histogram(before, name, labels).unwrap_or_default())
}

/// `GET /metrics` (`sluice.metrics.listener`) counts what a real client's
/// acks=all produces cost the broker: each was written, fdatasync'd and
/// answered, and each shows in its histogram.
#[test]
fn metrics_count_the_writes_fdatasyncs_and_requests_of_acks_all_produces() {
    use sluice::metrics::{http::scrape, LOG_FDATASYNC, LOG_WRITE, REQUEST};
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let broker = Broker::start(&[&format!("sluice.metrics.listener={metrics}")]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("kcat-metrics");
    let read = || scrape(&metrics, std::time::Duration::from_secs(10)).expect("metrics scrape");
    produce(&bs, &topic, 0, &[], "warm\n");
    let before = read();
    for i in 0..3 {
        produce(&bs, &topic, 0, &[], &format!("m{i}\n"));
    }
    let after = read();
    let since = |name: &str, labels: &str| scraped_since(&before, &after, name, labels);
    // Three separate clients, each waiting for its ack: three rounds at least.
    let (produces, syncs, writes) = (
        since(REQUEST, "api=\"Produce\""),
        since(LOG_FDATASYNC, ""),
        since(LOG_WRITE, ""),
    );
    assert!(produces.count() >= 3, "{produces:?}");
    assert!(syncs.count() >= 3, "{syncs:?}");
    assert!(writes.count() >= syncs.count(), "{writes:?}");
    assert!(since(REQUEST, "api=\"Metadata\"").count() >= 3);
    // What a produce waited for is part of its time.
    assert!(produces.sum_us > 0 && syncs.sum_us > 0);
    assert_eq!(
        consume(&bs, &topic, "%s\n", &[]),
        ["warm", "m0", "m1", "m2"]
    );
    // The same window from two saved scrapes, as perf/peer reads it.
    let dir = tempfile::tempdir().unwrap();
    let (b, a) = (dir.path().join("before"), dir.path().join("after"));
    std::fs::write(&b, &before).unwrap();
    std::fs::write(&a, &after).unwrap();
    let out = run_ok(
        Command::new(common::sluice_bin())
            .args(["bench", "metrics-window"])
            .arg(&b)
            .arg(&a),
        None,
        Duration::from_secs(20),
    );
    let table = String::from_utf8_lossy(&out.stdout);
    let row = |label: &str| {
        let line = table.lines().find(|l| l.trim_start().starts_with(label));
        let count = line.and_then(|l| l.split_whitespace().nth(label.split(' ').count()));
        count
            .unwrap_or_else(|| panic!("no {label} row:\n{table}"))
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(row("fdatasync"), syncs.count(), "{table}");
    assert_eq!(row("produce req"), produces.count(), "{table}");
}

/// With `sluice.log.sync.filesystem.min.partitions=1`, every acks=all commit
/// round is made durable by one syncfs of the log dir's file system where
/// that is sound (ext4, Linux 5.8 or later), and by fdatasync elsewhere;
/// either way kcat's records are acknowledged, and read back after a kill -9
/// and a restart.
#[test]
fn acks_all_rounds_sync_the_file_system_where_that_is_sound() {
    use sluice::metrics::{http::scrape, LOG_FDATASYNC, LOG_SYNCFS};
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let mut broker = Broker::start(&[
        &format!("sluice.metrics.listener={metrics}"),
        "sluice.log.sync.filesystem.min.partitions=1",
    ]);
    let bs = broker.bootstrap();
    let topic = common::unique_topic("kcat-syncfs");
    let read = || scrape(&metrics, std::time::Duration::from_secs(10)).expect("metrics scrape");
    produce(&bs, &topic, 0, &[], "warm\n");
    let before = read();
    for i in 0..3 {
        produce(&bs, &topic, 0, &[], &format!("s{i}\n"));
    }
    let after = read();
    let count = |name: &str| scraped_since(&before, &after, name, "").count();
    let (syncfs, fdatasync) = (count(LOG_SYNCFS), count(LOG_FDATASYNC));
    match sluice::storage::fs_sync::FsSync::for_dir(&broker.data_dir()) {
        Ok(_) => assert!(syncfs >= 3 && fdatasync == 0, "{syncfs} {fdatasync}"),
        Err(why) => {
            eprintln!("no syncfs here: {why}");
            assert!(syncfs == 0 && fdatasync >= 3, "{syncfs} {fdatasync}");
        }
    }
    broker.kill9();
    broker.restart();
    assert_eq!(
        consume(&broker.bootstrap(), &topic, "%s\n", &[]),
        ["warm", "s0", "s1", "s2"]
    );
}
