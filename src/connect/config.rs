//! The worker's and the connectors' configuration, from Kafka's own files:
//! a worker `.properties` file and connector `.properties` or JSON files.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use super::converter::Converter;
use super::ConfigError;

/// `offset.flush.interval.ms` default (Kafka's WorkerConfig).
const DEFAULT_OFFSET_FLUSH_INTERVAL_MS: u64 = 60_000;
/// Kafka's `listeners` default for the REST server.
const DEFAULT_REST_PORT: u16 = 8083;

/// Reads a `.properties` file (Java's format, as the broker reads its own).
pub fn read_properties(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    Ok(crate::config::parse_properties(&text))
}

fn required<'a>(props: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, ConfigError> {
    props
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ConfigError(format!(
                "Missing required configuration \"{key}\" which has no default value."
            ))
        })
}

fn number<T: std::str::FromStr>(
    props: &BTreeMap<String, String>,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match props.get(key) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            ConfigError(format!(
                "Invalid value {v} for configuration {key}: Not a number of the right type"
            ))
        }),
    }
}

/// Worker keys sluice reads.
const WORKER_KEYS: [&str; 8] = [
    "bootstrap.servers",
    "key.converter",
    "value.converter",
    "offset.storage.file.filename",
    "offset.flush.interval.ms",
    "listeners",
    "rest.port",
    "rest.host.name",
];
/// `consumer.` overrides the sink tasks' consumers take.
const CONSUMER_KEYS: [&str; 2] = [
    "consumer.session.timeout.ms",
    "consumer.heartbeat.interval.ms",
];
/// Kafka's consumer defaults.
const DEFAULT_SESSION_TIMEOUT_MS: i32 = 45_000;
const DEFAULT_HEARTBEAT_INTERVAL_MS: u64 = 3_000;

/// Worker keys that are Kafka's but mean nothing here: accepted, noted once.
const WORKER_IGNORED: [&str; 8] = [
    "plugin.path",
    "offset.flush.timeout.ms",
    "header.converter",
    "internal.key.converter",
    "internal.value.converter",
    "task.shutdown.graceful.timeout.ms",
    "rest.advertised.host.name",
    "rest.advertised.port",
];

/// `connect-standalone.properties`.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub bootstrap_servers: String,
    pub key_converter: Converter,
    pub value_converter: Converter,
    pub offset_file: PathBuf,
    pub offset_flush_interval_ms: u64,
    /// REST listeners (http only).
    pub rest_listeners: Vec<SocketAddr>,
    /// `client.id` prefix for the worker's clients.
    pub client_id: String,
    /// `consumer.session.timeout.ms`: how soon a sink task of a dead
    /// worker leaves its group.
    pub consumer_session_timeout_ms: i32,
    /// `consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_interval_ms: u64,
}

impl WorkerConfig {
    pub fn from_props(props: &BTreeMap<String, String>) -> Result<WorkerConfig, ConfigError> {
        let bootstrap_servers = props
            .get("bootstrap.servers")
            .map_or("localhost:9092", |s| s.trim())
            .to_string();
        required(props, "key.converter")?;
        required(props, "value.converter")?;
        let key_converter = Converter::configure(props, "key.converter")?.expect("required above");
        let value_converter =
            Converter::configure(props, "value.converter")?.expect("required above");
        let offset_file = PathBuf::from(required(props, "offset.storage.file.filename")?);
        let offset_flush_interval_ms = number(
            props,
            "offset.flush.interval.ms",
            DEFAULT_OFFSET_FLUSH_INTERVAL_MS,
        )?;
        let rest_listeners = rest_listeners(props)?;
        for key in props.keys() {
            let known = WORKER_KEYS.contains(&key.as_str())
                || key.starts_with("key.converter.")
                || key.starts_with("value.converter.")
                || key == "client.id"
                || CONSUMER_KEYS.contains(&key.as_str());
            if known {
                continue;
            }
            if WORKER_IGNORED
                .iter()
                .any(|k| key == k || key.starts_with(&format!("{k}.")))
            {
                tracing::info!(
                    "worker setting {key} is Kafka's but has no effect in sluice; ignored"
                );
            } else if key.starts_with("producer.") || key.starts_with("consumer.") {
                tracing::warn!(
                    "worker setting {key}: of the client overrides only {} are supported; ignored",
                    CONSUMER_KEYS.join(", ")
                );
            } else {
                tracing::warn!("unknown worker setting {key}; ignored");
            }
        }
        Ok(WorkerConfig {
            bootstrap_servers,
            key_converter,
            value_converter,
            offset_file,
            offset_flush_interval_ms,
            rest_listeners,
            client_id: props
                .get("client.id")
                .cloned()
                .unwrap_or_else(|| "connect".into()),
            consumer_session_timeout_ms: number(
                props,
                "consumer.session.timeout.ms",
                DEFAULT_SESSION_TIMEOUT_MS,
            )?,
            consumer_heartbeat_interval_ms: number(
                props,
                "consumer.heartbeat.interval.ms",
                DEFAULT_HEARTBEAT_INTERVAL_MS,
            )?,
        })
    }
}

