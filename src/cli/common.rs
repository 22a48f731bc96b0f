//! Options shared by every command and helpers to act on them.

use anyhow::Result;
use regex::Regex;

use crate::client::{Client, ClientConfig};

/// How to reach the cluster.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Broker(s) to bootstrap from: HOST:PORT[,HOST:PORT...]
    #[arg(long = "bootstrap-server", value_name = "HOST:PORT")]
    pub bootstrap_server: String,
    /// Timeout for connecting to and each request to a broker, in milliseconds.
    #[arg(
        long = "request-timeout-ms",
        value_name = "MS",
        default_value_t = 30_000
    )]
    pub request_timeout_ms: u64,
}

impl ConnArgs {
    /// Connects with the given client id.
    pub fn connect(&self, client_id: &str, allow_auto_topic_creation: bool) -> Result<Client> {
        let config = ClientConfig {
            client_id: client_id.to_string(),
            request_timeout_ms: self.request_timeout_ms.max(1),
            allow_auto_topic_creation,
        };
        Ok(Client::connect_with(&self.bootstrap_server, config)?)
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
