//! The consumer embedded protocol (subscription and assignment bytes carried
//! opaquely by JoinGroup / SyncGroup / DescribeGroups) and Kafka's `range`
//! assignor, which the leader of a group runs client-side.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::error::{ClientError, Result};

/// JoinGroup `protocol_type` of Kafka consumers.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// Name of the range assignor, as Java and librdkafka clients spell it.
pub const RANGE_ASSIGNOR: &str = "range";
/// Highest embedded-protocol version this crate can decode; newer versions
/// only append fields, so they are read as this one (as Kafka does).
const MAX_EMBEDDED_VERSION: i16 = 3;
/// The version we write: topics and user data only, understood by everyone.
const WRITE_VERSION: i16 = 0;

fn corrupt(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Other(format!("malformed consumer protocol {what}: {e}"))
}

fn with_version(version: i16, body: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    // Encoding plain strings and arrays cannot fail.
    body(&mut buf).expect("encode consumer protocol");
    buf.freeze()
}

fn read_version(what: &str, bytes: &mut Bytes) -> Result<i16> {
    if bytes.remaining() < 2 {
        return Err(corrupt(what, "shorter than its version"));
    }
    let v = bytes.get_i16();
    if v < 0 {
        return Err(corrupt(what, format!("negative version {v}")));
    }
    Ok(v.min(MAX_EMBEDDED_VERSION))
}

/// Subscription metadata for JoinGroup.
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    with_version(WRITE_VERSION, |buf| sub.encode(buf, WRITE_VERSION))
}

/// Topics a member subscribed to, from its JoinGroup metadata.
pub fn decode_subscription(mut bytes: Bytes) -> Result<Vec<String>> {
    let version = read_version("subscription", &mut bytes)?;
    let sub = ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map_err(|e| corrupt("subscription", e))?;
    Ok(sub.topics.into_iter().map(|t| t.to_string()).collect())
}

/// Assignment bytes for SyncGroup.
pub fn encode_assignment(partitions: &[(String, i32)]) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(
        by_topic
            .into_iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                    .with_partitions(ps)
            })
            .collect(),
    );
    with_version(WRITE_VERSION, |buf| assignment.encode(buf, WRITE_VERSION))
}

