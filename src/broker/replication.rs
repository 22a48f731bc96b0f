//! The leader's side of replication: followers' fetches move the high
//! watermark, and the ISR follows who keeps up. ISR changes go through the
//! controller (`Change::AlterIsr`, checked against the leader and partition
//! epochs) and take effect when the new metadata image arrives.

use std::rc::Rc;
use std::time::Duration;

use super::controller::{self, Change};
use super::state::{local, ShardState};
use crate::shard;
use crate::storage::log::SharedLog;
use crate::storage::now_ms;

/// A follower fetched `offset` (it holds everything below): record its
/// progress, move the high watermark, and ask for an ISR change if due.
pub fn on_follower_fetch(log: &SharedLog, replica: i32, offset: i64) {
    let now = now_ms();
    {
        let mut l = log.borrow_mut();
        let end = l.written_end;
        // A follower cannot hold more than this log has written; an offset
        // past it is refused by the read (OFFSET_OUT_OF_RANGE) before here.
        l.replication
            .on_follower_fetch(replica, offset.min(end), end, now);
        l.update_high_watermark();
    }
    maybe_alter_isr(log, now);
}

/// If the ISR should change (a follower caught up, or one fell behind for
/// `replica.lag.time.max.ms`), ask the controller, once at a time.
pub fn maybe_alter_isr(log: &SharedLog, now: i64) {
    let lag_max_ms = local().cfg.replication.lag_time_max_ms as i64;
    let image = local().catalog();
    let eligible = |b: i32| image.brokers.get(&b).is_some_and(|b| !b.fenced);
    let change = {
        let mut l = log.borrow_mut();
        // What a fenced broker fetched before no longer says what it holds
        // (it may restart having lost its page cache): it must fetch again
        // before it counts (KIP-903's concern).
        l.replication.followers.retain(|b, _| eligible(*b));
        let epoch_start = l.epochs.last().map_or(0, |(_, s)| *s);
        let Some(isr) =
            l.replication
                .wanted_isr(l.high_watermark, epoch_start, now, lag_max_ms, eligible)
        else {
            return;
        };
        tracing::info!(topic = %l.topic, partition = l.partition, from = ?l.replication.isr,
            to = ?isr, "asking the controller to change the ISR");
        l.replication.pending_isr = Some(isr.clone());
        Change::AlterIsr {
            topic: l.topic.clone(),
            partition: l.partition,
            leader: l.replication.me,
            leader_epoch: l.leader_epoch,
            partition_epoch: l.replication.partition_epoch,
            isr,
        }
    };
    let log = log.clone();
    shard::spawn(async move {
        let asked_epoch = log.borrow().replication.partition_epoch;
        let results = controller::submit(change).await;
        let mut l = log.borrow_mut();
        if let Some((_, Err((code, msg)))) = results.first() {
            tracing::warn!(topic = %l.topic, partition = l.partition, error = ?code, %msg,
                "ISR change refused");
        }
        // Committed changes arrive with a new partition epoch (every shard
        // has adopted it before the controller answers); anything else
        // leaves the ISR as it was, to be asked for again.
        if l.replication.partition_epoch == asked_epoch {
            l.replication.pending_isr = None;
        }
    })
    .detach();
}

/// Every half `replica.lag.time.max.ms` (as Kafka's isr-expiration task),
/// check the ISR of every partition this shard leads: a follower that
/// stopped fetching altogether is noticed here.
pub async fn isr_expiration_loop(state: Rc<ShardState>) {
    let every = Duration::from_millis((state.cfg.replication.lag_time_max_ms / 2).max(50));
    loop {
        shard::sleep(every).await;
        let now = now_ms();
        for log in state.logs.borrow().all() {
            let replicated = {
                let l = log.borrow();
                l.replication.is_leader() && l.replication.replicas.len() > 1
            };
            if replicated {
                maybe_alter_isr(&log, now);
            }
        }
    }
}
