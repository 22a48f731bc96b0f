//! README.md's Quickstart, run as written: the ```sh block under
//! "## Quickstart" is read from the README and each line executed, with
//! `cargo run --release --` replaced by the binary under test and
//! 127.0.0.1:9092 by the test broker's address. The broker itself (the
//! README's first command) is the fixture. A second test covers the rest of
//! the `topics` tool.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{repo_root, run_ok, sluice_bin, Broker};

fn sluice(args: &[String], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args);
    run_ok(&mut cmd, stdin.map(str::as_bytes), Duration::from_secs(60))
}

fn stdout_lines(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect();
    v.sort(); // unkeyed lines spread over partitions: compare as sets
    v
}

/// Non-comment lines of the Quickstart section's ```sh block.
fn quickstart_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let section = readme
        .split("## Quickstart")
        .nth(1)
        .expect("README.md has no '## Quickstart' section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("no ```sh block in the Quickstart");
    block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

/// The small shell subset the Quickstart uses: `[printf '...' | ]cargo run --release -- ARGS`
/// with unquoted ARGS. Returns (stdin, args).
fn parse(line: &str, bootstrap: &str) -> (Option<String>, Vec<String>) {
    let unsupported =
        || panic!("tests/quickstart.rs cannot run README line {line:?}; extend parse()");
    let (stdin, cmd) = match line.split_once(" | ") {
        Some((printf, cmd)) => {
            let text = printf
                .strip_prefix("printf '")
                .and_then(|s| s.strip_suffix('\''))
                .unwrap_or_else(unsupported);
            (Some(text.replace("\\n", "\n")), cmd)
        }
        None => (None, line),
    };
    let args = cmd
        .strip_prefix("cargo run --release -- ")
        .unwrap_or_else(unsupported);
    if args.contains(['\'', '"', '|', '>', '<', '&', ';']) {
        unsupported();
    }
    (
        stdin,
        args.split_whitespace()
            .map(|a| a.replace("127.0.0.1:9092", bootstrap))
            .collect(),
    )
}

#[test]
fn readme_quickstart() {
    let broker = Broker::start(&[]);
    let lines = quickstart_lines();
    assert!(
        lines.len() >= 3,
        "Quickstart block looks truncated: {lines:?}"
    );
    let mut produced: Vec<String> = Vec::new();
    let mut consumed = false;
    for line in &lines {
        let (stdin, args) = parse(line, &broker.bootstrap());
        let out = sluice(&args, stdin.as_deref());
        if let Some(text) = stdin {
            produced.extend(text.lines().map(String::from));
        }
        if args[0] == "console-consumer" {
            produced.sort();
            assert_eq!(
                stdout_lines(&out),
                produced,
                "console-consumer output for {line:?}"
            );
            consumed = true;
        }
    }
    assert!(consumed, "the Quickstart never consumes anything");
}

#[test]
fn topics_list_describe_delete() {
    let broker = Broker::start(&[]);
    let bs = broker.bootstrap();
    let topics = |extra: &[&str]| -> Output {
        let args: Vec<String> = ["topics", "--bootstrap-server", &bs]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        sluice(&args, None)
    };
    let t = "cli-topic";
    topics(&[
        "--create",
        "--topic",
        t,
        "--partitions",
        "3",
        "--replication-factor",
        "1",
    ]);
    assert!(
        stdout_lines(&topics(&["--list"])).contains(&t.to_string()),
        "--list lacks {t}"
    );

    // kafka-topics.sh format: a summary line, then one line per partition.
    let desc = String::from_utf8_lossy(&topics(&["--describe", "--topic", t]).stdout).into_owned();
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

    topics(&["--delete", "--topic", t]);
    assert!(
        !stdout_lines(&topics(&["--list"])).contains(&t.to_string()),
        "{t} still listed after --delete"
    );
}
