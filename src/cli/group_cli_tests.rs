//! `console-consumer --group` and `consumer-groups` end to end against the
//! mock broker (one member at a time; real rebalances are tested against
//! sluice in tests/consumer_groups.rs).

use std::sync::atomic::AtomicBool;

use bytes::Bytes;
use clap::Parser;

use super::consumer::{consume_to, Progress};
use super::consumer_groups::run_to;
use super::{ConsumerArgs, ConsumerGroupsArgs};
use crate::client::mock::MockBroker;
use crate::client::Client;

#[derive(Parser)]
enum Cmd {
    ConsoleConsumer(ConsumerArgs),
    ConsumerGroups(ConsumerGroupsArgs),
}

fn consume(broker: &str, rest: &[&str]) -> anyhow::Result<String> {
    let mut argv = vec!["sluice", "console-consumer", "--bootstrap-server", broker];
    argv.extend_from_slice(rest);
    let Cmd::ConsoleConsumer(args) = Cmd::try_parse_from(argv)? else {
        unreachable!()
    };
    let mut out = Vec::new();
    consume_to(
        &args,
        &mut out,
        &mut Progress::default(),
        &AtomicBool::new(false),
    )?;
    Ok(String::from_utf8(out).unwrap())
}

/// (stdout, stderr) of `sluice consumer-groups ...`.
fn groups(broker: &str, rest: &[&str]) -> anyhow::Result<(String, String)> {
    let mut argv = vec!["sluice", "consumer-groups", "--bootstrap-server", broker];
    argv.extend_from_slice(rest);
    let Cmd::ConsumerGroups(args) = Cmd::try_parse_from(argv)? else {
        unreachable!()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    run_to(&args, &mut out, &mut err)?;
    Ok((
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    ))
}

fn committed(broker: &str, group: &str) -> Vec<(i32, i64)> {
    let mut c = Client::connect(broker).unwrap();
    c.offset_fetch(group, None)
        .unwrap()
        .into_iter()
        .map(|o| (o.partition, o.offset))
        .collect()
}

fn setup() -> MockBroker {
    let b = MockBroker::start();
    b.add_topic("t", 2);
    let mut c = Client::connect(&b.addr).unwrap();
    for p in 0..2 {
        let recs = (0..5)
            .map(|i| (None, Some(Bytes::from(format!("p{p}-{i}")))))
            .collect();
        c.produce("t", p, recs, -1).unwrap();
    }
    b
}

#[test]
fn group_consumer_commits_what_it_printed_and_resumes() {
    let b = setup();
    let a = b.addr.as_str();
    let base = ["--topic", "t", "--group", "g", "--timeout-ms", "300"];
    let first = consume(
        a,
        &[&base[..], &["--from-beginning", "--max-messages", "6"]].concat(),
    )
    .unwrap();
    assert_eq!(first, "p0-0\np0-1\np0-2\np0-3\np0-4\np1-0\n");
    assert_eq!(committed(a, "g"), vec![(0, 5), (1, 1)]);
    // The member left: the group is empty, and a second run resumes exactly
    // where the first stopped (no --from-beginning needed: offsets exist).
    let (out, err) = groups(a, &["--describe", "--group", "g"]).unwrap();
    assert_eq!(err, "\nConsumer group 'g' has no active members.\n");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![
            vec!["g", "t", "0", "5", "5", "0", "-", "-", "-"],
            vec!["g", "t", "1", "1", "5", "4", "-", "-", "-"],
        ],
        "{out}"
    );
    let props = ["--consumer-property", "group.id=g"];
    let rest = consume(
        a,
        &[&["--topic", "t", "--timeout-ms", "300"][..], &props].concat(),
    )
    .unwrap();
    assert_eq!(rest, "p1-1\np1-2\np1-3\np1-4\n");
    assert_eq!(committed(a, "g"), vec![(0, 5), (1, 5)]);

    // A fresh group with the default reset (latest) prints nothing but
    // commits the end, as Kafka's auto-commit does.
    assert_eq!(
        consume(
            a,
            &["--topic", "t", "--group", "fresh", "--timeout-ms", "200"]
        )
        .unwrap(),
        ""
    );
    assert_eq!(committed(a, "fresh"), vec![(0, 5), (1, 5)]);
    let err = consume(
        a,
        &[
            "--topic",
            "t",
            "--group",
            "x",
            "--consumer-property",
            "auto.offset.reset=none",
            "--timeout-ms",
            "200",
        ],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Undefined offset with no reset policy for partitions: [t-0, t-1]"
    );
}

