//! `sluice consumer-groups`: list, describe, delete consumer groups and reset
//! their offsets, with kafka-consumer-groups.sh's options, messages and tables.

use std::io::{self, Write};

use anyhow::{bail, Result};
use clap::ArgGroup;
use kafka_protocol::ResponseError;

use super::common::ConnArgs;
use super::group_reset::{check_exist, parse_datetime, partitions_to_reset, plan, Scenario};
use super::group_tables::{
    list_with_state, members_table, offsets_table, reset_table, state_table, MemberRow, OffsetRow,
    StateRow, MISSING,
};
use crate::client::assignor::{decode_assignment, CONSUMER_PROTOCOL_TYPE};
use crate::client::{error_name, Client, Generation, GroupDescription, LATEST_TIMESTAMP};

/// Arguments of `sluice consumer-groups` (shaped like kafka-consumer-groups.sh).
#[derive(Debug, Clone, clap::Args)]
#[command(group(ArgGroup::new("action").required(true).args(["list", "describe", "delete", "reset_offsets"])))]
#[command(group(ArgGroup::new("scenario").args(["to_earliest", "to_latest", "to_current", "to_offset", "shift_by", "to_datetime"])))]
#[command(group(ArgGroup::new("describe_view").args(["members", "offsets"])))]
pub struct ConsumerGroupsArgs {
    #[command(flatten)]
    pub conn: ConnArgs,
    /// List all consumer groups.
    #[arg(long)]
    pub list: bool,
    /// Describe consumer groups and their offset lag.
    #[arg(long)]
    pub describe: bool,
    /// Delete consumer groups (they must have no active members).
    #[arg(long)]
    pub delete: bool,
    /// Reset offsets of an inactive consumer group.
    #[arg(long = "reset-offsets")]
    pub reset_offsets: bool,
    /// The consumer group (repeatable).
    #[arg(long, value_name = "GROUP")]
    pub group: Vec<String>,
    /// Apply to all consumer groups.
    #[arg(long = "all-groups", conflicts_with = "group")]
    pub all_groups: bool,
    /// Topic to reset, optionally with partitions: `t` or `t:0,1` (repeatable).
    #[arg(long, value_name = "TOPIC")]
    pub topic: Vec<String>,
    /// Reset every topic the group has committed offsets for.
    #[arg(long = "all-topics", conflicts_with = "topic")]
    pub all_topics: bool,
    /// With --describe: show members instead of offsets.
    #[arg(long)]
    pub members: bool,
    /// With --describe: show offsets (the default).
    #[arg(long)]
    pub offsets: bool,
    /// With --describe: show the group state. With --list: show states,
    /// optionally only these (comma-separated, e.g. `stable,empty`).
    #[arg(long, value_name = "STATES", num_args = 0..=1, default_missing_value = "", conflicts_with_all = ["members", "offsets"])]
    pub state: Option<String>,
    /// More columns with --members / --state.
    #[arg(long)]
    pub verbose: bool,
    /// Reset to the earliest offset.
    #[arg(long = "to-earliest")]
    pub to_earliest: bool,
    /// Reset to the latest offset.
    #[arg(long = "to-latest")]
    pub to_latest: bool,
    /// Reset to the current committed offset.
    #[arg(long = "to-current")]
    pub to_current: bool,
    /// Reset to this offset.
    #[arg(long = "to-offset", value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// Shift the committed offset by N (may be negative).
    #[arg(long = "shift-by", value_name = "N", allow_hyphen_values = true)]
    pub shift_by: Option<i64>,
    /// Reset to the first offset at or after 'YYYY-MM-DDTHH:mm:SS.sss' (UTC unless a zone is given).
    #[arg(long = "to-datetime", value_name = "DATETIME")]
    pub to_datetime: Option<String>,
    /// Only show the new offsets (the default).
    #[arg(long = "dry-run", conflicts_with = "execute")]
    pub dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    pub execute: bool,
    /// Overrides --request-timeout-ms (Kafka's name for it).
    #[arg(long, value_name = "MS")]
    pub timeout: Option<u64>,
}

