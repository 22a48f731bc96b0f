//! The commands end to end against the in-process mock broker.

use std::io::Cursor;
use std::net::TcpListener;
use std::sync::atomic::AtomicBool;

use clap::Parser;

use super::consumer::{consume_to, Progress};
use super::murmur::partition_for_key;
use super::producer::produce_from;
use super::topics::run_to;
use super::{ConsumerArgs, ProducerArgs, TopicsArgs};
use crate::client::mock::MockBroker;

#[derive(Parser)]
enum Cmd {
    Topics(TopicsArgs),
    ConsoleProducer(ProducerArgs),
    ConsoleConsumer(ConsumerArgs),
}

fn argv<'a>(broker: &'a str, cmd: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["sluice", cmd, "--bootstrap-server", broker];
    v.extend_from_slice(rest);
    v
}

fn topics(broker: &str, rest: &[&str]) -> anyhow::Result<String> {
    let Cmd::Topics(args) = Cmd::try_parse_from(argv(broker, "topics", rest))? else {
        unreachable!()
    };
    let mut out = Vec::new();
    run_to(&args, &mut out)?;
    Ok(String::from_utf8(out).unwrap())
}

fn produce(broker: &str, input: &str, rest: &[&str]) -> anyhow::Result<()> {
    let Cmd::ConsoleProducer(args) = Cmd::try_parse_from(argv(broker, "console-producer", rest))?
    else {
        unreachable!()
    };
    produce_from(&args, Cursor::new(input.as_bytes().to_vec()), None)
}

fn consume(broker: &str, rest: &[&str]) -> anyhow::Result<(String, u64)> {
    let Cmd::ConsoleConsumer(args) = Cmd::try_parse_from(argv(broker, "console-consumer", rest))?
    else {
        unreachable!()
    };
    let mut out = Vec::new();
    let mut progress = Progress::default();
    consume_to(&args, &mut out, &mut progress, &AtomicBool::new(false))?;
    Ok((String::from_utf8(out).unwrap(), progress.printed))
}

#[test]
fn topics_lifecycle() {
    let b = MockBroker::start();
    let a = b.addr.as_str();
    assert_eq!(
        topics(
            a,
            &[
                "--create",
                "--topic",
                "orders",
                "--partitions",
                "2",
                "--config",
                "cleanup.policy=compact"
            ]
        )
        .unwrap(),
        "Created topic orders.\n"
    );
    let err = topics(a, &["--create", "--topic", "orders"]).unwrap_err();
    assert_eq!(err.to_string(), "Topic 'orders' already exists.");
    assert_eq!(
        topics(a, &["--create", "--topic", "orders", "--if-not-exists"]).unwrap(),
        ""
    );
    b.add_topic("__consumer_offsets", 1);
    topics(a, &["--create", "--topic", "alpha"]).unwrap();
    assert_eq!(topics(a, &["--list"]).unwrap(), "alpha\norders\n");

    let described = topics(a, &["--describe", "--topic", "orders"]).unwrap();
    let lines: Vec<&str> = described.lines().collect();
    assert_eq!(lines.len(), 3, "{described}");
    assert!(
        lines[0].starts_with("Topic: orders\tTopicId: "),
        "{described}"
    );
    assert!(
        lines[0].ends_with(
            "\tPartitionCount: 2\tReplicationFactor: 1\tConfigs: cleanup.policy=compact"
        ),
        "{described}"
    );
    assert_eq!(
        lines[1],
        "\tTopic: orders\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1"
    );
    assert_eq!(
        lines[2],
        "\tTopic: orders\tPartition: 1\tLeader: 1\tReplicas: 1\tIsr: 1"
    );

    let all = topics(a, &["--describe"]).unwrap();
    let headers: Vec<&str> = all.lines().filter(|l| l.starts_with("Topic:")).collect();
    assert_eq!(headers.len(), 2, "{all}");
    assert!(headers[0].starts_with("Topic: alpha\t"));

    topics(a, &["--alter", "--topic", "orders", "--partitions", "3"]).unwrap();
    topics(
        a,
        &[
            "--alter",
            "--topic",
            "orders",
            "--config",
            "retention.ms=9",
            "--delete-config",
            "cleanup.policy",
        ],
    )
    .unwrap();
    let described = topics(a, &["--describe", "--topic", "orders"]).unwrap();
    assert!(described
        .lines()
        .next()
        .unwrap()
        .contains("PartitionCount: 3\tReplicationFactor: 1\tConfigs: retention.ms=9"));
    let err = topics(a, &["--alter", "--topic", "orders", "--partitions", "2"]).unwrap_err();
    assert!(err.to_string().contains("INVALID_PARTITIONS"), "{err}");

    assert_eq!(topics(a, &["--delete", "--topic", "orders"]).unwrap(), "");
    let err = topics(a, &["--delete", "--topic", "orders"]).unwrap_err();
    assert_eq!(err.to_string(), "Topic 'orders' does not exist as expected");
    topics(a, &["--delete", "--topic", "orders", "--if-exists"]).unwrap();
    let err = topics(a, &["--describe", "--topic", "nope"]).unwrap_err();
    assert_eq!(err.to_string(), "Topic 'nope' does not exist as expected");
    let err = topics(a, &["--delete", "--topic", "__consumer_offsets"]).unwrap_err();
    assert!(err.to_string().contains("internal topic"), "{err}");
}

