//! Where a new topic's partitions go: Kafka's rack-unaware replica placement
//! (AdminUtils.assignReplicasToBrokersRackUnaware). Partition p's first
//! replica is broker `(p + start) % n`; the others follow at a shift that
//! grows every n partitions, so leaders and followers spread evenly and a
//! topic does not always start on the same broker.

/// Replicas for partitions `first_partition..first_partition + count` over
/// `brokers` (sorted ids), `rf` each. `start` and `shift` are the topic's
/// random offsets (any values; taken modulo the broker count).
pub fn assign(
    brokers: &[i32],
    first_partition: i32,
    count: i32,
    rf: usize,
    start: usize,
    shift: usize,
) -> Vec<Vec<i32>> {
    let n = brokers.len();
    assert!(
        rf >= 1 && rf <= n,
        "replication factor {rf} over {n} brokers"
    );
    let start = start % n;
    let mut shift = shift % n;
    let mut out = Vec::with_capacity(count.max(0) as usize);
    for p in first_partition..first_partition + count {
        let p = p as usize;
        if p > 0 && p.is_multiple_of(n) {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = vec![brokers[first]];
        for j in 0..rf - 1 {
            let s = 1 + (shift + j) % (n - 1);
            replicas.push(brokers[(first + s) % n]);
        }
        out.push(replicas);
    }
    out
}

/// Two random offsets for `assign`.
pub fn random_offsets() -> (usize, usize) {
    let r = uuid::Uuid::new_v4().as_u128();
    (
        (r & 0xffff_ffff) as usize,
        ((r >> 32) & 0xffff_ffff) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kafkas_placement() {
        // Kafka's AdminRackAwareTest/AssignmentTest example: 5 brokers,
        // 10 partitions, RF 3, fixed start index 0.
        let got = assign(&[0, 1, 2, 3, 4], 0, 10, 3, 0, 0);
        let want = vec![
            vec![0, 1, 2],
            vec![1, 2, 3],
            vec![2, 3, 4],
            vec![3, 4, 0],
            vec![4, 0, 1],
            vec![0, 2, 3],
            vec![1, 3, 4],
            vec![2, 4, 0],
            vec![3, 0, 1],
            vec![4, 1, 2],
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn every_partition_gets_distinct_replicas_and_leaders_spread() {
        for n in 1..=5 {
            let brokers: Vec<i32> = (1..=n).collect();
            for rf in 1..=n as usize {
                for (start, shift) in [(0, 0), (3, 7), (11, 2)] {
                    let a = assign(&brokers, 0, 3 * n, rf, start, shift);
                    for r in &a {
                        let mut d = r.clone();
                        d.sort();
                        d.dedup();
                        assert_eq!(d.len(), rf, "{r:?}");
                    }
                    let mut leaders = vec![0; n as usize];
                    for r in &a {
                        leaders[(r[0] - 1) as usize] += 1;
                    }
                    assert!(leaders.iter().all(|c| *c == 3), "{leaders:?}");
                }
            }
        }
    }
}