/// Runs `sluice consumer-groups`, printing to stdout/stderr.
pub fn run(args: ConsumerGroupsArgs) -> Result<()> {
    let (stdout, stderr) = (io::stdout(), io::stderr());
    let (mut out, mut err) = (stdout.lock(), stderr.lock());
    run_to(&args, &mut out, &mut err)
}

/// Runs the command with explicit output streams (for tests).
pub(crate) fn run_to(
    args: &ConsumerGroupsArgs,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<()> {
    check_args(args, err)?;
    let mut conn = args.conn.clone();
    if let Some(t) = args.timeout {
        conn.request_timeout_ms = t;
    }
    let mut client = conn.connect("sluice-consumer-groups", false)?;
    if args.list {
        return list(&mut client, args, out);
    }
    let groups = if args.all_groups {
        consumer_groups(&mut client, &[])?
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    } else {
        let mut g = args.group.clone();
        g.sort();
        g.dedup();
        g
    };
    if args.delete {
        return delete(&mut client, &groups, out);
    }
    for group in &groups {
        let desc = client.describe_group(group)?;
        if args.describe {
            describe(&mut client, args, &desc, out, err)?;
        } else {
            reset(&mut client, args, &desc, out, err)?;
        }
    }
    Ok(())
}

fn check_args(args: &ConsumerGroupsArgs, err: &mut impl Write) -> Result<()> {
    let needs_group = args.describe || args.delete || args.reset_offsets;
    if needs_group && args.group.is_empty() && !args.all_groups {
        let action = if args.describe {
            "describe"
        } else if args.delete {
            "delete"
        } else {
            "reset-offsets"
        };
        bail!("Option [{action}] takes one of these options: [all-groups], [group]");
    }
    if args.delete && !args.topic.is_empty() {
        bail!(
            "The consumer does not support topic-specific offset deletion from a consumer group."
        );
    }
    if args.describe && matches!(&args.state, Some(s) if !s.is_empty()) {
        bail!("Option [describe] does not take a value for [state]");
    }
    if args.reset_offsets {
        if scenario(args)?.is_none() {
            bail!("Option [reset-offsets] requires one of the following scenarios: [to-earliest], [to-latest], [to-current], [to-offset], [shift-by], [to-datetime]");
        }
        if args.topic.is_empty() && !args.all_topics {
            bail!("One of the reset scopes should be defined: --all-topics, --topic.");
        }
        if !args.dry_run && !args.execute {
            writeln!(err, "WARN: No action will be performed as the --execute option is missing.In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting.")?;
        }
    }
    Ok(())
}

fn scenario(args: &ConsumerGroupsArgs) -> Result<Option<Scenario>> {
    Ok(if args.to_earliest {
        Some(Scenario::Earliest)
    } else if args.to_latest {
        Some(Scenario::Latest)
    } else if args.to_current {
        Some(Scenario::Current)
    } else if let Some(n) = args.to_offset {
        Some(Scenario::Offset(n))
    } else if let Some(n) = args.shift_by {
        Some(Scenario::ShiftBy(n))
    } else if let Some(d) = &args.to_datetime {
        Some(Scenario::Datetime(parse_datetime(d)?))
    } else {
        None
    })
}

/// Consumer groups (classic ones with the consumer protocol or none yet, and
/// KIP-848 ones) with their states, sorted by id.
fn consumer_groups(client: &mut Client, states: &[String]) -> Result<Vec<(String, String)>> {
    Ok(client
        .list_groups(states)?
        .into_iter()
        .filter(|g| g.protocol_type.is_empty() || g.protocol_type == CONSUMER_PROTOCOL_TYPE)
        .map(|g| (g.group_id, g.state.unwrap_or_else(|| "Unknown".into())))
        .collect())
}

fn list(client: &mut Client, args: &ConsumerGroupsArgs, out: &mut impl Write) -> Result<()> {
    let Some(filter) = &args.state else {
        for (id, _) in consumer_groups(client, &[])? {
            writeln!(out, "{id}")?;
        }
        return Ok(());
    };
    let states = parse_states(filter)?;
    out.write_all(list_with_state(&consumer_groups(client, &states)?).as_bytes())?;
    Ok(())
}

/// Kafka's `groupStatesFromString`, mapped to the names brokers use.
fn parse_states(input: &str) -> Result<Vec<String>> {
    const VALID: [&str; 7] = [
        "PreparingRebalance",
        "CompletingRebalance",
        "Stable",
        "Dead",
        "Empty",
        "Assigning",
        "Reconciling",
    ];
    let mut out = Vec::new();
    for s in input.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match VALID.iter().find(|v| v.eq_ignore_ascii_case(s)) {
            Some(v) => out.push(v.to_string()),
            None => bail!(
                "Invalid state list '{input}'. Valid states are: {}",
                VALID.join(", ")
            ),
        }
    }
    Ok(out)
}

