//! The versioned metadata image: topics, configs and the cluster id, as the
//! committed metadata log (`cluster::records`) builds it. Its version is the
//! index of the last log entry applied. `cluster.metadata`, the text file
//! earlier sluice kept it in, is read once to migrate it into the log.

use std::collections::BTreeMap;
use std::path::Path;

use crate::storage::format;

/// The catalogue file of sluice before the metadata log (migrated on start).
pub const LEGACY_CATALOG_FILE: &str = "cluster.metadata";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
    /// Topic-level overrides only (Kafka's DYNAMIC_TOPIC_CONFIG).
    pub configs: BTreeMap<String, String>,
    /// Placement and leadership of each partition, by index (as many as
    /// `partitions` in the image; stand-ins for config results have none).
    pub parts: Vec<PartitionMeta>,
}

/// One partition's replicas and leadership (Kafka's PartitionRecord).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionMeta {
    /// Broker ids; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas: the leader and the followers caught up with it
    /// (kept true by the leader's AlterIsr changes, and by fencing).
    pub isr: Vec<i32>,
    /// -1: no leader (the partition is offline).
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped by every change of this partition.
    pub partition_epoch: i32,
    /// A reassignment in progress (KIP-455): replicas being added (they are
    /// in `replicas` already, and join the ISR as they catch up) and
    /// replicas to be removed once every target replica is in sync. Both
    /// empty when none is.
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

pub const NO_LEADER: i32 = -1;

impl PartitionMeta {
    /// A new partition on `replicas` (all live), led by the first. Every
    /// replica of an empty log is in sync, as in Kafka.
    pub fn new(replicas: Vec<i32>) -> Self {
        let leader = replicas.first().copied().unwrap_or(NO_LEADER);
        PartitionMeta {
            isr: replicas.clone(),
            replicas,
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// A leadership change: epochs move on.
    pub fn with_leader(&self, leader: i32, isr: Vec<i32>) -> Self {
        PartitionMeta {
            replicas: self.replicas.clone(),
            isr,
            leader,
            leader_epoch: self.leader_epoch + 1,
            partition_epoch: self.partition_epoch + 1,
            adding: self.adding.clone(),
            removing: self.removing.clone(),
        }
    }
}

/// A registered broker (Kafka's RegisterBrokerRecord, with its fencing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerReg {
    pub id: i32,
    /// The client endpoint it advertises.
    pub host: String,
    pub port: u16,
    /// Changes with every start of the process.
    pub incarnation: uuid::Uuid,
    /// Missed its session (or is shut down): not listed, leads nothing.
    pub fenced: bool,
}

/// Kafka's name of the metadata log's topic (its directory is
/// `__cluster_metadata-0`): no user topic may take it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// Scope of dynamic broker configs that applies to every broker (Kafka's
/// empty broker name, `--entity-default`).
pub const CLUSTER_DEFAULT: &str = "";

#[derive(Debug, Default)]
pub struct Catalog {
    pub version: u64,
    /// Set by the first record of a new cluster's log.
    pub cluster_id: Option<String>,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerReg>,
    /// The first producer id of the next block to allocate.
    pub next_producer_id: i64,
    pub topics: BTreeMap<String, TopicMeta>,
    /// Dynamic broker configs (AlterConfigs on BROKER resources), by scope:
    /// CLUSTER_DEFAULT or a broker id.
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// KIP-848 group configs (AlterConfigs on GROUP resources), by group.
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Topic id → name, built on first use: Produce and Fetch v13+ name
    /// topics by id on every request.
    ids: std::cell::OnceCell<std::collections::HashMap<uuid::Uuid, String>>,
}

impl Clone for Catalog {
    fn clone(&self) -> Self {
        // A clone is usually edited next: it builds its own index.
        Catalog {
            version: self.version,
            cluster_id: self.cluster_id.clone(),
            brokers: self.brokers.clone(),
            next_producer_id: self.next_producer_id,
            topics: self.topics.clone(),
            broker_configs: self.broker_configs.clone(),
            group_configs: self.group_configs.clone(),
            ids: std::cell::OnceCell::new(),
        }
    }
}

impl PartialEq for Catalog {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
            && self.cluster_id == other.cluster_id
            && self.brokers == other.brokers
            && self.next_producer_id == other.next_producer_id
            && self.topics == other.topics
            && self.broker_configs == other.broker_configs
            && self.group_configs == other.group_configs
    }
}

