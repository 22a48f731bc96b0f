//! Metadata records: what one entry of the metadata log says happened, and
//! their encoding (the one place it is defined; round-trip tests below).
//!
//! Every change of the catalogue is committed as a batch of records and
//! applied by every broker to its image, in log order; a snapshot is the
//! records that rebuild the image from nothing. As Kafka's controller does,
//! the records are derived from the change (here: the difference between the
//! image before and after the edit), then replayed, so what the controller
//! validated and what every broker applies cannot drift apart.
//!
//! Encoding (big-endian): `u8 version (0)`, `u32 count`, then each record as
//! `u8 type` and its fields; strings are `u32 length` + UTF-8, ids 16 bytes,
//! optional strings `u8 present` + string.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut};

use super::catalog::{BrokerReg, Catalog, PartitionMeta, TopicMeta};

pub const BATCH_VERSION: u8 = 0;

/// Kafka's resource types for the scopes configs live in (AlterConfigs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigScope {
    Topic = 2,
    Broker = 4,
    Group = 32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetadataRecord {
    /// The cluster's id: set once, by the first leader of a new quorum.
    ClusterId(String),
    Topic {
        name: String,
        id: uuid::Uuid,
        partitions: i32,
    },
    RemoveTopic {
        name: String,
        id: uuid::Uuid,
    },
    PartitionCount {
        topic: String,
        total: i32,
    },
    /// Set (`Some`) or remove (`None`) one config of a scope.
    Config {
        scope: ConfigScope,
        name: String,
        key: String,
        value: Option<String>,
    },
    /// A broker's (new) registration; it is unfenced by it.
    RegisterBroker {
        id: i32,
        host: String,
        port: u16,
        incarnation: uuid::Uuid,
    },
    BrokerFencing {
        id: i32,
        fenced: bool,
    },
    /// Producer ids below `next` are allocated (Kafka's ProducerIdsRecord).
    ProducerIds {
        next: i64,
    },
    /// One partition's placement and leadership, whole.
    Partition {
        topic: String,
        partition: i32,
        meta: PartitionMeta,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("metadata batch truncated")]
    Truncated,
    #[error("metadata batch version {0} is not known to this sluice")]
    Version(u8),
    #[error("unknown metadata record type {0}")]
    UnknownType(u8),
    #[error("unknown config scope {0}")]
    UnknownScope(u8),
    #[error("metadata string is not UTF-8")]
    Utf8,
    #[error("{0}")]
    Apply(String),
}

const CLUSTER_ID: u8 = 1;
const TOPIC: u8 = 2;
const REMOVE_TOPIC: u8 = 3;
const PARTITION_COUNT: u8 = 4;
const CONFIG: u8 = 5;
const REGISTER_BROKER: u8 = 6;
const BROKER_FENCING: u8 = 7;
const PARTITION: u8 = 8;
const PRODUCER_IDS: u8 = 9;
/// PARTITION followed by the adding and removing replicas of a
/// reassignment in progress (a partition without one is written as
/// PARTITION, so logs written before reassignments existed read the same).
const PARTITION_REASSIGNING: u8 = 10;

