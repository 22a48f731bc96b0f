//! Leadership changes when brokers come and go, as Kafka's controller makes
//! them: a fenced broker leads nothing (its partitions move to another live
//! in-sync replica, or go offline with leader -1), and a broker that comes
//! back leads the offline partitions whose ISR it is in. Pure functions of
//! the image; the controller commits their difference.

use super::catalog::{BrokerReg, Catalog, NO_LEADER};

/// Fence `id`: it leaves every ISR it shares with a live broker and leads
/// nothing. (The last member of an ISR stays in it, as in Kafka: it is the
/// one that has the data, should it come back.)
pub fn fence(image: &mut Catalog, id: i32) {
    let Some(b) = image.brokers.get_mut(&id) else {
        return;
    };
    b.fenced = true;
    let live = image.live_brokers();
    for t in image.topics.values_mut() {
        for p in t.parts.iter_mut() {
            if !p.replicas.contains(&id) {
                continue;
            }
            let others: Vec<i32> = p.isr.iter().copied().filter(|r| *r != id).collect();
            let isr = if others.is_empty() {
                p.isr.clone()
            } else {
                others
            };
            if p.leader == id || p.isr != isr {
                let leader = if p.leader == id {
                    // The first live ISR member in replica (preference) order.
                    p.replicas
                        .iter()
                        .copied()
                        .find(|r| *r != id && isr.contains(r) && live.contains(r))
                        .unwrap_or(NO_LEADER)
                } else {
                    p.leader
                };
                if leader == p.leader {
                    *p = super::catalog::PartitionMeta {
                        isr,
                        partition_epoch: p.partition_epoch + 1,
                        ..p.clone()
                    };
                } else {
                    *p = p.with_leader(leader, isr);
                }
            }
        }
    }
}

/// Register (or re-register) a broker, unfenced, and let it lead the
/// offline partitions whose ISR holds it.
pub fn register(image: &mut Catalog, reg: BrokerReg) {
    let id = reg.id;
    image.brokers.insert(
        id,
        BrokerReg {
            fenced: false,
            ..reg
        },
    );
    elect_offline(image, id);
}

/// Unfence a registered broker (its heartbeats came back).
pub fn unfence(image: &mut Catalog, id: i32) {
    if let Some(b) = image.brokers.get_mut(&id) {
        b.fenced = false;
        elect_offline(image, id);
    }
}

fn elect_offline(image: &mut Catalog, id: i32) {
    for t in image.topics.values_mut() {
        for p in t.parts.iter_mut() {
            if p.leader == NO_LEADER && p.isr.contains(&id) {
                *p = p.with_leader(id, p.isr.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::catalog::{PartitionMeta, TopicMeta};

    fn image(parts: Vec<PartitionMeta>) -> Catalog {
        let mut c = Catalog::default();
        for id in 1..=3 {
            c.brokers.insert(
                id,
                BrokerReg {
                    id,
                    host: "h".into(),
                    port: 1,
                    incarnation: uuid::Uuid::nil(),
                    fenced: false,
                },
            );
        }
        c.topics.insert(
            "t".into(),
            TopicMeta {
                name: "t".into(),
                partitions: parts.len() as i32,
                parts,
                ..Default::default()
            },
        );
        c
    }

    fn isr(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionMeta {
        PartitionMeta {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    #[test]
    fn a_fenced_leader_hands_over_to_a_live_isr_member_or_goes_offline() {
        let mut c = image(vec![
            isr(&[1, 2, 3], &[1, 2, 3], 1),
            isr(&[1], &[1], 1),
            isr(&[2, 1], &[2, 1], 2),
            isr(&[3, 2], &[3], 3),
        ]);
        fence(&mut c, 1);
        let p = &c.topics["t"].parts;
        assert!(c.brokers[&1].fenced);
        assert_eq!(
            (p[0].leader, p[0].isr.clone(), p[0].leader_epoch),
            (2, vec![2, 3], 1)
        );
        assert_eq!(
            (p[1].leader, p[1].isr.clone(), p[1].leader_epoch),
            (NO_LEADER, vec![1], 1)
        );
        // Not the leader: leaves the ISR, leadership stays.
        assert_eq!(
            (p[2].leader, p[2].isr.clone(), p[2].leader_epoch),
            (2, vec![2], 0)
        );
        assert_eq!(p[2].partition_epoch, 1);
        assert_eq!(p[3], isr(&[3, 2], &[3], 3), "untouched");
        // It comes back: the offline partition is its again.
        unfence(&mut c, 1);
        let p = &c.topics["t"].parts;
        assert!(!c.brokers[&1].fenced);
        assert_eq!((p[1].leader, p[1].leader_epoch), (1, 2));
        assert_eq!(
            p[0].leader, 2,
            "a led partition does not move back by itself"
        );
    }

    #[test]
    fn with_every_isr_member_fenced_the_partition_stays_offline() {
        let mut c = image(vec![isr(&[1, 2], &[1], 1)]);
        fence(&mut c, 1);
        assert_eq!(c.topics["t"].parts[0].leader, NO_LEADER);
        // A live replica outside the ISR is not elected (no unclean election).
        fence(&mut c, 3);
        assert_eq!(c.topics["t"].parts[0].leader, NO_LEADER);
        register(
            &mut c,
            BrokerReg {
                id: 1,
                host: "h2".into(),
                port: 2,
                incarnation: uuid::Uuid::new_v4(),
                fenced: true,
            },
        );
        assert!(!c.brokers[&1].fenced);
        assert_eq!(c.brokers[&1].host, "h2");
        assert_eq!(c.topics["t"].parts[0].leader, 1);
    }
}
