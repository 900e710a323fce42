//! `oxka consume TOPIC`: read records and print them.
//!
//! Start position per partition: `--offset N`, `--timestamp T` (the first record at or after T,
//! by ListOffsets), `--from-beginning`, else the log end (new records only), as
//! kafka-console-consumer. With `--group G` the group's committed offsets come first, and the
//! offsets read are committed as the group's (a standalone consumer: generation -1, no
//! rebalance membership, which Kafka accepts for a group with no active members).
//! Stops after `--max-messages`, after `--timeout-ms` without a new record, or at Ctrl-C.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use oxka_client::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use oxka_client::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestTopic,
};
use oxka_client::kafka_protocol::messages::GroupId;
use oxka_client::kafka_protocol::protocol::StrBytes;
use oxka_client::ops::{EARLIEST_TIMESTAMP, LATEST_TIMESTAMP};
use oxka_client::records::{decode_records, ConsumerRecord};
use oxka_client::{Client, ClientError};
use serde_json::json;

use super::topic::topic_name;
use super::{Common, Format};

#[derive(Debug, clap::Args)]
pub(crate) struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    /// Topic to read.
    topic: String,
    /// Read only this partition.
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Start at each partition's log start offset.
    #[arg(long = "from-beginning", conflicts_with_all = ["offset", "timestamp"])]
    from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", conflicts_with = "timestamp")]
    offset: Option<i64>,
    /// Start at the first record at or after this time: ms since the epoch or
    /// YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM] (UTC when no zone is given).
    #[arg(long)]
    timestamp: Option<String>,
    /// Read from and commit to this consumer group's offsets.
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long = "max-messages")]
    max_messages: Option<u64>,
    /// Stop when no record arrives for this long.
    #[arg(long = "timeout-ms")]
    timeout_ms: Option<u64>,
    /// Print only each record's value (table format).
    #[arg(long = "value-only")]
    value_only: bool,
}

pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut client = args.common.connect().await?;
    let md = client
        .metadata(Some(std::slice::from_ref(&args.topic)))
        .await?;
    let t = md
        .topics
        .first()
        .ok_or_else(|| anyhow::anyhow!("no metadata for {}", args.topic))?;
    ClientError::check(t.error_code, None, format!("topic {}", args.topic))?;
    let all: Vec<i32> = {
        let mut v: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        v.sort_unstable();
        v
    };
    let partitions = match args.partition {
        Some(p) if all.contains(&p) => vec![p],
        Some(p) => return Err(ClientError::kafka(3, None, format!("{}-{p}", args.topic)).into()),
        None => all,
    };

    let mut positions = start_offsets(&mut client, &args, &partitions).await?;
    let mut printer = Printer::new(args.common.format, args.value_only);
    let mut consumed = 0u64;
    let mut last_record = Instant::now();
    let mut uncommitted = false;
    loop {
        if args.max_messages.is_some_and(|m| consumed >= m) {
            break;
        }
        if args
            .timeout_ms
            .is_some_and(|t| last_record.elapsed() >= Duration::from_millis(t))
        {
            break;
        }
        let wait = args.timeout_ms.map_or(500, |t| t.clamp(1, 500) as i32);
        let fetched = tokio::select! {
            r = client.fetch(&args.topic, &positions, wait, 1 << 20) => r?,
            _ = tokio::signal::ctrl_c() => break,
        };
        for f in fetched {
            let Some(bytes) = f.records.as_ref() else {
                continue;
            };
            let from = positions[&f.partition];
            let (records, next) = decode_records(bytes, from)?;
            for r in &records {
                if args.max_messages.is_some_and(|m| consumed >= m) {
                    break;
                }
                printer.print(&args.topic, f.partition, r);
                consumed += 1;
                last_record = Instant::now();
                positions.insert(f.partition, r.offset + 1);
                uncommitted = true;
            }
            if args.max_messages.is_none_or(|m| consumed < m) {
                if let Some(next) = next {
                    // Skip past control batches and records below the position.
                    let p = positions.get_mut(&f.partition).expect("fetched partition");
                    *p = (*p).max(next);
                }
            }
        }
        if uncommitted {
            if let Some(g) = &args.group {
                commit(&mut client, g, &args.topic, &positions).await?;
                uncommitted = false;
            }
        }
    }
    if uncommitted {
        if let Some(g) = &args.group {
            commit(&mut client, g, &args.topic, &positions).await?;
        }
    }
    eprintln!("Processed a total of {consumed} messages");
    Ok(())
}