#[test]
fn produce_then_consume() {
    let b = MockBroker::start();
    let a = b.addr.as_str();
    b.add_topic("t", 3);
    let keys = ["k1", "k2", "k3", "k4", "k5", "k6"];
    let input: String = keys.iter().map(|k| format!("{k}:v-{k}\n")).collect();
    produce(
        a,
        &input,
        &[
            "--topic",
            "t",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ],
    )
    .unwrap();
    for k in keys {
        let p = partition_for_key(k.as_bytes(), 3) as usize;
        assert!(
            b.values("t", p).contains(&format!("v-{k}")),
            "{k} not in partition {p}"
        );
    }

    // Unkeyed lines go round-robin; --partition pins them.
    b.add_topic("u", 2);
    produce(
        a,
        "a\nb\r\nc\nd\n",
        &["--topic", "u", "--producer-property", "acks=1"],
    )
    .unwrap();
    assert_eq!(b.values("u", 0), vec!["a", "c"]);
    assert_eq!(b.values("u", 1), vec!["b", "d"]);
    produce(a, "e\n", &["--topic", "u", "--partition", "1"]).unwrap();
    assert_eq!(b.values("u", 1), vec!["b", "d", "e"]);

    let (out, n) = consume(
        a,
        &["--topic", "u", "--from-beginning", "--max-messages", "5"],
    )
    .unwrap();
    assert_eq!(n, 5);
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, vec!["a", "b", "c", "d", "e"]);

    let (out, n) = consume(
        a,
        &[
            "--topic",
            "u",
            "--partition",
            "1",
            "--offset",
            "1",
            "--max-messages",
            "2",
            "--property",
            "print.offset=true",
            "--property",
            "print.key=true",
        ],
    )
    .unwrap();
    assert_eq!(
        (out.as_str(), n),
        ("Offset:1\tnull\td\nOffset:2\tnull\te\n", 2)
    );

    // Latest by default: nothing old is printed; the timeout ends the run.
    let (out, n) = consume(a, &["--topic", "u", "--timeout-ms", "300"]).unwrap();
    assert_eq!((out.as_str(), n), ("", 0));

    // --include picks topics by regex.
    let (out, n) = consume(
        a,
        &[
            "--include",
            "u|t",
            "--from-beginning",
            "--timeout-ms",
            "300",
        ],
    )
    .unwrap();
    assert_eq!(n, 11, "{out}");
}

#[test]
fn clear_errors() {
    let b = MockBroker::start();
    let a = b.addr.as_str();
    let err = consume(a, &["--topic", "missing", "--timeout-ms", "100"]).unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "Topic 'missing' does not exist (UNKNOWN_TOPIC_OR_PARTITION)"
    );
    let err = produce(a, "x\n", &["--topic", "missing"]).unwrap_err();
    assert!(
        format!("{err:#}").contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{err:#}"
    );
    b.add_topic("t", 1);
    let err = produce(
        a,
        "nokey\n",
        &["--topic", "t", "--property", "parse.key=true"],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "No key separator found on line number 1: 'nokey'"
    );
    let err = produce(a, "x\n", &["--topic", "t", "--partition", "4"]).unwrap_err();
    assert!(
        err.to_string().contains("partition 4 does not exist"),
        "{err}"
    );
    assert_eq!(b.len("t", 0), 0);

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("127.0.0.1:{port}");
    let err = topics(&dead, &["--list"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot connect to broker at {dead}: Connection refused")
    );
}
