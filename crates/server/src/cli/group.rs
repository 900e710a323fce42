//! `oxka group list|describe|reset-offsets|delete`.
//!
//! `describe` shows, per partition with a committed offset, the committed offset, the log end
//! offset (ListOffsets latest, i.e. the high watermark) and the lag between them, with the
//! member that owns the partition (classic groups, from the consumer protocol's assignment).
//! `reset-offsets` prints the new offsets and commits them only with `--execute`, and only
//! while the group has no active members, as kafka-consumer-groups does.

use std::collections::BTreeMap;

use oxka_client::kafka_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use oxka_client::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use oxka_client::kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, ListGroupsRequest,
};
use oxka_client::kafka_protocol::protocol::{Decodable, StrBytes};
use oxka_client::ops::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use oxka_client::{Client, ClientError};
use serde_json::json;

use super::consume::{commit, parse_timestamp};
use super::output::emit;
use super::{error_cell, failed, failure, Common, Table};

#[derive(Debug, clap::Args)]
pub(crate) struct GroupArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// List consumer groups on every broker (ListGroups).
    List,
    /// State, members, and per-partition committed offset, log end offset and lag.
    Describe { group: String },
    /// Move a group's committed offsets (dry run unless --execute).
    ResetOffsets {
        group: String,
        /// Topic to reset (repeatable).
        #[arg(long = "topic", required_unless_present = "all_topics")]
        topics: Vec<String>,
        /// Every topic the group has committed offsets for.
        #[arg(long = "all-topics")]
        all_topics: bool,
        #[arg(long = "to-earliest", group = "target")]
        to_earliest: bool,
        #[arg(long = "to-latest", group = "target")]
        to_latest: bool,
        #[arg(long = "to-offset", group = "target")]
        to_offset: Option<i64>,
        /// YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM] (UTC when no zone) or ms since the epoch.
        #[arg(long = "to-datetime", group = "target")]
        to_datetime: Option<String>,
        /// Commit the new offsets (without it: show them only).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups with no active members (DeleteGroups).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

fn group_id(g: &str) -> GroupId {
    GroupId(StrBytes::from_string(g.to_owned()))
}

pub(crate) async fn run(args: GroupArgs) -> anyhow::Result<()> {
    let common = args.common;
    let mut client = common.connect().await?;
    match args.command {
        GroupCommand::List => {
            let mut groups = BTreeMap::new();
            for node in client.broker_ids() {
                let response = client
                    .send_to(node, |_| ListGroupsRequest::default())
                    .await?;
                ClientError::check(
                    response.error_code,
                    None,
                    format!("ListGroups on broker {node}"),
                )?;
                for g in response.groups {
                    groups.insert(
                        g.group_id.0.to_string(),
                        (g.group_state.to_string(), g.protocol_type.to_string()),
                    );
                }
            }
            let mut table = Table::new(&["GROUP", "STATE", "PROTOCOL-TYPE"]);
            let mut rows = Vec::new();
            for (g, (state, ptype)) in &groups {
                table.row(vec![g.clone(), state.clone(), ptype.clone()]);
                rows.push(json!({"group": g, "state": state, "protocol_type": ptype}));
            }
            emit(common.format, &table, json!(rows));
            Ok(())
        }
        GroupCommand::Describe { group } => describe(&mut client, &common, &group).await,
        GroupCommand::ResetOffsets {
            group,
            topics,
            all_topics,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            execute,
        } => {
            let target = if to_earliest {
                Target::Earliest
            } else if to_latest {
                Target::Latest
            } else if let Some(o) = to_offset {
                Target::Offset(o)
            } else if let Some(t) = to_datetime {
                Target::Time(parse_timestamp(&t)?)
            } else {
                anyhow::bail!("give one of --to-earliest, --to-latest, --to-offset, --to-datetime");
            };
            reset(
                &mut client,
                &common,
                &group,
                topics,
                all_topics,
                target,
                execute,
            )
            .await
        }
        GroupCommand::Delete { groups } => {
            let mut table = Table::new(&["GROUP", "RESULT"]);
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            for g in &groups {
                let response = client
                    .send_to_coordinator(g, |_| {
                        DeleteGroupsRequest::default().with_groups_names(vec![group_id(g)])
                    })
                    .await?;
                for r in &response.results {
                    if r.error_code != 0 {
                        errors.push(failure(r.error_code, r.group_id.0.as_str()));
                    }
                    let result = if r.error_code == 0 {
                        "deleted".into()
                    } else {
                        error_cell(r.error_code, None)
                    };
                    table.row(vec![r.group_id.0.to_string(), result.clone()]);
                    rows.push(json!({"group": r.group_id.0.as_str(), "result": result}));
                }
            }
            emit(common.format, &table, json!(rows));
            failed(&errors, "group deletions")
        }
    }
}

/// The group's state and members.
struct Described {
    state: String,
    protocol_type: String,
    members: Vec<Member>,
}

struct Member {
    member_id: String,
    client_id: String,
    host: String,
    /// (topic, partition) from the consumer protocol's assignment.
    assigned: Vec<(String, i32)>,
}

async fn describe_group(client: &mut Client, group: &str) -> anyhow::Result<Described> {
    let response = client
        .send_to_coordinator(group, |_| {
            DescribeGroupsRequest::default().with_groups(vec![group_id(group)])
        })
        .await?;
    let g = response
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("empty DescribeGroups response"))?;
    ClientError::check(
        g.error_code,
        g.error_message.map(|m| m.to_string()),
        format!("group {group}"),
    )?;
    let members = g
        .members
        .iter()
        .map(|m| {
            let mut assigned = Vec::new();
            if g.protocol_type.as_str() == "consumer" && m.member_assignment.len() >= 2 {
                let mut buf = m.member_assignment.clone();
                let version = i16::from_be_bytes([buf[0], buf[1]]);
                bytes::Buf::advance(&mut buf, 2);
                if let Ok(a) = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)) {
                    for tp in a.assigned_partitions {
                        for p in tp.partitions {
                            assigned.push((tp.topic.0.to_string(), p));
                        }
                    }
                }
            }
            Member {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assigned,
            }
        })
        .collect();
    Ok(Described {
        state: g.group_state.to_string(),
        protocol_type: g.protocol_type.to_string(),
        members,
    })
}

