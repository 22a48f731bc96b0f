//! The seed documents' own command lines (../shared/seeds/), as a Kafka user
//! types them, with `bin/kafka-X.sh` spelled `sluice X` and the broker's
//! address swapped for the test broker's. Kafka 0.9 era: a broker started from
//! a copy of config/server.properties edited as the multi-broker recipe does
//! (broker.id, port, log.dir), tools given `--zookeeper localhost:2181` (sluice
//! has no ZooKeeper: they go to $SLUICE_BOOTSTRAP_SERVER) and `--broker-list`.
//! Kafka 3.x era: `--bootstrap-server`, `--whitelist`, a console consumer in a
//! group, and consumer-groups --list / --describe.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{repo_root, run_ok, sluice_bin, Broker};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A seed line: `bin/kafka-topics.sh --create ...` becomes `sluice topics ...`.
fn argv(line: &str, port: u16) -> Vec<String> {
    let mut words = shell_words(line);
    let tool = words.remove(0);
    let tool = tool
        .trim_start_matches("bin/")
        .trim_start_matches("kafka-")
        .trim_end_matches(".sh")
        .to_string();
    let mut out = vec![tool];
    out.extend(
        words
            .into_iter()
            .map(|w| w.replace("localhost:9092", &format!("localhost:{port}"))),
    );
    out
}

/// Split like a shell: whitespace, with "double quotes" grouping.
fn shell_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn command(args: &[String], port: u16) -> Command {
    let mut cmd = Command::new(sluice_bin());
    cmd.args(args)
        .env("SLUICE_BOOTSTRAP_SERVER", format!("127.0.0.1:{port}"));
    cmd
}

