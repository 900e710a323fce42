//! The `decode_request` fuzz target's input format (api key, version, body) run over a bounded,
//! deterministic random corpus, so every `cargo test` does what a short fuzz run does even where
//! libFuzzer is unavailable: 200,000 inputs from a fixed seed, each through
//! `decode_request_body`, with a counting allocator bounding what each decode allocates.
//!
//! With `OXKA_FUZZ_SEED_DIR` set, `write_seed_corpus` writes valid inputs for every covered
//! (api key, version) there, as a starting corpus for `cargo fuzz run decode_request`.

use std::alloc::System;

use bytes::Bytes;
use oxka_protocol::guard::{decode_request_body, testing};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const INPUTS: usize = 200_000;
/// Fixed cost of a failed decode: with `RUST_BACKTRACE=1`, anyhow captures a backtrace (~40 KiB)
/// for every error, whatever the input's size.
const FIXED_ALLOWANCE: usize = 256 * 1024;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs one fuzz input exactly as the fuzz target does; returns bytes allocated by the decode.
fn run_input(data: &[u8]) -> usize {
    if data.len() < 4 {
        return 0;
    }
    let api_key = i16::from_be_bytes([data[0], data[1]]);
    let api_version = i16::from_be_bytes([data[2], data[3]]);
    let body = Bytes::copy_from_slice(&data[4..]);
    let region = Region::new(GLOBAL);
    let result = decode_request_body(api_key, api_version, body);
    let allocated = region.change().bytes_allocated;
    drop(result);
    allocated
}

fn input(k: i16, v: i16, body: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(4 + body.len());
    data.extend_from_slice(&k.to_be_bytes());
    data.extend_from_slice(&v.to_be_bytes());
    data.extend_from_slice(body);
    data
}

#[test]
fn deterministic_random_corpus_never_panics_or_overallocates() {
    let covered = testing::covered();
    let mut rng = Rng(0x0c5a_f022);
    let mut decoded = 0usize;
    for i in 0..INPUTS {
        let (k, v) = covered[rng.below(covered.len())];
        let data = match rng.below(10) {
            // Pure noise, sometimes for keys and versions we do not serve.
            0 => {
                let len = rng.below(64);
                (0..len).map(|_| rng.next() as u8).collect()
            }
            1 => {
                let len = rng.below(48);
                let noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                input(k, v, &noise)
            }
            // A valid body, mutated a few times.
            _ => {
                let mut body = testing::sample_body(k, v, rng.next()).unwrap();
                for _ in 0..rng.below(4) {
                    let at = rng.below(body.len() + 1);
                    match rng.below(5) {
                        0 if at < body.len() => body[at] = rng.next() as u8,
                        1 if at < body.len() => body[at] = [0x7f, 0xff, 0x80, 0x00][rng.below(4)],
                        2 if at < body.len() => {
                            body.remove(at);
                        }
                        3 => body.insert(at, rng.next() as u8),
                        _ => body.truncate(at),
                    }
                }
                input(k, v, &body)
            }
        };
        let allocated = run_input(&data);
        assert!(
            allocated <= 256 * data.len() + FIXED_ALLOWANCE,
            "input {i} ({} bytes, api {k} v{v}) made the decode allocate {allocated} bytes",
            data.len()
        );
        decoded += usize::from(allocated > 0);
    }
    eprintln!("{INPUTS} inputs run through decode_request_body");
    assert!(decoded > 0);
}

#[test]
fn write_seed_corpus() {
    let Some(dir) = std::env::var_os("OXKA_FUZZ_SEED_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    for (k, v) in testing::covered() {
        for seed in 0..4u64 {
            let body = testing::sample_body(k, v, seed).unwrap();
            std::fs::write(dir.join(format!("{k}-{v}-{seed}")), input(k, v, &body)).unwrap();
        }
    }
}
