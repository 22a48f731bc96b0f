//! Kafka Connect standalone (`sluice connect-standalone`), run as a user runs
//! it: the seed quickstart's step with Kafka's three sample files from
//! config/, the REST API through curl, and bad input (a broker that is not
//! there yet, malformed JSON, a corrupt offset file, an unwritable sink).
//! The topic is read back with kcat and the console consumer.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    free_port, repo_root, require_tool, run_ok, signal, sluice_bin, wait_timeout, Broker,
    DEFAULT_CORES,
};

/// Bound on every wait for the pipeline to move.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(60);
/// New groups join at once (Kafka's sample server.properties does the same).
const NO_REBALANCE_DELAY: &str = "group.initial.rebalance.delay.ms=0";

/// Polls `check` until it holds; panics with `what` and `context()` if it
/// does not within PIPELINE_TIMEOUT.
fn wait_for(what: &str, mut check: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + PIPELINE_TIMEOUT;
    while !check() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `sluice connect-standalone` process run in `dir` (where the connector
/// files' relative paths point).
struct ConnectWorker {
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<PathBuf>,
    rest_port: u16,
    runs: u32,
}

impl ConnectWorker {
    /// Writes the worker file from config/connect-standalone.properties with
    /// the test's broker, offset file and REST port, and starts the worker.
    fn start(dir: &Path, bootstrap: &str, connectors: &[PathBuf]) -> ConnectWorker {
        let sample =
            fs::read_to_string(repo_root().join("config/connect-standalone.properties")).unwrap();
        let rest_port = free_port();
        let worker = sample
            .replace("localhost:9092", bootstrap)
            .replace(
                "/tmp/connect.offsets",
                &dir.join("connect.offsets").display().to_string(),
            )
            .replace("offset.flush.interval.ms=10000", "offset.flush.interval.ms=1000")
            + &format!("listeners=http://127.0.0.1:{rest_port}\n")
            // A killed worker's sink leaves the group after 6 s, not 45.
            + "consumer.session.timeout.ms=6000\nconsumer.heartbeat.interval.ms=1000\n";
        let worker_file = dir.join("connect-standalone.properties");
        fs::write(&worker_file, worker).unwrap();
        let mut args = vec![worker_file];
        args.extend(connectors.iter().cloned());
        let mut w = ConnectWorker {
            child: None,
            dir: dir.to_path_buf(),
            args,
            rest_port,
            runs: 0,
        };
        w.spawn();
        w
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let log = fs::File::create(self.log_path(self.runs)).unwrap();
        let child = Command::new(sluice_bin())
            .arg("connect-standalone")
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn sluice connect-standalone");
        self.child = Some(child);
        // Ready once REST answers.
        wait_for(
            "the REST server",
            || self.rest("GET", "/", None).0 == 200,
            || self.logs(),
        );
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.join(format!("connect-{run}.log"))
    }

    fn logs(&self) -> String {
        (1..=self.runs)
            .map(|r| {
                format!(
                    "--- worker run {r} ---\n{}",
                    fs::read_to_string(self.log_path(r)).unwrap_or_default()
                )
            })
            .collect()
    }

    /// SIGTERM, as Ctrl-C: the worker must stop cleanly.
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("running");
        signal(&child, libc::SIGTERM);
        let status = wait_timeout(&mut child, Duration::from_secs(30));
        assert!(
            status.is_some_and(|s| s.success()),
            "worker did not exit cleanly on SIGTERM ({status:?})\n{}",
            self.logs()
        );
    }

    fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// One HTTP call through curl: (status, body).
    fn rest(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut cmd = Command::new(require_tool("curl"));
        cmd.args([
            "-s",
            "-m",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            method,
        ]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "-d", b]);
        }
        cmd.arg(format!("http://127.0.0.1:{}{path}", self.rest_port));
        let out = cmd.output().expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn json(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        let (code, text) = self.rest(method, path, body);
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
        };
        (code, json)
    }

    fn task_state(&self, connector: &str) -> String {
        let (_, s) = self.json("GET", &format!("/connectors/{connector}/status"), None);
        s["tasks"][0]["state"].as_str().unwrap_or("").to_string()
    }
}

