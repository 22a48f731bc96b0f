//! The tables kafka-consumer-groups.sh prints, byte for byte: Java's
//! `%-Ns` columns (left-aligned, at least N wide, never truncated), each
//! table starting with an empty line, and "-" for a missing value.

/// Kafka's `MISSING_COLUMN_VALUE`.
pub const MISSING: &str = "-";

/// One row of `--describe` (`--offsets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRow {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub current_offset: Option<i64>,
    pub log_end_offset: Option<i64>,
    pub consumer_id: String,
    pub host: String,
    pub client_id: String,
}

impl OffsetRow {
    /// Kafka's `getLag`: known only when both offsets are.
    pub fn lag(&self) -> Option<i64> {
        match (self.current_offset, self.log_end_offset) {
            (Some(c), Some(e)) if c != -1 => Some(e - c),
            _ => None,
        }
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| MISSING.to_string(), |v| v.to_string())
}

fn width(min: usize, values: impl Iterator<Item = usize>) -> usize {
    values.fold(min, usize::max)
}

/// The columns of `--describe --offsets`, in order.
pub const OFFSETS_COLUMNS: [&str; 9] = [
    "GROUP",
    "TOPIC",
    "PARTITION",
    "CURRENT-OFFSET",
    "LOG-END-OFFSET",
    "LAG",
    "CONSUMER-ID",
    "HOST",
    "CLIENT-ID",
];

/// `--describe --offsets` (the default describe).
pub fn offsets_table(rows: &[OffsetRow]) -> String {
    let g = width(15, rows.iter().map(|r| r.group.len()));
    let t = width(15, rows.iter().map(|r| r.topic.len()));
    let c = width(15, rows.iter().map(|r| r.consumer_id.len()));
    let h = width(15, rows.iter().map(|r| r.host.len()));
    let line = |cols: [&str; 9]| {
        format!(
            "\n{:<g$} {:<t$} {:<10} {:<15} {:<15} {:<15} {:<c$} {:<h$} {}",
            cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8]
        )
    };
    let mut out = line(OFFSETS_COLUMNS);
    for r in rows {
        out += &line([
            &r.group,
            &r.topic,
            &r.partition.to_string(),
            &opt(r.current_offset),
            &opt(r.log_end_offset),
            &opt(r.lag()),
            &r.consumer_id,
            &r.host,
            &r.client_id,
        ]);
    }
    out + "\n"
}

/// One member for `--describe --members`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub group: String,
    pub consumer_id: String,
    /// Empty for dynamic members.
    pub group_instance_id: String,
    pub host: String,
    pub client_id: String,
    pub partitions: Vec<(String, i32)>,
}

/// Kafka's `getAssignmentString`: `t:0,1;u:2`, topics sorted.
fn assignment_string(parts: &[(String, i32)]) -> String {
    if parts.is_empty() {
        return MISSING.to_string();
    }
    let mut by_topic: std::collections::BTreeMap<&str, Vec<i32>> = Default::default();
    for (t, p) in parts {
        by_topic.entry(t).or_default().push(*p);
    }
    by_topic
        .into_iter()
        .map(|(t, mut ps)| {
            ps.sort_unstable();
            let ps: Vec<String> = ps.iter().map(i32::to_string).collect();
            format!("{t}:{}", ps.join(","))
        })
        .collect::<Vec<_>>()
        .join(";")
}

/// `--describe --members [--verbose]` for a classic group (no epochs or
/// target assignments: those columns show "-").
pub fn members_table(rows: &[MemberRow], verbose: bool) -> String {
    let g = width(15, rows.iter().map(|r| r.group.len()));
    let c = width(15, rows.iter().map(|r| r.consumer_id.len()));
    let i = width(17, rows.iter().map(|r| r.group_instance_id.len()));
    let h = width(15, rows.iter().map(|r| r.host.len()));
    let cl = width(15, rows.iter().map(|r| r.client_id.len()));
    let cur = width(
        20,
        rows.iter().map(|r| assignment_string(&r.partitions).len()),
    );
    let with_instance = rows.iter().any(|r| !r.group_instance_id.is_empty());
    let base = |cols: [&str; 6]| {
        if with_instance {
            format!(
                "{:<g$} {:<c$} {:<i$} {:<h$} {:<cl$} {:<15} ",
                cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]
            )
        } else {
            format!(
                "{:<g$} {:<c$} {:<h$} {:<cl$} {:<15} ",
                cols[0], cols[1], cols[3], cols[4], cols[5]
            )
        }
    };
    let extra = |cols: [&str; 4]| {
        format!(
            "{:<15} {:<cur$} {:<15} {:<20}",
            cols[0], cols[1], cols[2], cols[3]
        )
    };
    let mut out = String::from("\n");
    out += &base([
        "GROUP",
        "CONSUMER-ID",
        "GROUP-INSTANCE-ID",
        "HOST",
        "CLIENT-ID",
        "#PARTITIONS",
    ]);
    if verbose {
        out += &extra([
            "CURRENT-EPOCH",
            "CURRENT-ASSIGNMENT",
            "TARGET-EPOCH",
            "TARGET-ASSIGNMENT",
        ]);
    }
    out.push('\n');
    for r in rows {
        out += &base([
            &r.group,
            &r.consumer_id,
            &r.group_instance_id,
            &r.host,
            &r.client_id,
            &r.partitions.len().to_string(),
        ]);
        if verbose {
            out += &extra([MISSING, &assignment_string(&r.partitions), MISSING, MISSING]);
        }
        out.push('\n');
    }
    out
}

