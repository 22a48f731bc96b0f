//! The partition -> shard map. Every shard holds a full copy, tagged with the
//! metadata version it was derived from, so routing never asks anyone.

use std::collections::HashMap;

use super::ShardId;

/// Where each partition lives. Placement is a pure function of the topic name,
/// the partition and the shard count, so every shard derives the same map and a
/// restart puts every partition back on the same shard.
#[derive(Clone, Debug, Default)]
pub struct ShardTable {
    version: u64,
    nr_shards: usize,
    /// topic -> home shard of each partition this broker serves, indexed
    /// by partition (None: served by another broker).
    map: HashMap<String, Vec<Option<ShardId>>>,
}

/// FNV-1a: stable across builds and platforms (std's hasher is not).
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Home shard of one partition: a topic's partitions go round-robin over the
/// shards, starting at a shard picked by the topic's hash, so many small topics
/// do not all pile onto shard 0.
pub fn place(topic: &str, partition: i32, nr_shards: usize) -> ShardId {
    assert!(nr_shards > 0 && partition >= 0);
    ((stable_hash(topic.as_bytes()) + partition as u64) % nr_shards as u64) as ShardId
}

impl ShardTable {
    pub fn new(nr_shards: usize) -> Self {
        Self {
            version: 0,
            nr_shards,
            map: HashMap::new(),
        }
    }

    /// Rebuild at `version` from every topic with, for each of its
    /// partitions, whether this broker serves it.
    pub fn rebuild<'a>(
        &mut self,
        version: u64,
        topics: impl Iterator<Item = (&'a str, Vec<bool>)>,
    ) {
        assert!(
            version >= self.version,
            "shard table must not go back in time"
        );
        self.map.clear();
        for (topic, served) in topics {
            let shards = served
                .iter()
                .enumerate()
                .map(|(p, here)| here.then(|| place(topic, p as i32, self.nr_shards)))
                .collect();
            self.map.insert(topic.to_string(), shards);
        }
        self.version = version;
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn shard_of(&self, topic: &str, partition: i32) -> Option<ShardId> {
        let shards = self.map.get(topic)?;
        usize::try_from(partition)
            .ok()
            .and_then(|p| shards.get(p))
            .copied()
            .flatten()
    }

    /// Every (topic, partition) whose home is `shard`.
    pub fn partitions_on(&self, shard: ShardId) -> impl Iterator<Item = (&str, i32)> {
        self.map.iter().flat_map(move |(t, shards)| {
            shards
                .iter()
                .enumerate()
                .filter(move |(_, s)| **s == Some(shard))
                .map(move |(p, _)| (t.as_str(), p as i32))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_is_deterministic_and_spreads() {
        let mut t = ShardTable::new(4);
        t.rebuild(1, [("orders", vec![true; 8])].into_iter());
        let mut per_shard = [0; 4];
        for p in 0..8 {
            let s = t.shard_of("orders", p).unwrap();
            assert_eq!(s, place("orders", p, 4));
            per_shard[s] += 1;
        }
        assert_eq!(per_shard, [2, 2, 2, 2]);
        assert_eq!(t.shard_of("orders", 8), None);
        assert_eq!(t.version(), 1);
        // Partitions another broker serves have no shard here.
        t.rebuild(2, [("orders", vec![true, false, true])].into_iter());
        assert_eq!(t.shard_of("orders", 1), None);
        assert_eq!(t.partitions_on(place("orders", 1, 4)).count(), 0);
        assert!(t.shard_of("orders", 2).is_some());
    }
}
