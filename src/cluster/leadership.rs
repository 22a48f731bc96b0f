//! Leadership changes when brokers come and go, as Kafka's controller makes
//! them: a fenced broker leads nothing (its partitions move to another live
//! in-sync replica, or go offline with leader -1), and a broker that comes
//! back leads the offline partitions whose ISR it is in. Pure functions of
//! the image; the controller commits their difference.

use super::catalog::{BrokerReg, Catalog, TopicMeta, NO_LEADER};

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

/// The leader an election asks for (Kafka's ElectionType).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// The first replica, if it is live and in sync.
    Preferred,
    /// For a partition with no leader: a live ISR member, or else any live
    /// replica, whatever it lacks.
    Unclean,
}

/// Why an election changed nothing (each is a Kafka error code).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotElected {
    /// ELECTION_NOT_NEEDED: the wanted leader already leads.
    NotNeeded,
    /// PREFERRED_LEADER_NOT_AVAILABLE: fenced or out of the ISR.
    PreferredNotAvailable,
    /// ELIGIBLE_LEADERS_NOT_AVAILABLE: no live replica at all.
    EligibleNotAvailable,
    /// UNKNOWN_TOPIC_OR_PARTITION.
    Unknown,
}

/// Who an election made leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elected {
    pub leader: i32,
    /// Chosen from outside the ISR: the records only the ISR held are gone.
    pub unclean: bool,
}

/// Run one election on `topic`-`partition` (ElectLeaders, and the
/// controller's own rebalancing and unclean elections). A reassignment the
/// new ISR satisfies completes with it, as Kafka completes one on every
/// partition change.
pub fn elect(
    image: &mut Catalog,
    topic: &str,
    partition: i32,
    election: Election,
) -> Result<Elected, NotElected> {
    let elected = elect_one(image, topic, partition, election)?;
    let live = image.live_brokers();
    if let Some(p) = image
        .topics
        .get_mut(topic)
        .and_then(|t| t.parts.get_mut(partition as usize))
    {
        super::reassignment::maybe_complete(p, &live);
    }
    Ok(elected)
}

fn elect_one(
    image: &mut Catalog,
    topic: &str,
    partition: i32,
    election: Election,
) -> Result<Elected, NotElected> {
    let live = image.live_brokers();
    let p = image
        .topics
        .get_mut(topic)
        .and_then(|t| {
            usize::try_from(partition)
                .ok()
                .and_then(|i| t.parts.get_mut(i))
        })
        .ok_or(NotElected::Unknown)?;
    let eligible = |r: &i32| live.contains(r);
    match election {
        Election::Preferred => {
            let preferred = *p.replicas.first().ok_or(NotElected::Unknown)?;
            if p.leader == preferred {
                return Err(NotElected::NotNeeded);
            }
            if !eligible(&preferred) || !p.isr.contains(&preferred) {
                return Err(NotElected::PreferredNotAvailable);
            }
            *p = p.with_leader(preferred, p.isr.clone());
            Ok(Elected {
                leader: preferred,
                unclean: false,
            })
        }
        Election::Unclean => {
            if p.leader != NO_LEADER {
                return Err(NotElected::NotNeeded);
            }
            let clean = p
                .replicas
                .iter()
                .copied()
                .find(|r| eligible(r) && p.isr.contains(r));
            if let Some(leader) = clean {
                *p = p.with_leader(leader, p.isr.clone());
                return Ok(Elected {
                    leader,
                    unclean: false,
                });
            }
            let leader = p
                .replicas
                .iter()
                .copied()
                .find(eligible)
                .ok_or(NotElected::EligibleNotAvailable)?;
            // Alone in sync: the others' records past its log are truncated
            // when they follow it (OffsetForLeaderEpoch), as Kafka does.
            *p = p.with_leader(leader, vec![leader]);
            Ok(Elected {
                leader,
                unclean: true,
            })
        }
    }
}

/// Offline partitions an unclean election could bring back, of topics
/// where `enabled` says `unclean.leader.election.enable` is true.
pub fn unclean_candidates(
    image: &Catalog,
    enabled: impl Fn(&TopicMeta) -> bool,
) -> Vec<(String, i32)> {
    let live = image.live_brokers();
    image
        .topics
        .values()
        .filter(|t| t.parts.iter().any(|p| p.leader == NO_LEADER))
        .filter(|t| enabled(t))
        .flat_map(|t| {
            let live = &live;
            t.parts
                .iter()
                .enumerate()
                .filter(move |(_, p)| {
                    p.leader == NO_LEADER && p.replicas.iter().any(|r| live.contains(r))
                })
                .map(move |(i, _)| (t.name.clone(), i as i32))
        })
        .collect()
}

