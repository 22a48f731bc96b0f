//! Third-party client libraries, each driven by a script in tests/clients/
//! against its own fresh broker. The scripts do the checking and exit
//! non-zero with a message; tests/run installs their dependencies.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{repo_root, run_with_timeout, show_output, Broker};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

/// The venv tests/run creates (Debian's python3 refuses global pip installs).
fn python() -> PathBuf {
    let py = clients_dir().join(".venv/bin/python");
    assert!(
        py.exists(),
        "{} missing: run tests/run (it installs the Python clients)",
        py.display()
    );
    py
}

fn run_script(interpreter: PathBuf, script: &str) {
    let broker = Broker::start(&[]);
    let mut cmd = Command::new(interpreter);
    cmd.arg(clients_dir().join(script))
        .arg(broker.bootstrap())
        .current_dir(clients_dir());
    let out = run_with_timeout(&mut cmd, None, SCRIPT_TIMEOUT);
    assert!(
        out.status.success(),
        "{script} failed ({})\n{}",
        out.status,
        show_output(&out)
    );
    // Success line, visible with --nocapture.
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
}

#[test]
fn kafka_python() {
    run_script(python(), "kafka_python_check.py");
}

#[test]
fn confluent_kafka_python() {
    run_script(python(), "confluent_check.py");
}

/// fetch.max.bytes well below max.partition.fetch.bytes: answers must keep
/// to the request's limit.
/// ListOffsets with every spec a Kafka 3.x admin client sends, the max
/// timestamp one (-3) included; authorized operations when asked for.
#[test]
fn confluent_kafka_admin() {
    run_script(python(), "confluent_admin.py");
}

#[test]
fn confluent_kafka_fetch_limits() {
    run_script(python(), "confluent_fetch_limits.py");
}

#[test]
fn kafkajs() {
    let node = common::require_tool("node");
    let pkg = clients_dir().join("node_modules/kafkajs/package.json");
    assert!(
        pkg.exists(),
        "{} missing: run tests/run (it runs npm ci in tests/clients)",
        pkg.display()
    );
    run_script(node, "kafkajs_check.js");
}
