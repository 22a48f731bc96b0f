//! `--reset-offsets` planning, as Kafka's GroupOffsetsResetter does it:
//! which partitions, and what new offset each gets.

use std::io::Write;

use anyhow::{bail, Result};

use crate::client::{Client, EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};

/// How to compute the new offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    Earliest,
    Latest,
    Current,
    Offset(i64),
    ShiftBy(i64),
    /// Milliseconds since the epoch.
    Datetime(i64),
}

/// Partitions named by `--topic t` (all of them) or `--topic t:0,2`.
pub fn partitions_to_reset(client: &mut Client, topics: &[String]) -> Result<Vec<(String, i32)>> {
    let mut out = Vec::new();
    for arg in topics {
        match arg.split_once(':') {
            Some((topic, parts)) => {
                for p in parts.split(',') {
                    let n = p.trim().parse::<i32>().map_err(|_| {
                        anyhow::anyhow!("Invalid partition '{p}' specified in topic arg '{arg}''")
                    })?;
                    out.push((topic.to_string(), n));
                }
            }
            None => {
                let md = client.metadata(Some(vec![arg.clone()]))?;
                match md.topic(arg) {
                    Some(t) if t.error.is_none() => {
                        out.extend(t.partitions.iter().map(|p| (arg.clone(), p.partition)))
                    }
                    _ => bail!(
                        "Executing consumer group command failed due to This server does not host this topic-partition."
                    ),
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Kafka's `checkAllTopicPartitionsValid`.
pub fn check_exist(client: &mut Client, parts: &[(String, i32)]) -> Result<()> {
    let mut missing = Vec::new();
    for (topic, p) in parts {
        let exists = client
            .metadata(Some(vec![topic.clone()]))?
            .topic(topic)
            .is_some_and(|t| t.error.is_none() && t.partitions.iter().any(|x| x.partition == *p));
        if !exists {
            missing.push(format!("{topic}-{p}"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "Executing consumer group command failed due to The partitions \"{}\" do not exist",
            missing.join(",")
        );
    }
    Ok(())
}

/// New offset per partition. `committed` holds the group's current commits
/// (for `--shift-by` and `--to-current`); warnings go to `err` (Kafka logs them).
pub fn plan(
    client: &mut Client,
    scenario: &Scenario,
    parts: &[(String, i32)],
    committed: &[(String, i32, i64)],
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<Vec<(String, i32, i64)>> {
    let current = |t: &str, p: i32| {
        committed
            .iter()
            .find(|(ct, cp, o)| ct == t && *cp == p && *o >= 0)
            .map(|(_, _, o)| *o)
    };
    let mut plan = Vec::with_capacity(parts.len());
    for (topic, p) in parts {
        let (topic, p) = (topic.as_str(), *p);
        let new = match scenario {
            Scenario::Earliest => client.list_offsets(topic, p, EARLIEST_TIMESTAMP)?,
            Scenario::Latest => client.list_offsets(topic, p, LATEST_TIMESTAMP)?,
            Scenario::Current => match current(topic, p) {
                Some(o) => o,
                None => client.list_offsets(topic, p, LATEST_TIMESTAMP)?,
            },
            Scenario::Offset(n) => clamp(client, topic, p, *n, err)?,
            Scenario::ShiftBy(n) => match current(topic, p) {
                Some(o) => clamp(client, topic, p, o.saturating_add(*n), err)?,
                None => bail!(
                    "Cannot shift offset for partition {topic}-{p} since there is no current committed offset"
                ),
            },
            Scenario::Datetime(ts) => match client.list_offsets(topic, p, *ts)? {
                -1 => {
                    write!(
                        out,
                        "\nWarn: Partition {p} from topic {topic} is empty. Falling back to latest known offset.\n"
                    )?;
                    client.list_offsets(topic, p, LATEST_TIMESTAMP)?
                }
                o => o,
            },
        };
        plan.push((topic.to_string(), p, new));
    }
    Ok(plan)
}

/// Kafka's `checkOffsetsRange`: requested offsets outside the log are moved
/// to its nearest end.
fn clamp(
    client: &mut Client,
    topic: &str,
    p: i32,
    offset: i64,
    err: &mut impl Write,
) -> Result<i64> {
    let end = client.list_offsets(topic, p, LATEST_TIMESTAMP)?;
    if offset > end {
        writeln!(
            err,
            "WARN New offset ({offset}) is higher than latest offset for topic partition {topic}-{p}. Value will be set to {end}."
        )?;
        return Ok(end);
    }
    let start = client.list_offsets(topic, p, EARLIEST_TIMESTAMP)?;
    if offset < start {
        writeln!(
            err,
            "WARN New offset ({offset}) is lower than earliest offset for topic partition {topic}-{p}. Value will be set to {start}."
        )?;
        return Ok(start);
    }
    Ok(offset)
}

/// Kafka's `Utils.getDateTime`: `YYYY-MM-DDTHH:mm:SS[.sss][Z|±hh[[:]mm]]`,
/// UTC when no zone is given. Returns milliseconds since the epoch.
pub fn parse_datetime(text: &str) -> Result<i64> {
    let bad = || {
        anyhow::anyhow!(
            "Error parsing timestamp '{text}': expected format 'YYYY-MM-DDTHH:mm:SS.sss'"
        )
    };
    let Some((date, time)) = text.split_once('T') else {
        bail!("Error parsing timestamp. It does not contain a 'T' according to ISO8601 format");
    };
    let num = |s: &str, len: usize| -> Result<i64> {
        if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let [y, mo, da] = d[..] else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y, 4)?, num(mo, 2)?, num(da, 2)?);
    // Split off the zone: Z, or the last '+' / '-'.
    let (clock, offset_min) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = z[1..].replace(':', "");
        let (h, m) = match z.len() {
            2 => (num(&z, 2)?, 0),
            4 => (num(&z[..2], 2)?, num(&z[2..], 2)?),
            _ => return Err(bad()),
        };
        (c, sign * (h * 60 + m))
    } else {
        (time, 0)
    };
    let (hms, millis) = match clock.split_once('.') {
        Some((hms, ms)) => (hms, num(ms, 3)?),
        None => (clock, 0),
    };
    let t: Vec<&str> = hms.split(':').collect();
    let [h, mi, se] = t[..] else {
        return Err(bad());
    };
    let (h, mi, se) = (num(h, 2)?, num(mi, 2)?, num(se, 2)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || da < 1
        || da > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || se > 59
    {
        return Err(bad());
    }
    let secs = days_from_civil(y, mo, da) * 86_400 + h * 3_600 + mi * 60 + se - offset_min * 60;
    Ok(secs * 1_000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_like_kafka() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000").unwrap(), 0);
        assert_eq!(parse_datetime("1970-01-01T00:00:01Z").unwrap(), 1_000);
        // 2024-02-29 (leap day) 12:34:56.789 UTC
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime("2024-02-29T14:34:56.789+02:00").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime("2024-02-29T07:04:56.789-0530").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime("2024-02-29T13:34:56.789+01").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59.000Z").unwrap(), -1_000);
        for bad in [
            "2024-02-29",
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-01-01T24:00:00",
            "2024-01-01T00:00",
            "2024-01-01T00:00:00.1",
            "2024-1-01T00:00:00",
            "2024-01-01T00:00:00+5",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad} should not parse");
        }
    }
}