pub fn encode(records: &[MetadataRecord]) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_u8(BATCH_VERSION);
    b.put_u32(records.len() as u32);
    for r in records {
        match r {
            MetadataRecord::ClusterId(id) => {
                b.put_u8(CLUSTER_ID);
                put_str(&mut b, id);
            }
            MetadataRecord::Topic {
                name,
                id,
                partitions,
            } => {
                b.put_u8(TOPIC);
                put_str(&mut b, name);
                b.put_slice(id.as_bytes());
                b.put_i32(*partitions);
            }
            MetadataRecord::RemoveTopic { name, id } => {
                b.put_u8(REMOVE_TOPIC);
                put_str(&mut b, name);
                b.put_slice(id.as_bytes());
            }
            MetadataRecord::PartitionCount { topic, total } => {
                b.put_u8(PARTITION_COUNT);
                put_str(&mut b, topic);
                b.put_i32(*total);
            }
            MetadataRecord::Config {
                scope,
                name,
                key,
                value,
            } => {
                b.put_u8(CONFIG);
                b.put_u8(*scope as u8);
                put_str(&mut b, name);
                put_str(&mut b, key);
                match value {
                    Some(v) => {
                        b.put_u8(1);
                        put_str(&mut b, v);
                    }
                    None => b.put_u8(0),
                }
            }
            MetadataRecord::RegisterBroker {
                id,
                host,
                port,
                incarnation,
            } => {
                b.put_u8(REGISTER_BROKER);
                b.put_i32(*id);
                put_str(&mut b, host);
                b.put_u16(*port);
                b.put_slice(incarnation.as_bytes());
            }
            MetadataRecord::BrokerFencing { id, fenced } => {
                b.put_u8(BROKER_FENCING);
                b.put_i32(*id);
                b.put_u8(*fenced as u8);
            }
            MetadataRecord::ProducerIds { next } => {
                b.put_u8(PRODUCER_IDS);
                b.put_i64(*next);
            }
            MetadataRecord::Partition {
                topic,
                partition,
                meta,
            } => {
                b.put_u8(if meta.reassigning() {
                    PARTITION_REASSIGNING
                } else {
                    PARTITION
                });
                put_str(&mut b, topic);
                b.put_i32(*partition);
                for list in [&meta.replicas, &meta.isr] {
                    put_ids(&mut b, list);
                }
                b.put_i32(meta.leader);
                b.put_i32(meta.leader_epoch);
                b.put_i32(meta.partition_epoch);
                if meta.reassigning() {
                    put_ids(&mut b, &meta.adding);
                    put_ids(&mut b, &meta.removing);
                }
            }
        }
    }
    b
}

pub fn decode(mut b: &[u8]) -> Result<Vec<MetadataRecord>, RecordError> {
    let version = get_u8(&mut b)?;
    if version != BATCH_VERSION {
        return Err(RecordError::Version(version));
    }
    let count = get_u32(&mut b)?;
    // Each record takes at least 5 bytes: a lying count cannot allocate.
    let mut out = Vec::with_capacity((count as usize).min(b.len() / 5));
    for _ in 0..count {
        let r = match get_u8(&mut b)? {
            CLUSTER_ID => MetadataRecord::ClusterId(get_str(&mut b)?),
            TOPIC => MetadataRecord::Topic {
                name: get_str(&mut b)?,
                id: get_uuid(&mut b)?,
                partitions: get_u32(&mut b)? as i32,
            },
            REMOVE_TOPIC => MetadataRecord::RemoveTopic {
                name: get_str(&mut b)?,
                id: get_uuid(&mut b)?,
            },
            PARTITION_COUNT => MetadataRecord::PartitionCount {
                topic: get_str(&mut b)?,
                total: get_u32(&mut b)? as i32,
            },
            CONFIG => {
                let scope = match get_u8(&mut b)? {
                    2 => ConfigScope::Topic,
                    4 => ConfigScope::Broker,
                    32 => ConfigScope::Group,
                    s => return Err(RecordError::UnknownScope(s)),
                };
                let name = get_str(&mut b)?;
                let key = get_str(&mut b)?;
                let value = match get_u8(&mut b)? {
                    0 => None,
                    _ => Some(get_str(&mut b)?),
                };
                MetadataRecord::Config {
                    scope,
                    name,
                    key,
                    value,
                }
            }
            REGISTER_BROKER => MetadataRecord::RegisterBroker {
                id: get_u32(&mut b)? as i32,
                host: get_str(&mut b)?,
                port: {
                    let hi = get_u8(&mut b)? as u16;
                    (hi << 8) | get_u8(&mut b)? as u16
                },
                incarnation: get_uuid(&mut b)?,
            },
            BROKER_FENCING => MetadataRecord::BrokerFencing {
                id: get_u32(&mut b)? as i32,
                fenced: get_u8(&mut b)? != 0,
            },
            PRODUCER_IDS => {
                if b.remaining() < 8 {
                    return Err(RecordError::Truncated);
                }
                MetadataRecord::ProducerIds { next: b.get_i64() }
            }
            t @ (PARTITION | PARTITION_REASSIGNING) => {
                let topic = get_str(&mut b)?;
                let partition = get_u32(&mut b)? as i32;
                let replicas = get_ids(&mut b)?;
                let isr = get_ids(&mut b)?;
                let mut meta = PartitionMeta {
                    replicas,
                    isr,
                    leader: get_u32(&mut b)? as i32,
                    leader_epoch: get_u32(&mut b)? as i32,
                    partition_epoch: get_u32(&mut b)? as i32,
                    adding: Vec::new(),
                    removing: Vec::new(),
                };
                if t == PARTITION_REASSIGNING {
                    meta.adding = get_ids(&mut b)?;
                    meta.removing = get_ids(&mut b)?;
                }
                MetadataRecord::Partition {
                    topic,
                    partition,
                    meta,
                }
            }
            t => return Err(RecordError::UnknownType(t)),
        };
        out.push(r);
    }
    if !b.is_empty() {
        return Err(RecordError::Apply(format!(
            "{} bytes after the last metadata record",
            b.len()
        )));
    }
    Ok(out)
}

