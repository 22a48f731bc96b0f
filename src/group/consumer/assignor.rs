//! Server-side assignors of KIP-848 groups: `uniform` (sticky, balanced) and
//! `range` (contiguous ranges per topic, like the client-side RangeAssignor).

use std::collections::{BTreeMap, BTreeSet};

/// A partition, named by topic name (ids are attached when answering).
pub type Tp = (String, i32);

pub const ASSIGNORS: &[&str] = &["uniform", "range"];

pub struct AssignInput<'a> {
    /// member id → subscribed topics (those that exist).
    pub members: &'a BTreeMap<String, BTreeSet<String>>,
    /// topic → partition count.
    pub topics: &'a BTreeMap<String, i32>,
    /// The previous target assignment, for stickiness.
    pub previous: &'a BTreeMap<String, BTreeSet<Tp>>,
}

pub fn assign(name: &str, input: &AssignInput) -> BTreeMap<String, BTreeSet<Tp>> {
    match name {
        "range" => range(input),
        _ => uniform(input),
    }
}

/// Each member keeps what it had as long as that stays balanced; the rest go
/// one by one to the least-loaded member subscribed to their topic.
fn uniform(input: &AssignInput) -> BTreeMap<String, BTreeSet<Tp>> {
    let mut out: BTreeMap<String, BTreeSet<Tp>> = input
        .members
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    if out.is_empty() {
        return out;
    }
    let all: BTreeSet<Tp> = input
        .members
        .values()
        .flatten()
        .filter_map(|t| input.topics.get(t).map(|n| (t, *n)))
        .flat_map(|(t, n)| (0..n).map(move |p| (t.clone(), p)))
        .collect();
    let quota = all.len().div_ceil(out.len());
    let mut taken: BTreeSet<Tp> = BTreeSet::new();
    for (m, prev) in input.previous {
        let (Some(subs), Some(mine)) = (input.members.get(m), out.get_mut(m)) else {
            continue;
        };
        for tp in prev {
            if mine.len() >= quota {
                break;
            }
            if all.contains(tp) && subs.contains(&tp.0) && taken.insert(tp.clone()) {
                mine.insert(tp.clone());
            }
        }
    }
    for tp in all.iter().filter(|tp| !taken.contains(*tp)) {
        let target = out
            .iter()
            .filter(|(m, _)| input.members[*m].contains(&tp.0))
            .min_by_key(|(m, a)| (a.len(), (*m).clone()))
            .map(|(m, _)| m.clone());
        if let Some(m) = target {
            out.get_mut(&m).expect("member").insert(tp.clone());
        }
    }
    out
}

/// Per topic, subscribed members in id order get contiguous ranges; the
/// first `partitions % members` get one extra.
fn range(input: &AssignInput) -> BTreeMap<String, BTreeSet<Tp>> {
    let mut out: BTreeMap<String, BTreeSet<Tp>> = input
        .members
        .keys()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for (topic, &n) in input.topics {
        let subs: Vec<&String> = input
            .members
            .iter()
            .filter(|(_, s)| s.contains(topic))
            .map(|(m, _)| m)
            .collect();
        if subs.is_empty() {
            continue;
        }
        let (per, extra) = (n as usize / subs.len(), n as usize % subs.len());
        let mut next = 0i32;
        for (i, m) in subs.iter().enumerate() {
            let count = per + usize::from(i < extra);
            let mine = out.get_mut(*m).expect("member");
            for p in next..next + count as i32 {
                mine.insert((topic.clone(), p));
            }
            next += count as i32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(list: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        list.iter()
            .map(|(m, ts)| (m.to_string(), ts.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn check_complete(out: &BTreeMap<String, BTreeSet<Tp>>, topics: &BTreeMap<String, i32>) {
        let mut seen = BTreeSet::new();
        for a in out.values() {
            for tp in a {
                assert!(seen.insert(tp.clone()), "{tp:?} assigned twice");
            }
        }
        let total: i32 = topics.values().sum();
        assert_eq!(seen.len(), total as usize);
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let topics: BTreeMap<String, i32> = [("t".to_string(), 6)].into();
        let m2 = members(&[("a", &["t"]), ("b", &["t"])]);
        let none = BTreeMap::new();
        let first = assign(
            "uniform",
            &AssignInput {
                members: &m2,
                topics: &topics,
                previous: &none,
            },
        );
        check_complete(&first, &topics);
        assert!(first.values().all(|a| a.len() == 3));
        let m3 = members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]);
        let second = assign(
            "uniform",
            &AssignInput {
                members: &m3,
                topics: &topics,
                previous: &first,
            },
        );
        check_complete(&second, &topics);
        assert!(second.values().all(|a| a.len() == 2));
        // a and b keep two of their three partitions each.
        for m in ["a", "b"] {
            assert_eq!(second[m].intersection(&first[m]).count(), 2);
        }
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let topics: BTreeMap<String, i32> = [("t".to_string(), 5), ("u".to_string(), 2)].into();
        let m = members(&[("a", &["t", "u"]), ("b", &["t"])]);
        let none = BTreeMap::new();
        let out = assign(
            "range",
            &AssignInput {
                members: &m,
                topics: &topics,
                previous: &none,
            },
        );
        check_complete(&out, &topics);
        let a: Vec<Tp> = out["a"].iter().cloned().collect();
        assert!(a.contains(&("t".into(), 0)) && a.contains(&("t".into(), 2)));
        assert_eq!(out["a"].iter().filter(|tp| tp.0 == "u").count(), 2);
        assert_eq!(out["b"].len(), 2);
    }
}
