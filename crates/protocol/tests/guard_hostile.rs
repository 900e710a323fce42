//! Hostile bodies: for every covered (api key, version), huge counts and lengths at every byte
//! offset, truncation at every length and seeded random mutations. Each must be refused by
//! `check_request` or fail to decode — without a panic, without aborting the process, and (the
//! point of the guard) without allocating much more than the body's own size: a counting global
//! allocator measures every decode.
//!
//! All tests take `SERIAL` so the allocation counters see one decode at a time.

use std::alloc::System;
use std::sync::Mutex;

use bytes::Bytes;
use oxka_protocol::guard::{check_request, decode_request_body, testing, GuardErrorKind, Problem};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static SERIAL: Mutex<()> = Mutex::new(());

/// Bytes a decode may allocate per body byte, plus a fixed allowance. In-memory elements are at
/// most a few dozen times their smallest encoding (a 1-byte compact string becomes a 32-byte
/// `StrBytes`), and nesting adds a few levels of that.
const PER_BODY_BYTE: usize = 256;
/// Fixed cost of a failed decode: with `RUST_BACKTRACE=1`, anyhow captures a backtrace (~40 KiB)
/// for every error, whatever the input's size.
const FIXED_ALLOWANCE: usize = 256 * 1024;

/// Feeds `body` through `decode_request_body`, measuring what the decode allocates. Returns
/// whether the guard accepted the body.
fn probe(k: i16, v: i16, body: Vec<u8>, worst: &mut f64) -> bool {
    let len = body.len();
    let body = Bytes::from(body);
    let accepted = check_request(k, v, &body).is_ok();
    let region = Region::new(GLOBAL);
    let result = decode_request_body(k, v, body);
    let allocated = region.change().bytes_allocated;
    drop(result);
    assert!(
        allocated <= PER_BODY_BYTE * len + FIXED_ALLOWANCE,
        "api {k} v{v}: decoding a {len}-byte body allocated {allocated} bytes"
    );
    // The per-byte ratio is what scales; judge it where the fixed costs (error contexts) fade.
    if len >= 64 {
        *worst = worst.max(allocated as f64 / len as f64);
    }
    accepted
}

/// splitmix64, seeded: the same inputs every run.
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

/// Huge counts/lengths: i32::MAX, u32::MAX as a varint, i16::MAX, a varint of 2^31.
const HUGE: &[&[u8]] = &[
    &[0x7f, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x7f, 0xff],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
    &[0xff, 0xff, 0xff, 0xfe],
];

fn samples(k: i16, v: i16) -> Vec<Vec<u8>> {
    (0..6u64)
        .map(|seed| testing::sample_body(k, v, 1000 + seed).unwrap())
        .collect()
}

#[test]
fn twelve_byte_metadata_frames_are_refused_where_the_count_is() {
    let _serial = SERIAL.lock().unwrap();
    for v in 0..=12i16 {
        // The body of the famous 12-byte frame: a topic count of 0x7fffffff (or, flexible, the
        // largest varint), nothing else.
        let body: &[u8] = if v >= 9 {
            &[0xff, 0xff, 0xff, 0xff, 0x0f]
        } else {
            &[0x7f, 0xff, 0xff, 0xff]
        };
        let err = check_request(3, v, body).unwrap_err();
        match &err.kind {
            GuardErrorKind::Malformed {
                offset: 0,
                path,
                problem: Problem::ArrayTooLong { .. },
            } if path == "topics" => {}
            other => panic!("Metadata v{v}: unexpected refusal {other:?}"),
        }
        assert!(err.to_string().contains("topics"), "{err}");
        assert!(decode_request_body(3, v, Bytes::copy_from_slice(body)).is_err());
    }
}

#[test]
fn bodies_of_nothing_but_huge_counts_are_refused() {
    let _serial = SERIAL.lock().unwrap();
    let mut worst = 0.0;
    for (k, v) in testing::covered() {
        for pattern in HUGE {
            for repeat in 1..=4 {
                let body = pattern.repeat(repeat);
                probe(k, v, body, &mut worst);
            }
        }
    }
}

#[test]
fn huge_counts_at_every_offset_are_refused_or_fail_to_decode() {
    let _serial = SERIAL.lock().unwrap();
    let mut worst = 0.0f64;
    let mut probes = 0usize;
    for (k, v) in testing::covered() {
        for body in samples(k, v) {
            for at in 0..=body.len() {
                for pattern in HUGE {
                    // Overwrite at `at`.
                    let mut b = body.clone();
                    for (i, p) in pattern.iter().enumerate() {
                        match b.get_mut(at + i) {
                            Some(x) => *x = *p,
                            None => b.push(*p),
                        }
                    }
                    probe(k, v, b, &mut worst);
                    // Insert at `at`.
                    let mut b = body.clone();
                    b.splice(at..at, pattern.iter().copied());
                    probe(k, v, b, &mut worst);
                    probes += 2;
                }
            }
        }
    }
    eprintln!("{probes} probes; worst allocation {worst:.1} bytes per body byte");
}

