//! `sluice bench`: workload checks, runs against a real broker, the
//! coordinated-omission correction against a broker made slow by a stalling
//! proxy, saved outputs read back, compare and report.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{run_with_timeout, show_output, sluice_bin, Broker};
use sluice::bench::{hgrm, output, result::RunResult};

/// A bench run here takes a few seconds; this only stops a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Held by the tests that load the machine (max-rate runs) and by the one
/// whose result depends on the machine keeping pace, so they never overlap.
static HEAVY: Mutex<()> = Mutex::new(());

fn bench(args: &[&str]) -> Command {
    let mut c = Command::new(sluice_bin());
    c.arg("bench").args(args);
    c
}

/// Run `bench run` against `bootstrap` with `extra` flags, saving into `dir`.
fn bench_run(bootstrap: &str, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut c = bench(&[
        "run",
        "--bootstrap-server",
        bootstrap,
        "--cores",
        "1",
        "-q",
        "--output",
    ]);
    c.arg(dir).args(extra);
    run_with_timeout(&mut c, None, RUN_TIMEOUT)
}

/// Start `cmd` in the background with stdout discarded and stderr piped,
/// for a test that acts on the broker while the bench runs.
fn spawn_quiet(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// All of a finished `spawn_quiet` child's stderr.
fn take_stderr(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

fn load(dir: &Path) -> RunResult {
    output::load(dir).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn workload_errors_name_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("partitionsPerTopik: 3\n", "partitionsPerTopik"),
        ("producerRate: -1\n", "producerRate"),
        ("topics: 0\n", "topics"),
        ("producer:\n  compression: brotli\n", "brotli"),
        ("producer:\n  maxInFlight: 0\n", "producer.maxInFlight"),
        (
            "consumerBacklogSizeBytes: 100\nconsumersPerSubscription: 0\n",
            "consumerBacklogSizeBytes",
        ),
    ];
    for (i, (yaml, field)) in cases.iter().enumerate() {
        let path = tmp.path().join(format!("w{i}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        // The port is never contacted: the file is rejected first.
        let out = run_with_timeout(
            &mut bench(&[
                "run",
                "--bootstrap-server",
                "127.0.0.1:1",
                "--workload",
                path.to_str().unwrap(),
            ]),
            None,
            Duration::from_secs(20),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{yaml:?} accepted");
        assert!(
            err.contains(field),
            "{yaml:?}: error does not name {field}: {err}"
        );
    }
    // A flag with an impossible value is checked the same way.
    let out = run_with_timeout(
        &mut bench(&[
            "run",
            "--bootstrap-server",
            "127.0.0.1:1",
            "--duration-s",
            "0",
        ]),
        None,
        Duration::from_secs(20),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("testDurationSeconds"),
        "{}",
        show_output(&out)
    );
}

#[test]
fn unreachable_broker_ends_quickly_with_a_saved_result() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::free_port(); // nothing listens there
    let started = Instant::now();
    let out = bench_run(
        &format!("127.0.0.1:{port}"),
        tmp.path(),
        &["--connect-timeout-s", "2"],
    );
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach broker") || err.contains("connect"),
        "{}",
        show_output(&out)
    );
    let r = load(tmp.path());
    assert!(!r.complete);
    assert!(r.error.is_some());
}

/// Checks every saved file of a healthy run and returns the result.
fn check_healthy_run(dir: &Path, out: &std::process::Output) -> RunResult {
    assert!(out.status.success(), "{}", show_output(out));
    let r = load(dir);
    assert!(r.complete, "{:?}", r.error);
    assert!(
        r.produce.msgs > 0 && r.produce.rate_mb_per_s > 0.0,
        "{:?}",
        r.produce
    );
    assert!(
        r.consume.msgs > 0 && r.consume.rate_mb_per_s > 0.0,
        "{:?}",
        r.consume
    );
    assert!(r.totals.produced_msgs > 0);
    assert_eq!(
        r.totals.consumed_msgs, r.totals.expected_consumed_msgs,
        "consumed != produced × subscriptions"
    );
    assert_eq!(r.totals.sent_msgs, r.totals.produced_msgs);
    assert_eq!(r.totals.produce_errors, 0);
    let p = &r.publish_latency_us;
    assert!(
        p.count > 0 && p.p50 > 0 && p.p50 <= p.p99 && p.p99 <= p.max,
        "{p:?}"
    );
    assert!(r.e2e_latency_us.count > 0 && r.e2e_latency_us.p50 > 0);
    assert!(!r.timeline.is_empty());
    assert!(r.cpu.client_s > 0.0);
    assert!(r.cpu.broker_s.is_some_and(|b| b > 0.0), "{:?}", r.cpu);
    // .hgrm: parses back, same count and percentiles as the JSON.
    for (file, lat) in [
        (output::PUBLISH_HGRM, &r.publish_latency_us),
        (output::E2E_HGRM, &r.e2e_latency_us),
    ] {
        let d = hgrm::parse(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        assert_eq!(d.total_count, lat.count, "{file}");
        // The file lists quantile ticks, not p99 itself: p99 lies between the
        // ticks on either side of 0.99.
        let p99_ms = lat.p99 as f64 / 1000.0;
        let below = d
            .rows
            .iter()
            .rev()
            .find(|r| r.1 < 0.99)
            .map_or(0.0, |r| r.0);
        let above = d.value_at_quantile(0.99).unwrap();
        assert!(
            below <= p99_ms + 0.001 && p99_ms <= above + 0.001,
            "{file}: p99 {p99_ms} ms outside [{below}, {above}]"
        );
        assert!(
            (d.max_ms - lat.max as f64 / 1000.0).abs() <= lat.max as f64 / 1000.0 * 0.01 + 0.002
        );
    }
    let svg = std::fs::read_to_string(dir.join(output::CHART_FILE)).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("polyline"),
        "chart has no lines"
    );
    r
}

#[test]
fn runs_against_a_broker_then_compare_and_report() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let metrics = format!("127.0.0.1:{}", common::free_port());
    let broker = Broker::start(&[&format!("sluice.metrics.listener={metrics}")]);
    let pid = broker.pid().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    // A: full speed, no keys, one subscription.
    let out = bench_run(
        &broker.bootstrap(),
        &a,
        &[
            "--name",
            "max",
            "--partitions",
            "4",
            "--duration-s",
            "3",
            "--warmup-s",
            "1",
            "--broker-pid",
            &pid,
            "--broker-metrics",
            &metrics,
        ],
    );
    let ra = check_healthy_run(&a, &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("produce") && stdout.contains("p99.9"),
        "no end table:\n{stdout}"
    );
    // The broker's own latencies over the window sit beside the client's:
    // every acknowledged acks=all record went through a write and an
    // fdatasync, each produce request waited for both.
    let bl = ra
        .broker_latency_us
        .as_ref()
        .expect("broker latencies in result.json");
    assert_eq!(bl.error, None);
    let sync = bl.log_fdatasync.as_ref().expect("fdatasyncs in the window");
    let produce = bl
        .produce_request
        .as_ref()
        .expect("produce requests in the window");
    // (Not `writes >= syncs`: a round may straddle the window's start.)
    assert!(bl.log_write.as_ref().is_some_and(|w| w.count > 0));
    assert!(sync.count > 0 && produce.count > 0, "{bl:?}");
    assert!(sync.p50 <= sync.p99 && sync.p99 <= sync.p99_9 && sync.p99_9 <= sync.max);
    assert!(stdout.contains("fdatasync"), "no broker table:\n{stdout}");
    // B: fixed rate, keyed, compressed, two subscriptions of two consumers.
    let out = bench_run(
        &broker.bootstrap(),
        &b,
        &[
            "--name",
            "keyed",
            "--partitions",
            "3",
            "--duration-s",
            "3",
            "--warmup-s",
            "0",
            "--rate",
            "3000",
            "--message-size",
            "100",
            "--key-distributor",
            "round-robin",
            "--compression",
            "lz4",
            "--subscriptions",
            "2",
            "--consumers",
            "2",
            "--acks",
            "1",
            "--broker-pid",
            &pid,
        ],
    );
    let rb = check_healthy_run(&b, &out);
    assert_eq!(
        rb.totals.expected_consumed_msgs,
        2 * rb.totals.produced_msgs
    );
    // Open loop: the rate is what was asked (within scheduling noise).
    assert!(
        (rb.produce.rate_msgs_per_s - 3000.0).abs() < 600.0,
        "{:?}",
        rb.produce
    );

    let out = run_with_timeout(
        &mut bench(&[
            "compare",
            a.join("result.json").to_str().unwrap(),
            b.to_str().unwrap(),
        ]),
        None,
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", show_output(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("produce msg/s"))
        .expect(&text);
    let ratio = rb.produce.rate_msgs_per_s / ra.produce.rate_msgs_per_s;
    assert!(
        line.contains(&format!("{ratio:.2}")),
        "ratio {ratio:.2} not in {line:?}"
    );

    let out = run_with_timeout(
        &mut bench(&["report", root.path().to_str().unwrap()]),
        None,
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}", show_output(&out));
    let md = std::fs::read_to_string(root.path().join("report.md")).unwrap();
    assert!(md.contains("| max |") && md.contains("| keyed |"), "{md}");
    // Run A named the broker's metrics, B did not.
    assert_eq!(
        md.matches("Broker-side, over the measured window").count(),
        1,
        "{md}"
    );
    assert!(md.contains("| fdatasync | "), "{md}");
    assert!(
        md.contains("](a/chart.svg)") && md.contains("](b/chart.svg)"),
        "{md}"
    );
}

/// A TCP proxy that can hold back broker → client bytes for a while, and
/// counts the client → broker bytes it forwards (so a test can tell when the
/// producer is under way, however slowly this machine starts it).
struct StallProxy {
    port: u16,
    stall_until: Arc<Mutex<Option<Instant>>>,
    upstream_bytes: Arc<AtomicU64>,
}

impl StallProxy {
    fn start() -> (StallProxy, TcpListener) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = StallProxy {
            port: l.local_addr().unwrap().port(),
            stall_until: Arc::new(Mutex::new(None)),
            upstream_bytes: Arc::new(AtomicU64::new(0)),
        };
        (p, l)
    }

    fn serve(&self, listener: TcpListener, upstream: String) {
        let stall = self.stall_until.clone();
        let counted = self.upstream_bytes.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counted = counted.clone();
                thread::spawn(move || pump(c2, s2, None, Some(counted)));
                let stall = stall.clone();
                thread::spawn(move || pump(server, client, Some(stall), None));
            }
        });
    }

    fn stall_for(&self, d: Duration) {
        *self.stall_until.lock().unwrap() = Some(Instant::now() + d);
    }

    /// Wait (bounded) until `n` client → broker bytes have gone through.
    fn wait_upstream_bytes(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.upstream_bytes.load(Ordering::Relaxed) < n {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    stall: Option<Arc<Mutex<Option<Instant>>>>,
    counted: Option<Arc<AtomicU64>>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(s) = &stall {
            let until = *s.lock().unwrap();
            if let Some(t) = until {
                let now = Instant::now();
                if t > now {
                    thread::sleep(t - now);
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        if let Some(c) = &counted {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The coordinated-omission property: a broker that stops answering for a
/// while shows in the high percentiles (every message *due* during the stall
/// waited for it, although the blocked producer sent none of them), and not
/// in the median. Nothing here bounds a wall-clock figure of this machine:
/// the run is paced far below what one connection carries (200 small
/// messages a second, so even a slow, shared machine keeps up outside the
/// stall), it runs alone (no other bench run of this file competes for the
/// two cores), the stall starts only once the producer is under way, and the
/// median is judged against the run's own tail.
#[test]
fn a_stalled_broker_shows_in_the_high_percentiles() {
    let _alone = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let (proxy, listener) = StallProxy::start();
    // Clients must come back through the proxy after Metadata.
    let advertised = format!("advertised.listeners=PLAINTEXT://127.0.0.1:{}", proxy.port);
    let broker = Broker::start(&[&advertised]);
    proxy.serve(listener, broker.bootstrap());
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = format!("127.0.0.1:{}", proxy.port);
    const RATE: f64 = 200.0;
    const DURATION_S: f64 = 6.0;
    const STALL: Duration = Duration::from_millis(1000);
    // One request in flight and a one-batch buffer (~120 messages of 100 B):
    // the ~200 messages due during the stall cannot all be buffered, so the
    // producer itself is blocked and sends nothing, and only latency measured
    // from the intended send times can see them. Behind schedule, one request
    // carries the whole buffer, so the producer catches up within a few round
    // trips.
    let mut cmd = bench(&[
        "run",
        "--bootstrap-server",
        &bootstrap,
        "--cores",
        "1",
        "-q",
        "--partitions",
        "1",
        "--message-size",
        "100",
        "--rate",
        "200",
        "--duration-s",
        "6",
        "--warmup-s",
        "0",
        "--acks",
        "1",
        "--max-in-flight",
        "1",
        "--batch-bytes",
        "16384",
        "--buffer-bytes",
        "16384",
        "--linger-ms",
        "1",
        "--output",
    ]);
    cmd.arg(dir.path());
    let mut child = spawn_quiet(&mut cmd);
    // About a second of records through, then stall: well inside the run.
    let started = proxy.wait_upstream_bytes(30_000, Duration::from_secs(60));
    proxy.stall_for(STALL);
    let status = common::wait_timeout(&mut child, RUN_TIMEOUT).expect("bench hung");
    let err = take_stderr(&mut child);
    assert!(started, "the producer never got going: {err}");
    assert!(status.success(), "{err}");
    let r = load(dir.path());
    let p = &r.publish_latency_us;
    // About RATE × STALL = 200 of ~1,200 messages were due during the stall,
    // waiting 0..1000 ms: ~8% of all waited over 500 ms.
    let stall_us = STALL.as_micros() as u64;
    assert!(
        p.max >= stall_us * 8 / 10,
        "max {} µs hides a {stall_us} µs stall: {p:?}",
        p.max
    );
    assert!(
        p.p99 >= stall_us / 2,
        "p99 {} µs hides the stall: {p:?}",
        p.p99
    );
    // The stall is in the tail, not the middle: the median is a small part of
    // the run's own p99 (a few ms against ~950 ms on an idle machine).
    assert!(
        p.p50 * 4 < p.p99,
        "the stall should not move the median: {p:?}"
    );
    // Open loop: the schedule kept going during the stall.
    assert!(
        r.produce.msgs as f64 >= RATE * DURATION_S * 0.8,
        "{:?}",
        r.produce
    );
    assert!(r.consistent());
}

#[test]
fn broker_death_mid_run_ends_with_partial_results() {
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    let mut broker = Broker::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bench(&[
        "run",
        "--bootstrap-server",
        &broker.bootstrap(),
        "--cores",
        "1",
        "-q",
        "--partitions",
        "2",
        "--rate",
        "2000",
        "--duration-s",
        "30",
        "--warmup-s",
        "0",
        "--output",
    ]);
    cmd.arg(dir.path());
    let mut child = spawn_quiet(&mut cmd);
    thread::sleep(Duration::from_secs(3));
    broker.kill9();
    let killed = Instant::now();
    let status =
        common::wait_timeout(&mut child, RUN_TIMEOUT).expect("bench hung after the broker died");
    assert!(
        killed.elapsed() < Duration::from_secs(40),
        "took {:?} to notice",
        killed.elapsed()
    );
    let err = take_stderr(&mut child);
    assert!(!status.success());
    assert!(
        err.contains("127.0.0.1"),
        "error does not say which broker: {err}"
    );
    let r = load(dir.path());
    assert!(!r.complete && r.error.is_some());
    assert!(
        r.totals.produced_msgs > 0,
        "partial results lost: {:?}",
        r.totals
    );
}