/// Partitions led by another broker than their preferred (first) replica
/// while it is live and in sync: what `auto.leader.rebalance.enable`
/// moves back, as Kafka's controller does.
pub fn imbalanced(image: &Catalog) -> Vec<(String, i32)> {
    let live = image.live_brokers();
    image
        .topics
        .values()
        .flat_map(|t| {
            let live = &live;
            t.parts.iter().enumerate().filter_map(move |(i, p)| {
                let preferred = *p.replicas.first()?;
                (p.leader != preferred && live.contains(&preferred) && p.isr.contains(&preferred))
                    .then(|| (t.name.clone(), i as i32))
            })
        })
        .collect()
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
            ..Default::default()
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

    #[test]
    fn preferred_election_moves_leadership_back_only_to_a_live_in_sync_first_replica() {
        let mut c = image(vec![
            isr(&[1, 2, 3], &[1, 2, 3], 2),
            isr(&[1, 2], &[2], 2),
            isr(&[3, 1], &[3, 1], 3),
        ]);
        assert_eq!(imbalanced(&c), vec![("t".to_string(), 0)]);
        assert_eq!(
            elect(&mut c, "t", 0, Election::Preferred),
            Ok(Elected {
                leader: 1,
                unclean: false
            })
        );
        let p = &c.topics["t"].parts[0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1, 1, 1));
        assert_eq!(p.isr, vec![1, 2, 3]);
        assert_eq!(
            elect(&mut c, "t", 0, Election::Preferred),
            Err(NotElected::NotNeeded)
        );
        assert_eq!(
            elect(&mut c, "t", 1, Election::Preferred),
            Err(NotElected::PreferredNotAvailable),
            "out of the ISR"
        );
        assert_eq!(
            elect(&mut c, "t", 9, Election::Preferred),
            Err(NotElected::Unknown)
        );
        fence(&mut c, 3);
        // 3 is fenced: partition 2 moved to 1, and 3 cannot take it back.
        assert_eq!(c.topics["t"].parts[2].leader, 1);
        assert_eq!(
            elect(&mut c, "t", 2, Election::Preferred),
            Err(NotElected::PreferredNotAvailable)
        );
        assert!(imbalanced(&c).is_empty());
    }

    #[test]
    fn unclean_election_picks_a_live_replica_outside_the_isr_only_when_none_in_it_lives() {
        let mut c = image(vec![
            isr(&[1, 2, 3], &[1], 1),
            isr(&[1, 2], &[1, 2], 1),
            isr(&[1], &[1], 1),
        ]);
        fence(&mut c, 1);
        let parts = &c.topics["t"].parts;
        assert_eq!(parts[0].leader, NO_LEADER);
        assert_eq!(parts[1].leader, 2, "clean: 2 was in sync");
        assert_eq!(
            unclean_candidates(&c, |_| true),
            vec![("t".to_string(), 0)],
            "partition 2 has no live replica at all"
        );
        assert!(unclean_candidates(&c, |_| false).is_empty());
        assert_eq!(
            elect(&mut c, "t", 0, Election::Unclean),
            Ok(Elected {
                leader: 2,
                unclean: true
            })
        );
        let p = &c.topics["t"].parts[0];
        // Epoch 1 went offline with the fence; this is epoch 2.
        assert_eq!((p.leader, p.isr.clone(), p.leader_epoch), (2, vec![2], 2));
        assert_eq!(
            elect(&mut c, "t", 0, Election::Unclean),
            Err(NotElected::NotNeeded)
        );
        assert_eq!(
            elect(&mut c, "t", 2, Election::Unclean),
            Err(NotElected::EligibleNotAvailable)
        );
        // The old leader comes back: it follows (and truncates), not leads.
        unfence(&mut c, 1);
        assert_eq!(c.topics["t"].parts[0].leader, 2);
        assert_eq!(c.topics["t"].parts[2].leader, 1);
    }
}
