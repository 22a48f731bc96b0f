//! Shared fixtures for the integration tests: a `Broker` that runs the real
//! `sluice` binary on a free port in a temp dir, and helpers to run external
//! commands with a timeout. Every test binary includes this with `mod common;`
//! and uses only part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod cluster;
pub mod disk;
pub mod netns;
pub mod rdk;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a broker may take from spawn to accepting TCP connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd broker may take to exit before we SIGKILL it.
const TERM_TIMEOUT: Duration = Duration::from_secs(10);
/// Shards per test broker: the CI box has 2 cores and tests run in parallel.
pub const DEFAULT_CORES: u32 = 1;

/// The binary under test: the one cargo built for this test run, unless
/// SLUICE_BIN points elsewhere (e.g. a release build).
pub fn sluice_bin() -> PathBuf {
    std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_sluice")))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1. Racy by nature (another process may grab it
/// between drop and the broker's bind) but good enough for a test suite.
pub fn free_port() -> u16 {
    // The kernel may hand the same free port to two tests of this process
    // that ask at about the same time (each closes its probe before its
    // broker binds): never hand out one twice.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
    panic!("no port not handed out before in 100 tries");
}

pub struct Broker {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    /// The address it listens on (127.0.0.1 unless in a test's namespace).
    host: IpAddr,
    /// The network namespace it runs in (`ip netns exec`), if not ours.
    netns: Option<String>,
    cores: u32,
    overrides: Vec<String>,
    /// Number of times the process has been spawned; each run gets its own log.
    runs: u32,
}

impl Broker {
    /// Start a broker with `--cores DEFAULT_CORES` and extra `key=value`
    /// overrides (Kafka server.properties keys) or `--flag`s.
    pub fn start(extra_overrides: &[&str]) -> Broker {
        Broker::start_with_cores(DEFAULT_CORES, extra_overrides)
    }

    pub fn start_with_cores(cores: u32, extra_overrides: &[&str]) -> Broker {
        Broker::start_with_setup(cores, extra_overrides, |_| {})
    }

    /// Like `start_with_cores`, but `setup` may prepare the (empty) data
    /// directory first, e.g. mount a small filesystem on it.
    pub fn start_with_setup(
        cores: u32,
        extra_overrides: &[&str],
        setup: impl FnOnce(&Path),
    ) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("sluice-test-")
            .tempdir()
            .expect("tempdir");
        let mut b = Broker {
            child: None,
            dir,
            port: free_port(),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            netns: None,
            cores,
            overrides: extra_overrides.iter().map(|s| s.to_string()).collect(),
            runs: 0,
        };
        fs::create_dir_all(b.data_dir()).unwrap();
        setup(&b.data_dir());
        // The free port can be taken (e.g. by a client's ephemeral port)
        // before the broker binds it; then try another one.
        for attempt in 1.. {
            match b.spawn() {
                Ok(()) => break,
                Err(e) if attempt < 3 && b.last_log().contains("in use") => {
                    eprintln!("port {} was taken ({e}); retrying on another", b.port);
                    b.port = free_port();
                }
                Err(e) => panic!("{e}"),
            }
        }
        b
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// The broker's `--log-dirs` directory (Kafka layout inside).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL the broker and reap it: a process crash (not a machine crash:
    /// whatever reached the page cache survives).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.wait_port_released();
        }
    }

    /// A dead process's io_uring sockets are released asynchronously: its
    /// listening socket can accept connections for a moment after the process
    /// is reaped. Wait (bounded) until the port refuses connections, so that
    /// `restart` cannot mistake the dead broker's socket for the new one's.
    fn wait_port_released(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(100)).is_err() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "port {} still accepts connections 10 s after kill -9",
            self.port
        );
    }

    /// SIGTERM and wait for a clean exit; returns the exit status. Panics (with
    /// the broker log) if it has not exited after TERM_TIMEOUT.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("broker is not running");
        signal(&c, libc::SIGTERM);
        match wait_timeout(&mut c, TERM_TIMEOUT) {
            Some(st) => st,
            None => {
                let _ = c.kill();
                let _ = c.wait();
                panic!("broker did not exit within {TERM_TIMEOUT:?} of SIGTERM");
            }
        }
    }

    /// Start again on the same port and data dir (after `kill9`/`terminate`;
    /// if still running it is SIGKILLed first).
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
    }

    /// How the process ended, once it has (it is reaped).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let st = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(st)
    }

    /// Whether the process is still alive (it may have crashed on its own).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        }
    }

    fn log_path(&self, run: u32) -> PathBuf {
        self.dir.path().join(format!("broker-{run}.log"))
    }

    /// All stderr output of every run so far, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for run in 1..=self.runs {
            let text = fs::read(self.log_path(run)).unwrap_or_default();
            out += &format!(
                "----- sluice broker log (run {run}, port {}) -----\n",
                self.port
            );
            out += &String::from_utf8_lossy(&text);
        }
        out + "----- end of broker log -----\n"
    }

    fn last_log(&self) -> String {
        fs::read_to_string(self.log_path(self.runs)).unwrap_or_default()
    }

    /// Spawn and wait until the port accepts connections. On failure the
    /// process is gone and the error says why (the log has details).
    fn spawn(&mut self) -> Result<(), String> {
        self.spawn_process();
        self.wait_ready()
    }

    /// Spawn without waiting for the port: members of a cluster only listen
    /// once a quorum of them is up, so all are launched before any is waited
    /// for (`wait_until_ready`).
    pub fn launch(cores: u32, port: u16, extra_overrides: &[String]) -> Broker {
        Broker::launch_at(
            cores,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            None,
            extra_overrides,
        )
    }

    /// `launch` on `host:port` inside network namespace `netns` (made by
    /// the test, see `netns::Net`).
    pub fn launch_at(
        cores: u32,
        host: IpAddr,
        port: u16,
        netns: Option<String>,
        extra_overrides: &[String],
    ) -> Broker {
        Broker::launch_with_setup(cores, host, port, netns, extra_overrides, |_| {})
    }

    /// `launch_at`, after `setup` prepared the (empty) data directory.
    pub fn launch_with_setup(
        cores: u32,
        host: IpAddr,
        port: u16,
        netns: Option<String>,
        extra_overrides: &[String],
        setup: impl FnOnce(&Path),
    ) -> Broker {
        let dir = tempfile::Builder::new()
            .prefix("sluice-test-")
            .tempdir()
            .expect("tempdir");
        let mut b = Broker {
            child: None,
            dir,
            port,
            host,
            netns,
            cores,
            overrides: extra_overrides.to_vec(),
            runs: 0,
        };
        fs::create_dir_all(b.data_dir()).unwrap();
        setup(&b.data_dir());
        b.spawn_process();
        b
    }

    /// Wait until a `launch`ed (or `relaunch`ed) broker accepts connections.
    pub fn wait_until_ready(&mut self) {
        if let Err(e) = self.wait_ready() {
            panic!("{e}\n{}", self.logs());
        }
    }

    /// Start again without waiting (see `launch`).
    pub fn relaunch(&mut self) {
        self.kill9();
        self.spawn_process();
    }

    /// Stop (SIGSTOP) or continue (SIGCONT) the process.
    pub fn pause(&self, paused: bool) {
        let c = self.child.as_ref().expect("broker is not running");
        signal(c, if paused { libc::SIGSTOP } else { libc::SIGCONT });
    }

    fn spawn_process(&mut self) {
        self.runs += 1;
        fs::create_dir_all(self.data_dir()).unwrap();
        let log = File::create(self.log_path(self.runs)).expect("create broker log");
        let bin = sluice_bin();
        // `ip netns exec` execs the broker: the child's pid is the broker's.
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.arg("broker")
            .arg("--listeners")
            .arg(format!("PLAINTEXT://{}", self.addr()))
            .arg("--log-dirs")
            .arg(self.data_dir())
            .arg("--cores")
            .arg(self.cores.to_string());
        for o in &self.overrides {
            // A flag (`--overprovisioned`) goes as it is; the rest are keys.
            if o.starts_with("--") {
                cmd.arg(o);
            } else {
                cmd.arg("--override").arg(o);
            }
        }
        // Verbose enough to debug a failure without drowning the disk.
        // `wait_ready` needs the broker's own "listening" line, whatever the
        // caller's RUST_LOG: the most specific directive wins for its target.
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
        cmd.env("RUST_LOG", format!("{filter},sluice::broker=info"));
        cmd.env("NO_COLOR", "1"); // plain text log file
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("broker exited during startup with {st}"));
            }
            // A connection alone does not prove it is this broker: another
            // process may hold the port for a moment (a killed broker's
            // io_uring socket, a client's ephemeral port, a TCP self-connect),
            // and a test that then stops "its" broker before it even started
            // reads a data dir it never wrote. So wait for this run's own
            // "listening on" line too, then for the port.
            let listening = format!("broker listening on {}", self.addr());
            if self.last_log().contains(&listening)
                && TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(format!(
                    "broker not accepting connections on {} after {READY_TIMEOUT:?}",
                    self.addr()
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // The one place the broker log is printed on failure (panic messages
        // leave it out). The harness shows captured output of failed tests only.
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
        if let Some(mut c) = self.child.take() {
            signal(&c, libc::SIGTERM);
            if wait_timeout(&mut c, TERM_TIMEOUT).is_none() {
                eprintln!("broker ignored SIGTERM for {TERM_TIMEOUT:?}; sending SIGKILL");
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // TempDir's own Drop removes the directory. Keep it for post-mortem
        // when asked to.
        if std::env::var_os("SLUICE_KEEP_TEST_DIRS").is_some() {
            let path = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("keeping broker dir {}", path.display());
        }
    }
}

/// Send a signal. `libc` is a normal dependency of the crate, so integration
/// tests can use it (std only offers SIGKILL through `Child::kill`).
pub fn signal(child: &Child, sig: libc::c_int) {
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Run `cmd` feeding it `stdin`, capturing stdout/stderr; kill it and panic
/// with whatever it printed if it runs longer than `timeout`.
pub fn run_with_timeout(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    // Feed stdin and drain both pipes on threads so no pipe buffer can fill
    // up and deadlock the child.
    let writer = stdin.map(|data| {
        let data = data.to_vec();
        let mut w = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = w.write_all(&data); // EPIPE if the child exits early: its output says why
        })
    });
    let out_r = drain(child.stdout.take().unwrap());
    let err_r = drain(child.stderr.take().unwrap());
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    let out = Output {
        status: status.unwrap_or_else(|| child.try_wait().unwrap().unwrap()),
        stdout: out_r.join().unwrap(),
        stderr: err_r.join().unwrap(),
    };
    if status.is_none() {
        panic!("timed out after {timeout:?}: {desc}\n{}", show_output(&out));
    }
    out
}

/// Like `run_with_timeout` but panics unless the command exits with 0.
pub fn run_ok(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let desc = format!("{cmd:?}");
    let out = run_with_timeout(cmd, stdin, timeout);
    assert!(
        out.status.success(),
        "command failed ({}): {desc}\n{}",
        out.status,
        show_output(&out)
    );
    out
}

pub fn show_output(out: &Output) -> String {
    format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Absolute path of an external tool, or a panic telling how to get it:
/// missing clients must fail loudly, never skip.
pub fn require_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if is_executable(&p) {
            return p;
        }
    }
    panic!("`{name}` not found in PATH: run `tests/run` (it installs the test clients)");
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Cut a file down to `new_len` bytes (used to tear segment tails).
pub fn truncate_file(path: &Path, new_len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(new_len)
        .unwrap();
}

/// The whole record batches at the start of a segment file's bytes: the log
/// a reader sees. After them a running broker's active segment holds zeros
/// (block padding, and space written ahead of small appends), as many as its
/// own writes left, so replicas' files differ there and only there.
pub fn segment_batches(bytes: &[u8]) -> &[u8] {
    let mut pos = 0;
    while pos + 12 <= bytes.len() {
        let len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap());
        if len <= 0 || pos + 12 + len as usize > bytes.len() {
            break;
        }
        pos += 12 + len as usize;
    }
    &bytes[..pos]
}

