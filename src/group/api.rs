//! Coordinator-side entry points, run on the shard that owns the group: they
//! drive the state machines, persist what must be persisted, and wait for
//! rebalances without holding a borrow across an await.

use kafka_protocol::ResponseError;

use super::classic::{JoinRequest, JoinResult, Joined, SyncRequest, SyncResult, Synced};
use super::consumer::{ConsumerGroup, HeartbeatError, HeartbeatRequest, HeartbeatResult};
use super::coordinator::{persist_group, GroupEntry, GroupKind, Shared};
use super::store;
use crate::broker::state::local;
use crate::storage::now_ms;

pub async fn join(c: &Shared, partition: i32, group: &str, req: JoinRequest) -> JoinResult {
    let member = req.member_id.clone();
    let joined = {
        let mut co = c.borrow_mut();
        let limits = co.cfg.limits.clone();
        match co.classic(group, partition, true) {
            Ok(Some(g)) => g.join(req, &limits, now_ms()),
            Ok(None) => Joined::Now(JoinResult::error(
                ResponseError::UnknownServerError,
                &member,
            )),
            Err(e) => Joined::Now(JoinResult::error(e, &member)),
        }
    };
    persist_group(c, group);
    match joined {
        Joined::Now(r) => r,
        Joined::Wait(rx) => rx
            .await
            .unwrap_or_else(|_| JoinResult::error(ResponseError::UnknownMemberId, &member)),
    }
}

pub async fn sync(c: &Shared, partition: i32, group: &str, req: SyncRequest) -> SyncResult {
    let synced = {
        let mut co = c.borrow_mut();
        match co.classic(group, partition, false) {
            Ok(Some(g)) => g.sync(req, now_ms()),
            Ok(None) => Synced::Now(SyncResult::error(ResponseError::UnknownMemberId)),
            Err(e) => Synced::Now(SyncResult::error(e)),
        }
    };
    let (rx, persist) = match synced {
        Synced::Now(r) => return r,
        Synced::Wait { rx, persist } => (rx, persist),
    };
    if persist {
        // The leader's assignments become visible only once durable, so a
        // coordinator restart never hands out assignments it forgot.
        let (generation, record) = {
            let co = c.borrow();
            match co.groups.get(group).map(|e| &e.kind) {
                Some(GroupKind::Classic(g)) => (g.generation, g.record()),
                _ => return SyncResult::error(ResponseError::UnknownMemberId),
            }
        };
        let written = store::write(partition, vec![record]).await;
        if let Some(GroupKind::Classic(g)) =
            c.borrow_mut().groups.get_mut(group).map(|e| &mut e.kind)
        {
            g.assignments_persisted(generation, written, now_ms());
        }
    }
    rx.await
        .unwrap_or_else(|_| SyncResult::error(ResponseError::UnknownMemberId))
}

pub fn heartbeat(
    c: &Shared,
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
) -> Option<ResponseError> {
    let mut co = c.borrow_mut();
    match co.groups.get_mut(group).map(|e| &mut e.kind) {
        None => Some(ResponseError::UnknownMemberId),
        Some(GroupKind::Classic(g)) => g.heartbeat(member, instance, generation, now_ms()),
        Some(GroupKind::Consumer(_)) => Some(ResponseError::InconsistentGroupProtocol),
    }
}

/// LeaveGroup for several members; `Err` is the group-level error.
pub fn leave(
    c: &Shared,
    group: &str,
    members: &[(String, Option<String>)],
) -> Result<Vec<Option<ResponseError>>, ResponseError> {
    let results = {
        let mut co = c.borrow_mut();
        let g = match co.groups.get_mut(group).map(|e| &mut e.kind) {
            None => return Err(ResponseError::UnknownMemberId),
            Some(GroupKind::Consumer(_)) => return Err(ResponseError::InconsistentGroupProtocol),
            Some(GroupKind::Classic(g)) => g,
        };
        let now = now_ms();
        members
            .iter()
            .map(|(m, i)| g.leave(m, i.as_deref(), now))
            .collect()
    };
    persist_group(c, group);
    Ok(results)
}

/// ConsumerGroupHeartbeat (KIP-848). An empty classic group turns into a
/// consumer group; a classic group with members refuses.
pub fn consumer_heartbeat(
    c: &Shared,
    partition: i32,
    group: &str,
    req: HeartbeatRequest,
) -> Result<HeartbeatResult, HeartbeatError> {
    let now = now_ms();
    let catalog = local().catalog();
    let mut co = c.borrow_mut();
    let cfg = co.cfg.consumer_group_for(catalog.group_configs.get(group));
    let convertible = match co.groups.get(group) {
        None => true,
        Some(e) => match &e.kind {
            GroupKind::Consumer(_) => false,
            GroupKind::Classic(_) if e.is_empty() => true,
            GroupKind::Classic(_) => {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {group} is not a consumer group."),
                ))
            }
        },
    };
    if convertible {
        if req.member_epoch != 0 {
            return Err((
                ResponseError::UnknownMemberId,
                format!("Member {} is not a member of group {group}.", req.member_id),
            ));
        }
        let offsets = co
            .groups
            .remove(group)
            .map(|e| e.offsets)
            .unwrap_or_default();
        co.groups.insert(
            group.to_string(),
            GroupEntry {
                partition,
                kind: GroupKind::Consumer(ConsumerGroup::new(group.to_string(), now)),
                offsets,
            },
        );
    }
    let Some(GroupKind::Consumer(g)) = co.groups.get_mut(group).map(|e| &mut e.kind) else {
        unreachable!("just ensured");
    };
    g.heartbeat(req, &catalog, &cfg, now)
}

/// OffsetFetch v9 from a KIP-848 member: its epoch must be current.
pub fn check_fetch_member(
    c: &Shared,
    group: &str,
    member: &str,
    epoch: i32,
) -> Option<ResponseError> {
    let co = c.borrow();
    match co.groups.get(group).map(|e| &e.kind) {
        Some(GroupKind::Consumer(g)) => match g.members.get(member) {
            None => Some(ResponseError::UnknownMemberId),
            Some(m) if m.epoch != epoch => Some(ResponseError::StaleMemberEpoch),
            Some(_) => None,
        },
        _ => None,
    }
}