fn does_not_exist(desc: &GroupDescription) -> bool {
    desc.state == "Dead" || desc.error == Some(ResponseError::GroupIdNotFound)
}

/// Kafka's `shouldPrintMemberState` messages, on stderr.
fn state_message(desc: &GroupDescription, err: &mut impl Write) -> Result<()> {
    let g = &desc.group_id;
    match desc.state.as_str() {
        "Empty" => writeln!(err, "\nConsumer group '{g}' has no active members.")?,
        "PreparingRebalance" | "CompletingRebalance" | "Assigning" | "Reconciling" => {
            writeln!(err, "\nWarning: Consumer group '{g}' is rebalancing.")?
        }
        _ => {}
    }
    Ok(())
}

/// Partitions assigned to a member (nothing for non-consumer protocols).
fn member_partitions(desc: &GroupDescription, assignment: &bytes::Bytes) -> Vec<(String, i32)> {
    if desc.protocol_type != CONSUMER_PROTOCOL_TYPE {
        return Vec::new();
    }
    decode_assignment(assignment.clone()).unwrap_or_else(|e| {
        tracing::warn!("group '{}': {e}", desc.group_id);
        Vec::new()
    })
}

/// `--describe` of one group, as `client.describe_group` found it.
fn describe(
    client: &mut Client,
    args: &ConsumerGroupsArgs,
    desc: &GroupDescription,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<()> {
    let group = desc.group_id.as_str();
    if does_not_exist(desc) {
        bail!("Consumer group '{group}' does not exist.");
    }
    if args.members {
        let rows: Vec<MemberRow> = desc
            .members
            .iter()
            .map(|m| MemberRow {
                group: group.to_string(),
                consumer_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone().unwrap_or_default(),
                host: m.client_host.clone(),
                client_id: m.client_id.clone(),
                partitions: member_partitions(desc, &m.assignment),
            })
            .collect();
        state_message(desc, err)?;
        out.write_all(members_table(&rows, args.verbose).as_bytes())?;
    } else if args.state.is_some() {
        let c = client.find_coordinator(group)?;
        let row = StateRow {
            group: group.to_string(),
            coordinator: format!("{}:{}  ({})", c.host, c.port, c.node_id),
            assignment_strategy: desc.protocol.clone(),
            state: desc.state.clone(),
            members: desc.members.len(),
        };
        state_message(desc, err)?;
        out.write_all(state_table(&row, args.verbose).as_bytes())?;
    } else {
        let rows = offset_rows(client, desc)?;
        state_message(desc, err)?;
        if !rows.is_empty() {
            out.write_all(offsets_table(&rows).as_bytes())?;
        }
    }
    Ok(())
}

/// Kafka's `collectGroupsOffsets`: members with partitions first (most
/// partitions first), then committed partitions nobody owns.
fn offset_rows(client: &mut Client, desc: &GroupDescription) -> Result<Vec<OffsetRow>> {
    let group = desc.group_id.as_str();
    let committed = client.offset_fetch(group, None)?;
    let mut members: Vec<_> = desc
        .members
        .iter()
        .map(|m| (m, member_partitions(desc, &m.assignment)))
        .filter(|(_, parts)| !parts.is_empty())
        .collect();
    members.sort_by_key(|(_, parts)| std::cmp::Reverse(parts.len()));
    let mut rows = Vec::new();
    let mut assigned = Vec::new();
    let row = |client: &mut Client, topic: &str, p: i32, who: [&str; 3]| -> OffsetRow {
        let current = committed
            .iter()
            .find(|c| c.topic == topic && c.partition == p && c.offset >= 0)
            .map(|c| c.offset);
        OffsetRow {
            group: group.to_string(),
            topic: topic.to_string(),
            partition: p,
            current_offset: current,
            // An unknown end (e.g. the topic was deleted) shows as "-".
            log_end_offset: client.list_offsets(topic, p, LATEST_TIMESTAMP).ok(),
            consumer_id: who[0].to_string(),
            host: who[1].to_string(),
            client_id: who[2].to_string(),
        }
    };
    for (m, parts) in members {
        for (t, p) in parts {
            let who = [m.member_id.as_str(), &m.client_host, &m.client_id];
            rows.push(row(client, &t, p, who));
            assigned.push((t, p));
        }
    }
    for c in &committed {
        if !assigned
            .iter()
            .any(|(t, p)| *t == c.topic && *p == c.partition)
        {
            rows.push(row(client, &c.topic, c.partition, [MISSING; 3]));
        }
    }
    Ok(rows)
}

/// `--reset-offsets` of one group, as `client.describe_group` found it.
fn reset(
    client: &mut Client,
    args: &ConsumerGroupsArgs,
    desc: &GroupDescription,
    out: &mut impl Write,
    err: &mut impl Write,
) -> Result<()> {
    let group = desc.group_id.as_str();
    if !does_not_exist(desc) && desc.state != "Empty" {
        bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            desc.state
        );
    }
    let committed: Vec<(String, i32, i64)> = client
        .offset_fetch(group, None)?
        .into_iter()
        .filter(|c| c.offset >= 0)
        .map(|c| (c.topic, c.partition, c.offset))
        .collect();
    let parts = if args.all_topics {
        committed.iter().map(|(t, p, _)| (t.clone(), *p)).collect()
    } else {
        partitions_to_reset(client, &args.topic)?
    };
    check_exist(client, &parts)?;
    let scenario = scenario(args)?.expect("checked in check_args");
    let new = plan(client, &scenario, &parts, &committed, out, err)?;
    if args.execute {
        client.offset_commit(group, &Generation::none(), &new)?;
    }
    out.write_all(reset_table(group, &new).as_bytes())?;
    Ok(())
}

