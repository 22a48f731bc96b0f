//! Metadata propagation in a cluster: the time from a CreateTopics answer
//! (sent to the first broker) until every broker's own Metadata shows the
//! topic with a leader and one record has been produced to it (acks=all),
//! over N creations; HdrHistogram percentiles in ms. Used by perf/cluster.
//!
//! Usage: cluster_probe BROKER1,BROKER2,... [--count N]

use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice::client::Client;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers: Vec<String> = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: cluster_probe B1,B2,... [--count N]"))?
        .split(',')
        .map(str::to_string)
        .collect();
    let mut count = 100;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--count" => count = args.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let mut admin = Client::connect(&brokers[0])?;
    // One client per broker, each asking only that broker for metadata.
    let mut each: Vec<Client> = brokers
        .iter()
        .map(|b| Client::connect(b))
        .collect::<Result<_, _>>()?;
    let mut producer = Client::connect(&brokers.join(","))?;
    let mut visible = hdrhistogram::Histogram::<u64>::new(3)?;
    let mut produced = hdrhistogram::Histogram::<u64>::new(3)?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    for i in 0..count {
        let topic = format!("probe-{}-{i}", &run[..8]);
        admin.create_topics(&topic, 1, 1, vec![])?;
        let t0 = Instant::now();
        for c in each.iter_mut() {
            let deadline = t0 + Duration::from_secs(30);
            loop {
                let led = c
                    .metadata(Some(vec![topic.clone()]))
                    .ok()
                    .and_then(|m| m.topics.into_iter().find(|t| t.name == topic))
                    .is_some_and(|t| t.partitions.iter().any(|p| p.leader >= 0));
                if led {
                    break;
                }
                anyhow::ensure!(Instant::now() < deadline, "{topic} not visible in 30 s");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        visible.record(t0.elapsed().as_micros() as u64)?;
        producer.produce(&topic, 0, vec![(None, Some(Bytes::from_static(b"x")))], -1)?;
        produced.record(t0.elapsed().as_micros() as u64)?;
    }
    let show = |name: &str, h: &hdrhistogram::Histogram<u64>| {
        println!(
            "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
            h.max() as f64 / 1000.0
        )
    };
    show(
        "CreateTopics answered -> visible with a leader on every broker",
        &visible,
    );
    show(
        "CreateTopics answered -> first record acknowledged (acks=all)",
        &produced,
    );
    Ok(())
}
