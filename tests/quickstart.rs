//! The README quickstart, step by step, with the bundled Kafka-style CLI tools.
//! README.md has no quickstart yet, so the commands are replicated here; keep
//! the two in sync (README uses port 9092, the test a free port):
//!
//!   sluice broker --listeners PLAINTEXT://127.0.0.1:9092 --log-dirs ./data
//!   sluice topics --bootstrap-server 127.0.0.1:9092 --create --topic quickstart --partitions 3 --replication-factor 1
//!   sluice topics --bootstrap-server 127.0.0.1:9092 --list
//!   sluice topics --bootstrap-server 127.0.0.1:9092 --describe --topic quickstart
//!   printf 'hello\nsluice\n' | sluice console-producer --bootstrap-server 127.0.0.1:9092 --topic quickstart
//!   sluice console-consumer --bootstrap-server 127.0.0.1:9092 --topic quickstart --from-beginning --max-messages 2
//!   sluice topics --bootstrap-server 127.0.0.1:9092 --delete --topic quickstart

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{run_ok, sluice_bin, Broker};

fn sluice(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args);
    run_ok(&mut cmd, stdin.map(str::as_bytes), Duration::from_secs(60))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn readme_quickstart() {
    // Step 1, the broker, is the fixture (it adds --cores 1 for the CI box).
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let b = ["--bootstrap-server", bs.as_str()];
    let t = "quickstart";

    sluice(
        &[
            &["topics"],
            &b[..],
            &[
                "--create",
                "--topic",
                t,
                "--partitions",
                "3",
                "--replication-factor",
                "1",
            ],
        ]
        .concat(),
        None,
    );

    let list = stdout(&sluice(&[&["topics"], &b[..], &["--list"]].concat(), None));
    assert!(
        list.lines().any(|l| l.trim() == t),
        "--list output:\n{list}"
    );

    // Kafka's kafka-topics.sh format: a summary line, then one line per partition.
    let desc = stdout(&sluice(
        &[&["topics"], &b[..], &["--describe", "--topic", t]].concat(),
        None,
    ));
    assert!(
        desc.contains(&format!("Topic: {t}")) && desc.contains("PartitionCount: 3"),
        "--describe output:\n{desc}"
    );
    for p in 0..3 {
        assert!(
            desc.contains(&format!("Partition: {p}")),
            "--describe lacks partition {p}:\n{desc}"
        );
    }

    sluice(
        &[&["console-producer"], &b[..], &["--topic", t]].concat(),
        Some("hello\nsluice\n"),
    );

    let consumed = sluice(
        &[
            &["console-consumer"],
            &b[..],
            &[
                "--topic",
                t,
                "--from-beginning",
                "--max-messages",
                "2",
                "--timeout-ms",
                "30000",
            ],
        ]
        .concat(),
        None,
    );
    // Unkeyed lines may land on different partitions, so compare as a set.
    let mut lines: Vec<String> = stdout(&consumed).lines().map(String::from).collect();
    lines.sort();
    assert_eq!(lines, vec!["hello", "sluice"], "console-consumer stdout");

    sluice(
        &[&["topics"], &b[..], &["--delete", "--topic", t]].concat(),
        None,
    );
    let list = stdout(&sluice(&[&["topics"], &b[..], &["--list"]].concat(), None));
    assert!(
        !list.lines().any(|l| l.trim() == t),
        "topic still listed after --delete:\n{list}"
    );
}
