//! Records as a producer writes them and a consumer reads them, in record batches v2.
//!
//! Encoding and parsing are `oxka-log`'s (the batch format is the same on the wire and on disk,
//! and the log owns it): a fetched batch is CRC-checked, decompressed within the log's bounds
//! (at most 64× its size, 128 MiB) and its records parsed with every length checked. Control
//! batches (transaction markers) are skipped, as consumers skip them.

use oxka_log::test_support::{BatchBuilder, TestRecord};
use oxka_log::{Compression, TimestampType};

use crate::error::{ClientError, Result};

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// CreateTime, ms since the epoch.
    pub timestamp_ms: i64,
}

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    pub offset: i64,
    pub timestamp_ms: i64,
    /// `CreateTime` or `LogAppendTime`.
    pub timestamp_type: &'static str,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Encodes `records` as one batch (base offset 0; the leader assigns offsets), compressed with
/// `compression` (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
pub fn encode_batch(records: &[ProducerRecord], compression: &str) -> Result<Vec<u8>> {
    let mut builder = BatchBuilder::new(0).compression(parse_compression(compression)?);
    builder.records = records
        .iter()
        .map(|r| TestRecord {
            timestamp: r.timestamp_ms,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        })
        .collect();
    Ok(builder.build())
}

/// The compression codecs Kafka names in `compression.type`.
pub fn parse_compression(name: &str) -> Result<Compression> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => {
            return Err(ClientError::Records(format!(
                "unknown compression {other:?} (none, gzip, snappy, lz4, zstd)"
            )))
        }
    })
}

/// The records at offsets `>= from_offset` in `bytes` (a Fetch response's records), and the
/// offset after the last batch read (to fetch from next), or `None` when no whole batch was
/// there. A partial batch at the end (cut by the fetch size) is ignored, as Kafka's consumer does.
pub fn decode_records(
    bytes: &[u8],
    from_offset: i64,
) -> Result<(Vec<ConsumerRecord>, Option<i64>)> {
    let mut out = Vec::new();
    let mut next = None;
    for batch in oxka_log::batch::batches(bytes) {
        if !batch.is_valid() {
            return Err(ClientError::Records(format!(
                "batch at offset {} fails its CRC",
                batch.base_offset()
            )));
        }
        next = Some(batch.next_offset());
        if batch.is_control() {
            continue;
        }
        let payload = batch
            .records_payload()
            .map_err(|e| ClientError::Records(e.to_string()))?;
        let log_append = batch.timestamp_type() == TimestampType::LogAppendTime;
        for record in batch.records(&payload) {
            let record = record.map_err(|e| ClientError::Records(e.to_string()))?;
            let offset = batch.base_offset() + i64::from(record.offset_delta);
            if offset < from_offset {
                continue;
            }
            let timestamp_ms = if log_append {
                batch.max_timestamp()
            } else {
                batch.base_timestamp() + record.timestamp_delta
            };
            out.push(ConsumerRecord {
                offset,
                timestamp_ms,
                timestamp_type: if log_append {
                    "LogAppendTime"
                } else {
                    "CreateTime"
                },
                key: record.key.map(<[u8]>::to_vec),
                value: record.value.map(<[u8]>::to_vec),
                headers: record
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            String::from_utf8_lossy(h.key).into_owned(),
                            h.value.map(<[u8]>::to_vec),
                        )
                    })
                    .collect(),
            });
        }
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_records_decode_with_keys_headers_and_offsets() {
        let records = vec![
            ProducerRecord {
                key: Some(b"k1".to_vec()),
                value: Some(b"v1".to_vec()),
                headers: vec![("h".into(), Some(b"x".to_vec())), ("n".into(), None)],
                timestamp_ms: 1_000,
            },
            ProducerRecord {
                key: None,
                value: None,
                headers: vec![],
                timestamp_ms: 1_005,
            },
        ];
        for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
            let bytes = encode_batch(&records, codec).unwrap();
            let (got, next) = decode_records(&bytes, 0).unwrap();
            assert_eq!(next, Some(2), "{codec}");
            assert_eq!(got.len(), 2);
            assert_eq!(got[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(got[0].headers[1], ("n".to_owned(), None));
            assert_eq!((got[1].offset, got[1].timestamp_ms), (1, 1_005));
            assert_eq!(got[1].value, None);
            let (later, _) = decode_records(&bytes, 1).unwrap();
            assert_eq!(later.len(), 1);
        }
        assert!(parse_compression("brotli").is_err());
    }

    #[test]
    fn a_torn_tail_is_ignored_and_a_bad_crc_refused() {
        let mut bytes = encode_batch(&[ProducerRecord::default()], "none").unwrap();
        let (_, next) = decode_records(&bytes[..bytes.len() - 1], 0).unwrap();
        assert_eq!(next, None);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert!(decode_records(&bytes, 0).is_err());
    }
}
