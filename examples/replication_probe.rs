//! Replication timings for perf/replication, with sluice's client:
//!
//!   replication_probe leader BOOTSTRAP TOPIC
//!       prints the leader of TOPIC-0 (-1 if none)
//!   replication_probe failover BOOTSTRAP TOPIC T0_NS
//!       produces one record (acks=all) to TOPIC-0 every 5 ms until one is
//!       acknowledged; prints the ms from T0_NS (CLOCK_REALTIME, `date +%s%N`
//!       taken at the kill) to that acknowledgement
//!   replication_probe fill BOOTSTRAP TOPIC MB
//!       writes MB MiB of 1 KiB records to TOPIC-0 (acks=1, 1 MiB requests)
//!   replication_probe in-sync BOOTSTRAP TOPIC N T0_NS
//!       polls Metadata every 5 ms until TOPIC-0 has N in-sync replicas (or
//!       more); prints the ms from T0_NS
//!   replication_probe shrunk BOOTSTRAP TOPIC N
//!       polls Metadata until TOPIC-0 has N in-sync replicas or fewer

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice::client::Client;

const GIVE_UP: Duration = Duration::from_secs(300);

fn since_ms(t0_ns: u128) -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    now.saturating_sub(t0_ns) as f64 / 1e6
}

fn partition0(c: &mut Client, topic: &str) -> Option<sluice::client::PartitionMetadata> {
    c.metadata(Some(vec![topic.to_string()]))
        .ok()?
        .topic(topic)?
        .partitions
        .iter()
        .find(|p| p.partition == 0)
        .cloned()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: replication_probe leader|failover|fill|in-sync|shrunk BOOTSTRAP TOPIC [ARGS]";
    anyhow::ensure!(args.len() >= 3, usage);
    let (mode, bootstrap, topic) = (args[0].as_str(), args[1].as_str(), args[2].as_str());
    let started = Instant::now();
    match mode {
        "leader" => {
            let mut c = Client::connect(bootstrap)?;
            println!("{}", partition0(&mut c, topic).map_or(-1, |p| p.leader));
        }
        "failover" => {
            let t0: u128 = args.get(3).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
            loop {
                // A fresh client each time: nothing cached from before the kill.
                let acked = Client::connect(bootstrap).and_then(|mut c| {
                    c.produce(
                        topic,
                        0,
                        vec![(None, Some(Bytes::from_static(b"probe")))],
                        -1,
                    )
                });
                if acked.is_ok() {
                    println!("{:.1}", since_ms(t0));
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < GIVE_UP,
                    "no acknowledgement in {GIVE_UP:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        "fill" => {
            let mib: usize = args.get(3).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
            let mut c = Client::connect(bootstrap)?;
            let record = Bytes::from(vec![b'x'; 1024]);
            for _ in 0..mib {
                let batch: Vec<_> = (0..1000).map(|_| (None, Some(record.clone()))).collect();
                c.produce(topic, 0, batch, 1)?;
            }
        }
        "in-sync" | "shrunk" => {
            let n: usize = args.get(3).ok_or_else(|| anyhow::anyhow!(usage))?.parse()?;
            let t0: Option<u128> = args.get(4).map(|a| a.parse()).transpose()?;
            let mut c = Client::connect(bootstrap)?;
            let reached = |isr: usize| if mode == "shrunk" { isr <= n } else { isr >= n };
            loop {
                if partition0(&mut c, topic).is_some_and(|p| reached(p.isr.len())) {
                    if let Some(t0) = t0 {
                        println!("{:.1}", since_ms(t0));
                    }
                    break;
                }
                anyhow::ensure!(
                    started.elapsed() < GIVE_UP,
                    "not {n} in sync in {GIVE_UP:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        _ => anyhow::bail!(usage),
    }
    Ok(())
}