/// How many segments (`.log` files) a partition directory holds.
pub fn log_segments(partition_dir: &Path) -> usize {
    std::fs::read_dir(partition_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "log")
        })
        .count()
}

/// A topic name unique within the test process, readable in broker logs.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Produce of `records` (encoded batches) to one partition, acks=all.
pub fn produce_request(
    topic: &str,
    partition: i32,
    records: bytes::Bytes,
) -> kafka_protocol::messages::ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::protocol::StrBytes;
    kafka_protocol::messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

/// One request in Kafka's framing (size prefix, header, body), encoded by
/// kafka-protocol.
pub fn request_frame<R: kafka_protocol::protocol::Request>(
    version: i16,
    correlation_id: i32,
    req: &R,
) -> Vec<u8> {
    use bytes::BytesMut;
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, R::header_version(version))
        .unwrap();
    req.encode(&mut body, version).unwrap();
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// One request, one response, over a raw connection in Kafka's framing,
/// encoded and decoded by kafka-protocol (not sluice's codecs).
pub fn call<R: kafka_protocol::protocol::Request>(
    s: &mut TcpStream,
    version: i16,
    req: &R,
) -> R::Response {
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::protocol::{Decodable, HeaderVersion};
    let frame = request_frame(version, 7, req);
    s.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    s.read_exact(&mut size).unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut resp).unwrap();
    let mut b = Bytes::from(resp);
    let h = ResponseHeader::decode(&mut b, R::Response::header_version(version)).unwrap();
    assert_eq!(h.correlation_id, 7);
    let r = R::Response::decode(&mut b, version).unwrap();
    assert_eq!(b.remaining(), 0, "trailing bytes in the response");
    r
}
