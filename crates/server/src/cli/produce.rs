//! `oxka produce TOPIC`: one record per line of standard input.
//!
//! With `--key-separator SEP` the text before the first SEP is the key (a line without it is an
//! error, as in kafka-console-producer). Keyed records go to Kafka's default partition for the
//! key (murmur2 of the key bytes, as the Java producer does, so the same key lands where a Java
//! producer would put it); unkeyed records fill one partition per batch, rotating. Batches of
//! `--batch-size` lines are sent with `--acks` (default all) and awaited before the next.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use oxka_client::records::{encode_batch, ProducerRecord};
use oxka_client::ClientError;
use serde_json::json;

use super::output::emit;
use super::{key_value, Common, Table};

#[derive(Debug, clap::Args)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    /// Topic to write to.
    topic: String,
    /// Write every record to this partition.
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Split each line into key and value at the first occurrence of this string.
    #[arg(long = "key-separator")]
    key_separator: Option<String>,
    /// A header on every record, KEY=VALUE (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Acknowledgements: all (-1) or 1.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Records per batch.
    #[arg(long = "batch-size", default_value_t = 500)]
    batch_size: usize,
}

pub(crate) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let acks: i16 = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        other => anyhow::bail!("--acks must be all, -1 or 1, not {other:?}"),
    };
    oxka_client::records::parse_compression(&args.compression)?;
    let headers: Vec<(String, Option<Vec<u8>>)> = args
        .headers
        .iter()
        .map(|h| key_value(h).map(|(k, v)| (k, Some(v.into_bytes()))))
        .collect::<anyhow::Result<_>>()?;
    let mut client = args.common.connect().await?;
    let md = client
        .metadata(Some(std::slice::from_ref(&args.topic)))
        .await?;
    let topic = md
        .topics
        .first()
        .ok_or_else(|| anyhow::anyhow!("no metadata for topic {}", args.topic))?;
    ClientError::check(topic.error_code, None, format!("topic {}", args.topic))?;
    let partition_count = topic.partitions.len() as i32;
    if let Some(p) = args.partition {
        if p < 0 || p >= partition_count {
            return Err(ClientError::kafka(
                3,
                None,
                format!(
                    "{}-{p} (the topic has {partition_count} partitions)",
                    args.topic
                ),
            )
            .into());
        }
    }

    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut line_no = 0usize;
    let mut sticky = 0i32;
    let mut stats: BTreeMap<i32, (u64, i64, i64)> = BTreeMap::new();
    let mut total = 0u64;
    let started = Instant::now();
    let mut last_progress = Instant::now();
    loop {
        let mut batch: BTreeMap<i32, Vec<ProducerRecord>> = BTreeMap::new();
        let mut read = 0;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        while read < args.batch_size.max(1) {
            let Some(line) = lines.next() else { break };
            let line = line?;
            line_no += 1;
            read += 1;
            let (key, value) = match &args.key_separator {
                Some(sep) => match line.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(k.as_bytes().to_vec()), v.as_bytes().to_vec()),
                    None => anyhow::bail!(
                        "line {line_no}: no key separator {sep:?} found (nothing after line {} was sent)",
                        line_no - 1
                    ),
                },
                None => (None, line.into_bytes()),
            };
            let partition = match (args.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => default_partition(k, partition_count),
                (None, None) => sticky,
            };
            batch.entry(partition).or_default().push(ProducerRecord {
                key,
                value: Some(value),
                headers: headers.clone(),
                timestamp_ms: now_ms,
            });
        }
        if read == 0 {
            break;
        }
        sticky = (sticky + 1) % partition_count.max(1);
        for (partition, records) in batch {
            let bytes = Bytes::from(encode_batch(&records, &args.compression)?);
            let base = client
                .produce(&args.topic, partition, bytes, acks, 30_000)
                .await?;
            let last = base + records.len() as i64 - 1;
            let e = stats.entry(partition).or_insert((0, base, last));
            e.0 += records.len() as u64;
            e.2 = last;
            total += records.len() as u64;
        }
        if last_progress.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "produced {total} records ({:.0}/s)",
                total as f64 / started.elapsed().as_secs_f64().max(0.001)
            );
            last_progress = Instant::now();
        }
    }
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "RECORDS",
        "FIRST-OFFSET",
        "LAST-OFFSET",
    ]);
    let mut rows = Vec::new();
    for (p, (count, first, last)) in &stats {
        table.row(vec![
            args.topic.clone(),
            p.to_string(),
            count.to_string(),
            first.to_string(),
            last.to_string(),
        ]);
        rows.push(
            json!({"partition": p, "records": count, "first_offset": first, "last_offset": last}),
        );
    }
    emit(
        args.common.format,
        &table,
        json!({"topic": args.topic, "records": total, "partitions": rows}),
    );
    Ok(())
}

/// Kafka's default partition for a key: `toPositive(murmur2(key)) % partitions`.
pub(crate) fn default_partition(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as i32) % partitions.max(1)
}

/// Kafka's `Utils.murmur2` (seed 0x9747b28c).
pub(crate) fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_utils_test() {
        // Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973_932_308);
        assert_eq!(murmur2(b"foobar") as i32, -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985_981_536);
        assert_eq!(
            murmur2(b"a-little-bit-longer-string") as i32,
            -1_486_304_829
        );
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58_897_971
        );
        assert_eq!(murmur2(b"abc") as i32, 479_470_107);
    }
}
