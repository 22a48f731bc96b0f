//! `sluice console-producer`: one record per stdin line.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::common::ConnArgs;
use super::murmur::partition_for_key;
use super::props::{flag, lookup, parse_pairs};
use crate::client::Client;

/// Most lines sent in one round of produce requests.
const MAX_BATCH_LINES: usize = 1000;
/// Most payload bytes in one round (stays under the default message.max.bytes).
const MAX_BATCH_BYTES: usize = 512 * 1024;
/// How long to wait for more input before sending what we have.
const LINGER: Duration = Duration::from_millis(5);

/// Arguments of `sluice console-producer` (shaped like kafka-console-producer.sh).
#[derive(Debug, Clone, clap::Args)]
pub struct ProducerArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to produce to.
    #[arg(long, value_name = "TOPIC")]
    pub topic: String,
    /// Reader property: parse.key, key.separator, ignore.error, null.marker.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub property: Vec<String>,
    /// Producer property; only `acks` is used.
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_property: Vec<String>,
    /// Required acks: all/-1, 1 or 0 (overrides --producer-property acks).
    #[arg(long = "request-required-acks", value_name = "ACKS")]
    pub request_required_acks: Option<String>,
    /// Send every record to this partition.
    #[arg(long, value_name = "N")]
    pub partition: Option<i32>,
}

/// How stdin lines become records.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LineReader {
    parse_key: bool,
    key_separator: Vec<u8>,
    ignore_error: bool,
    null_marker: Option<Vec<u8>>,
}

type KeyValue = (Option<Bytes>, Option<Bytes>);

impl LineReader {
    fn from_props(props: &[(String, String)]) -> Result<LineReader> {
        let key_separator = lookup(props, "key.separator")
            .unwrap_or("\t")
            .as_bytes()
            .to_vec();
        if key_separator.is_empty() {
            bail!("key.separator must not be empty");
        }
        Ok(LineReader {
            parse_key: flag(props, "parse.key", false),
            key_separator,
            ignore_error: flag(props, "ignore.error", false),
            null_marker: lookup(props, "null.marker").map(|m| m.as_bytes().to_vec()),
        })
    }