#[test]
fn group_flags_are_checked() {
    let b = setup();
    let a = b.addr.as_str();
    let err = consume(
        a,
        &[
            "--topic",
            "t",
            "--group",
            "a",
            "--consumer-property",
            "group.id=b",
        ],
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("Detected group ids: 'a', 'b'"),
        "{err}"
    );
    let err = consume(a, &["--topic", "t", "--group", "a", "--partition", "0"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Options group and partition cannot be specified together."
    );
    let err = groups(a, &["--describe"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Option [describe] takes one of these options: [all-groups], [group]"
    );
    let err = groups(a, &["--reset-offsets", "--group", "g", "--topic", "t"]).unwrap_err();
    assert!(
        err.to_string()
            .contains("requires one of the following scenarios"),
        "{err}"
    );
    let err = groups(a, &["--reset-offsets", "--group", "g", "--to-earliest"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "One of the reset scopes should be defined: --all-topics, --topic."
    );
    assert!(groups(a, &["--list", "--describe"]).is_err());
    assert!(groups(
        a,
        &[
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t",
            "--to-earliest",
            "--to-latest"
        ]
    )
    .is_err());
}

#[test]
fn reset_list_and_delete() {
    let b = setup();
    let a = b.addr.as_str();
    consume(
        a,
        &[
            "--topic",
            "t",
            "--group",
            "g",
            "--from-beginning",
            "--max-messages",
            "7",
            "--timeout-ms",
            "300",
        ],
    )
    .unwrap();
    assert_eq!(committed(a, "g"), vec![(0, 5), (1, 2)]);
    assert_eq!(groups(a, &["--list"]).unwrap().0, "g\n");
    let (out, _) = groups(a, &["--list", "--state"]).unwrap();
    assert_eq!(
        out.lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["g", "Empty"]
    );
    assert_eq!(
        groups(a, &["--list", "--state", "stable"])
            .unwrap()
            .0
            .lines()
            .count(),
        1
    );

    let reset = |extra: &[&str]| {
        let args = [
            &["--reset-offsets", "--group", "g", "--topic", "t"][..],
            extra,
        ]
        .concat();
        groups(a, &args).unwrap()
    };
    // Without --execute nothing changes (and Kafka's warning is printed).
    let (out, err) = reset(&["--to-earliest"]);
    assert!(
        err.starts_with("WARN: No action will be performed"),
        "{err}"
    );
    assert_eq!(
        out,
        "\nGROUP           TOPIC           PARTITION  NEW-OFFSET\n\
g               t               0          0\n\
g               t               1          0\n"
    );
    assert_eq!(committed(a, "g"), vec![(0, 5), (1, 2)]);
    let (out, err) = reset(&["--shift-by", "-3", "--dry-run"]);
    assert_eq!(
        err,
        "WARN New offset (-1) is lower than earliest offset for topic partition t-1. Value will be set to 0.\n"
    );
    assert!(out.ends_with("g               t               0          2\ng               t               1          0\n"), "{out}");
    reset(&["--to-offset", "99", "--execute"]);
    assert_eq!(committed(a, "g"), vec![(0, 5), (1, 5)]);
    let (_, err) = reset(&["--to-offset", "99", "--execute"]);
    assert!(err.contains("New offset (99) is higher than latest offset for topic partition t-0. Value will be set to 5."), "{err}");
    reset(&["--to-earliest", "--execute"]);
    assert_eq!(committed(a, "g"), vec![(0, 0), (1, 0)]);
    let (out, _) = groups(
        a,
        &[
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t:1",
            "--to-latest",
            "--execute",
        ],
    )
    .unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_eq!(committed(a, "g"), vec![(0, 0), (1, 5)]);
    let err = groups(
        a,
        &[
            "--reset-offsets",
            "--group",
            "g",
            "--topic",
            "t:7",
            "--to-latest",
        ],
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("The partitions \"t-7\" do not exist"),
        "{err}"
    );
    // The next consumer starts at the reset point.
    let out = consume(a, &["--topic", "t", "--group", "g", "--timeout-ms", "300"]).unwrap();
    assert_eq!(out, "p0-0\np0-1\np0-2\np0-3\np0-4\n");

    let (out, _) = groups(a, &["--delete", "--group", "g"]).unwrap();
    assert_eq!(
        out,
        "Deletion of requested consumer groups ('g') was successful.\n"
    );
    let err = groups(a, &["--describe", "--group", "g"]).unwrap_err();
    assert_eq!(err.to_string(), "Consumer group 'g' does not exist.");
    let err = groups(a, &["--delete", "--group", "g"]).unwrap_err();
    assert!(err.to_string().contains("could not be deleted"), "{err}");
}