/// Every committed offset of the group: topic → partition → offset.
async fn all_committed(
    client: &mut Client,
    group: &str,
) -> anyhow::Result<BTreeMap<String, BTreeMap<i32, i64>>> {
    let response = client
        .send_to_coordinator(group, |_| {
            OffsetFetchRequest::default()
                .with_group_id(group_id(group))
                .with_topics(None)
        })
        .await?;
    ClientError::check(
        response.error_code,
        None,
        format!("offsets of group {group}"),
    )?;
    let mut out: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for t in response.topics {
        for p in t.partitions {
            if p.error_code == 0 && p.committed_offset >= 0 {
                out.entry(t.name.0.to_string())
                    .or_default()
                    .insert(p.partition_index, p.committed_offset);
            }
        }
    }
    Ok(out)
}

async fn describe(client: &mut Client, common: &Common, group: &str) -> anyhow::Result<()> {
    let d = describe_group(client, group).await?;
    let committed = all_committed(client, group).await?;
    let mut owners: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for (i, m) in d.members.iter().enumerate() {
        for tp in &m.assigned {
            owners.insert(tp.clone(), i);
        }
    }
    // Every partition either committed or assigned.
    let mut rows: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
    for (t, parts) in &committed {
        for (&p, &o) in parts {
            rows.insert((t.clone(), p), Some(o));
        }
    }
    for tp in owners.keys() {
        rows.entry(tp.clone()).or_insert(None);
    }
    let mut ends: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (t, p) in rows.keys() {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    for (t, parts) in &by_topic {
        ends.insert(
            t.clone(),
            client.list_offsets(t, parts, LATEST_TIMESTAMP).await?,
        );
    }
    let mut table = Table::new(&[
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ]);
    let mut json_rows = Vec::new();
    let dash = || "-".to_owned();
    for ((t, p), current) in &rows {
        let end = ends.get(t).and_then(|m| m.get(p)).copied();
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        let owner = owners.get(&(t.clone(), *p)).map(|&i| &d.members[i]);
        table.row(vec![
            group.to_owned(),
            t.clone(),
            p.to_string(),
            current.map_or_else(dash, |c| c.to_string()),
            end.map_or_else(dash, |e| e.to_string()),
            lag.map_or_else(dash, |l| l.to_string()),
            owner.map_or_else(dash, |m| m.member_id.clone()),
            owner.map_or_else(dash, |m| m.host.clone()),
            owner.map_or_else(dash, |m| m.client_id.clone()),
        ]);
        json_rows.push(
            json!({"topic": t, "partition": p, "current_offset": current,
            "log_end_offset": end, "lag": lag, "consumer_id": owner.map(|m| &m.member_id),
            "host": owner.map(|m| &m.host), "client_id": owner.map(|m| &m.client_id)}),
        );
    }
    match common.format {
        super::Format::Table => {
            println!(
                "Group {group} is {} ({} members)\n",
                d.state,
                d.members.len()
            );
            if table.is_empty() {
                println!("(no committed offsets)");
            } else {
                table.print();
            }
        }
        super::Format::Json => super::output::print_json(&json!({"group": group, "state": d.state,
            "protocol_type": d.protocol_type, "members": d.members.len(), "offsets": json_rows})),
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Time(i64),
}

async fn reset(
    client: &mut Client,
    common: &Common,
    group: &str,
    topics: Vec<String>,
    all_topics: bool,
    target: Target,
    execute: bool,
) -> anyhow::Result<()> {
    let d = describe_group(client, group).await?;
    if execute && !matches!(d.state.as_str(), "Empty" | "Dead") {
        anyhow::bail!(
            "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
            d.state
        );
    }
    let committed = all_committed(client, group).await?;
    let topics: Vec<String> = if all_topics {
        committed.keys().cloned().collect()
    } else {
        topics
    };
    let mut table = Table::new(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
    let mut rows = Vec::new();
    let mut plans = Vec::new();
    for topic in &topics {
        let md = client.metadata(Some(std::slice::from_ref(topic))).await?;
        let t = md
            .topics
            .first()
            .ok_or_else(|| anyhow::anyhow!("no metadata for {topic}"))?;
        ClientError::check(t.error_code, None, format!("topic {topic}"))?;
        let mut parts: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        parts.sort_unstable();
        let earliest = client
            .list_offsets(topic, &parts, EARLIEST_TIMESTAMP)
            .await?;
        let latest = client.list_offsets(topic, &parts, LATEST_TIMESTAMP).await?;
        let new: BTreeMap<i32, i64> = match target {
            Target::Earliest => earliest.clone(),
            Target::Latest => latest.clone(),
            // Out-of-range offsets are clamped to the log, as kafka-consumer-groups does.
            Target::Offset(o) => parts
                .iter()
                .map(|&p| (p, o.clamp(earliest[&p], latest[&p])))
                .collect(),
            Target::Time(ts) => {
                let found = client.list_offsets(topic, &parts, ts).await?;
                parts
                    .iter()
                    .map(|&p| (p, if found[&p] < 0 { latest[&p] } else { found[&p] }))
                    .collect()
            }
        };
        for (&p, &o) in &new {
            table.row(vec![
                group.to_owned(),
                topic.clone(),
                p.to_string(),
                o.to_string(),
            ]);
            rows.push(json!({"topic": topic, "partition": p, "new_offset": o}));
        }
        plans.push((topic.clone(), new));
    }
    if execute {
        for (topic, new) in &plans {
            commit(client, group, topic, new).await?;
        }
    } else {
        eprintln!("Dry run: nothing committed (add --execute to commit these offsets).");
    }
    emit(
        common.format,
        &table,
        json!({"group": group, "executed": execute, "offsets": rows}),
    );
    Ok(())
}
