//! Disk full during acks=all produce: the producer gets KAFKA_STORAGE_ERROR,
//! and after a restart the log holds exactly the acknowledged records.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{rdk, Broker};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Lazily unmounts on drop, so the fixture can remove the directory.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Mount {
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .expect("run mount");
    assert!(
        st.success(),
        "this test mounts a small tmpfs and needs root (CI runs as root)"
    );
    Mount(dir.to_path_buf())
}

#[test]
fn disk_full_gives_storage_error_and_keeps_only_acked_records() {
    let mut mount = None;
    let mut broker = Broker::start_with_setup(1, &[], |dir| mount = Some(mount_tmpfs(dir, "3m")));
    let _mount = mount.unwrap();
    let b = broker.bootstrap();
    let topic = common::unique_topic("full");
    rdk::create_topic(&b, &topic, 1);
    // No retries: KAFKA_STORAGE_ERROR is retriable and would otherwise be
    // retried until message.timeout.ms.
    let p = rdk::producer(
        &b,
        &[
            ("retries", "0"),
            ("enable.idempotence", "false"),
            ("linger.ms", "0"),
        ],
    );
    let value = vec![7u8; 16 * 1024];
    let mut acked = 0i64;
    let mut storage_error = false;
    for i in 0..1000 {
        let f = rdk::send(&p, &topic, 0, None, &value);
        match futures::executor::block_on(f).expect("delivery future") {
            Ok(d) => {
                assert_eq!(
                    d.offset, acked,
                    "acknowledged offsets must be dense (record {i})"
                );
                acked += 1;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::KafkaStorageError), _)) => {
                storage_error = true;
                break;
            }
            Err((e, _)) => panic!("unexpected produce error after {acked} records: {e}"),
        }
    }
    assert!(
        storage_error,
        "3 MiB filled without KAFKA_STORAGE_ERROR ({acked} acked)"
    );
    assert!(acked > 10, "only {acked} records fitted");
    drop(p);

    // The broker keeps serving what it has.
    let (low, high) = rdk::watermarks(&b, &topic, 0);
    assert_eq!((low, high), (0, acked));

    broker.kill9();
    broker.restart();
    let (low, high) = rdk::watermarks(&b, &topic, 0);
    assert_eq!(
        (low, high),
        (0, acked),
        "after restart the log ends at the last acknowledged record"
    );
    let got = rdk::consume_all(&b, &topic, 1, Duration::from_secs(30));
    let recs = &got[&0];
    assert_eq!(recs.len() as i64, acked);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.value.as_deref(), Some(&value[..]));
    }
}

/// A log dir on a read-only filesystem stops start-up with a message that
/// names it, instead of running a broker that cannot write.
#[test]
fn a_read_only_log_dir_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&dir)
        .status()
        .expect("run mount");
    assert!(
        st.success(),
        "this test mounts a tmpfs and needs root (CI runs as root)"
    );
    let _mount = Mount(dir.clone());
    let out = common::run_with_timeout(
        Command::new(common::sluice_bin())
            .arg("broker")
            .arg("--listeners")
            .arg(format!("PLAINTEXT://127.0.0.1:{}", common::free_port()))
            .arg("--log-dirs")
            .arg(&dir)
            .arg("--cores")
            .arg("1"),
        None,
        Duration::from_secs(30),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "started on a read-only filesystem:\n{err}"
    );
    assert!(
        err.contains(&dir.display().to_string()) && err.contains("Read-only"),
        "the message should name {} and say why:\n{err}",
        dir.display()
    );
}