/// What `--describe --state` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub group: String,
    /// `host:port  (id)`, two spaces as Kafka prints it.
    pub coordinator: String,
    pub assignment_strategy: String,
    pub state: String,
    pub members: usize,
}

/// `--describe --state [--verbose]`.
pub fn state_table(r: &StateRow, verbose: bool) -> String {
    let g = r.group.len().max(15);
    let c = r.coordinator.len().max(25);
    let strategy = if r.assignment_strategy.is_empty() {
        MISSING
    } else {
        &r.assignment_strategy
    };
    let members = r.members.to_string();
    let mut out = String::new();
    if verbose {
        for cols in [
            [
                "GROUP",
                "COORDINATOR (ID)",
                "ASSIGNMENT-STRATEGY",
                "STATE",
                "GROUP-EPOCH",
                "TARGET-ASSIGNMENT-EPOCH",
                "#MEMBERS",
            ],
            [
                &r.group,
                &r.coordinator,
                strategy,
                &r.state,
                MISSING,
                MISSING,
                &members,
            ],
        ] {
            out += &format!(
                "\n{:<g$} {:<c$} {:<20} {:<20} {:<15} {:<25} {}",
                cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6]
            );
        }
    } else {
        for cols in [
            [
                "GROUP",
                "COORDINATOR (ID)",
                "ASSIGNMENT-STRATEGY",
                "STATE",
                "#MEMBERS",
            ],
            [&r.group, &r.coordinator, strategy, &r.state, &members],
        ] {
            out += &format!(
                "\n{:<g$} {:<c$} {:<20} {:<20} {}",
                cols[0], cols[1], cols[2], cols[3], cols[4]
            );
        }
    }
    out + "\n"
}

/// `--reset-offsets` plan or result: (topic, partition, new offset) rows.
pub fn reset_table(group: &str, rows: &[(String, i32, i64)]) -> String {
    let g = group.len().max(15);
    let t = width(15, rows.iter().map(|(t, _, _)| t.len()));
    let mut out = format!(
        "\n{:<g$} {:<t$} {:<10} {}",
        "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
    );
    for (topic, partition, offset) in rows {
        out += &format!("\n{group:<g$} {topic:<t$} {partition:<10} {offset}");
    }
    out + "\n"
}

/// `--list --state`: GROUP and STATE columns.
pub fn list_with_state(groups: &[(String, String)]) -> String {
    let g = groups
        .iter()
        .map(|(id, _)| id.len().max(15))
        .max()
        .unwrap_or(15)
        + 10;
    let mut out = format!("{:<g$} {:<20}\n", "GROUP", "STATE");
    for (id, state) in groups {
        out += &format!("{id:<g$} {state:<20}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(p: i32, cur: Option<i64>, end: Option<i64>, consumer: &str) -> OffsetRow {
        OffsetRow {
            group: "my-group".into(),
            topic: "orders".into(),
            partition: p,
            current_offset: cur,
            log_end_offset: end,
            consumer_id: consumer.into(),
            host: if consumer == "-" { "-" } else { "/127.0.0.1" }.into(),
            client_id: if consumer == "-" { "-" } else { "consumer-1" }.into(),
        }
    }

    #[test]
    fn offsets_layout_is_kafkas() {
        let id = "consumer-1-38efa901-4917-4660-ab66-3e5b989cbac3";
        let out = offsets_table(&[row(0, Some(5), Some(10), id), row(1, None, Some(3), "-")]);
        let expected = "\n\
GROUP           TOPIC           PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG             CONSUMER-ID                                     HOST            CLIENT-ID\n\
my-group        orders          0          5               10              5               consumer-1-38efa901-4917-4660-ab66-3e5b989cbac3 /127.0.0.1      consumer-1\n\
my-group        orders          1          -               3               -               -                                               -               -\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn members_layout_is_kafkas() {
        let r = MemberRow {
            group: "g".into(),
            consumer_id: "c-1".into(),
            group_instance_id: String::new(),
            host: "/127.0.0.1".into(),
            client_id: "c".into(),
            partitions: vec![("t".into(), 1), ("t".into(), 0), ("a".into(), 2)],
        };
        assert_eq!(
            members_table(std::slice::from_ref(&r), false),
            "\nGROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS     \n\
g               c-1             /127.0.0.1      c               3               \n"
        );
        let verbose = members_table(&[r], true);
        assert!(
            verbose
                .contains("3               -               a:2;t:0,1            -               -"),
            "{verbose}"
        );
        // No members: only the header (Kafka prints it even for an empty group).
        assert_eq!(
            members_table(&[], false),
            "\nGROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS     \n"
        );
    }

    #[test]
    fn state_layout_is_kafkas() {
        let r = StateRow {
            group: "g".into(),
            coordinator: "127.0.0.1:9092  (1)".into(),
            assignment_strategy: "range".into(),
            state: "Stable".into(),
            members: 3,
        };
        assert_eq!(
            state_table(&r, false),
            "\nGROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE                #MEMBERS\
\ng               127.0.0.1:9092  (1)       range                Stable               3\n"
        );
    }

    #[test]
    fn reset_and_list_layouts_are_kafkas() {
        assert_eq!(
            reset_table("g", &[("t".into(), 0, 42)]),
            "\nGROUP           TOPIC           PARTITION  NEW-OFFSET\ng               t               0          42\n"
        );
        assert_eq!(
            list_with_state(&[("g".into(), "Empty".into())]),
            "GROUP                     STATE               \ng                         Empty               \n"
        );
    }
}
