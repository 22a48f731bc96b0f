//! Records of `__consumer_offsets`, in Kafka's own schemas so its tools can
//! read them: OffsetCommitKey v1 / OffsetCommitValue v3 and GroupMetadataKey v2
//! / GroupMetadataValue v3. A record with a key and no value is a tombstone.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a `__consumer_offsets` record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error("record truncated")]
    Truncated,
    #[error("unknown key version {0}")]
    UnknownKeyVersion(i16),
    #[error("unknown value version {0}")]
    UnknownValueVersion(i16),
    #[error("invalid UTF-8 in a string field")]
    Utf8,
}

type Result<T> = std::result::Result<T, FormatError>;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
}

impl RecordKey {
    pub fn offset(group: &str, topic: &str, partition: i32) -> Self {
        RecordKey::Offset {
            group: group.to_string(),
            topic: topic.to_string(),
            partition,
        }
    }

    pub fn group(group: &str) -> Self {
        RecordKey::Group {
            group: group.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

pub fn encode_key(k: &RecordKey) -> Bytes {
    let mut b = BytesMut::new();
    match k {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            b.put_i16(OFFSET_KEY_VERSION);
            put_str(&mut b, group);
            put_str(&mut b, topic);
            b.put_i32(*partition);
        }
        RecordKey::Group { group } => {
            b.put_i16(GROUP_KEY_VERSION);
            put_str(&mut b, group);
        }
    }
    b.freeze()
}

pub fn decode_key(mut b: &[u8]) -> Result<RecordKey> {
    let version = get_i16(&mut b)?;
    match version {
        0 | 1 => Ok(RecordKey::Offset {
            group: get_str(&mut b)?,
            topic: get_str(&mut b)?,
            partition: get_i32(&mut b)?,
        }),
        2 => Ok(RecordKey::Group {
            group: get_str(&mut b)?,
        }),
        v => Err(FormatError::UnknownKeyVersion(v)),
    }
}

pub fn encode_offset(v: &OffsetValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(OFFSET_VALUE_VERSION);
    b.put_i64(v.offset);
    b.put_i32(v.leader_epoch);
    put_str(&mut b, &v.metadata);
    b.put_i64(v.commit_timestamp_ms);
    b.freeze()
}

pub fn decode_offset(mut b: &[u8]) -> Result<OffsetValue> {
    let version = get_i16(&mut b)?;
    // v0: offset, metadata, timestamp; v1 adds expire timestamp; v3 adds the
    // leader epoch (v2 dropped the expire timestamp).
    let offset = get_i64(&mut b)?;
    let leader_epoch = if version >= 3 { get_i32(&mut b)? } else { -1 };
    let metadata = get_str(&mut b)?;
    let commit_timestamp_ms = match version {
        0..=3 => get_i64(&mut b)?,
        v => return Err(FormatError::UnknownValueVersion(v)),
    };
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
    })
}

pub fn encode_group(v: &GroupValue) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(GROUP_VALUE_VERSION);
    put_str(&mut b, &v.protocol_type);
    b.put_i32(v.generation);
    put_opt_str(&mut b, v.protocol.as_deref());
    put_opt_str(&mut b, v.leader.as_deref());
    b.put_i64(v.current_state_timestamp_ms);
    b.put_i32(v.members.len() as i32);
    for m in &v.members {
        put_str(&mut b, &m.member_id);
        put_opt_str(&mut b, m.group_instance_id.as_deref());
        put_str(&mut b, &m.client_id);
        put_str(&mut b, &m.client_host);
        b.put_i32(m.rebalance_timeout_ms);
        b.put_i32(m.session_timeout_ms);
        put_bytes(&mut b, &m.subscription);
        put_bytes(&mut b, &m.assignment);
    }
    b.freeze()
}