fn put_ids(b: &mut Vec<u8>, ids: &[i32]) {
    b.put_u32(ids.len() as u32);
    for id in ids {
        b.put_i32(*id);
    }
}

fn get_ids(b: &mut &[u8]) -> Result<Vec<i32>, RecordError> {
    let n = get_u32(b)? as usize;
    if b.remaining() < n.saturating_mul(4) {
        return Err(RecordError::Truncated);
    }
    Ok((0..n).map(|_| b.get_i32()).collect())
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.put_u32(s.len() as u32);
    b.put_slice(s.as_bytes());
}

fn get_u8(b: &mut &[u8]) -> Result<u8, RecordError> {
    if b.remaining() < 1 {
        return Err(RecordError::Truncated);
    }
    Ok(b.get_u8())
}

fn get_u32(b: &mut &[u8]) -> Result<u32, RecordError> {
    if b.remaining() < 4 {
        return Err(RecordError::Truncated);
    }
    Ok(b.get_u32())
}

fn get_str(b: &mut &[u8]) -> Result<String, RecordError> {
    let n = get_u32(b)? as usize;
    if b.remaining() < n {
        return Err(RecordError::Truncated);
    }
    let s = std::str::from_utf8(&b[..n])
        .map_err(|_| RecordError::Utf8)?
        .to_string();
    b.advance(n);
    Ok(s)
}

fn get_uuid(b: &mut &[u8]) -> Result<uuid::Uuid, RecordError> {
    if b.remaining() < 16 {
        return Err(RecordError::Truncated);
    }
    let id = uuid::Uuid::from_slice(&b[..16]).expect("16 bytes");
    b.advance(16);
    Ok(id)
}

/// The records that turn `old` into `new` (versions aside).
pub fn diff(old: &Catalog, new: &Catalog) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    if new.cluster_id != old.cluster_id {
        if let Some(id) = &new.cluster_id {
            out.push(MetadataRecord::ClusterId(id.clone()));
        }
    }
    if new.next_producer_id != old.next_producer_id {
        out.push(MetadataRecord::ProducerIds {
            next: new.next_producer_id,
        });
    }
    for (id, b) in &new.brokers {
        let before = old.brokers.get(id);
        let same_reg = before.is_some_and(|o| {
            (o.host.as_str(), o.port, o.incarnation) == (b.host.as_str(), b.port, b.incarnation)
        });
        if !same_reg {
            out.push(MetadataRecord::RegisterBroker {
                id: *id,
                host: b.host.clone(),
                port: b.port,
                incarnation: b.incarnation,
            });
        }
        // A registration unfences: say so when it should stay fenced.
        let fenced_before = if same_reg {
            before.is_some_and(|o| o.fenced)
        } else {
            false
        };
        if b.fenced != fenced_before {
            out.push(MetadataRecord::BrokerFencing {
                id: *id,
                fenced: b.fenced,
            });
        }
    }
    for (name, t) in &old.topics {
        if new.topics.get(name).is_none_or(|n| n.id != t.id) {
            out.push(MetadataRecord::RemoveTopic {
                name: name.clone(),
                id: t.id,
            });
        }
    }
    let no_configs = BTreeMap::new();
    for (name, t) in &new.topics {
        let before = old.topics.get(name).filter(|o| o.id == t.id);
        match before {
            None => out.push(MetadataRecord::Topic {
                name: name.clone(),
                id: t.id,
                partitions: t.partitions,
            }),
            Some(o) if o.partitions != t.partitions => out.push(MetadataRecord::PartitionCount {
                topic: name.clone(),
                total: t.partitions,
            }),
            Some(_) => {}
        }
        for (i, meta) in t.parts.iter().enumerate() {
            if before.and_then(|o| o.parts.get(i)) != Some(meta) {
                out.push(MetadataRecord::Partition {
                    topic: name.clone(),
                    partition: i as i32,
                    meta: meta.clone(),
                });
            }
        }
        let before = before.map_or(&no_configs, |o| &o.configs);
        config_diff(ConfigScope::Topic, name, before, &t.configs, &mut out);
    }
    for (scope, old_map, new_map) in [
        (
            ConfigScope::Broker,
            &old.broker_configs,
            &new.broker_configs,
        ),
        (ConfigScope::Group, &old.group_configs, &new.group_configs),
    ] {
        let names: std::collections::BTreeSet<&String> =
            old_map.keys().chain(new_map.keys()).collect();
        for name in names {
            let before = old_map.get(name).unwrap_or(&no_configs);
            let after = new_map.get(name).unwrap_or(&no_configs);
            config_diff(scope, name, before, after, &mut out);
        }
    }
    out
}

