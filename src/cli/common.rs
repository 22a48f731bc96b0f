//! Options shared by every command and helpers to act on them.

use anyhow::Result;
use regex::Regex;

use crate::client::{Client, ClientConfig};

/// Where the tools go when given only Kafka 0.9's `--zookeeper`...
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// ...unless this environment variable names another broker (old scripts
/// against a broker on another port).
pub const BOOTSTRAP_ENV: &str = "SLUICE_BOOTSTRAP_SERVER";

fn default_bootstrap() -> String {
    std::env::var(BOOTSTRAP_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BOOTSTRAP.to_string())
}

/// How to reach the cluster.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("broker").required(true).multiple(true).args(["bootstrap_server", "zookeeper"])))]
pub struct ConnArgs {
    /// Broker(s) to bootstrap from: HOST:PORT[,HOST:PORT...]
    /// (`--broker-list`, the 0.9-era producer's name, is accepted too).
    #[arg(
        long = "bootstrap-server",
        visible_alias = "broker-list",
        value_name = "HOST:PORT"
    )]
    pub bootstrap_server: Option<String>,
    /// Accepted for Kafka 0.9 command lines: sluice has no ZooKeeper, so the
    /// tool talks to --bootstrap-server, or without it to
    /// $SLUICE_BOOTSTRAP_SERVER, else 127.0.0.1:9092.
    #[arg(long, value_name = "HOST:PORT")]
    pub zookeeper: Option<String>,
    /// Timeout for connecting to and each request to a broker, in milliseconds.
    #[arg(
        long = "request-timeout-ms",
        value_name = "MS",
        default_value_t = 30_000
    )]
    pub request_timeout_ms: u64,
}

impl ConnArgs {
    /// The brokers to bootstrap from. With only `--zookeeper`, says once
    /// (on stderr) where it goes instead.
    pub fn bootstrap(&self) -> String {
        match (&self.bootstrap_server, &self.zookeeper) {
            (Some(b), None) => b.clone(),
            (b, Some(zk)) => {
                let to = b.clone().unwrap_or_else(default_bootstrap);
                eprintln!(
                    "sluice has no ZooKeeper; using the broker at {to} (--zookeeper {zk} ignored)"
                );
                to
            }
            (None, None) => default_bootstrap(),
        }
    }

    /// Connects with the given client id.
    pub fn connect(&self, client_id: &str, allow_auto_topic_creation: bool) -> Result<Client> {
        let config = ClientConfig {
            client_id: client_id.to_string(),
            request_timeout_ms: self.request_timeout_ms.max(1),
            allow_auto_topic_creation,
        };
        Ok(Client::connect_with(&self.bootstrap(), config)?)
    }
}

/// Kafka-style topic filter: the whole name must match the regex; a
/// pattern that does not compile only matches itself.
pub struct TopicFilter {
    literal: String,
    regex: Option<Regex>,
}

impl TopicFilter {
    /// Builds a filter from `pattern`.
    pub fn new(pattern: &str) -> TopicFilter {
        TopicFilter {
            literal: pattern.to_string(),
            regex: Regex::new(&format!("^(?:{pattern})$")).ok(),
        }
    }

    /// Builds a filter that must be a valid regex.
    pub fn strict(pattern: &str) -> Result<TopicFilter> {
        match Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => Ok(TopicFilter {
                literal: pattern.to_string(),
                regex: Some(regex),
            }),
            Err(e) => anyhow::bail!(
                "invalid topic regex '{pattern}': {}",
                first_line(&e.to_string())
            ),
        }
    }

    /// Whether `topic` is selected.
    pub fn matches(&self, topic: &str) -> bool {
        topic == self.literal || self.regex.as_ref().is_some_and(|r| r.is_match(topic))
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}

/// Internal topics (`__consumer_offsets`, ...) are hidden unless asked for.
pub fn is_internal(name: &str, flagged_internal: bool) -> bool {
    flagged_internal || name.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_is_anchored() {
        let f = TopicFilter::new("foo.*");
        assert!(f.matches("foo"));
        assert!(f.matches("foobar"));
        assert!(!f.matches("xfoo"));
        let exact = TopicFilter::new("bar");
        assert!(exact.matches("bar"));
        assert!(!exact.matches("barbar"));
        let broken = TopicFilter::new("a[");
        assert!(broken.matches("a["));
        assert!(TopicFilter::strict("a[").is_err());
    }
}