impl Drop for ConnectWorker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every record of `topic` from the beginning, as kcat prints values.
fn topic_values(bootstrap: &str, topic: &str) -> Vec<String> {
    let out = run_ok(
        Command::new(require_tool("kcat")).args([
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%s\n",
        ]),
        None,
        Duration::from_secs(30),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn envelope(s: &str) -> String {
    format!(r#"{{"schema":{{"type":"string","optional":false}},"payload":"{s}"}}"#)
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn sample(name: &str) -> PathBuf {
    repo_root().join("config").join(name)
}

#[test]
fn the_seed_connect_step_as_written() {
    let broker = Broker::start(&[NO_REBALANCE_DELAY]);
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (
        dir.path().join("test.txt"),
        dir.path().join("test.sink.txt"),
    );
    // echo -e "foo\nbar" > test.txt
    fs::write(&input, "foo\nbar\n").unwrap();
    let mut worker = ConnectWorker::start(
        dir.path(),
        &broker.bootstrap(),
        &[
            sample("connect-file-source.properties"),
            sample("connect-file-sink.properties"),
        ],
    );
    let logs = || worker_logs(dir.path());
    wait_for(
        "foo and bar in test.sink.txt",
        || lines(&output) == ["foo", "bar"],
        logs,
    );

    // The console consumer prints the JSON envelopes, byte for byte.
    let consumed = run_ok(
        Command::new(sluice_bin()).args([
            "console-consumer",
            "--bootstrap-server",
            &broker.bootstrap(),
            "--topic",
            "connect-test",
            "--from-beginning",
            "--max-messages",
            "2",
        ]),
        None,
        Duration::from_secs(60),
    );
    assert_eq!(
        String::from_utf8_lossy(&consumed.stdout),
        format!("{}\n{}\n", envelope("foo"), envelope("bar"))
    );

    // echo "Another line" >> test.txt: it reaches the topic and the sink.
    append(&input, "Another line\n");
    wait_for(
        "Another line in the sink",
        || lines(&output) == ["foo", "bar", "Another line"],
        logs,
    );
    assert_eq!(
        topic_values(&broker.bootstrap(), "connect-test"),
        [envelope("foo"), envelope("bar"), envelope("Another line")]
    );

    // Stop it (Ctrl-C) and start it again: the source resumes after the
    // last line it sent, the sink after the last line it wrote.
    worker.terminate();
    append(&input, "while stopped\n");
    worker.spawn();
    append(&input, "after restart\n");
    let expected = [
        "foo",
        "bar",
        "Another line",
        "while stopped",
        "after restart",
    ];
    wait_for(
        "every line once in the sink",
        || lines(&output) == expected,
        || worker.logs(),
    );
    let in_topic: Vec<String> = expected.iter().map(|l| envelope(l)).collect();
    assert_eq!(topic_values(&broker.bootstrap(), "connect-test"), in_topic);

    // kill -9 loses nothing: lines after the last offset flush may be sent
    // again (at least once), none is missing and order holds.
    append(&input, "before kill\n");
    wait_for(
        "before kill in the sink",
        || lines(&output).last().map(String::as_str) == Some("before kill"),
        || worker.logs(),
    );
    worker.kill9();
    append(&input, "after kill\n");
    worker.spawn();
    wait_for(
        "after kill in the sink",
        || lines(&output).last().map(String::as_str) == Some("after kill"),
        || worker.logs(),
    );
    let expected = [
        "foo",
        "bar",
        "Another line",
        "while stopped",
        "after restart",
        "before kill",
        "after kill",
    ];
    let got = lines(&output);
    let mut distinct: Vec<&str> = Vec::new();
    for l in &got {
        if !distinct.contains(&l.as_str()) {
            distinct.push(l);
        }
    }
    assert_eq!(distinct, expected, "{}", worker.logs());
    // What was written before the kill stays as it was; after it, only
    // re-deliveries of lines already sent.
    assert_eq!(got[..6], expected[..6], "{}", worker.logs());
    worker.terminate();
}

fn worker_logs(dir: &Path) -> String {
    let mut out = String::new();
    for run in 1..10 {
        if let Ok(l) = fs::read_to_string(dir.join(format!("connect-{run}.log"))) {
            out += &format!("--- worker run {run} ---\n{l}");
        }
    }
    out
}

#[test]
fn the_rest_api_lists_pauses_resumes_stops_and_deletes() {
    let broker = Broker::start(&[NO_REBALANCE_DELAY]);
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.txt"), dir.path().join("out.txt"));
    fs::write(&input, "one\n").unwrap();
    // Connector files may be JSON, as Kafka takes them.
    let source = dir.path().join("source.json");
    fs::write(
        &source,
        r#"{"name":"src","config":{"connector.class":"org.apache.kafka.connect.file.FileStreamSourceConnector","tasks.max":"1","file":"in.txt","topic":"rest-t"}}"#,
    )
    .unwrap();
    let sink = dir.path().join("sink.properties");
    fs::write(
        &sink,
        "name=snk\nconnector.class=FileStreamSink\nfile=out.txt\ntopics=rest-t\n",
    )
    .unwrap();
    let worker = ConnectWorker::start(dir.path(), &broker.bootstrap(), &[source, sink]);
    let logs = || worker.logs();
    wait_for("one in the sink", || lines(&output) == ["one"], logs);

    let (code, root) = worker.json("GET", "/", None);
    assert_eq!(code, 200);
    assert!(root["version"].is_string(), "{root}");
    assert!(root["kafka_cluster_id"].is_string(), "{root}");
    let (_, list) = worker.json("GET", "/connectors", None);
    assert_eq!(list, serde_json::json!(["snk", "src"]));
    let (_, expanded) = worker.json("GET", "/connectors?expand=status&expand=info", None);
    assert_eq!(expanded["src"]["status"]["connector"]["state"], "RUNNING");
    assert_eq!(expanded["snk"]["info"]["type"], "sink");
    let (_, info) = worker.json("GET", "/connectors/src", None);
    assert_eq!(info["name"], "src");
    assert_eq!(info["type"], "source");
    assert_eq!(info["config"]["topic"], "rest-t");
    assert_eq!(
        info["tasks"],
        serde_json::json!([{"connector": "src", "task": 0}])
    );
    let (_, config) = worker.json("GET", "/connectors/snk/config", None);
    assert_eq!(config["topics"], "rest-t");
    let (_, tasks) = worker.json("GET", "/connectors/src/tasks", None);
    assert_eq!(
        tasks[0]["id"],
        serde_json::json!({"connector": "src", "task": 0})
    );
    assert_eq!(tasks[0]["config"]["file"], "in.txt");
    let (_, status) = worker.json("GET", "/connectors/src/status", None);
    assert_eq!(status["connector"]["state"], "RUNNING");
    assert_eq!(status["tasks"][0]["state"], "RUNNING");
    assert_eq!(status["type"], "source");
    let (_, plugins) = worker.json("GET", "/connector-plugins", None);
    let classes: Vec<&str> = plugins
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["class"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        [
            "org.apache.kafka.connect.file.FileStreamSinkConnector",
            "org.apache.kafka.connect.file.FileStreamSourceConnector"
        ]
    );

    // A paused source stops producing; resumed, it goes on.
    assert_eq!(worker.rest("PUT", "/connectors/src/pause", None).0, 202);
    wait_for(
        "the source task PAUSED",
        || worker.task_state("src") == "PAUSED",
        logs,
    );
    append(&input, "two\n");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        topic_values(&broker.bootstrap(), "rest-t").len(),
        1,
        "a paused source produced"
    );
    assert_eq!(worker.rest("PUT", "/connectors/src/resume", None).0, 202);
    wait_for("two in the sink", || lines(&output) == ["one", "two"], logs);

    // Stopped (KIP-875): no tasks; resumed: running again.
    assert_eq!(worker.rest("PUT", "/connectors/snk/stop", None).0, 202);
    let (_, stopped) = worker.json("GET", "/connectors/snk/status", None);
    assert_eq!(stopped["connector"]["state"], "STOPPED");
    assert_eq!(stopped["tasks"], serde_json::json!([]));
    append(&input, "three\n");
    assert_eq!(worker.rest("PUT", "/connectors/snk/resume", None).0, 202);
    wait_for(
        "three in the sink",
        || lines(&output) == ["one", "two", "three"],
        logs,
    );

    // Restart with tasks answers the status.
    let (code, restarted) = worker.json("POST", "/connectors/src/restart?includeTasks=true", None);
    assert_eq!(code, 202);
    assert_eq!(restarted["name"], "src");
    append(&input, "four\n");
    wait_for("four in the sink", || lines(&output).len() == 4, logs);
    assert_eq!(lines(&output), ["one", "two", "three", "four"]);

    // Create one more, refuse a duplicate, delete, and 404 after.
    let body = r#"{"name":"snk2","config":{"connector.class":"FileStreamSink","topics":"rest-t","file":"out2.txt"}}"#;
    let (code, created) = worker.json("POST", "/connectors", Some(body));
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["name"], "snk2");
    assert_eq!(worker.json("POST", "/connectors", Some(body)).0, 409);
    wait_for(
        "snk2 to copy the topic",
        || lines(&dir.path().join("out2.txt")).len() == 4,
        logs,
    );
    assert_eq!(worker.rest("DELETE", "/connectors/snk2", None).0, 204);
    let (code, missing) = worker.json("GET", "/connectors/snk2", None);
    assert_eq!(code, 404);
    assert_eq!(missing["error_code"], 404);
    assert_eq!(missing["message"], "Connector snk2 not found");
    let (code, bad) = worker.json(
        "POST",
        "/connectors",
        Some(r#"{"name":"x","config":{"connector.class":"Nope"}}"#),
    );
    assert_eq!(code, 400);
    assert!(bad["message"].as_str().unwrap().contains("Nope"), "{bad}");
}

#[test]
fn bad_input_gets_a_clear_answer_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A connector file without its topic stops start-up naming the key.
    let no_topic = dir.path().join("no-topic.properties");
    fs::write(
        &no_topic,
        "name=s\nconnector.class=FileStreamSource\nfile=in.txt\n",
    )
    .unwrap();
    let worker_file = dir.path().join("w.properties");
    fs::write(
        &worker_file,
        format!(
            "key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             offset.storage.file.filename={}\nlisteners=http://127.0.0.1:{}\n",
            dir.path().join("offsets").display(),
            free_port()
        ),
    )
    .unwrap();
    let out = common::run_with_timeout(
        Command::new(sluice_bin())
            .arg("connect-standalone")
            .arg(&worker_file)
            .arg(&no_topic),
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"topic\""), "{err}");

    // The broker is not there when the worker starts: the worker waits,
    // and the lines arrive once it is.
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    fs::write(dir.path().join("in.txt"), "early\n").unwrap();
    // A corrupt offset file: start from the beginning, and say so.
    fs::write(dir.path().join("connect.offsets"), "{\"version\":1,\"off").unwrap();
    let source = dir.path().join("source.properties");
    fs::write(
        &source,
        "name=s\nconnector.class=FileStreamSource\nfile=in.txt\ntopic=bad-t\n",
    )
    .unwrap();
    let sink = dir.path().join("sink.properties");
    fs::write(
        &sink,
        "name=k\nconnector.class=FileStreamSink\nfile=out.txt\ntopics=bad-t\n",
    )
    .unwrap();
    let unwritable = dir.path().join("unwritable.properties");
    fs::write(
        &unwritable,
        "name=u\nconnector.class=FileStreamSink\nfile=no-such-dir/out.txt\ntopics=bad-t\n",
    )
    .unwrap();
    let worker = ConnectWorker::start(dir.path(), &bootstrap, &[source, sink, unwritable]);
    let logs = || worker.logs();
    assert!(
        logs().contains("every source connector starts from the beginning"),
        "{}",
        logs()
    );
    // The unwritable sink fails, saying why; the others go on.
    wait_for(
        "the unwritable sink FAILED",
        || worker.task_state("u") == "FAILED",
        logs,
    );
    let (_, status) = worker.json("GET", "/connectors/u/status", None);
    let trace = status["tasks"][0]["trace"].as_str().unwrap_or("");
    assert!(trace.contains("Couldn't find or create file"), "{status}");
    std::thread::sleep(Duration::from_millis(500));
    let mut broker = Broker::launch(DEFAULT_CORES, port, &[NO_REBALANCE_DELAY.to_string()]);
    broker.wait_until_ready();
    let output = dir.path().join("out.txt");
    wait_for("early in the sink", || lines(&output) == ["early"], logs);

    // The broker dies mid-run: lines appended meanwhile arrive once it is
    // back, none lost.
    broker.kill9();
    append(&dir.path().join("in.txt"), "while down\n");
    std::thread::sleep(Duration::from_millis(500));
    broker.restart();
    wait_for(
        "while down in the sink",
        || lines(&output).last().map(String::as_str) == Some("while down"),
        logs,
    );
    let mut seen = lines(&output);
    seen.dedup();
    assert_eq!(seen, ["early", "while down"], "{}", logs());

    // A value that is not a JSON envelope fails the sink task, naming the
    // record; nothing after it is written.
    run_ok(
        Command::new(sluice_bin()).args([
            "console-producer",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "bad-t",
        ]),
        Some(b"not json\n"),
        Duration::from_secs(60),
    );
    wait_for(
        "the sink FAILED",
        || worker.task_state("k") == "FAILED",
        logs,
    );
    let (_, status) = worker.json("GET", "/connectors/k/status", None);
    let trace = status["tasks"][0]["trace"].as_str().unwrap_or("");
    let bad_offset = topic_values(&bootstrap, "bad-t").len() - 1;
    assert!(
        trace.contains(&format!("bad-t-0 at offset {bad_offset}")),
        "{status}"
    );
    assert_eq!(
        lines(&output).last().map(String::as_str),
        Some("while down")
    );
}