fn config_diff(
    scope: ConfigScope,
    name: &str,
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    out: &mut Vec<MetadataRecord>,
) {
    for k in before.keys() {
        if !after.contains_key(k) {
            out.push(MetadataRecord::Config {
                scope,
                name: name.to_string(),
                key: k.clone(),
                value: None,
            });
        }
    }
    for (k, v) in after {
        if before.get(k) != Some(v) {
            out.push(MetadataRecord::Config {
                scope,
                name: name.to_string(),
                key: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
}

/// Apply committed records to an image. A record that does not fit the image
/// (it names a topic that is not there) is an error for the whole batch, and
/// the image is left as it was: every broker replays the same log, so every
/// broker skips the same batch.
pub fn apply(image: &mut Catalog, records: &[MetadataRecord]) -> Result<(), RecordError> {
    let mut next = image.clone();
    for r in records {
        apply_one(&mut next, r).map_err(RecordError::Apply)?;
    }
    next.version = image.version;
    *image = next;
    Ok(())
}

fn apply_one(c: &mut Catalog, r: &MetadataRecord) -> Result<(), String> {
    match r {
        MetadataRecord::ClusterId(id) => match &c.cluster_id {
            Some(existing) if existing != id => {
                return Err(format!(
                    "cluster id {id} after the cluster was created as {existing}"
                ))
            }
            _ => c.cluster_id = Some(id.clone()),
        },
        MetadataRecord::Topic {
            name,
            id,
            partitions,
        } => {
            if c.topics.contains_key(name) {
                return Err(format!("topic {name} created twice"));
            }
            c.topics.insert(
                name.clone(),
                TopicMeta {
                    name: name.clone(),
                    id: *id,
                    partitions: *partitions,
                    configs: BTreeMap::new(),
                    parts: Vec::new(),
                },
            );
        }
        MetadataRecord::RemoveTopic { name, id } => match c.topics.get(name) {
            Some(t) if t.id == *id => {
                c.topics.remove(name);
            }
            _ => {
                return Err(format!(
                    "removal of topic {name} ({id}), which is not there"
                ))
            }
        },
        MetadataRecord::PartitionCount { topic, total } => match c.topics.get_mut(topic) {
            Some(t) if *total >= t.partitions => t.partitions = *total,
            Some(t) => {
                return Err(format!(
                    "topic {topic} cannot shrink from {} to {total} partitions",
                    t.partitions
                ))
            }
            None => return Err(format!("partitions of topic {topic}, which is not there")),
        },
        MetadataRecord::Config {
            scope,
            name,
            key,
            value,
        } => {
            let map = match scope {
                ConfigScope::Topic => match c.topics.get_mut(name) {
                    Some(t) => &mut t.configs,
                    None => return Err(format!("config of topic {name}, which is not there")),
                },
                ConfigScope::Broker => c.broker_configs.entry(name.clone()).or_default(),
                ConfigScope::Group => c.group_configs.entry(name.clone()).or_default(),
            };
            match value {
                Some(v) => {
                    map.insert(key.clone(), v.clone());
                }
                None => {
                    map.remove(key);
                }
            }
            // An emptied scope disappears, as the controller's edits leave it.
            c.broker_configs.retain(|_, m| !m.is_empty());
            c.group_configs.retain(|_, m| !m.is_empty());
        }
        MetadataRecord::RegisterBroker {
            id,
            host,
            port,
            incarnation,
        } => {
            c.brokers.insert(
                *id,
                BrokerReg {
                    id: *id,
                    host: host.clone(),
                    port: *port,
                    incarnation: *incarnation,
                    fenced: false,
                },
            );
        }
        MetadataRecord::ProducerIds { next } => {
            if *next < c.next_producer_id {
                return Err(format!(
                    "producer ids would go back from {} to {next}",
                    c.next_producer_id
                ));
            }
            c.next_producer_id = *next;
        }
        MetadataRecord::BrokerFencing { id, fenced } => match c.brokers.get_mut(id) {
            Some(b) => b.fenced = *fenced,
            None => return Err(format!("fencing of broker {id}, which is not registered")),
        },
        MetadataRecord::Partition {
            topic,
            partition,
            meta,
        } => {
            let Some(t) = c.topics.get_mut(topic) else {
                return Err(format!(
                    "partition {partition} of topic {topic}, which is not there"
                ));
            };
            let i = *partition as usize;
            if *partition < 0 || *partition >= t.partitions || i > t.parts.len() {
                return Err(format!(
                    "partition {partition} of topic {topic}, which has {} ({} placed)",
                    t.partitions,
                    t.parts.len()
                ));
            }
            if i == t.parts.len() {
                t.parts.push(meta.clone());
            } else {
                t.parts[i] = meta.clone();
            }
        }
    }
    Ok(())
}

/// The image as a snapshot's payload: the records that rebuild it.
pub fn encode_image(image: &Catalog) -> Vec<u8> {
    encode(&diff(&Catalog::default(), image))
}

/// Rebuild an image from a snapshot's payload (empty: the empty image).
pub fn decode_image(data: &[u8], version: u64) -> Result<Catalog, RecordError> {
    let mut image = Catalog::default();
    if !data.is_empty() {
        apply(&mut image, &decode(data)?)?;
    }
    image.version = version;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Catalog {
        let mut c = Catalog::default();
        c.cluster_id = Some("clu-ster_id".into());
        c.next_producer_id = 4000;
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        configs.insert("cleanup.policy".to_string(), "delete".to_string());
        for (name, p) in [("a-b.c", 3), ("orders", 1)] {
            c.topics.insert(
                name.into(),
                TopicMeta {
                    name: name.into(),
                    id: uuid::Uuid::new_v4(),
                    partitions: p,
                    configs: configs.clone(),
                    parts: (0..p)
                        .map(|i| PartitionMeta::new(vec![1 + i % 2, 2 - i % 2]))
                        .collect(),
                },
            );
        }
        for id in [1, 2] {
            c.brokers.insert(
                id,
                BrokerReg {
                    id,
                    host: "127.0.0.1".into(),
                    port: 9090 + id as u16,
                    incarnation: uuid::Uuid::new_v4(),
                    fenced: id == 2,
                },
            );
        }
        c.broker_configs.insert("".into(), configs.clone());
        c.broker_configs.insert("2".into(), configs.clone());
        c.group_configs.insert("my group ∆".into(), configs);
        c
    }

    #[test]
    fn every_record_round_trips() {
        let records = vec![
            MetadataRecord::ClusterId("x".into()),
            MetadataRecord::Topic {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
                partitions: 7,
            },
            MetadataRecord::RemoveTopic {
                name: "t".into(),
                id: uuid::Uuid::new_v4(),
            },
            MetadataRecord::PartitionCount {
                topic: "t".into(),
                total: 9,
            },
            MetadataRecord::Config {
                scope: ConfigScope::Group,
                name: "g h".into(),
                key: "k".into(),
                value: Some("".into()),
            },
            MetadataRecord::Config {
                scope: ConfigScope::Broker,
                name: "".into(),
                key: "k".into(),
                value: None,
            },
            MetadataRecord::RegisterBroker {
                id: 3,
                host: "h".into(),
                port: 65535,
                incarnation: uuid::Uuid::new_v4(),
            },
            MetadataRecord::BrokerFencing {
                id: 3,
                fenced: true,
            },
            MetadataRecord::Partition {
                topic: "t".into(),
                partition: 4,
                meta: PartitionMeta {
                    replicas: vec![1, 2, 3],
                    isr: vec![2],
                    leader: -1,
                    leader_epoch: 7,
                    partition_epoch: 9,
                    ..Default::default()
                },
            },
            MetadataRecord::Partition {
                topic: "t".into(),
                partition: 5,
                meta: PartitionMeta {
                    replicas: vec![4, 2, 1],
                    isr: vec![1, 2],
                    leader: 1,
                    leader_epoch: 2,
                    partition_epoch: 3,
                    adding: vec![4],
                    removing: vec![1],
                },
            },
        ];
        assert_eq!(decode(&encode(&records)).unwrap(), records);
    }

    #[test]
    fn truncated_or_unknown_input_is_an_error_not_a_panic() {
        let bytes = encode(&[MetadataRecord::ClusterId("abc".into())]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut v = bytes.clone();
        v[0] = 9;
        assert_eq!(decode(&v), Err(RecordError::Version(9)));
        let mut v = bytes.clone();
        v[5] = 200;
        assert_eq!(decode(&v), Err(RecordError::UnknownType(200)));
        let mut v = bytes;
        v.push(0);
        assert!(decode(&v).is_err());
        // A huge count with no records behind it.
        assert_eq!(
            decode(&[0, 255, 255, 255, 255]),
            Err(RecordError::Truncated)
        );
    }

    #[test]
    fn the_image_round_trips_through_its_snapshot_records() {
        let c = sample();
        let back = decode_image(&encode_image(&c), 42).unwrap();
        assert_eq!(back.version, 42);
        let mut want = c.clone();
        want.version = 42;
        assert_eq!(want, back);
    }

    #[test]
    fn replaying_the_diff_gives_the_edited_image() {
        let old = sample();
        let mut new = old.clone();
        new.topics.remove("orders");
        let t = new.topics.get_mut("a-b.c").unwrap();
        t.partitions = 5;
        t.configs.remove("retention.ms");
        t.configs.insert("segment.bytes".into(), "1048576".into());
        new.topics.insert(
            "fresh".into(),
            TopicMeta {
                name: "fresh".into(),
                id: uuid::Uuid::new_v4(),
                partitions: 2,
                configs: BTreeMap::new(),
                parts: vec![PartitionMeta::new(vec![2]), PartitionMeta::new(vec![1])],
            },
        );
        // A leader fenced, its partition moved, another broker re-registered.
        new.brokers.get_mut(&1).unwrap().fenced = true;
        let p0 = &new.topics["a-b.c"].parts[0];
        let moved = p0.with_leader(2, vec![2]);
        new.topics.get_mut("a-b.c").unwrap().parts[0] = moved;
        new.topics
            .get_mut("a-b.c")
            .unwrap()
            .parts
            .extend([PartitionMeta::new(vec![2]), PartitionMeta::new(vec![1])]);
        new.brokers.get_mut(&2).unwrap().incarnation = uuid::Uuid::new_v4();
        new.brokers.get_mut(&2).unwrap().port = 9999;
        new.next_producer_id += 1000;
        new.broker_configs.remove("2");
        new.group_configs
            .get_mut("my group ∆")
            .unwrap()
            .insert("x".into(), "y".into());
        let records = diff(&old, &new);
        let mut replayed = old.clone();
        apply(&mut replayed, &decode(&encode(&records)).unwrap()).unwrap();
        assert_eq!(replayed, new);
        // A topic deleted and created again under its name is a new topic.
        let mut again = new.clone();
        again.topics.get_mut("fresh").unwrap().id = uuid::Uuid::new_v4();
        let mut replayed = new.clone();
        apply(&mut replayed, &diff(&new, &again)).unwrap();
        assert_eq!(replayed, again);
    }

    #[test]
    fn a_batch_that_does_not_fit_changes_nothing() {
        let mut c = sample();
        let before = c.clone();
        let bad = [
            MetadataRecord::PartitionCount {
                topic: "orders".into(),
                total: 4,
            },
            MetadataRecord::RemoveTopic {
                name: "nope".into(),
                id: uuid::Uuid::nil(),
            },
        ];
        assert!(apply(&mut c, &bad).is_err());
        assert_eq!(c, before);
        assert!(apply(&mut c, &[MetadataRecord::ClusterId("other".into())]).is_err());
    }
}