#[test]
fn every_truncation_is_refused() {
    let _serial = SERIAL.lock().unwrap();
    let mut worst = 0.0;
    for (k, v) in testing::covered() {
        for body in samples(k, v) {
            assert!(check_request(k, v, &body).is_ok());
            for len in 0..body.len() {
                let accepted = probe(k, v, body[..len].to_vec(), &mut worst);
                assert!(
                    !accepted,
                    "api {k} v{v}: {len}-byte prefix of a {}-byte body accepted",
                    body.len()
                );
            }
        }
    }
}

#[test]
fn seeded_random_mutations_never_overallocate() {
    let _serial = SERIAL.lock().unwrap();
    let mut rng = Rng(0x0c5a_0001);
    let mut worst = 0.0f64;
    let mut accepted = 0usize;
    let mut total = 0usize;
    for (k, v) in testing::covered() {
        let bodies = samples(k, v);
        for _ in 0..300 {
            let mut b = bodies[rng.below(bodies.len())].clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(b.len() + 1);
                match rng.below(6) {
                    0 if at < b.len() => b[at] ^= 1 << rng.below(8),
                    1 if at < b.len() => b[at] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
                    2 if at < b.len() => {
                        b.remove(at);
                    }
                    3 => b.insert(at, rng.next() as u8),
                    4 => {
                        let p = HUGE[rng.below(HUGE.len())];
                        b.splice(at..at, p.iter().copied());
                    }
                    _ => b.truncate(at),
                }
            }
            accepted += usize::from(probe(k, v, b, &mut worst));
            total += 1;
        }
    }
    eprintln!("{total} mutants, {accepted} accepted by the guard; worst {worst:.1} bytes allocated per body byte");
}

#[test]
fn valid_bodies_stay_within_the_same_allocation_bound() {
    let _serial = SERIAL.lock().unwrap();
    let mut worst = 0.0f64;
    for (k, v) in testing::covered() {
        for body in samples(k, v) {
            assert!(probe(k, v, body, &mut worst));
        }
    }
    eprintln!("valid bodies: worst {worst:.1} bytes allocated per body byte");
}

/// A Fetch v15 body (the crate's encoding of the default request) whose final top-level tagged
/// section is replaced by `tagged`.
fn fetch_v15_with_tags(tagged: &[u8]) -> Vec<u8> {
    use kafka_protocol::messages::{FetchRequest, RequestKind};
    let mut buf = bytes::BytesMut::new();
    RequestKind::from(FetchRequest::default())
        .encode(&mut buf, 15)
        .unwrap();
    let mut body = buf.to_vec();
    assert_eq!(body.pop(), Some(0), "default has no tagged fields");
    body.extend_from_slice(tagged);
    body
}

fn refusal(body: &[u8]) -> (String, Problem) {
    match check_request(1, 15, body).unwrap_err().kind {
        GuardErrorKind::Malformed { path, problem, .. } => (path, problem),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn known_tagged_fields_are_walked_and_held_to_their_declared_size() {
    let _serial = SERIAL.lock().unwrap();
    // Sanity: a well-formed cluster_id tag is accepted.
    assert!(check_request(1, 15, &fetch_v15_with_tags(&[1, 0, 3, 3, b'i', b'd'])).is_ok());
    // cluster_id (tag 0) with a compact string length of u32::MAX - 1 inside a 5-byte value.
    let (path, problem) = refusal(&fetch_v15_with_tags(&[
        1, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f,
    ]));
    assert_eq!(path, "{tag 0}cluster_id");
    assert!(
        matches!(problem, Problem::LengthTooLong { .. }),
        "{problem:?}"
    );
    // The crate would read cluster_id past the declared size; the guard refuses.
    let (_, problem) = refusal(&fetch_v15_with_tags(&[1, 0, 1, 3, b'i', b'd']));
    assert!(
        matches!(problem, Problem::LengthTooLong { .. }),
        "{problem:?}"
    );
    // A declared size larger than the value is refused too.
    let (_, problem) = refusal(&fetch_v15_with_tags(&[1, 0, 3, 1, 0, 0]));
    assert_eq!(
        problem,
        Problem::TagSizeMismatch {
            tag: 0,
            size: 3,
            used: 1
        }
    );
    // replica_state (tag 1) is not valid before v15.
    let mut buf = bytes::BytesMut::new();
    kafka_protocol::messages::RequestKind::from(kafka_protocol::messages::FetchRequest::default())
        .encode(&mut buf, 14)
        .unwrap();
    let mut body = buf.to_vec();
    body.pop();
    body.extend_from_slice(&[1, 1, 12]);
    body.extend_from_slice(&[0; 12]);
    let err = check_request(1, 14, &body).unwrap_err();
    assert!(
        matches!(
            err.kind,
            GuardErrorKind::Malformed {
                problem: Problem::TagNotInVersion { tag: 1 },
                ..
            }
        ),
        "{err}"
    );
}
