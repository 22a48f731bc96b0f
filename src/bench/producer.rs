//! One producer: a generator task that appends records to per-partition
//! batches, and per leader connection a sender (pipelines ProduceRequests up
//! to `maxInFlight`) and a reader (matches responses, records latency).
//!
//! Fixed-rate runs are open-loop: message i of a producer is *due* at
//! `t0 + i / rate`, and its publish latency is measured from that intended
//! time, whether or not the producer could send it then (back-pressure from a
//! slow broker therefore shows as latency instead of silently lowering the
//! rate: the coordinated-omission correction).

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    ProducerId, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::batch::{BatchBuilder, RECORD_OVERHEAD_MAX_BYTES};
use super::error::BenchError;
use super::plan::ProducerPlan;
use super::wire::{self, check_header, error_name, Reader, Writer};
use super::workload::{Acks, KeyDistributor};
use super::ShardCtx;
use crate::shard::{self, notify::Notify};
use crate::storage::format::increment_sequence;

/// Records generated per turn before other tasks get the CPU.
const BURST_RECORDS: usize = 1024;
/// A request carries at most this much (and at most one batch per partition).
const MAX_REQUEST_BYTES: usize = 8 << 20;
/// Idle waits re-check the stop flags at least this often.
const POLL: Duration = Duration::from_millis(50);
/// Shortest sleep between fixed-rate wake-ups; records due meanwhile keep
/// their intended times, so this bounds CPU, not accuracy.
const MIN_SLEEP: Duration = Duration::from_micros(50);
/// Pause between bursts when nothing else stops the generator. Not a plain
/// yield: a task that only yields keeps the executor from polling for I/O
/// completions until its time slice ends, which starves the sockets.
const BURST_PAUSE: Duration = Duration::from_micros(1);
/// Recycled batch buffers kept per producer.
const POOL_BUFFERS: usize = 64;

/// Intended send times of a batch's records, run-length encoded: at full
/// speed a whole burst shares one timestamp.
type Times = Vec<(u64, u32)>;

struct Ready {
    partition: i32,
    batch: Bytes,
    records: u64,
    value_bytes: u64,
    /// Bytes held against the producer's buffer until acknowledged.
    held_bytes: usize,
    times: Times,
}

struct Open {
    builder: BatchBuilder,
    times: Times,
    value_bytes: u64,
    held_bytes: usize,
    /// Bumped whenever the batch is closed, to spot stale linger entries.
    serial: u64,
}

struct InFlight {
    correlation_id: i32,
    batches: Vec<Ready>,
}

#[derive(Default)]
struct Conn {
    ready: VecDeque<Ready>,
    in_flight: VecDeque<InFlight>,
    sender_done: bool,
}

struct State {
    open: Vec<Open>,
    /// Sequence number of each partition's next batch (idempotence).
    next_seq: Vec<i32>,
    /// (deadline ns, partition, serial) in deadline order.
    linger: VecDeque<(u64, usize, u64)>,
    conns: Vec<Conn>,
    /// Connection index of each partition.
    conn_of: Vec<usize>,
    held_bytes: usize,
    generator_done: bool,
    pool: Vec<BytesMut>,
    times_pool: Vec<Times>,
}

struct Producer {
    /// (producer id, epoch) of an idempotent producer.
    idem: Option<(i64, i16)>,
    ctx: Rc<ShardCtx>,
    plan: ProducerPlan,
    state: RefCell<State>,
    wake: Notify,
}

pub async fn run(ctx: Rc<ShardCtx>, plan: ProducerPlan) {
    let shared = ctx.shared.clone();
    let id = plan.id;
    if let Err(e) = run_inner(ctx, plan).await {
        shared.fail(format!("producer {id}: {e}"));
    }
    shared.producers_done.add(1);
}