/// (topic, partition) pairs of an assignment, sorted. Empty bytes (a member
/// that has not been assigned anything yet) decode to nothing.
pub fn decode_assignment(mut bytes: Bytes) -> Result<Vec<(String, i32)>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let version = read_version("assignment", &mut bytes)?;
    let a = ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map_err(|e| corrupt("assignment", e))?;
    let mut out: Vec<(String, i32)> = a
        .assigned_partitions
        .into_iter()
        .flat_map(|t| {
            let name = t.topic.0.to_string();
            t.partitions.into_iter().map(move |p| (name.clone(), p))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A member as the assignor sees it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub topics: Vec<String>,
}

/// Kafka's RangeAssignor: per topic, subscribers sorted by (instance id or
/// member id) get consecutive ranges; the first `partitions % members` get
/// one extra. `partition_counts` gives each topic's partition count (topics
/// missing from it are skipped). Every member appears in the result.
pub fn range_assign(
    members: &[Subscriber],
    partition_counts: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, Vec<(String, i32)>> = members
        .iter()
        .map(|m| (m.member_id.clone(), Vec::new()))
        .collect();
    for (topic, &count) in partition_counts {
        let mut subs: Vec<&Subscriber> = members
            .iter()
            .filter(|m| m.topics.contains(topic))
            .collect();
        if subs.is_empty() || count <= 0 {
            continue;
        }
        // Static members sort by instance id so their ranges survive restarts.
        subs.sort_by(|a, b| {
            let key = |m: &Subscriber| {
                (
                    m.group_instance_id.is_none(),
                    m.group_instance_id.clone(),
                    m.member_id.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        let n = subs.len() as i32;
        let (per, extra) = (count / n, count % n);
        for (i, m) in subs.into_iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            let list = out.get_mut(&m.member_id).expect("member listed above");
            list.extend((start..start + len).map(|p| (topic.clone(), p)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, topics: &[&str]) -> Subscriber {
        Subscriber {
            member_id: id.into(),
            group_instance_id: None,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn subscription_and_assignment_round_trip() {
        let topics = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            decode_subscription(encode_subscription(&topics)).unwrap(),
            topics
        );
        let parts = vec![
            ("a".to_string(), 2),
            ("a".to_string(), 0),
            ("b".to_string(), 1),
        ];
        let mut sorted = parts.clone();
        sorted.sort();
        assert_eq!(
            decode_assignment(encode_assignment(&parts)).unwrap(),
            sorted
        );
        assert!(decode_assignment(Bytes::new()).unwrap().is_empty());
        assert!(decode_subscription(Bytes::from_static(b"\x00")).is_err());
    }

    #[test]
    fn newer_versions_decode_as_the_newest_known() {
        // A v3 subscription (what Java 3.x clients send) with a trailing v4+
        // field we do not know: the known prefix still decodes.
        let sub = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .with_generation_id(7);
        let bytes = with_version(3, |b| sub.encode(b, 3));
        assert_eq!(decode_subscription(bytes).unwrap(), vec!["t".to_string()]);
        let mut v9 = BytesMut::from(&encode_assignment(&[("t".into(), 4)])[..]);
        v9[..2].copy_from_slice(&9i16.to_be_bytes());
        assert_eq!(
            decode_assignment(v9.freeze()).unwrap(),
            vec![("t".to_string(), 4)]
        );
    }

    #[test]
    fn range_matches_kafka() {
        // Kafka's RangeAssignor javadoc example: 2 consumers, t0 and t1 with 3
        // partitions each -> C0: [t0p0, t0p1, t1p0, t1p1], C1: [t0p2, t1p2].
        let members = vec![sub("C1", &["t0", "t1"]), sub("C0", &["t0", "t1"])];
        let counts = BTreeMap::from([("t0".to_string(), 3), ("t1".to_string(), 3)]);
        let got = range_assign(&members, &counts);
        let p = |t: &str, n| (t.to_string(), n);
        assert_eq!(
            got["C0"],
            vec![p("t0", 0), p("t0", 1), p("t1", 0), p("t1", 1)]
        );
        assert_eq!(got["C1"], vec![p("t0", 2), p("t1", 2)]);
    }

    #[test]
    fn range_covers_every_partition_once() {
        for members in 1..=7 {
            for count in 0..=13 {
                let subs: Vec<_> = (0..members)
                    .map(|i| sub(&format!("m{i}"), &["t"]))
                    .collect();
                let got = range_assign(&subs, &BTreeMap::from([("t".to_string(), count)]));
                assert_eq!(got.len(), members);
                let mut all: Vec<i32> = got.values().flatten().map(|(_, p)| *p).collect();
                all.sort();
                assert_eq!(all, (0..count).collect::<Vec<_>>());
                let sizes: Vec<usize> = got.values().map(Vec::len).collect();
                let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(
                    max - min <= 1,
                    "{members} members, {count} partitions: {sizes:?}"
                );
            }
        }
    }

    #[test]
    fn range_respects_subscriptions_and_instance_ids() {
        let mut a = sub("zzz", &["t"]);
        a.group_instance_id = Some("a".into());
        let members = vec![sub("aaa", &["t", "u"]), a];
        let counts = BTreeMap::from([("t".to_string(), 2), ("u".to_string(), 2)]);
        let got = range_assign(&members, &counts);
        // The static member sorts first on its instance id.
        assert_eq!(got["zzz"], vec![("t".to_string(), 0)]);
        assert_eq!(
            got["aaa"],
            vec![
                ("t".to_string(), 1),
                ("u".to_string(), 0),
                ("u".to_string(), 1)
            ]
        );
    }
}