fn run(line: &str, port: u16, stdin: Option<&str>) -> Output {
    run_ok(
        &mut command(&argv(line, port), port),
        stdin.map(str::as_bytes),
        TIMEOUT,
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A long-running seed command (a console consumer): its stdout lines as
/// they come; stopped with SIGTERM, as Ctrl-C stops Kafka's.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(line: &str, port: u16) -> Running {
        let mut child = command(&argv(line, port), port)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The next `n` lines, or panic after TIMEOUT.
    fn take(&self, n: usize, what: &str) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => got.push(l),
                Err(_) => panic!(
                    "{what}: {} of {n} lines after {TIMEOUT:?}: {got:?}",
                    got.len()
                ),
            }
        }
        got
    }

    /// SIGTERM; the exit status and stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        common::signal(&self.child, libc::SIGTERM);
        let status =
            common::wait_timeout(&mut self.child, TIMEOUT).expect("did not exit on SIGTERM");
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status, err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice broker FILE`, killed on drop.
struct FileBroker(Child);

impl Drop for FileBroker {
    fn drop(&mut self) {
        common::signal(&self.0, libc::SIGTERM);
        if common::wait_timeout(&mut self.0, TIMEOUT).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The multi-broker recipe: a copy of the sample config with broker.id,
/// port and log.dir changed.
fn edited_config(dir: &Path, port: u16) -> std::path::PathBuf {
    let sample = std::fs::read_to_string(repo_root().join("config/server.properties")).unwrap();
    let mut text = String::new();
    let mut seen = (false, false, false);
    for line in sample.lines() {
        let l = if line.starts_with("broker.id=") {
            seen.0 = true;
            "broker.id=1".to_string()
        } else if line.starts_with("port=") || line.starts_with("#port=") {
            seen.1 = true;
            format!("port={port}")
        } else if line.starts_with("log.dir=") {
            seen.2 = true;
            format!("log.dir={}", dir.join("kafka-logs-1").display())
        } else {
            line.to_string()
        };
        text += &l;
        text.push('\n');
    }
    assert!(
        seen.0 && seen.2,
        "config/server.properties lacks broker.id or log.dir"
    );
    if !seen.1 {
        text += &format!("port={port}\n");
    }
    let path = dir.join("server-1.properties");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn kafka_0_9_quickstart_command_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cfg = edited_config(tmp.path(), port);
    // bin/kafka-server-start.sh config/server-1.properties
    let log = std::fs::File::create(tmp.path().join("broker.log")).unwrap();
    let child = Command::new(sluice_bin())
        .arg("broker")
        .arg(&cfg)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let _broker = FileBroker(child);
    let deadline = Instant::now() + TIMEOUT;
    // Up means this broker says it listens and the port answers: another
    // process may have taken the free port meanwhile.
    // (Whatever address it binds: `listeners` may name none.)
    let on_port = format!(":{port} ");
    loop {
        let log = std::fs::read_to_string(tmp.path().join("broker.log")).unwrap_or_default();
        let said = log
            .lines()
            .any(|l| l.contains("broker listening on ") && l.contains(&on_port));
        if said && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "broker not up on port {port} (port=):\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        tmp.path().join("kafka-logs-1/meta.properties").exists(),
        "log.dir was not honoured"
    );
    let log = std::fs::read_to_string(tmp.path().join("broker.log")).unwrap();
    assert!(
        !log.contains("clean-shutdown marker"),
        "a fresh data dir has nothing to recover:\n{log}"
    );

    let o = run(
        "bin/kafka-topics.sh --create --zookeeper localhost:2181 --replication-factor 1 --partitions 1 --topic test",
        port,
        None,
    );
    assert!(stdout(&o).contains("Created topic"), "{}", stdout(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("sluice has no ZooKeeper"),
        "no note about --zookeeper: {err}"
    );
    let o = run(
        "bin/kafka-topics.sh --list --zookeeper localhost:2181",
        port,
        None,
    );
    assert!(stdout(&o).lines().any(|l| l == "test"), "{}", stdout(&o));
    run(
        "bin/kafka-console-producer.sh --broker-list localhost:9092 --topic test",
        port,
        Some("This is a message\nThis is another message\n"),
    );
    let consumer = Running::start(
        "bin/kafka-console-consumer.sh --zookeeper localhost:2181 --topic test --from-beginning",
        port,
    );
    assert_eq!(
        consumer.take(2, "console-consumer --from-beginning"),
        vec!["This is a message", "This is another message"]
    );
    let (status, err) = consumer.stop();
    assert!(
        status.success(),
        "console-consumer on SIGTERM: {status}\n{err}"
    );
    assert!(err.contains("Processed a total of 2 messages"), "{err}");
    let o = run(
        "bin/kafka-topics.sh --describe --zookeeper localhost:2181 --topic test",
        port,
        None,
    );
    let d = stdout(&o);
    assert!(d.contains("Topic: test") && d.contains("Leader: 1"), "{d}");
}

#[test]
fn kafka_3_quickstart_command_lines() {
    // Kafka 3's sample server.properties sets no rebalance delay either.
    let broker = Broker::start(&["group.initial.rebalance.delay.ms=0"]);
    let port = broker.port();
    let t = |line: &str| run(line, port, None);
    let o = t("kafka-topics.sh --create --bootstrap-server localhost:9092 --replication-factor 1 --partitions 1 --topic test");
    assert!(stdout(&o).contains("Created topic test."), "{}", stdout(&o));
    assert!(stdout(&t(
        "kafka-topics.sh --list --bootstrap-server localhost:9092"
    ))
    .contains("test"));
    t("kafka-topics.sh --delete --topic test --bootstrap-server localhost:9092");
    assert!(!stdout(&t(
        "kafka-topics.sh --list --bootstrap-server localhost:9092"
    ))
    .lines()
    .any(|l| l == "test"));
    // The producer auto-creates the deleted topic again.
    run(
        "kafka-console-producer.sh --broker-list localhost:9092 --topic test",
        port,
        Some("msg1\nmsg2\n"),
    );
    let c = Running::start(
        "kafka-console-consumer.sh --bootstrap-server localhost:9092 --topic test --from-beginning",
        port,
    );
    assert_eq!(c.take(2, "--from-beginning"), vec!["msg1", "msg2"]);
    // Without a group, Kafka's console consumer joins a generated one.
    let listed = stdout(&t(
        "kafka-consumer-groups.sh --bootstrap-server localhost:9092 --list",
    ));
    assert!(
        listed.lines().any(|l| l.starts_with("console-consumer-")),
        "no console-consumer-NNNNN group while it runs:\n{listed}"
    );
    c.stop();
    run(
        "kafka-console-producer.sh --broker-list localhost:9092 --topic test2",
        port,
        Some("test2-1\ntest2-2\n"),
    );
    let c = Running::start(
        r#"kafka-console-consumer.sh --bootstrap-server localhost:9092 --whitelist "test|test2" --from-beginning"#,
        port,
    );
    let mut got = c.take(4, "--whitelist");
    got.sort();
    assert_eq!(got, vec!["msg1", "msg2", "test2-1", "test2-2"]);
    c.stop();
    // A group member, started before the message is produced (it starts at
    // the end of the log, as Kafka's does without --from-beginning).
    let c = Running::start(
        "kafka-console-consumer.sh --bootstrap-server localhost:9092 --topic test --consumer-property group.id=testGroup1",
        port,
    );
    let deadline = Instant::now() + TIMEOUT;
    loop {
        // Until the member joins, the group does not exist (an error exit).
        let line =
            "kafka-consumer-groups.sh --bootstrap-server localhost:9092 --describe --group testGroup1";
        let d = stdout(&common::run_with_timeout(
            &mut command(&argv(line, port), port),
            None,
            TIMEOUT,
        ));
        if d.lines()
            .any(|l| l.starts_with("testGroup1") && l.contains("console-consumer"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "testGroup1 never got its member:\n{d}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    run(
        "kafka-console-producer.sh --broker-list localhost:9092 --topic test",
        port,
        Some("msg3\n"),
    );
    assert_eq!(c.take(1, "group member"), vec!["msg3"]);
    let (status, err) = c.stop();
    assert!(status.success(), "{err}");
    assert!(stdout(&t(
        "kafka-consumer-groups.sh --bootstrap-server localhost:9092 --list"
    ))
    .lines()
    .any(|l| l == "testGroup1"));
    let d = stdout(&t(
        "kafka-consumer-groups.sh --bootstrap-server localhost:9092 --describe --group testGroup1",
    ));
    for col in ["CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"] {
        assert!(d.contains(col), "--describe lacks {col}:\n{d}");
    }
    let row = d
        .lines()
        .find(|l| l.starts_with("testGroup1"))
        .unwrap_or_else(|| panic!("no row:\n{d}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG ...
    assert_eq!(&cols[1..6], &["test", "0", "3", "3", "0"], "{d}");
}
