//! The versioned topic catalogue, and its file `cluster.metadata` in the log dir.

use std::collections::BTreeMap;
use std::path::Path;

use crate::storage::format;
use crate::storage::log::write_atomically;

pub const CATALOG_FILE: &str = "cluster.metadata";

#[derive(Clone, Debug, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: uuid::Uuid,
    pub partitions: i32,
    /// Topic-level overrides only (Kafka's DYNAMIC_TOPIC_CONFIG).
    pub configs: BTreeMap<String, String>,
}

/// Scope of dynamic broker configs that applies to every broker (Kafka's
/// empty broker name, `--entity-default`).
pub const CLUSTER_DEFAULT: &str = "";

#[derive(Debug, Default)]
pub struct Catalog {
    pub version: u64,
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
            && self.topics == other.topics
            && self.broker_configs == other.broker_configs
            && self.group_configs == other.group_configs
    }
}

impl Catalog {
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

    /// Line format: `version N`, then `topic <name> <id> <partitions>` and
    /// `config <name> <key> <value>` lines. Topic names cannot hold spaces.
    pub fn encode(&self) -> String {
        let mut s = format!("version {}\n", self.version);
        for t in self.topics.values() {
            s.push_str(&format!(
                "topic {} {} {}\n",
                t.name,
                format::base64_url(t.id.as_bytes()),
                t.partitions
            ));
            for (k, v) in &t.configs {
                s.push_str(&format!("config {} {} {}\n", t.name, k, v));
            }
        }
        for (scope, configs) in &self.broker_configs {
            // "-" stands for the cluster-wide default scope (an empty name).
            let scope = if scope.is_empty() {
                "-"
            } else {
                scope.as_str()
            };
            for (k, v) in configs {
                s.push_str(&format!("brokerconfig {scope} {k} {v}\n"));
            }
        }
        for (group, configs) in &self.group_configs {
            // Group ids may hold spaces: written in base64.
            let g = format::base64_url(group.as_bytes());
            for (k, v) in configs {
                s.push_str(&format!("groupconfig {g} {k} {v}\n"));
            }
        }
        s
    }

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

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        write_atomically(&dir.join(CATALOG_FILE), self.encode().as_bytes())
    }

    /// Load the catalogue, then add any partition directory it does not know
    /// (a lost or older catalogue must not hide data on disk).
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let mut c = match std::fs::read_to_string(dir.join(CATALOG_FILE)) {
            Ok(text) => Catalog::decode(&text)
                .ok_or_else(|| std::io::Error::other("corrupt cluster.metadata"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Catalog::default(),
            Err(e) => return Err(e),
        };
        for entry in std::fs::read_dir(dir)?.flatten() {
            let Some((topic, p)) = entry
                .file_name()
                .to_str()
                .and_then(format::parse_partition_dir)
            else {
                continue;
            };
            if !entry.path().is_dir() || !valid_topic_name(&topic) {
                continue;
            }
            let id = std::fs::read_to_string(entry.path().join(format::PARTITION_METADATA_FILE))
                .ok()
                .and_then(|s| format::decode_partition_metadata(&s));
            let t = c.topics.entry(topic.clone()).or_insert_with(|| {
                tracing::warn!(
                    topic,
                    "found on disk but not in cluster.metadata; adopting it"
                );
                TopicMeta {
                    name: topic.clone(),
                    id: id.unwrap_or_else(uuid::Uuid::new_v4),
                    partitions: 0,
                    configs: BTreeMap::new(),
                }
            });
            t.partitions = t.partitions.max(p + 1);
        }
        Ok(c)
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

    #[test]
    fn catalog_round_trip() {
        let mut c = Catalog {
            version: 7,
            ..Default::default()
        };
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        c.topics.insert(
            "a-b.c".into(),
            TopicMeta {
                name: "a-b.c".into(),
                id: uuid::Uuid::new_v4(),
                partitions: 3,
                configs,
            },
        );
        let mut default = BTreeMap::new();
        default.insert("log.retention.ms".to_string(), "5000".to_string());
        c.broker_configs
            .insert(CLUSTER_DEFAULT.into(), default.clone());
        c.broker_configs.insert("1".into(), default);
        let mut g = BTreeMap::new();
        g.insert(
            "consumer.session.timeout.ms".to_string(),
            "50000".to_string(),
        );
        c.group_configs.insert("my group ∆".into(), g);
        assert_eq!(Catalog::decode(&c.encode()), Some(c));
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