/// `listeners` (`http://HOST:PORT,...`; an empty host is every interface),
/// else the old `rest.host.name` / `rest.port`, else `http://:8083`.
fn rest_listeners(props: &BTreeMap<String, String>) -> Result<Vec<SocketAddr>, ConfigError> {
    let list: Vec<String> = match props.get("listeners") {
        Some(l) => l
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => {
            let host = props.get("rest.host.name").map_or("", |h| h.trim());
            let port = number(props, "rest.port", DEFAULT_REST_PORT)?;
            vec![format!("http://{host}:{port}")]
        }
    };
    if list.is_empty() {
        return Err(ConfigError("listeners is empty".into()));
    }
    let mut out = Vec::new();
    for l in list {
        let Some((scheme, rest)) = l.split_once("://") else {
            return Err(ConfigError(format!(
                "Invalid value {l} for configuration listeners: expected http://HOST:PORT"
            )));
        };
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(ConfigError(format!(
                "listeners: {scheme}:// is not supported by sluice's Connect REST server (http only)"
            )));
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| ConfigError(format!("listeners: {l} has no port")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = if host.is_empty() { "0.0.0.0" } else { host };
        let port: u16 = port
            .parse()
            .map_err(|_| ConfigError(format!("listeners: bad port in {l}")))?;
        let addr = (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| ConfigError(format!("listeners: cannot resolve {host}")))?;
        out.push(addr);
    }
    Ok(out)
}

/// Reads a connector file: `.properties`, or JSON (`{"name":..,"config":{..}}`
/// as the REST API takes it, or the flat config object), as Kafka does.
pub fn read_connector_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !is_json {
        return read_properties(path);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ConfigError(format!("{} is not valid JSON: {e}", path.display())))?;
    connector_from_json(&json).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
}

/// A connector configuration from JSON (string, number or boolean values).
pub fn connector_from_json(
    json: &serde_json::Value,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let obj = json
        .as_object()
        .ok_or_else(|| ConfigError("a connector configuration must be a JSON object".into()))?;
    let (name, config) = match obj.get("config") {
        Some(c) => (obj.get("name"), c),
        None => (None, json),
    };
    let mut out = BTreeMap::new();
    for (k, v) in config
        .as_object()
        .ok_or_else(|| ConfigError("\"config\" must be a JSON object".into()))?
    {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Null => continue,
            _ => return Err(ConfigError(format!("{k}: expected a string value"))),
        };
        out.insert(k.clone(), v);
    }
    if let Some(name) = name.and_then(|n| n.as_str()) {
        if let Some(inner) = out.get("name") {
            if inner != name {
                return Err(ConfigError(format!(
                    "Connector name configuration ({inner}) doesn't match connector name in the URL ({name})"
                )));
            }
        }
        out.insert("name".into(), name.to_string());
    }
    Ok(out)
}

/// Settings every connector has (Kafka's ConnectorConfig).
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub class: String,
    pub tasks_max: u32,
    /// Overrides of the worker's converters.
    pub key_converter: Option<Converter>,
    pub value_converter: Option<Converter>,
    /// Everything as given (for `GET /connectors/{name}/config`).
    pub props: BTreeMap<String, String>,
}

