//! Decompression and compression of a batch's records section (compression: for the log cleaner,
//! which re-compresses the records it keeps with the batch's codec, and for tests).
//!
//! Kafka's codecs: gzip (one gzip member), snappy (raw, or xerial-framed: `\x82SNAPPY\0`, version
//! i32, compatible version i32, then blocks of `length i32 BE` + raw snappy block), LZ4 frame
//! format, zstd frames.
//!
//! Output is bounded: at most [`decompressed_limit`] bytes (64 × the compressed size, at least
//! 8 MiB and at most 128 MiB), so a zip bomb is an error, not an out-of-memory abort.

use std::io::{Read, Write};

use crate::batch::{be_i32, BatchError, Compression};

const RATIO_LIMIT: usize = 64;
const MIN_LIMIT: usize = 8 << 20;
const MAX_LIMIT: usize = 128 << 20;
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_LEN: usize = 16;

/// The most bytes a compressed payload of `compressed_len` bytes may decompress to.
pub(crate) fn decompressed_limit(compressed_len: usize) -> usize {
    compressed_len
        .saturating_mul(RATIO_LIMIT)
        .clamp(MIN_LIMIT, MAX_LIMIT)
}

pub(crate) fn decompress(compression: Compression, input: &[u8]) -> Result<Vec<u8>, BatchError> {
    let limit = decompressed_limit(input.len());
    let err = |reason: String| BatchError::Decompression {
        compression,
        reason,
    };
    match compression {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), limit)
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err(format!("output exceeds {limit} bytes"))),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), limit)
            .map_err(|e| err(e.to_string()))?
            .ok_or_else(|| err(format!("output exceeds {limit} bytes"))),
        Compression::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::with_buffer(input).map_err(|e| err(e.to_string()))?;
            read_bounded(decoder, limit)
                .map_err(|e| err(e.to_string()))?
                .ok_or_else(|| err(format!("output exceeds {limit} bytes")))
        }
        Compression::Snappy => snappy_decompress(input, limit).map_err(err),
    }
}

/// Reads all of `r` unless it yields more than `limit` bytes (`Ok(None)`).
fn read_bounded(r: impl Read, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    r.take(limit as u64 + 1).read_to_end(&mut out)?;
    Ok((out.len() <= limit).then_some(out))
}

fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    if input.len() >= XERIAL_HEADER_LEN && &input[..8] == XERIAL_MAGIC {
        let mut out = Vec::new();
        let mut pos = XERIAL_HEADER_LEN;
        while pos < input.len() {
            if input.len() - pos < 4 {
                return Err(format!("truncated xerial block length at byte {pos}"));
            }
            let len = be_i32(input, pos);
            pos += 4;
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= input.len() - pos)
                .ok_or_else(|| format!("xerial block length {len} exceeds the input"))?;
            let block = &input[pos..pos + len];
            pos += len;
            snappy_block_into(block, &mut out, limit)?;
        }
        Ok(out)
    } else {
        let mut out = Vec::new();
        snappy_block_into(input, &mut out, limit)?;
        Ok(out)
    }
}

fn snappy_block_into(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), String> {
    let n = snap::raw::decompress_len(block).map_err(|e| e.to_string())?;
    if n > limit.saturating_sub(out.len()) {
        return Err(format!("output exceeds {limit} bytes"));
    }
    let start = out.len();
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| e.to_string())?;
    out.truncate(start + written);
    Ok(())
}

/// Whether a snappy payload uses the xerial framing (as the Java producer writes it).
pub(crate) fn is_xerial(input: &[u8]) -> bool {
    input.len() >= XERIAL_HEADER_LEN && &input[..8] == XERIAL_MAGIC
}

/// Compresses `input` as Kafka producers do (snappy: xerial-framed when `xerial`, else raw).
pub(crate) fn compress(compression: Compression, input: &[u8], xerial: bool) -> Vec<u8> {
    match compression {
        Compression::None => input.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(input).expect("writing to a Vec");
            enc.finish().expect("writing to a Vec")
        }
        Compression::Snappy => {
            let raw = snap::raw::Encoder::new()
                .compress_vec(input)
                .expect("snappy accepts any input below 4 GiB");
            if !xerial {
                return raw;
            }
            let mut out = Vec::with_capacity(raw.len() + XERIAL_HEADER_LEN + 4);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&(raw.len() as i32).to_be_bytes());
            out.extend_from_slice(&raw);
            out
        }
        Compression::Lz4 => {
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(input).expect("writing to a Vec");
            enc.finish().expect("writing to a Vec")
        }
        Compression::Zstd => zstd::stream::encode_all(input, 3).expect("zstd into a Vec"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips() {
        let data: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let packed = compress(c, &data, false);
            assert_eq!(decompress(c, &packed).unwrap(), data, "{c:?}");
        }
        let xerial = compress(Compression::Snappy, &data, true);
        assert_eq!(decompress(Compression::Snappy, &xerial).unwrap(), data);
    }

    #[test]
    fn zip_bomb_is_an_error() {
        let zeros = vec![0u8; MAX_LIMIT + 1];
        for c in [Compression::Gzip, Compression::Zstd, Compression::Lz4] {
            let packed = compress(c, &zeros, false);
            assert!(packed.len() * RATIO_LIMIT < MAX_LIMIT);
            let e = decompress(c, &packed).unwrap_err();
            assert!(
                matches!(e, BatchError::Decompression { .. }),
                "{c:?}: {e:?}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            assert!(
                decompress(c, b"definitely not compressed").is_err(),
                "{c:?}"
            );
        }
        // A xerial block whose length points past the input.
        let mut bad = XERIAL_MAGIC.to_vec();
        bad.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff]);
        assert!(decompress(Compression::Snappy, &bad).is_err());
    }
}