impl Catalog {
    /// Partitions with no placement yet (migrated or adopted from disk)
    /// are placed on `broker`, which holds them.
    pub fn place_unplaced_on(&mut self, broker: i32) {
        for t in self.topics.values_mut() {
            while t.parts.len() < t.partitions as usize {
                t.parts.push(PartitionMeta::new(vec![broker]));
            }
        }
    }

    /// Registered, unfenced brokers, by id.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.id)
            .collect()
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMeta> {
        let t = self.topics.get(topic)?;
        usize::try_from(partition).ok().and_then(|p| t.parts.get(p))
    }

    /// The partitions `broker` leads, as (topic, partition).
    pub fn led_by(&self, broker: i32) -> impl Iterator<Item = (&str, i32)> {
        self.topics.values().flat_map(move |t| {
            t.parts
                .iter()
                .enumerate()
                .filter(move |(_, p)| p.leader == broker)
                .map(move |(i, _)| (t.name.as_str(), i as i32))
        })
    }

    /// The dynamic configs that apply to `broker_id`: the cluster default,
    /// then the broker's own (which win), in order.
    pub fn dynamic_configs_for(&self, broker_id: i32) -> Vec<(String, String)> {
        let own = broker_id.to_string();
        [CLUSTER_DEFAULT, own.as_str()]
            .iter()
            .filter_map(|s| self.broker_configs.get(*s))
            .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect()
    }

    pub fn by_id(&self, id: uuid::Uuid) -> Option<&TopicMeta> {
        let ids = self.ids.get_or_init(|| {
            self.topics
                .values()
                .map(|t| (t.id, t.name.clone()))
                .collect()
        });
        match ids.get(&id).and_then(|n| self.topics.get(n)) {
            Some(t) if t.id == id => Some(t),
            // `topics` changed after the index was built: scan.
            _ => self.topics.values().find(|t| t.id == id),
        }
    }

    /// The legacy text format: `version N`, then `topic <name> <id>
    /// <partitions>`, `config <name> <key> <value>`, `brokerconfig <scope>
    /// <key> <value>` ("-" for the cluster default) and `groupconfig
    /// <base64 group> <key> <value>` lines.
    pub fn decode(text: &str) -> Option<Self> {
        let mut c = Catalog::default();
        for line in text.lines() {
            let mut it = line.splitn(4, ' ');
            match it.next()? {
                "version" => c.version = it.next()?.parse().ok()?,
                "topic" => {
                    let name = it.next()?.to_string();
                    let id = uuid::Uuid::from_slice(&format::unbase64_url(it.next()?)?).ok()?;
                    let partitions = it.next()?.parse().ok()?;
                    c.topics.insert(
                        name.clone(),
                        TopicMeta {
                            name,
                            id,
                            partitions,
                            configs: BTreeMap::new(),
                            parts: Vec::new(),
                        },
                    );
                }
                "config" => {
                    let (name, k, v) = (it.next()?, it.next()?, it.next().unwrap_or(""));
                    c.topics
                        .get_mut(name)?
                        .configs
                        .insert(k.to_string(), v.to_string());
                }
                "brokerconfig" => {
                    let (scope, k, v) = (it.next()?, it.next()?, it.next().unwrap_or(""));
                    let scope = if scope == "-" { CLUSTER_DEFAULT } else { scope };
                    c.broker_configs
                        .entry(scope.to_string())
                        .or_default()
                        .insert(k.to_string(), v.to_string());
                }
                "groupconfig" => {
                    let (g, k, v) = (it.next()?, it.next()?, it.next().unwrap_or(""));
                    let group = String::from_utf8(format::unbase64_url(g)?).ok()?;
                    c.group_configs
                        .entry(group)
                        .or_default()
                        .insert(k.to_string(), v.to_string());
                }
                "" => {}
                _ => return None,
            }
        }
        Some(c)
    }