fn delete(client: &mut Client, groups: &[String], out: &mut impl Write) -> Result<()> {
    let results = client.delete_groups(groups)?;
    let quoted = |ids: Vec<&String>| {
        ids.iter()
            .map(|g| format!("'{g}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ok: Vec<&String> = results
        .iter()
        .filter(|(_, e)| e.is_none())
        .map(|(g, _)| g)
        .collect();
    let failed: Vec<(&String, ResponseError)> = results
        .iter()
        .filter_map(|(g, e)| e.map(|e| (g, e)))
        .collect();
    if failed.is_empty() {
        writeln!(
            out,
            "Deletion of requested consumer groups ({}) was successful.",
            quoted(ok)
        )?;
        return Ok(());
    }
    writeln!(out, "\nError: Deletion of some consumer groups failed:")?;
    for (g, e) in &failed {
        writeln!(
            out,
            "* Group '{g}' could not be deleted due to: {}",
            exception(*e)
        )?;
    }
    if !ok.is_empty() {
        writeln!(
            out,
            "\nThese consumer groups were deleted successfully: {}",
            quoted(ok)
        )?;
    }
    bail!(
        "{} of {} consumer groups could not be deleted",
        failed.len(),
        results.len()
    )
}

/// How Kafka's admin client renders the errors DeleteGroups returns.
fn exception(e: ResponseError) -> String {
    let (class, message) = match e {
        ResponseError::NonEmptyGroup => ("GroupNotEmptyException", "The group is not empty."),
        ResponseError::GroupIdNotFound => {
            ("GroupIdNotFoundException", "The group id does not exist.")
        }
        ResponseError::InvalidGroupId => (
            "InvalidGroupIdException",
            "The configured groupId is invalid.",
        ),
        other => return error_name(other),
    };
    format!("org.apache.kafka.common.errors.{class}: {message}")
}