async fn run_inner(ctx: Rc<ShardCtx>, plan: ProducerPlan) -> Result<(), BenchError> {
    let topic = &ctx.plan.topics[plan.topic];
    // One connection per leader broker of this topic.
    let mut brokers: Vec<usize> = topic.leaders.clone();
    brokers.sort_unstable();
    brokers.dedup();
    let conn_index: HashMap<usize, usize> =
        brokers.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let mut conns = Vec::new();
    let mut idem = None;
    for &b in &brokers {
        let addr = ctx.plan.brokers[b];
        let (mut w, mut r, versions) =
            wire::connect(addr, &ctx.plan.client_id, ctx.plan.connect_timeout).await?;
        if ctx.plan.workload.producer.idempotence && idem.is_none() {
            idem = Some(
                init_producer_id(&mut w, &mut r, &versions, addr, ctx.plan.connect_timeout).await?,
            );
        }
        let version =
            versions
                .pick(ApiKey::Produce, i16::MAX)
                .ok_or_else(|| BenchError::Broker {
                    addr: addr.to_string(),
                    api: "Produce",
                    reason: "no Produce version in common with the broker".into(),
                })?;
        conns.push((w, r, version));
    }
    let partitions = ctx.plan.workload.partitions_per_topic;
    let producer = Rc::new(Producer {
        idem,
        state: RefCell::new(State {
            next_seq: vec![0; partitions],
            open: (0..partitions)
                .map(|_| Open {
                    builder: BatchBuilder::new(BytesMut::new()),
                    times: Vec::new(),
                    value_bytes: 0,
                    held_bytes: 0,
                    serial: 0,
                })
                .collect(),
            linger: VecDeque::new(),
            conns: (0..conns.len()).map(|_| Conn::default()).collect(),
            conn_of: topic.leaders.iter().map(|b| conn_index[b]).collect(),
            held_bytes: 0,
            generator_done: false,
            pool: Vec::new(),
            times_pool: Vec::new(),
        }),
        ctx: ctx.clone(),
        plan,
        wake: Notify::new(),
    });
    let mut tasks = Vec::new();
    for (i, (w, r, version)) in conns.into_iter().enumerate() {
        let p = producer.clone();
        tasks.push(shard::spawn(async move { p.sender(i, w, version).await }));
        let p = producer.clone();
        let addr = ctx.plan.brokers[brokers[i]];
        tasks.push(shard::spawn(
            async move { p.reader(i, r, version, addr).await },
        ));
    }
    let p = producer.clone();
    tasks.push(shard::spawn(async move { p.generate().await }));
    let mut first_err = None;
    for t in tasks {
        if let Err(e) = t.await {
            // Stop the others now rather than after their timeouts.
            ctx.shared
                .fail(format!("producer {}: {e}", producer.plan.id));
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// InitProducerId on a fresh connection, before it carries any Produce.
async fn init_producer_id(
    w: &mut Writer,
    r: &mut Reader,
    versions: &wire::Versions,
    addr: std::net::SocketAddr,
    timeout: Duration,
) -> Result<(i64, i16), BenchError> {
    let fail = |reason: String| BenchError::Broker {
        addr: addr.to_string(),
        api: "InitProducerId",
        reason,
    };
    let version = versions
        .pick(ApiKey::InitProducerId, i16::MAX)
        .ok_or_else(|| fail("the broker does not support idempotent producers".into()))?;
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let corr = w.encode(ApiKey::InitProducerId, version, &req)?;
    w.flush_buf().await?;
    let frame = shard::timeout(timeout, r.next_frame())
        .await
        .ok_or(BenchError::Timeout {
            addr: addr.to_string(),
            api: "InitProducerId",
            timeout_ms: timeout.as_millis() as u64,
        })??;
    let mut body = check_header(frame, ApiKey::InitProducerId, version, corr, addr)?;
    let resp = InitProducerIdResponse::decode(&mut body, version)
        .map_err(|e| fail(format!("undecodable response: {e}")))?;
    if resp.error_code != 0 {
        return Err(fail(error_name(resp.error_code)));
    }
    Ok((resp.producer_id.0, resp.producer_epoch))
}

impl Producer {
    fn settings(&self) -> &super::workload::ProducerSettings {
        &self.ctx.plan.workload.producer
    }

    async fn generate(&self) -> Result<(), BenchError> {
        let w = &self.ctx.plan.workload;
        let shared = &self.ctx.shared;
        let payload = &self.ctx.plan.payload[..];
        let keys = &self.ctx.plan.keys;
        let rate_per_s = w.producer_rate / w.total_producers() as f64;
        let interval_ns = if rate_per_s > 0.0 {
            1e9 / rate_per_s
        } else {
            0.0
        };
        let linger_ns = self.settings().linger_ms * 1_000_000;
        let batch_bytes = self.settings().batch_bytes;
        let buffer_bytes = self.settings().buffer_bytes;
        let record_bytes = payload.len() + keys.key_len + RECORD_OVERHEAD_MAX_BYTES;
        let partitions = w.partitions_per_topic;
        // Spread the producers' sticky partitions so they do not all start on 0.
        let mut sticky = self.plan.id % partitions;
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d ^ (self.plan.id as u64 + 1);
        let t0 = shared.now_ns();
        let mut generated: u64 = 0;
        while !shared.stop_producing.is_set() && !shared.stop_all.is_set() {
            let now = shared.now_ns();
            let due = if interval_ns > 0.0 {
                (((now - t0) as f64 / interval_ns) as u64 + 1).min(generated + BURST_RECORDS as u64)
            } else {
                generated + BURST_RECORDS as u64
            };
            let mut blocked = false;
            {
                let mut st = self.state.borrow_mut();
                while generated < due {
                    if st.held_bytes + record_bytes > buffer_bytes {
                        blocked = true;
                        break;
                    }
                    let intended = if interval_ns > 0.0 {
                        t0 + (generated as f64 * interval_ns) as u64
                    } else {
                        now
                    };
                    let (partition, key) = match w.key_distributor {
                        KeyDistributor::None => (sticky, None),
                        KeyDistributor::RoundRobin => {
                            let k = generated as usize % keys.len();
                            (keys.partition[k] as usize, Some(keys.key(k)))
                        }
                        KeyDistributor::Random => {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let k = (rng % keys.len() as u64) as usize;
                            (keys.partition[k] as usize, Some(keys.key(k)))
                        }
                    };
                    let ts_ms = shared.wall_us(intended).div_euclid(1000);
                    let full = st.append(
                        partition,
                        intended,
                        ts_ms,
                        key,
                        payload,
                        record_bytes,
                        linger_ns,
                        batch_bytes,
                    );
                    if full {
                        self.close(&mut st, partition)?;
                        if partition == sticky {
                            sticky = (sticky + 1) % partitions;
                        }
                    }
                    generated += 1;
                }
                // Batches whose linger ran out go now.
                while let Some(&(deadline, p, serial)) = st.linger.front() {
                    // Out of buffer: everything open goes now (as Kafka's
                    // producer does when its memory is exhausted).
                    if deadline > now && !blocked {
                        break;
                    }
                    st.linger.pop_front();
                    if st.open[p].serial == serial && !st.open[p].builder.is_empty() {
                        self.close(&mut st, p)?;
                        if p == sticky {
                            sticky = (sticky + 1) % partitions;
                        }
                    }
                }
            }
            self.wake.notify_all();
            // Created after our own notify (which would resolve it at once);
            // nothing can run between the check above and here.
            let wake = self.wake.notified();
            if blocked {
                // Wait for acknowledgements to free buffer space.
                shard::timeout(POLL, wake).await;
                continue;
            }
            if interval_ns > 0.0 {
                let next_due = t0 + (generated as f64 * interval_ns) as u64;
                let next_linger = self.state.borrow().linger.front().map_or(u64::MAX, |l| l.0);
                let until = next_due.min(next_linger);
                let now = shared.now_ns();
                if until > now {
                    let d = Duration::from_nanos(until - now).clamp(MIN_SLEEP, POLL);
                    shard::sleep(d).await;
                } else {
                    shard::sleep(BURST_PAUSE).await;
                }
            } else {
                let next_linger = self.state.borrow().linger.front().map(|l| l.0);
                if next_linger.is_some_and(|d| d <= shared.now_ns()) {
                    continue;
                }
                shard::sleep(BURST_PAUSE).await;
            }
        }
        // Send what is buffered; the senders then drain and stop.
        let mut st = self.state.borrow_mut();
        for p in 0..partitions {
            if !st.open[p].builder.is_empty() {
                self.close(&mut st, p)?;
            }
        }
        st.generator_done = true;
        drop(st);
        self.wake.notify_all();
        Ok(())
    }

    /// Close partition `p`'s batch and queue it on its leader's connection.
    fn close(&self, st: &mut State, p: usize) -> Result<(), BenchError> {
        let spare = st.pool.pop().unwrap_or_default();
        let next_times = st.times_pool.pop().unwrap_or_default();
        let records = st.open[p].builder.record_count() as u64;
        let producer = self.idem.map(|(id, epoch)| (id, epoch, st.next_seq[p]));
        let open = &mut st.open[p];
        let batch = open
            .builder
            .finish_as(self.settings().compression, spare, producer)
            .map_err(|e| BenchError::Runtime(format!("compressing a batch: {e}")))?;
        if self.idem.is_some() {
            st.next_seq[p] = increment_sequence(st.next_seq[p], records as i32);
        }
        let open = &mut st.open[p];
        open.serial += 1;
        let ready = Ready {
            partition: p as i32,
            batch,
            records,
            value_bytes: std::mem::take(&mut open.value_bytes),
            held_bytes: std::mem::take(&mut open.held_bytes),
            times: std::mem::replace(&mut open.times, next_times),
        };
        let c = st.conn_of[p];
        st.conns[c].ready.push_back(ready);
        Ok(())
    }

    async fn sender(&self, c: usize, mut w: Writer, version: i16) -> Result<(), BenchError> {
        let shared = &self.ctx.shared;
        let s = self.settings();
        let topic = &self.ctx.plan.topics[self.plan.topic];
        let name = TopicName(StrBytes::from_string(topic.name.clone()));
        loop {
            let wake = self.wake.notified();
            let batches = {
                let mut st = self.state.borrow_mut();
                if shared.stop_all.is_set() {
                    return Ok(());
                }
                let conn = &mut st.conns[c];
                if conn.ready.is_empty() || conn.in_flight.len() >= s.max_in_flight {
                    if conn.ready.is_empty() && st.generator_done {
                        st.conns[c].sender_done = true;
                        drop(st);
                        self.wake.notify_all();
                        return Ok(());
                    }
                    None
                } else {
                    // At most one batch per partition per request, in queue order.
                    let mut taken: Vec<Ready> = Vec::new();
                    let mut bytes = 0;
                    while let Some(r) = conn.ready.front() {
                        let dup = taken.iter().any(|t| t.partition == r.partition);
                        if dup || (!taken.is_empty() && bytes + r.batch.len() > MAX_REQUEST_BYTES) {
                            break;
                        }
                        bytes += r.batch.len();
                        taken.push(conn.ready.pop_front().unwrap());
                    }
                    Some(taken)
                }
            };
            let Some(mut batches) = batches else {
                shard::timeout(POLL, wake).await;
                continue;
            };
            shared
                .sent_msgs
                .add(batches.iter().map(|b| b.records).sum());
            let partition_data = batches
                .iter_mut()
                .map(|b| {
                    PartitionProduceData::default()
                        .with_index(b.partition)
                        .with_records(Some(std::mem::take(&mut b.batch)))
                })
                .collect();
            let mut td = TopicProduceData::default().with_partition_data(partition_data);
            if version >= 13 {
                td.topic_id = topic.id;
            } else {
                td.name = name.clone();
            }
            let req = ProduceRequest::default()
                .with_acks(s.acks.wire())
                .with_timeout_ms(s.request_timeout_ms.min(i32::MAX as u64) as i32)
                .with_topic_data(vec![td]);
            let corr = w.encode(ApiKey::Produce, version, &req)?;
            self.recycle(req);
            if s.acks == Acks::None {
                // No response will come: written counts as produced.
                w.flush_buf().await?;
                self.complete(batches, shared.now_ns());
                continue;
            }
            self.state.borrow_mut().conns[c]
                .in_flight
                .push_back(InFlight {
                    correlation_id: corr,
                    batches,
                });
            self.wake.notify_all();
            w.flush_buf().await?;
        }
    }

    /// Keep the encoded batches' buffers for the next batches.
    fn recycle(&self, req: ProduceRequest) {
        let mut st = self.state.borrow_mut();
        for td in req.topic_data {
            for pd in td.partition_data {
                if st.pool.len() >= POOL_BUFFERS {
                    return;
                }
                if let Some(Ok(b)) = pd.records.map(Bytes::try_into_mut) {
                    st.pool.push(b);
                }
            }
        }
    }

    async fn reader(
        &self,
        c: usize,
        mut r: Reader,
        version: i16,
        addr: std::net::SocketAddr,
    ) -> Result<(), BenchError> {
        let shared = &self.ctx.shared;
        let timeout = Duration::from_millis(self.settings().request_timeout_ms);
        let topic = &self.ctx.plan.topics[self.plan.topic].name;
        loop {
            let wake = self.wake.notified();
            let expected = {
                let st = self.state.borrow();
                if shared.stop_all.is_set() {
                    return Ok(());
                }
                let conn = &st.conns[c];
                match conn.in_flight.front() {
                    Some(f) => Some(f.correlation_id),
                    None if conn.sender_done => return Ok(()),
                    None => None,
                }
            };
            let Some(corr) = expected else {
                shard::timeout(POLL, wake).await;
                continue;
            };
            let frame = match shard::timeout(timeout, r.next_frame()).await {
                Some(f) => f?,
                None => {
                    return Err(BenchError::Timeout {
                        addr: addr.to_string(),
                        api: "Produce",
                        timeout_ms: timeout.as_millis() as u64,
                    })
                }
            };
            let acked_ns = shared.now_ns();
            let mut body = check_header(frame, ApiKey::Produce, version, corr, addr)?;
            let resp =
                ProduceResponse::decode(&mut body, version).map_err(|e| BenchError::Broker {
                    addr: addr.to_string(),
                    api: "Produce",
                    reason: format!("undecodable response: {e}"),
                })?;
            for pr in resp
                .responses
                .iter()
                .flat_map(|t| t.partition_responses.iter())
            {
                if pr.error_code != 0 {
                    shared.produce_errors.add(1);
                    let msg = pr
                        .error_message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default();
                    return Err(BenchError::Broker {
                        addr: addr.to_string(),
                        api: "Produce",
                        reason: format!("{topic}-{}: {}{msg}", pr.index, error_name(pr.error_code)),
                    });
                }
            }
            let done = self.state.borrow_mut().conns[c].in_flight.pop_front();
            if let Some(f) = done {
                self.complete(f.batches, acked_ns);
            }
            self.wake.notify_all();
        }
    }

    /// Count acknowledged batches, record their publish latencies, free their buffer.
    fn complete(&self, batches: Vec<Ready>, acked_ns: u64) {
        let shared = &self.ctx.shared;
        let mut lat = self.ctx.latency.borrow_mut();
        let mut st = self.state.borrow_mut();
        let topic_counter = &shared.produced_per_topic[self.plan.topic];
        for mut b in batches {
            for &(t, n) in &b.times {
                lat.record_publish_us(acked_ns.saturating_sub(t) / 1_000, u64::from(n));
            }
            shared.produced_msgs.add(b.records);
            shared.produced_bytes.add(b.value_bytes);
            topic_counter.add(b.records);
            st.held_bytes -= b.held_bytes;
            b.times.clear();
            if st.times_pool.len() < POOL_BUFFERS {
                st.times_pool.push(b.times);
            }
        }
    }
}

impl State {
    /// Append one record; true when the batch reached `batch_bytes`.
    #[allow(clippy::too_many_arguments)]
    fn append(
        &mut self,
        p: usize,
        intended_ns: u64,
        ts_ms: i64,
        key: Option<&[u8]>,
        value: &[u8],
        held: usize,
        linger_ns: u64,
        batch_bytes: usize,
    ) -> bool {
        let open = &mut self.open[p];
        if open.builder.is_empty() {
            self.linger
                .push_back((intended_ns + linger_ns, p, open.serial));
        }
        open.builder.append(ts_ms, key, value);
        match open.times.last_mut() {
            Some((t, n)) if *t == intended_ns => *n += 1,
            _ => open.times.push((intended_ns, 1)),
        }
        open.value_bytes += value.len() as u64;
        open.held_bytes += held;
        self.held_bytes += held;
        open.builder.size_bytes() >= batch_bytes
    }
}