    /// The legacy `cluster.metadata` of `dir`, if there is one.
    pub fn load_legacy(dir: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read_to_string(dir.join(LEGACY_CATALOG_FILE)) {
            Ok(text) => Catalog::decode(&text).map(Some).ok_or_else(|| {
                std::io::Error::other(format!(
                    "{} is corrupt",
                    dir.join(LEGACY_CATALOG_FILE).display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Add every partition directory of `dir` that the image does not know
    /// (a lost or older catalogue must not hide data on disk); true if any.
    pub fn adopt_partition_dirs(&mut self, dir: &Path) -> std::io::Result<bool> {
        let before = self.clone();
        let c = self;
        for entry in std::fs::read_dir(dir)?.flatten() {
            let Some((topic, p)) = entry
                .file_name()
                .to_str()
                .and_then(format::parse_partition_dir)
            else {
                continue;
            };
            if !entry.path().is_dir() || !valid_topic_name(&topic) || topic == METADATA_TOPIC {
                continue;
            }
            let id = std::fs::read_to_string(entry.path().join(format::PARTITION_METADATA_FILE))
                .ok()
                .and_then(|s| format::decode_partition_metadata(&s));
            let t = c.topics.entry(topic.clone()).or_insert_with(|| {
                tracing::warn!(
                    topic,
                    "found on disk but not in the cluster metadata; adopting it"
                );
                TopicMeta {
                    name: topic.clone(),
                    id: id.unwrap_or_else(uuid::Uuid::new_v4),
                    partitions: 0,
                    configs: BTreeMap::new(),
                    parts: Vec::new(),
                }
            });
            t.partitions = t.partitions.max(p + 1);
        }
        Ok(*c != before)
    }
}

/// Kafka's rule: 1..=249 chars of [a-zA-Z0-9._-], not "." or "..".
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the last sluice without a metadata log wrote.
    #[test]
    fn legacy_catalog_file_reads() {
        let id = uuid::Uuid::new_v4();
        let g = format::base64_url("my group ∆".as_bytes());
        let text = format!(
            "version 7\ntopic a-b.c {} 3\nconfig a-b.c retention.ms 1000\n\
             brokerconfig - log.retention.ms 5000\nbrokerconfig 1 log.retention.ms 5000\n\
             groupconfig {g} consumer.session.timeout.ms 50000\n",
            format::base64_url(id.as_bytes())
        );
        let c = Catalog::decode(&text).unwrap();
        assert_eq!(c.version, 7);
        let t = &c.topics["a-b.c"];
        assert_eq!((t.id, t.partitions), (id, 3));
        assert_eq!(t.configs["retention.ms"], "1000");
        assert_eq!(
            c.broker_configs[CLUSTER_DEFAULT]["log.retention.ms"],
            "5000"
        );
        assert_eq!(c.broker_configs["1"]["log.retention.ms"], "5000");
        assert_eq!(
            c.group_configs["my group ∆"]["consumer.session.timeout.ms"],
            "50000"
        );
        assert_eq!(Catalog::decode("bogus line"), None);
    }

    #[test]
    fn partition_dirs_are_adopted_but_not_the_metadata_log() {
        let dir = tempfile::tempdir().unwrap();
        for d in [crate::quorum::METADATA_DIR, "t-0", "t-2", "not a topic-0"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let mut c = Catalog::default();
        assert!(c.adopt_partition_dirs(dir.path()).unwrap());
        assert_eq!(c.topics.keys().collect::<Vec<_>>(), ["t"]);
        assert_eq!(c.topics["t"].partitions, 3);
        assert!(!c.adopt_partition_dirs(dir.path()).unwrap(), "nothing new");
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic_name("orders_v1.2-x"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name("has space"));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }
}
