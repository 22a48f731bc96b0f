//! Kafka's `DefaultMessageFormatter`, as used by kafka-console-consumer.sh.

use std::io::{self, Write};

use anyhow::Result;

use super::props::{flag, lookup};
use crate::client::FetchedRecord;

/// Which fields to print and how to separate them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formatter {
    pub print_timestamp: bool,
    pub print_partition: bool,
    pub print_offset: bool,
    pub print_headers: bool,
    pub print_key: bool,
    pub print_value: bool,
    pub key_separator: Vec<u8>,
    pub line_separator: Vec<u8>,
    pub headers_separator: Vec<u8>,
    pub null_literal: Vec<u8>,
}

impl Default for Formatter {
    fn default() -> Self {
        Formatter {
            print_timestamp: false,
            print_partition: false,
            print_offset: false,
            print_headers: false,
            print_key: false,
            print_value: true,
            key_separator: b"\t".to_vec(),
            line_separator: b"\n".to_vec(),
            headers_separator: b",".to_vec(),
            null_literal: b"null".to_vec(),
        }
    }
}

impl Formatter {
    /// Reads the `--property` settings Kafka's formatter understands.
    pub fn from_props(props: &[(String, String)]) -> Result<Formatter> {
        let d = Formatter::default();
        let bytes = |key: &str, default: Vec<u8>| {
            lookup(props, key).map_or(default, |v| v.as_bytes().to_vec())
        };
        Ok(Formatter {
            print_timestamp: flag(props, "print.timestamp", d.print_timestamp),
            print_partition: flag(props, "print.partition", d.print_partition),
            print_offset: flag(props, "print.offset", d.print_offset),
            print_headers: flag(props, "print.headers", d.print_headers),
            print_key: flag(props, "print.key", d.print_key),
            print_value: flag(props, "print.value", d.print_value),
            key_separator: bytes("key.separator", d.key_separator),
            line_separator: bytes("line.separator", d.line_separator),
            headers_separator: bytes("headers.separator", d.headers_separator),
            null_literal: bytes("null.literal", d.null_literal),
        })
    }

    /// Writes one record the way `DefaultMessageFormatter.writeTo` does.
    pub fn write(&self, out: &mut impl Write, partition: i32, r: &FetchedRecord) -> io::Result<()> {
        let sep = |out: &mut dyn Write, more: bool| {
            out.write_all(if more {
                &self.key_separator
            } else {
                &self.line_separator
            })
        };
        if self.print_timestamp {
            let kind = if r.log_append_time {
                "LogAppendTime"
            } else {
                "CreateTime"
            };
            write!(out, "{kind}:{}", r.timestamp)?;
            sep(
                out,
                self.print_partition
                    || self.print_offset
                    || self.print_headers
                    || self.print_key
                    || self.print_value,
            )?;
        }
        if self.print_partition {
            write!(out, "Partition:{partition}")?;
            sep(
                out,
                self.print_offset || self.print_headers || self.print_key || self.print_value,
            )?;
        }
        if self.print_offset {
            write!(out, "Offset:{}", r.offset)?;
            sep(
                out,
                self.print_headers || self.print_key || self.print_value,
            )?;
        }
        if self.print_headers {
            if r.headers.is_empty() {
                out.write_all(b"NO_HEADERS")?;
            }
            for (i, (k, v)) in r.headers.iter().enumerate() {
                if i > 0 {
                    out.write_all(&self.headers_separator)?;
                }
                write!(out, "{k}:")?;
                out.write_all(v.as_deref().unwrap_or(&self.null_literal))?;
            }
            sep(out, self.print_key || self.print_value)?;
        }
        if self.print_key {
            out.write_all(r.key.as_deref().unwrap_or(&self.null_literal))?;
            sep(out, self.print_value)?;
        }
        if self.print_value {
            out.write_all(r.value.as_deref().unwrap_or(&self.null_literal))?;
            out.write_all(&self.line_separator)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn record() -> FetchedRecord {
        FetchedRecord {
            offset: 5,
            timestamp: 123,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![],
        }
    }

    fn render(props: &[(&str, &str)], r: &FetchedRecord) -> String {
        let props: Vec<_> = props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let f = Formatter::from_props(&props).unwrap();
        let mut out = Vec::new();
        f.write(&mut out, 2, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn value_only_by_default() {
        assert_eq!(render(&[], &record()), "v\n");
    }

    #[test]
    fn all_prefixes_in_kafka_order() {
        let props = [
            ("print.timestamp", "true"),
            ("print.offset", "true"),
            ("print.key", "true"),
            ("print.partition", "true"),
        ];
        assert_eq!(
            render(&props, &record()),
            "CreateTime:123\tPartition:2\tOffset:5\tk\tv\n"
        );
    }

    #[test]
    fn custom_separator_and_nulls() {
        let mut r = record();
        r.key = None;
        r.value = None;
        let props = [("print.key", "true"), ("key.separator", ":")];
        assert_eq!(render(&props, &r), "null:null\n");
    }

    #[test]
    fn headers_and_no_value() {
        let mut r = record();
        r.headers = vec![
            ("a".into(), Some(Bytes::from_static(b"1"))),
            ("b".into(), None),
        ];
        let props = [("print.headers", "true"), ("print.value", "false")];
        assert_eq!(render(&props, &r), "a:1,b:null\n");
        r.headers.clear();
        assert_eq!(render(&props, &r), "NO_HEADERS\n");
    }
}