async fn start_offsets(
    client: &mut Client,
    args: &ConsumeArgs,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, i64>> {
    if let Some(offset) = args.offset {
        return Ok(partitions.iter().map(|&p| (p, offset)).collect());
    }
    let mut out = BTreeMap::new();
    if let Some(group) = &args.group {
        for (p, offset) in committed(client, group, &args.topic, partitions).await? {
            if offset >= 0 {
                out.insert(p, offset);
            }
        }
    }
    let rest: Vec<i32> = partitions
        .iter()
        .copied()
        .filter(|p| !out.contains_key(p))
        .collect();
    if rest.is_empty() {
        return Ok(out);
    }
    let spec = match &args.timestamp {
        Some(t) => parse_timestamp(t)?,
        None if args.from_beginning => EARLIEST_TIMESTAMP,
        None => LATEST_TIMESTAMP,
    };
    let found = client.list_offsets(&args.topic, &rest, spec).await?;
    let latest = if spec >= 0 {
        client
            .list_offsets(&args.topic, &rest, LATEST_TIMESTAMP)
            .await?
    } else {
        BTreeMap::new()
    };
    for p in rest {
        let o = found.get(&p).copied().unwrap_or(-1);
        // A timestamp later than every record: start at the end.
        let o = if o < 0 {
            latest.get(&p).copied().unwrap_or(0)
        } else {
            o
        };
        out.insert(p, o);
    }
    Ok(out)
}

/// The committed offset of each partition (-1: none), from the group coordinator.
pub(crate) async fn committed(
    client: &mut Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let response = client
        .send_to_coordinator(group, |_| {
            OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(partitions.to_vec())]))
        })
        .await?;
    ClientError::check(
        response.error_code,
        None,
        format!("offsets of group {group}"),
    )?;
    let mut out = BTreeMap::new();
    for t in &response.topics {
        for p in &t.partitions {
            ClientError::check(
                p.error_code,
                None,
                format!("offset of {topic}-{}", p.partition_index),
            )?;
            out.insert(p.partition_index, p.committed_offset);
        }
    }
    Ok(out)
}

/// Commits `offsets` for `group` as a standalone consumer (generation -1, no member id).
pub(crate) async fn commit(
    client: &mut Client,
    group: &str,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let response = client
        .send_to_coordinator(group, |_| {
            OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_owned())))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(StrBytes::from_static_str(""))
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(
                        offsets
                            .iter()
                            .map(|(&p, &o)| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                            })
                            .collect(),
                    )])
        })
        .await?;
    for t in &response.topics {
        for p in &t.partitions {
            ClientError::check(
                p.error_code,
                None,
                format!("commit for group {group} {topic}-{}", p.partition_index),
            )?;
        }
    }
    Ok(())
}

struct Printer {
    format: Format,
    value_only: bool,
    header_done: bool,
}

impl Printer {
    fn new(format: Format, value_only: bool) -> Printer {
        Printer {
            format,
            value_only,
            header_done: false,
        }
    }

    fn print(&mut self, topic: &str, partition: i32, r: &ConsumerRecord) {
        let text =
            |b: &Option<Vec<u8>>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        let mut out = std::io::stdout().lock();
        match self.format {
            Format::Json => {
                let headers: Vec<_> = r.headers.iter().map(|(k, v)| json!([k, text(v)])).collect();
                let line = json!({"topic": topic, "partition": partition, "offset": r.offset,
                    "timestamp": r.timestamp_ms, "timestamp_type": r.timestamp_type,
                    "key": text(&r.key), "headers": headers, "value": text(&r.value)});
                let _ = writeln!(out, "{line}");
            }
            Format::Table if self.value_only => {
                let _ = writeln!(out, "{}", text(&r.value).unwrap_or_else(|| "null".into()));
            }
            Format::Table => {
                if !self.header_done {
                    let _ = writeln!(out, "PARTITION\tOFFSET\tTIMESTAMP\tKEY\tHEADERS\tVALUE");
                    self.header_done = true;
                }
                let headers = r
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", text(v).unwrap_or_else(|| "null".into())))
                    .collect::<Vec<_>>()
                    .join(",");
                let _ = writeln!(
                    out,
                    "{partition}\t{}\t{}\t{}\t{}\t{}",
                    r.offset,
                    r.timestamp_ms,
                    text(&r.key).unwrap_or_else(|| "null".into()),
                    headers,
                    text(&r.value).unwrap_or_else(|| "null".into())
                );
            }
        }
        let _ = out.flush();
    }
}

/// Milliseconds since the epoch, from a number or `YYYY-MM-DDTHH:MM:SS[.sss][Z|±HH:MM]`
/// (UTC when no zone is given).
pub(crate) fn parse_timestamp(s: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || {
        anyhow::anyhow!(
            "bad time {s:?}: expected ms since the epoch or YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]"
        )
    };
    let (date, rest) = s.split_once('T').ok_or_else(bad)?;
    let mut d = date.split('-');
    let year: i64 = d.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let month: i64 = d.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let day: i64 = d.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let (time, offset_min) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (h, m) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
        let h: i64 = h.parse().map_err(|_| bad())?;
        let m: i64 = m.parse().map_err(|_| bad())?;
        (t, sign * (h * 60 + m))
    } else {
        (rest, 0)
    };
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let hour: i64 = t.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let minute: i64 = t.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let second: i64 = t.next().unwrap_or("0").parse().map_err(|_| bad())?;
    let millis: i64 = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    Ok((((days * 24 + hour) * 60 + minute) * 60 + second) * 1000 + millis - offset_min * 60_000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
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
    fn timestamps_parse_as_utc_or_with_a_zone() {
        assert_eq!(parse_timestamp("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_timestamp("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20.000Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20.5+01:00").unwrap(),
            1_700_000_000_500
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2023-13-01T00:00:00").is_err());
    }
}