pub fn decode_group(mut b: &[u8]) -> Result<GroupValue> {
    let version = get_i16(&mut b)?;
    if !(0..=3).contains(&version) {
        return Err(FormatError::UnknownValueVersion(version));
    }
    let protocol_type = get_str(&mut b)?;
    let generation = get_i32(&mut b)?;
    let protocol = get_opt_str(&mut b)?;
    let leader = get_opt_str(&mut b)?;
    let current_state_timestamp_ms = if version >= 2 { get_i64(&mut b)? } else { -1 };
    let n = get_i32(&mut b)?.max(0) as usize;
    let mut members = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let member_id = get_str(&mut b)?;
        let group_instance_id = if version >= 3 {
            get_opt_str(&mut b)?
        } else {
            None
        };
        let client_id = get_str(&mut b)?;
        let client_host = get_str(&mut b)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut b)? } else { -1 };
        let session_timeout_ms = get_i32(&mut b)?;
        let subscription = get_bytes(&mut b)?;
        let assignment = get_bytes(&mut b)?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

/// The `__consumer_offsets` partition of a group: Kafka's
/// `Utils.abs(groupId.hashCode) % partitions`, with Java's String hash, so a
/// group lands where Kafka would put it.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    assert!(partitions > 0);
    let h = group
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32));
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_i16(s.len() as i16);
    b.put_slice(s.as_bytes());
}

fn put_opt_str(b: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(b, s),
        None => b.put_i16(-1),
    }
}

fn put_bytes(b: &mut BytesMut, v: &[u8]) {
    b.put_i32(v.len() as i32);
    b.put_slice(v);
}

fn need(b: &[u8], n: usize) -> Result<()> {
    if b.len() < n {
        Err(FormatError::Truncated)
    } else {
        Ok(())
    }
}

fn get_i16(b: &mut &[u8]) -> Result<i16> {
    need(b, 2)?;
    Ok(b.get_i16())
}

fn get_i32(b: &mut &[u8]) -> Result<i32> {
    need(b, 4)?;
    Ok(b.get_i32())
}

fn get_i64(b: &mut &[u8]) -> Result<i64> {
    need(b, 8)?;
    Ok(b.get_i64())
}

fn get_opt_str(b: &mut &[u8]) -> Result<Option<String>> {
    let len = get_i16(b)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    need(b, len)?;
    let s = std::str::from_utf8(&b[..len]).map_err(|_| FormatError::Utf8)?;
    let s = s.to_string();
    b.advance(len);
    Ok(Some(s))
}

fn get_str(b: &mut &[u8]) -> Result<String> {
    Ok(get_opt_str(b)?.unwrap_or_default())
}

fn get_bytes(b: &mut &[u8]) -> Result<Bytes> {
    let len = get_i32(b)?.max(0) as usize;
    need(b, len)?;
    let v = Bytes::copy_from_slice(&b[..len]);
    b.advance(len);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for k in [
            RecordKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 7,
            },
            RecordKey::Group {
                group: "grüppe".into(),
            },
        ] {
            assert_eq!(decode_key(&encode_key(&k)).unwrap(), k);
        }
    }

    #[test]
    fn offset_value_round_trips_and_matches_kafka_layout() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: 1_700_000_000_000,
        };
        let b = encode_offset(&v);
        // version(2) offset(8) epoch(4) metadata(2+1) timestamp(8)
        assert_eq!(b.len(), 25);
        assert_eq!(&b[..2], &[0, 3]);
        assert_eq!(decode_offset(&b).unwrap(), v);
        assert_eq!(decode_offset(&b[..10]), Err(FormatError::Truncated));
    }

    #[test]
    fn group_value_round_trips() {
        let v = GroupValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp_ms: 9,
            members: vec![MemberValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group(&encode_group(&v)).unwrap(), v);
        let empty = GroupValue {
            protocol: None,
            leader: None,
            members: vec![],
            ..v
        };
        assert_eq!(decode_group(&encode_group(&empty)).unwrap(), empty);
    }

    #[test]
    fn partition_matches_java_string_hash() {
        // "test-group".hashCode() == 627841412 in Java; % 50 == 12.
        assert_eq!(partition_for("test-group", 50), 12);
        assert_eq!(partition_for("", 50), 0);
        for g in ["a", "console-consumer-1", "ünïcode"] {
            assert!((0..50).contains(&partition_for(g, 50)));
        }
    }
}