    /// Splits one line (without its terminator) into key and value.
    fn parse(&self, line: &[u8], number: u64) -> Result<KeyValue> {
        let (key, value) = if self.parse_key {
            match find(line, &self.key_separator) {
                Some(i) => (Some(&line[..i]), &line[i + self.key_separator.len()..]),
                None if self.ignore_error => (None, line),
                None => bail!(
                    "No key separator found on line number {number}: '{}'",
                    String::from_utf8_lossy(line)
                ),
            }
        } else {
            (None, line)
        };
        let convert = |b: &[u8]| match &self.null_marker {
            Some(marker) if marker.as_slice() == b => None,
            _ => Some(Bytes::copy_from_slice(b)),
        };
        Ok((key.and_then(convert), convert(value)))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Kafka's `acks` values.
fn parse_acks(raw: &str) -> Result<i16> {
    match raw.trim() {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        other => bail!("invalid acks '{other}': expected all, -1, 0 or 1"),
    }
}

/// Runs `sluice console-producer` on stdin.
pub fn run(args: ProducerArgs) -> Result<()> {
    use std::io::IsTerminal;
    // Kafka's `>` prompt, for a person typing (not for piped input).
    let prompt: Option<Prompt> = std::io::stdin().is_terminal().then(|| {
        Box::new(|| {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = out.write_all(b">");
            let _ = out.flush();
        }) as Prompt
    });
    produce_from(
        &args,
        BufReader::with_capacity(1 << 16, std::io::stdin()),
        prompt,
    )
}

/// Shown before each line is read.
pub(crate) type Prompt = Box<dyn FnMut() + Send>;

/// Produces every line of `input` to the topic.
pub(crate) fn produce_from<R: BufRead + Send + 'static>(
    args: &ProducerArgs,
    input: R,
    prompt: Option<Prompt>,
) -> Result<()> {
    let reader = LineReader::from_props(&parse_pairs(&args.property, "--property")?)?;
    let producer_props = parse_pairs(&args.producer_property, "--producer-property")?;
    let acks = match args
        .request_required_acks
        .as_deref()
        .or(lookup(&producer_props, "acks"))
    {
        Some(raw) => parse_acks(raw)?,
        None => -1,
    };
    let mut client = args.conn.connect("sluice-console-producer", true)?;
    let partitions = partition_count(&mut client, &args.topic)?;
    if partitions == 0 {
        bail!("topic '{}' has no partitions", args.topic);
    }
    if let Some(p) = args.partition {
        if p < 0 || p as usize >= partitions {
            bail!(
                "partition {p} does not exist: topic '{}' has {partitions} partitions",
                args.topic
            );
        }
    }
    let mut router = Router {
        fixed: args.partition,
        partitions,
        next: 0,
    };

    let lines = spawn_reader(input, prompt);
    let mut number = 0u64;
    while let Some(batch) = next_batch(&lines)? {
        let mut by_partition: BTreeMap<i32, Vec<KeyValue>> = BTreeMap::new();
        for line in batch {
            number += 1;
            let record = reader.parse(&line, number)?;
            let partition = router.route(record.0.as_deref());
            by_partition.entry(partition).or_default().push(record);
        }
        send(&mut client, &args.topic, by_partition, acks)?;
    }
    Ok(())
}

/// Partition count of `topic`, waiting briefly while a just auto-created
/// topic reports LEADER_NOT_AVAILABLE.
fn partition_count(client: &mut Client, topic: &str) -> Result<usize> {
    let mut attempt = 0;
    loop {
        match client.topic_metadata(topic) {
            Ok(meta) => return Ok(meta.partitions.len()),
            Err(e) if attempt < 10 && e.kafka_code() == Some(ResponseError::LeaderNotAvailable) => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn send(
    client: &mut Client,
    topic: &str,
    batches: BTreeMap<i32, Vec<KeyValue>>,
    acks: i16,
) -> Result<()> {
    for (partition, records) in batches {
        client.produce(topic, partition, records, acks)?;
    }
    Ok(())
}

/// Chooses partitions like Kafka's producer: murmur2 for keys, otherwise
/// round-robin (or the one `--partition`).
struct Router {
    fixed: Option<i32>,
    partitions: usize,
    next: usize,
}

impl Router {
    fn route(&mut self, key: Option<&[u8]>) -> i32 {
        if let Some(p) = self.fixed {
            return p;
        }
        match key {
            Some(key) => partition_for_key(key, self.partitions),
            None => {
                let p = self.next % self.partitions;
                self.next = self.next.wrapping_add(1);
                p as i32
            }
        }
    }
}

/// Lines (terminator stripped) or a read error, from a background thread so
/// the main loop can notice when the input goes idle.
fn spawn_reader<R: BufRead + Send + 'static>(
    mut input: R,
    mut prompt: Option<Prompt>,
) -> Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::sync_channel(4 * MAX_BATCH_LINES);
    std::thread::spawn(move || loop {
        if let Some(p) = prompt.as_mut() {
            p();
        }
        let mut line = Vec::new();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {
                strip_terminator(&mut line);
                if tx.send(Ok(line)).is_err() {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Err(e));
                break;
            }
        }
    });
    rx
}

/// Like Java's `readLine`: drops "\n", "\r\n" or a lone trailing "\r".
fn strip_terminator(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
}

/// Blocks for one line, then gathers more until the batch is full or the
/// input pauses. `None` at end of input.
fn next_batch(lines: &Receiver<std::io::Result<Vec<u8>>>) -> Result<Option<Vec<Vec<u8>>>> {
    let first = match lines.recv() {
        Ok(line) => line.context("cannot read stdin")?,
        Err(_) => return Ok(None),
    };
    let mut bytes = first.len();
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH_LINES && bytes < MAX_BATCH_BYTES {
        match lines.recv_timeout(LINGER) {
            Ok(line) => {
                let line = line.context("cannot read stdin")?;
                bytes += line.len();
                batch.push(line);
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(Some(batch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ProducerArgs,
    }

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn b(s: &str) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn prompts_before_every_line_it_reads() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let shown = Arc::new(AtomicUsize::new(0));
        let s = shown.clone();
        let rx = spawn_reader(
            std::io::Cursor::new(b"a\nb\n".to_vec()),
            Some(Box::new(move || {
                s.fetch_add(1, Ordering::SeqCst);
            })),
        );
        let lines: Vec<_> = rx.iter().map(|l| l.unwrap()).collect();
        assert_eq!(lines, vec![b"a".to_vec(), b"b".to_vec()]);
        // One prompt per line, and one more for the input that never came.
        assert_eq!(shown.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn parses_args() {
        let cli = Cli::try_parse_from([
            "p",
            "--bootstrap-server",
            "h:1",
            "--topic",
            "t",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--producer-property",
            "acks=1",
            "--partition",
            "2",
        ])
        .unwrap();
        assert_eq!(cli.args.topic, "t");
        assert_eq!(cli.args.partition, Some(2));
        assert_eq!(cli.args.property.len(), 2);
        assert!(Cli::try_parse_from(["p", "--bootstrap-server", "h:1"]).is_err());
    }

    #[test]
    fn line_parsing() {
        let plain = LineReader::from_props(&[]).unwrap();
        assert_eq!(plain.parse(b"a:b", 1).unwrap(), (None, b("a:b")));

        let keyed =
            LineReader::from_props(&props(&[("parse.key", "true"), ("key.separator", ":")]))
                .unwrap();
        assert_eq!(keyed.parse(b"k:v:w", 1).unwrap(), (b("k"), b("v:w")));
        assert_eq!(keyed.parse(b":v", 1).unwrap(), (b(""), b("v")));
        let err = keyed.parse(b"nokey", 7).unwrap_err().to_string();
        assert_eq!(err, "No key separator found on line number 7: 'nokey'");

        let lenient =
            LineReader::from_props(&props(&[("parse.key", "true"), ("ignore.error", "true")]))
                .unwrap();
        assert_eq!(lenient.parse(b"nokey", 1).unwrap(), (None, b("nokey")));

        let nulls =
            LineReader::from_props(&props(&[("parse.key", "true"), ("null.marker", "NULL")]))
                .unwrap();
        assert_eq!(nulls.parse(b"NULL\tNULL", 1).unwrap(), (None, None));
    }

    #[test]
    fn acks() {
        assert_eq!(parse_acks("all").unwrap(), -1);
        assert_eq!(parse_acks("-1").unwrap(), -1);
        assert_eq!(parse_acks("0").unwrap(), 0);
        assert_eq!(parse_acks("1").unwrap(), 1);
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn routing() {
        let mut r = Router {
            fixed: None,
            partitions: 3,
            next: 0,
        };
        assert_eq!(
            (r.route(None), r.route(None), r.route(None), r.route(None)),
            (0, 1, 2, 0)
        );
        assert_eq!(r.route(Some(b"21")), partition_for_key(b"21", 3));
        let mut fixed = Router {
            fixed: Some(1),
            partitions: 3,
            next: 0,
        };
        assert_eq!(fixed.route(Some(b"x")), 1);
    }

    #[test]
    fn terminators() {
        for (input, expected) in [("a\n", "a"), ("a\r\n", "a"), ("a", "a"), ("\n", "")] {
            let mut v = input.as_bytes().to_vec();
            strip_terminator(&mut v);
            assert_eq!(v, expected.as_bytes());
        }
    }
}