/// Keys every connector may carry.
pub const COMMON_KEYS: [&str; 5] = [
    "name",
    "connector.class",
    "tasks.max",
    "key.converter",
    "value.converter",
];

impl ConnectorConfig {
    pub fn from_props(props: BTreeMap<String, String>) -> Result<ConnectorConfig, ConfigError> {
        let name = required(&props, "name")?.to_string();
        if name.contains('/') {
            return Err(ConfigError(format!(
                "connector name {name} may not contain '/'"
            )));
        }
        let class = required(&props, "connector.class")?.to_string();
        let tasks_max: u32 = number(&props, "tasks.max", 1)?;
        if tasks_max == 0 {
            return Err(ConfigError(
                "Invalid value 0 for configuration tasks.max: Value must be at least 1".into(),
            ));
        }
        if props
            .get("transforms")
            .is_some_and(|t| !t.trim().is_empty())
        {
            return Err(ConfigError(format!(
                "connector {name}: transforms (single message transforms) are not supported by sluice"
            )));
        }
        let key_converter = Converter::configure(&props, "key.converter")?;
        let value_converter = Converter::configure(&props, "value.converter")?;
        Ok(ConnectorConfig {
            name,
            class,
            tasks_max,
            key_converter,
            value_converter,
            props,
        })
    }

    /// A connector setting.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(String::as_str)
    }

    /// Warns about keys neither common nor in `known` (the connector's own).
    pub fn warn_unknown(&self, known: &[&str]) {
        for key in self.props.keys() {
            let ok = COMMON_KEYS.contains(&key.as_str())
                || known.contains(&key.as_str())
                || key.starts_with("key.converter.")
                || key.starts_with("value.converter.")
                || key.starts_with("errors.")
                || key == "transforms"
                || key == "header.converter"
                || key == "config.action.reload";
            if !ok {
                tracing::warn!("connector {}: unknown setting {key}; ignored", self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafkas_sample_worker_file() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/connect-standalone.properties"),
        )
        .unwrap();
        let w = WorkerConfig::from_props(&crate::config::parse_properties(&text)).unwrap();
        assert_eq!(w.bootstrap_servers, "localhost:9092");
        assert_eq!(w.offset_file, PathBuf::from("/tmp/connect.offsets"));
        assert_eq!(w.offset_flush_interval_ms, 10_000);
        assert_eq!(w.rest_listeners, vec!["0.0.0.0:8083".parse().unwrap()]);
    }

    #[test]
    fn a_missing_required_key_is_named() {
        let e =
            WorkerConfig::from_props(&props(&[("key.converter", "JsonConverter")])).unwrap_err();
        assert!(e.0.contains("\"value.converter\""), "{e}");
        let e = ConnectorConfig::from_props(props(&[("name", "x")])).unwrap_err();
        assert!(e.0.contains("\"connector.class\""), "{e}");
        let w = props(&[
            ("key.converter", "JsonConverter"),
            ("value.converter", "JsonConverter"),
            ("offset.storage.file.filename", "/tmp/o"),
            ("listeners", "https://:8443"),
        ]);
        assert!(WorkerConfig::from_props(&w)
            .unwrap_err()
            .0
            .contains("http only"));
    }

    #[test]
    fn connector_json_in_both_shapes() {
        let nested: serde_json::Value = serde_json::from_str(
            r#"{"name":"s","config":{"connector.class":"FileStreamSource","tasks.max":1,"topic":"t"}}"#,
        )
        .unwrap();
        let c = ConnectorConfig::from_props(connector_from_json(&nested).unwrap()).unwrap();
        assert_eq!(
            (c.name.as_str(), c.tasks_max, c.get("topic")),
            ("s", 1, Some("t"))
        );
        let flat: serde_json::Value =
            serde_json::from_str(r#"{"name":"s","connector.class":"FileStreamSink","topics":"t"}"#)
                .unwrap();
        let c = ConnectorConfig::from_props(connector_from_json(&flat).unwrap()).unwrap();
        assert_eq!(c.class, "FileStreamSink");
    }
}
