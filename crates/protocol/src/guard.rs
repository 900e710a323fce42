//! Pre-decode guard for request bodies.
//!
//! The `kafka-protocol` crate sizes every array from the count on the wire
//! (`Vec::with_capacity(n)` for `Array`, i32 count, and `CompactArray`, varint count minus one),
//! and copies some strings and bytes into buffers sized from the wire length. A 12-byte Metadata
//! body whose topic count is `0x7fffffff` therefore asks for tens of gigabytes and aborts the
//! process. We keep the crate as the codec and walk the body first.
//!
//! The walk follows [`APIS`], a table of the wire shape of every request we serve: for each
//! structure, its fields in wire order with the versions that carry them, plus its known tagged
//! fields. In flexible versions (from `Api::flex` on, for the whole message) strings, bytes and
//! arrays use the compact encodings and every structure ends with a tagged-field section. The table
//! mirrors the decode order of `kafka-protocol` 0.18 (itself generated from Kafka's
//! `*Request.json` schemas); `tests/guard_roundtrip.rs` checks it against the crate for every
//! covered version.
//!
//! Invariant when [`check_request`] returns `Ok`: while the crate decodes `body` at that version,
//! every array it sizes has `count <= remaining` and `count * min_wire_size(element) <= remaining`
//! (the bytes left in the body at the count), and every string or bytes length is `<= remaining`.
//! So each allocation is bounded by the body's length times the in-memory size of one element.
//!
//! Two details keep the walk and the crate in step:
//! - the crate decodes a *known* tagged field from the stream without bounding it by the declared
//!   size, so the walker requires a known tagged field's value to take exactly its declared size
//!   (always true of a valid request) and walks that value, since it may hold arrays;
//! - varints are read as the crate reads them: at most five bytes, surplus bits dropped.
//!
//! Bytes after the last field are accepted, as the crate accepts them. The walker never
//! allocates in proportion to the input; its work is linear in the body's length.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};

/// Why a request body was refused, and where.
#[derive(Debug, thiserror::Error)]
#[error("api {api_key} v{api_version} request body refused: {kind}")]
pub struct GuardError {
    pub api_key: i16,
    pub api_version: i16,
    pub kind: GuardErrorKind,
}

/// What was wrong with a request body.
#[derive(Debug, thiserror::Error)]
pub enum GuardErrorKind {
    /// The (api key, version) pair is not in the guard's table; the caller closes the connection.
    #[error("api key and version not covered by the guard")]
    NotCovered,
    /// The walk found a length the body cannot back.
    #[error("at byte {offset} (`{path}`): {problem}")]
    Malformed {
        /// Offset into the body where the offending length or value starts.
        offset: usize,
        /// Field path, e.g. `topics[2].partitions`.
        path: String,
        problem: Problem,
    },
    /// The guard accepted the body but `kafka-protocol` failed to decode it.
    #[error("decode failed")]
    Decode(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// A length or value on the wire that the remaining bytes cannot back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("{needed} bytes needed, {remaining} remain")]
    Truncated { needed: u64, remaining: usize },
    #[error("array count {count} (each element at least {min_element} bytes) exceeds the {remaining} bytes remaining")]
    ArrayTooLong {
        count: u64,
        min_element: u64,
        remaining: usize,
    },
    #[error("length {len} exceeds the {remaining} bytes remaining")]
    LengthTooLong { len: u64, remaining: usize },
    #[error("negative length {0}")]
    NegativeLength(i64),
    #[error("tagged field {tag} declares {size} bytes but its value takes {used}")]
    TagSizeMismatch { tag: u32, size: u64, used: usize },
    #[error("tagged field {tag} is not valid in this version")]
    TagNotInVersion { tag: u32 },
}

/// Whether the guard has a table for `api_key` at `api_version`.
pub fn covers(api_key: i16, api_version: i16) -> bool {
    api(api_key, api_version).is_some()
}

/// Checks that decoding `body` (the request bytes after the request header) as `api_key` at
/// `api_version` cannot allocate much more than the body's own size: every array/compact-array
/// count, string and bytes length on the walk must fit in the bytes that remain.
pub fn check_request(api_key: i16, api_version: i16, body: &[u8]) -> Result<(), GuardError> {
    let refuse = |kind| GuardError {
        api_key,
        api_version,
        kind,
    };
    let api = api(api_key, api_version).ok_or_else(|| refuse(GuardErrorKind::NotCovered))?;
    let mut walker = Walker {
        body,
        pos: 0,
        end: body.len(),
        version: api_version,
        flexible: api_version >= api.flex,
        path: Vec::new(),
    };
    walker.walk_struct(api.body).map_err(|(offset, problem)| {
        refuse(GuardErrorKind::Malformed {
            offset,
            path: walker.path_string(),
            problem,
        })
    })
}

/// [`check_request`], then decode with `kafka-protocol`. This is the only way Oxka decodes a
/// request body.
pub fn decode_request_body(
    api_key: i16,
    api_version: i16,
    body: Bytes,
) -> Result<RequestKind, GuardError> {
    check_request(api_key, api_version, &body)?;
    let refuse = |kind| GuardError {
        api_key,
        api_version,
        kind,
    };
    // `covers` only holds keys the crate knows, so the conversion cannot fail after the check.
    let key = ApiKey::try_from(api_key).map_err(|()| refuse(GuardErrorKind::NotCovered))?;
    let mut buf = body;
    RequestKind::decode(key, &mut buf, api_version)
        .map_err(|e| refuse(GuardErrorKind::Decode(e.into())))
}

fn api(api_key: i16, api_version: i16) -> Option<&'static Api> {
    let i = APIS.binary_search_by_key(&api_key, |a| a.key).ok()?;
    let api = &APIS[i];
    (api.min..=api.max).contains(&api_version).then_some(api)
}

/// One request: its versions, its first flexible version and the shape of its body.
#[derive(Debug)]
struct Api {
    key: i16,
    #[allow(dead_code)] // read by humans and by Debug output
    name: &'static str,
    min: i16,
    max: i16,
    /// First flexible version (compact encodings, tagged fields); `NEVER` if none is covered.
    flex: i16,
    body: &'static [Field],
}

/// Wire type of a field.
#[derive(Debug, Clone, Copy)]
enum Ty {
    I8,
    I16,
    I32,
    I64,
    U16,
    F64,
    Uuid,
    Bool,
    /// `STRING` (i16 length, -1 null) or, in flexible versions, `COMPACT_STRING` (varint length+1).
    Str,
    /// `BYTES`/`RECORDS` (i32 length) or `COMPACT_BYTES`/`COMPACT_RECORDS` (varint length+1).
    Bytes,
    /// `ARRAY` (i32 count, -1 null) or `COMPACT_ARRAY` (varint count+1, 0 null).
    Array(&'static Ty),
    Struct(&'static [Field]),
    /// A nullable structure: an i8 marker (1 = present) then the structure.
    OptStruct(&'static [Field]),
}

/// A field of a structure, present in versions `lo..=hi`.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    lo: i16,
    hi: i16,
    ty: Ty,
    /// Whether the crate's type for this field admits null (used by the tests' generator; the
    /// walker accepts null everywhere, since a null allocates nothing).
    #[allow(dead_code)]
    nullable: bool,
    /// `Some(tag)` for a tagged field, which lives in the tagged-field section.
    tag: Option<u32>,
}

impl Field {
    const fn null(self) -> Field {
        Field {
            nullable: true,
            ..self
        }
    }
    const fn tag(self, tag: u32) -> Field {
        Field {
            tag: Some(tag),
            ..self
        }
    }
    fn present_in(&self, version: i16) -> bool {
        (self.lo..=self.hi).contains(&version)
    }
}

const fn f(name: &'static str, lo: i16, hi: i16, ty: Ty) -> Field {
    Field {
        name,
        lo,
        hi,
        ty,
        nullable: false,
        tag: None,
    }
}

/// Upper bound of "all later versions" for fields and "no flexible version" for APIs.
const N: i16 = i16::MAX;
const NEVER: i16 = i16::MAX;

const I8: Ty = Ty::I8;
const I16: Ty = Ty::I16;
const I32: Ty = Ty::I32;
const I64: Ty = Ty::I64;
#[allow(dead_code)]
const U16: Ty = Ty::U16;
#[allow(dead_code)]
const F64: Ty = Ty::F64;
const UUID: Ty = Ty::Uuid;
const BOOL: Ty = Ty::Bool;
const STR: Ty = Ty::Str;
const BYTES: Ty = Ty::Bytes;

type Walk<T> = Result<T, (usize, Problem)>;

#[derive(Debug, Clone, Copy)]
enum Step {
    Field(&'static str),
    Index(u64),
    Tag(u32),
}

/// Walks a body; `end` shrinks while a known tagged field's value is walked.
struct Walker<'a> {
    body: &'a [u8],
    pos: usize,
    end: usize,
    version: i16,
    flexible: bool,
    path: Vec<Step>,
}

impl Walker<'_> {
    fn walk_struct(&mut self, fields: &'static [Field]) -> Walk<()> {
        for field in fields {
            if field.tag.is_none() && field.present_in(self.version) {
                self.path.push(Step::Field(field.name));
                self.walk_ty(field.ty)?;
                self.path.pop();
            }
        }
        if self.flexible {
            self.walk_tagged_fields(fields)?;
        }
        Ok(())
    }

    /// The tagged-field section: count, then per field tag, size and `size` bytes of value.
    fn walk_tagged_fields(&mut self, fields: &'static [Field]) -> Walk<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let at = self.pos;
            let size = u64::from(self.uvarint()?);
            self.fits(at, size)?;
            let value_end = self.pos + size as usize;
            match fields.iter().find(|f| f.tag == Some(tag)) {
                Some(field) if field.present_in(self.version) => {
                    self.path.push(Step::Tag(tag));
                    self.path.push(Step::Field(field.name));
                    let outer_end = std::mem::replace(&mut self.end, value_end);
                    let start = self.pos;
                    self.walk_ty(field.ty)?;
                    if self.pos != value_end {
                        let used = self.pos - start;
                        return Err((at, Problem::TagSizeMismatch { tag, size, used }));
                    }
                    self.end = outer_end;
                    self.path.pop();
                    self.path.pop();
                }
                Some(_) => return Err((at, Problem::TagNotInVersion { tag })),
                None => self.pos = value_end,
            }
        }
        Ok(())
    }

    fn walk_ty(&mut self, ty: Ty) -> Walk<()> {
        match ty {
            Ty::I8 | Ty::Bool => self.skip(1),
            Ty::I16 | Ty::U16 => self.skip(2),
            Ty::I32 => self.skip(4),
            Ty::I64 | Ty::F64 => self.skip(8),
            Ty::Uuid => self.skip(16),
            Ty::Str => {
                let at = self.pos;
                let len = self.length(false)?;
                self.skip_len(len, at)
            }
            Ty::Bytes => {
                let at = self.pos;
                let len = self.length(true)?;
                self.skip_len(len, at)
            }
            Ty::Array(element) => {
                let at = self.pos;
                let count = self.length(true)?;
                let Some(count) = count else { return Ok(()) };
                let remaining = self.end - self.pos;
                let min_element = min_wire_size(*element, self.version, self.flexible);
                // An element the version encodes in zero bytes still costs an allocation slot,
                // so the count alone must also fit.
                if count > remaining as u64 || count.saturating_mul(min_element) > remaining as u64
                {
                    return Err((
                        at,
                        Problem::ArrayTooLong {
                            count,
                            min_element,
                            remaining,
                        },
                    ));
                }
                for i in 0..count {
                    self.path.push(Step::Index(i));
                    self.walk_ty(*element)?;
                    self.path.pop();
                }
                Ok(())
            }
            Ty::Struct(fields) => self.walk_struct(fields),
            Ty::OptStruct(fields) => {
                let mut marker = [0u8; 1];
                self.take(&mut marker)?;
                // The crate reads the structure only when the marker is exactly 1.
                if marker[0] == 1 {
                    self.walk_struct(fields)?;
                }
                Ok(())
            }
        }
    }

    /// A length or count; `None` is null. Flexible versions: varint `n + 1`, 0 is null. Otherwise
    /// an i32 (`wide`) or i16: -1 is null, other negatives are refused.
    fn length(&mut self, wide: bool) -> Walk<Option<u64>> {
        let at = self.pos;
        let n = if self.flexible {
            return Ok(self.uvarint()?.checked_sub(1).map(u64::from));
        } else if wide {
            i64::from(self.i32()?)
        } else {
            i64::from(self.i16()?)
        };
        match n {
            -1 => Ok(None),
            n if n < 0 => Err((at, Problem::NegativeLength(n))),
            n => Ok(Some(n as u64)),
        }
    }

    fn skip_len(&mut self, len: Option<u64>, at: usize) -> Walk<()> {
        match len {
            None => Ok(()),
            Some(len) => {
                self.fits(at, len)?;
                self.pos += len as usize;
                Ok(())
            }
        }
    }

    /// Refuses a length that exceeds the bytes remaining.
    fn fits(&self, at: usize, len: u64) -> Walk<()> {
        let remaining = self.end - self.pos;
        if len > remaining as u64 {
            return Err((at, Problem::LengthTooLong { len, remaining }));
        }
        Ok(())
    }

    fn skip(&mut self, n: usize) -> Walk<()> {
        let remaining = self.end - self.pos;
        if n > remaining {
            return Err((
                self.pos,
                Problem::Truncated {
                    needed: n as u64,
                    remaining,
                },
            ));
        }
        self.pos += n;
        Ok(())
    }

    fn take(&mut self, out: &mut [u8]) -> Walk<()> {
        let start = self.pos;
        self.skip(out.len())?;
        out.copy_from_slice(&self.body[start..self.pos]);
        Ok(())
    }

    fn i16(&mut self) -> Walk<i16> {
        let mut b = [0u8; 2];
        self.take(&mut b)?;
        Ok(i16::from_be_bytes(b))
    }

    fn i32(&mut self) -> Walk<i32> {
        let mut b = [0u8; 4];
        self.take(&mut b)?;
        Ok(i32::from_be_bytes(b))
    }

    /// An unsigned varint exactly as the crate reads it: at most five bytes, bits beyond 32
    /// dropped.
    fn uvarint(&mut self) -> Walk<u32> {
        let mut value = 0u32;
        for i in 0..5 {
            let mut b = [0u8; 1];
            self.take(&mut b)?;
            let b = u32::from(b[0]);
            value |= (b & 0x7f) << (i * 7);
            if b < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    fn path_string(&self) -> String {
        let mut s = String::new();
        for step in &self.path {
            match step {
                Step::Field(name) => {
                    if !s.is_empty() && !s.ends_with('}') {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                Step::Index(i) => s.push_str(&format!("[{i}]")),
                // Rendered as a prefix of the tagged field's name: `topics[0].{tag 1}replica_state`.
                Step::Tag(t) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(&format!("{{tag {t}}}"));
                }
            }
        }
        if s.is_empty() {
            s.push_str("body");
        }
        s
    }
}

/// The fewest bytes a value of `ty` takes on the wire at `version`.
fn min_wire_size(ty: Ty, version: i16, flexible: bool) -> u64 {
    let length_prefix = if flexible { 1 } else { 0 };
    match ty {
        Ty::I8 | Ty::Bool | Ty::OptStruct(_) => 1,
        Ty::I16 | Ty::U16 => 2,
        Ty::I32 => 4,
        Ty::I64 | Ty::F64 => 8,
        Ty::Uuid => 16,
        Ty::Str => length_prefix.max(2 * u64::from(!flexible)),
        Ty::Bytes | Ty::Array(_) => length_prefix.max(4 * u64::from(!flexible)),
        Ty::Struct(fields) => {
            let untagged: u64 = fields
                .iter()
                .filter(|f| f.tag.is_none() && f.present_in(version))
                .map(|f| min_wire_size(f.ty, version, flexible))
                .sum();
            untagged + length_prefix // the tagged-field count
        }
    }
}

/// Test support: the covered pairs and a generator of valid bodies drawn from the same table the
/// walker uses. The round-trip tests decode generated bodies with `kafka-protocol` and compare,
/// which is how they prove the table agrees with the crate. Not part of the broker's API.
#[doc(hidden)]
pub mod testing {
    use super::{Field, Ty, APIS};

    /// Every covered (api key, version), in key then version order.
    pub fn covered() -> Vec<(i16, i16)> {
        APIS.iter()
            .flat_map(|a| (a.min..=a.max).map(move |v| (a.key, v)))
            .collect()
    }

    /// A valid body for `api_key` at `api_version`, pseudo-random from `seed`: arrays of 0–3
    /// elements (fewer when nested), strings and bytes of 0–5 bytes, nulls where the field admits
    /// them, and in flexible versions some known tagged fields and up to two unknown ones.
    pub fn sample_body(api_key: i16, api_version: i16, seed: u64) -> Option<Vec<u8>> {
        let api = super::api(api_key, api_version)?;
        let mut sampler = Sampler {
            rng: seed ^ 0x9e37_79b9_7f4a_7c15,
            out: Vec::new(),
            version: api_version,
            flexible: api_version >= api.flex,
            depth: 0,
        };
        sampler.structure(api.body);
        Some(sampler.out)
    }

    struct Sampler {
        rng: u64,
        out: Vec<u8>,
        version: i16,
        flexible: bool,
        depth: u32,
    }

    impl Sampler {
        /// splitmix64.
        fn next(&mut self) -> u64 {
            self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.rng;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn random_bytes(&mut self, n: usize) {
            for _ in 0..n {
                let b = self.next() as u8;
                self.out.push(b);
            }
        }

        fn uvarint(&mut self, mut v: u32) {
            while v >= 0x80 {
                self.out.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.out.push(v as u8);
        }

        /// Writes a length or count (`None` = null) in the version's encoding.
        fn length(&mut self, len: Option<usize>, wide: bool) {
            match (self.flexible, len) {
                (true, None) => self.uvarint(0),
                (true, Some(n)) => self.uvarint(n as u32 + 1),
                (false, len) => {
                    let n = len.map_or(-1, |n| n as i64);
                    if wide {
                        self.out.extend_from_slice(&(n as i32).to_be_bytes());
                    } else {
                        self.out.extend_from_slice(&(n as i16).to_be_bytes());
                    }
                }
            }
        }

        fn structure(&mut self, fields: &'static [Field]) {
            for field in fields {
                if field.tag.is_none() && field.present_in(self.version) {
                    self.value(field.ty, field.nullable);
                }
            }
            if !self.flexible {
                return;
            }
            let mut tagged: Vec<(u32, Vec<u8>)> = Vec::new();
            for field in fields {
                if let Some(tag) = field.tag {
                    if field.present_in(self.version) && self.below(2) == 0 {
                        let outer = std::mem::take(&mut self.out);
                        self.value(field.ty, field.nullable);
                        let value = std::mem::replace(&mut self.out, outer);
                        tagged.push((tag, value));
                    }
                }
            }
            // Unknown tags: far above any tag Kafka has assigned in these messages.
            for _ in 0..self.below(3) {
                let tag = 100 + self.below(50) as u32;
                if tagged.iter().all(|(t, _)| *t != tag) {
                    let outer = std::mem::take(&mut self.out);
                    let len = self.below(4) as usize;
                    self.random_bytes(len);
                    let value = std::mem::replace(&mut self.out, outer);
                    tagged.push((tag, value));
                }
            }
            tagged.sort_by_key(|(t, _)| *t);
            self.uvarint(tagged.len() as u32);
            for (tag, value) in tagged {
                self.uvarint(tag);
                self.uvarint(value.len() as u32);
                self.out.extend_from_slice(&value);
            }
        }

        fn value(&mut self, ty: Ty, nullable: bool) {
            match ty {
                Ty::I8 => self.random_bytes(1),
                Ty::Bool => {
                    let b = self.below(2) as u8;
                    self.out.push(b);
                }
                Ty::I16 | Ty::U16 => self.random_bytes(2),
                Ty::I32 => self.random_bytes(4),
                Ty::I64 => self.random_bytes(8),
                Ty::F64 => {
                    let x = self.below(1 << 20) as f64 / 8.0;
                    self.out.extend_from_slice(&x.to_be_bytes());
                }
                Ty::Uuid => self.random_bytes(16),
                Ty::Str | Ty::Bytes => {
                    if nullable && self.below(5) == 0 {
                        self.length(None, matches!(ty, Ty::Bytes));
                        return;
                    }
                    let len = self.below(6) as usize;
                    self.length(Some(len), matches!(ty, Ty::Bytes));
                    for _ in 0..len {
                        let c = b'a' + self.below(26) as u8;
                        self.out.push(c);
                    }
                }
                Ty::Array(element) => {
                    if nullable && self.below(5) == 0 {
                        self.length(None, true);
                        return;
                    }
                    let count = self.below(if self.depth >= 2 { 2 } else { 4 }) as usize;
                    self.length(Some(count), true);
                    self.depth += 1;
                    for _ in 0..count {
                        self.value(*element, false);
                    }
                    self.depth -= 1;
                }
                Ty::Struct(fields) => self.structure(fields),
                Ty::OptStruct(fields) => {
                    if self.below(3) == 0 {
                        self.out.push(0xff);
                    } else {
                        self.out.push(1);
                        self.structure(fields);
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table. One `const` per structure, fields in wire order; `f(name, lo, hi, type)` with
// `hi == N` for "every later version"; `.null()` where the field admits null, `.tag(n)` for a
// tagged field. `APIS` is sorted by key. Field order, version gates and tags were read off
// kafka-protocol 0.18's generated decoders (restricted to the versions we serve). To serve a new
// API or version, extend the table; `tests/guard_roundtrip.rs` fails on any disagreement with the
// crate (a sample body the crate does not consume exactly, or decodes differently).
// ---------------------------------------------------------------------------------------------

const PRODUCE_PARTITION_PRODUCE_DATA: &[Field] =
    &[f("index", 3, N, I32), f("records", 3, N, BYTES).null()];

const PRODUCE_TOPIC_PRODUCE_DATA: &[Field] = &[
    f("name", 3, N, STR),
    f(
        "partition_data",
        3,
        N,
        Ty::Array(&Ty::Struct(PRODUCE_PARTITION_PRODUCE_DATA)),
    ),
];

const PRODUCE_REQUEST: &[Field] = &[
    f("transactional_id", 3, N, STR).null(),
    f("acks", 3, N, I16),
    f("timeout_ms", 3, N, I32),
    f(
        "topic_data",
        3,
        N,
        Ty::Array(&Ty::Struct(PRODUCE_TOPIC_PRODUCE_DATA)),
    ),
];

const FETCH_PARTITION: &[Field] = &[
    f("partition", 4, N, I32),
    f("current_leader_epoch", 9, N, I32),
    f("fetch_offset", 4, N, I64),
    f("last_fetched_epoch", 12, N, I32),
    f("log_start_offset", 5, N, I64),
    f("partition_max_bytes", 4, N, I32),
];

const FETCH_TOPIC: &[Field] = &[
    f("topic", 4, 12, STR),
    f("topic_id", 13, N, UUID),
    f("partitions", 4, N, Ty::Array(&Ty::Struct(FETCH_PARTITION))),
];

const FETCH_FORGOTTEN_TOPIC: &[Field] = &[
    f("topic", 7, 12, STR),
    f("topic_id", 13, N, UUID),
    f("partitions", 7, N, Ty::Array(&I32)),
];

const FETCH_REPLICA_STATE: &[Field] =
    &[f("replica_id", 15, N, I32), f("replica_epoch", 15, N, I64)];

const FETCH_REQUEST: &[Field] = &[
    f("replica_id", 4, 14, I32),
    f("max_wait_ms", 4, N, I32),
    f("min_bytes", 4, N, I32),
    f("max_bytes", 4, N, I32),
    f("isolation_level", 4, N, I8),
    f("session_id", 7, N, I32),
    f("session_epoch", 7, N, I32),
    f("topics", 4, N, Ty::Array(&Ty::Struct(FETCH_TOPIC))),
    f(
        "forgotten_topics_data",
        7,
        N,
        Ty::Array(&Ty::Struct(FETCH_FORGOTTEN_TOPIC)),
    ),
    f("rack_id", 11, N, STR),
    f("cluster_id", 12, N, STR).null().tag(0),
    f("replica_state", 15, N, Ty::Struct(FETCH_REPLICA_STATE)).tag(1),
];

const LIST_OFFSETS_PARTITION: &[Field] = &[
    f("partition_index", 1, N, I32),
    f("current_leader_epoch", 4, N, I32),
    f("timestamp", 1, N, I64),
];

const LIST_OFFSETS_TOPIC: &[Field] = &[
    f("name", 1, N, STR),
    f(
        "partitions",
        1,
        N,
        Ty::Array(&Ty::Struct(LIST_OFFSETS_PARTITION)),
    ),
];

const LIST_OFFSETS_REQUEST: &[Field] = &[
    f("replica_id", 1, N, I32),
    f("isolation_level", 2, N, I8),
    f("topics", 1, N, Ty::Array(&Ty::Struct(LIST_OFFSETS_TOPIC))),
];

const METADATA_REQUEST_TOPIC: &[Field] = &[f("topic_id", 10, N, UUID), f("name", 0, N, STR).null()];

const METADATA_REQUEST: &[Field] = &[
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(METADATA_REQUEST_TOPIC)),
    )
    .null(),
    f("allow_auto_topic_creation", 4, N, BOOL),
    f("include_cluster_authorized_operations", 8, 10, BOOL),
    f("include_topic_authorized_operations", 8, N, BOOL),
];

const OFFSET_COMMIT_REQUEST_PARTITION: &[Field] = &[
    f("partition_index", 2, N, I32),
    f("committed_offset", 2, N, I64),
    f("committed_leader_epoch", 6, N, I32),
    f("committed_metadata", 2, N, STR).null(),
];

const OFFSET_COMMIT_REQUEST_TOPIC: &[Field] = &[
    f("name", 2, N, STR),
    f(
        "partitions",
        2,
        N,
        Ty::Array(&Ty::Struct(OFFSET_COMMIT_REQUEST_PARTITION)),
    ),
];

const OFFSET_COMMIT_REQUEST: &[Field] = &[
    f("group_id", 2, N, STR),
    f("generation_id_or_member_epoch", 2, N, I32),
    f("member_id", 2, N, STR),
    f("group_instance_id", 7, N, STR).null(),
    f("retention_time_ms", 2, 4, I64),
    f(
        "topics",
        2,
        N,
        Ty::Array(&Ty::Struct(OFFSET_COMMIT_REQUEST_TOPIC)),
    ),
];

const OFFSET_FETCH_REQUEST_TOPIC: &[Field] = &[
    f("name", 1, 7, STR),
    f("partition_indexes", 1, 7, Ty::Array(&I32)),
];

const OFFSET_FETCH_REQUEST_TOPICS: &[Field] = &[
    f("name", 8, N, STR),
    f("partition_indexes", 8, N, Ty::Array(&I32)),
];

const OFFSET_FETCH_REQUEST_GROUP: &[Field] = &[
    f("group_id", 8, N, STR),
    f("member_id", 9, N, STR).null(),
    f("member_epoch", 9, N, I32),
    f(
        "topics",
        8,
        N,
        Ty::Array(&Ty::Struct(OFFSET_FETCH_REQUEST_TOPICS)),
    )
    .null(),
];

const OFFSET_FETCH_REQUEST: &[Field] = &[
    f("group_id", 1, 7, STR),
    f(
        "topics",
        1,
        7,
        Ty::Array(&Ty::Struct(OFFSET_FETCH_REQUEST_TOPIC)),
    )
    .null(),
    f(
        "groups",
        8,
        N,
        Ty::Array(&Ty::Struct(OFFSET_FETCH_REQUEST_GROUP)),
    ),
    f("require_stable", 7, N, BOOL),
];

const FIND_COORDINATOR_REQUEST: &[Field] = &[
    f("key", 0, 3, STR),
    f("key_type", 1, N, I8),
    f("coordinator_keys", 4, N, Ty::Array(&STR)),
];

const JOIN_GROUP_REQUEST_PROTOCOL: &[Field] = &[f("name", 0, N, STR), f("metadata", 0, N, BYTES)];

const JOIN_GROUP_REQUEST: &[Field] = &[
    f("group_id", 0, N, STR),
    f("session_timeout_ms", 0, N, I32),
    f("rebalance_timeout_ms", 1, N, I32),
    f("member_id", 0, N, STR),
    f("group_instance_id", 5, N, STR).null(),
    f("protocol_type", 0, N, STR),
    f(
        "protocols",
        0,
        N,
        Ty::Array(&Ty::Struct(JOIN_GROUP_REQUEST_PROTOCOL)),
    ),
    f("reason", 8, N, STR).null(),
];

const HEARTBEAT_REQUEST: &[Field] = &[
    f("group_id", 0, N, STR),
    f("generation_id", 0, N, I32),
    f("member_id", 0, N, STR),
    f("group_instance_id", 3, N, STR).null(),
];

const LEAVE_GROUP_MEMBER_IDENTITY: &[Field] = &[
    f("member_id", 3, N, STR),
    f("group_instance_id", 3, N, STR).null(),
    f("reason", 5, N, STR).null(),
];

const LEAVE_GROUP_REQUEST: &[Field] = &[
    f("group_id", 0, N, STR),
    f("member_id", 0, 2, STR),
    f(
        "members",
        3,
        N,
        Ty::Array(&Ty::Struct(LEAVE_GROUP_MEMBER_IDENTITY)),
    ),
];

const SYNC_GROUP_REQUEST_ASSIGNMENT: &[Field] =
    &[f("member_id", 0, N, STR), f("assignment", 0, N, BYTES)];

const SYNC_GROUP_REQUEST: &[Field] = &[
    f("group_id", 0, N, STR),
    f("generation_id", 0, N, I32),
    f("member_id", 0, N, STR),
    f("group_instance_id", 3, N, STR).null(),
    f("protocol_type", 5, N, STR).null(),
    f("protocol_name", 5, N, STR).null(),
    f(
        "assignments",
        0,
        N,
        Ty::Array(&Ty::Struct(SYNC_GROUP_REQUEST_ASSIGNMENT)),
    ),
];

const DESCRIBE_GROUPS_REQUEST: &[Field] = &[
    f("groups", 0, N, Ty::Array(&STR)),
    f("include_authorized_operations", 3, N, BOOL),
];

const LIST_GROUPS_REQUEST: &[Field] = &[
    f("states_filter", 4, N, Ty::Array(&STR)),
    f("types_filter", 5, N, Ty::Array(&STR)),
];

const SASL_HANDSHAKE_REQUEST: &[Field] = &[f("mechanism", 0, N, STR)];

const API_VERSIONS_REQUEST: &[Field] = &[
    f("client_software_name", 3, N, STR),
    f("client_software_version", 3, N, STR),
];

const CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT: &[Field] = &[
    f("partition_index", 2, N, I32),
    f("broker_ids", 2, N, Ty::Array(&I32)),
];

const CREATE_TOPICS_CREATABLE_TOPIC_CONFIG: &[Field] =
    &[f("name", 2, N, STR), f("value", 2, N, STR).null()];

const CREATE_TOPICS_CREATABLE_TOPIC: &[Field] = &[
    f("name", 2, N, STR),
    f("num_partitions", 2, N, I32),
    f("replication_factor", 2, N, I16),
    f(
        "assignments",
        2,
        N,
        Ty::Array(&Ty::Struct(CREATE_TOPICS_CREATABLE_REPLICA_ASSIGNMENT)),
    ),
    f(
        "configs",
        2,
        N,
        Ty::Array(&Ty::Struct(CREATE_TOPICS_CREATABLE_TOPIC_CONFIG)),
    ),
];

const CREATE_TOPICS_REQUEST: &[Field] = &[
    f(
        "topics",
        2,
        N,
        Ty::Array(&Ty::Struct(CREATE_TOPICS_CREATABLE_TOPIC)),
    ),
    f("timeout_ms", 2, N, I32),
    f("validate_only", 2, N, BOOL),
];

const DELETE_TOPICS_DELETE_TOPIC_STATE: &[Field] =
    &[f("name", 6, N, STR).null(), f("topic_id", 6, N, UUID)];

const DELETE_TOPICS_REQUEST: &[Field] = &[
    f(
        "topics",
        6,
        N,
        Ty::Array(&Ty::Struct(DELETE_TOPICS_DELETE_TOPIC_STATE)),
    ),
    f("topic_names", 1, 5, Ty::Array(&STR)),
    f("timeout_ms", 1, N, I32),
];

const DELETE_RECORDS_PARTITION: &[Field] =
    &[f("partition_index", 0, N, I32), f("offset", 0, N, I64)];

const DELETE_RECORDS_TOPIC: &[Field] = &[
    f("name", 0, N, STR),
    f(
        "partitions",
        0,
        N,
        Ty::Array(&Ty::Struct(DELETE_RECORDS_PARTITION)),
    ),
];

const DELETE_RECORDS_REQUEST: &[Field] = &[
    f("topics", 0, N, Ty::Array(&Ty::Struct(DELETE_RECORDS_TOPIC))),
    f("timeout_ms", 0, N, I32),
];

const INIT_PRODUCER_ID_REQUEST: &[Field] = &[
    f("transactional_id", 0, N, STR).null(),
    f("transaction_timeout_ms", 0, N, I32),
    f("producer_id", 3, N, I64),
    f("producer_epoch", 3, N, I16),
];

const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION: &[Field] = &[
    f("partition", 2, N, I32),
    f("current_leader_epoch", 2, N, I32),
    f("leader_epoch", 2, N, I32),
];

const OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC: &[Field] = &[
    f("topic", 2, N, STR),
    f(
        "partitions",
        2,
        N,
        Ty::Array(&Ty::Struct(
            OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_PARTITION,
        )),
    ),
];

const OFFSET_FOR_LEADER_EPOCH_REQUEST: &[Field] = &[
    f("replica_id", 3, N, I32),
    f(
        "topics",
        2,
        N,
        Ty::Array(&Ty::Struct(OFFSET_FOR_LEADER_EPOCH_OFFSET_FOR_LEADER_TOPIC)),
    ),
];

const ADD_PARTITIONS_TO_TXN_TOPIC: &[Field] =
    &[f("name", 0, N, STR), f("partitions", 0, N, Ty::Array(&I32))];

const ADD_PARTITIONS_TO_TXN_REQUEST: &[Field] = &[
    f("v3_and_below_transactional_id", 0, N, STR),
    f("v3_and_below_producer_id", 0, N, I64),
    f("v3_and_below_producer_epoch", 0, N, I16),
    f(
        "v3_and_below_topics",
        0,
        N,
        Ty::Array(&Ty::Struct(ADD_PARTITIONS_TO_TXN_TOPIC)),
    ),
];

const ADD_OFFSETS_TO_TXN_REQUEST: &[Field] = &[
    f("transactional_id", 0, N, STR),
    f("producer_id", 0, N, I64),
    f("producer_epoch", 0, N, I16),
    f("group_id", 0, N, STR),
];

const END_TXN_REQUEST: &[Field] = &[
    f("transactional_id", 0, N, STR),
    f("producer_id", 0, N, I64),
    f("producer_epoch", 0, N, I16),
    f("committed", 0, N, BOOL),
];

const WRITE_TXN_MARKERS_TOPIC: &[Field] = &[
    f("name", 0, N, STR),
    f("partition_indexes", 0, N, Ty::Array(&I32)),
];

const WRITE_TXN_MARKERS_MARKER: &[Field] = &[
    f("producer_id", 0, N, I64),
    f("producer_epoch", 0, N, I16),
    f("transaction_result", 0, N, BOOL),
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(WRITE_TXN_MARKERS_TOPIC)),
    ),
    f("coordinator_epoch", 0, N, I32),
];

const WRITE_TXN_MARKERS_REQUEST: &[Field] = &[f(
    "markers",
    0,
    N,
    Ty::Array(&Ty::Struct(WRITE_TXN_MARKERS_MARKER)),
)];

const TXN_OFFSET_COMMIT_REQUEST_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("committed_offset", 0, N, I64),
    f("committed_leader_epoch", 2, N, I32),
    f("committed_metadata", 0, N, STR).null(),
];

const TXN_OFFSET_COMMIT_REQUEST_TOPIC: &[Field] = &[
    f("name", 0, N, STR),
    f(
        "partitions",
        0,
        N,
        Ty::Array(&Ty::Struct(TXN_OFFSET_COMMIT_REQUEST_PARTITION)),
    ),
];

const TXN_OFFSET_COMMIT_REQUEST: &[Field] = &[
    f("transactional_id", 0, N, STR),
    f("group_id", 0, N, STR),
    f("producer_id", 0, N, I64),
    f("producer_epoch", 0, N, I16),
    f("generation_id", 3, N, I32),
    f("member_id", 3, N, STR),
    f("group_instance_id", 3, N, STR).null(),
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(TXN_OFFSET_COMMIT_REQUEST_TOPIC)),
    ),
];

const DESCRIBE_ACLS_REQUEST: &[Field] = &[
    f("resource_type_filter", 1, N, I8),
    f("resource_name_filter", 1, N, STR).null(),
    f("pattern_type_filter", 1, N, I8),
    f("principal_filter", 1, N, STR).null(),
    f("host_filter", 1, N, STR).null(),
    f("operation", 1, N, I8),
    f("permission_type", 1, N, I8),
];

const CREATE_ACLS_ACL_CREATION: &[Field] = &[
    f("resource_type", 1, N, I8),
    f("resource_name", 1, N, STR),
    f("resource_pattern_type", 1, N, I8),
    f("principal", 1, N, STR),
    f("host", 1, N, STR),
    f("operation", 1, N, I8),
    f("permission_type", 1, N, I8),
];

const CREATE_ACLS_REQUEST: &[Field] = &[f(
    "creations",
    1,
    N,
    Ty::Array(&Ty::Struct(CREATE_ACLS_ACL_CREATION)),
)];

const DELETE_ACLS_FILTER: &[Field] = &[
    f("resource_type_filter", 1, N, I8),
    f("resource_name_filter", 1, N, STR).null(),
    f("pattern_type_filter", 1, N, I8),
    f("principal_filter", 1, N, STR).null(),
    f("host_filter", 1, N, STR).null(),
    f("operation", 1, N, I8),
    f("permission_type", 1, N, I8),
];

const DELETE_ACLS_REQUEST: &[Field] = &[f(
    "filters",
    1,
    N,
    Ty::Array(&Ty::Struct(DELETE_ACLS_FILTER)),
)];

const DESCRIBE_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", 1, N, I8),
    f("resource_name", 1, N, STR),
    f("configuration_keys", 1, N, Ty::Array(&STR)).null(),
];

const DESCRIBE_CONFIGS_REQUEST: &[Field] = &[
    f(
        "resources",
        1,
        N,
        Ty::Array(&Ty::Struct(DESCRIBE_CONFIGS_RESOURCE)),
    ),
    f("include_synonyms", 1, N, BOOL),
    f("include_documentation", 3, N, BOOL),
];

const ALTER_CONFIGS_ALTERABLE_CONFIG: &[Field] =
    &[f("name", 0, N, STR), f("value", 0, N, STR).null()];

const ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", 0, N, I8),
    f("resource_name", 0, N, STR),
    f(
        "configs",
        0,
        N,
        Ty::Array(&Ty::Struct(ALTER_CONFIGS_ALTERABLE_CONFIG)),
    ),
];

const ALTER_CONFIGS_REQUEST: &[Field] = &[
    f(
        "resources",
        0,
        N,
        Ty::Array(&Ty::Struct(ALTER_CONFIGS_RESOURCE)),
    ),
    f("validate_only", 0, N, BOOL),
];

const DESCRIBE_LOG_DIRS_DESCRIBABLE_LOG_DIR_TOPIC: &[Field] = &[
    f("topic", 1, N, STR),
    f("partitions", 1, N, Ty::Array(&I32)),
];

const DESCRIBE_LOG_DIRS_REQUEST: &[Field] = &[f(
    "topics",
    1,
    N,
    Ty::Array(&Ty::Struct(DESCRIBE_LOG_DIRS_DESCRIBABLE_LOG_DIR_TOPIC)),
)
.null()];

const SASL_AUTHENTICATE_REQUEST: &[Field] = &[f("auth_bytes", 0, N, BYTES)];

const CREATE_PARTITIONS_ASSIGNMENT: &[Field] = &[f("broker_ids", 0, N, Ty::Array(&I32))];

const CREATE_PARTITIONS_TOPIC: &[Field] = &[
    f("name", 0, N, STR),
    f("count", 0, N, I32),
    f(
        "assignments",
        0,
        N,
        Ty::Array(&Ty::Struct(CREATE_PARTITIONS_ASSIGNMENT)),
    )
    .null(),
];

const CREATE_PARTITIONS_REQUEST: &[Field] = &[
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(CREATE_PARTITIONS_TOPIC)),
    ),
    f("timeout_ms", 0, N, I32),
    f("validate_only", 0, N, BOOL),
];

const DELETE_GROUPS_REQUEST: &[Field] = &[f("groups_names", 0, N, Ty::Array(&STR))];

const ELECT_LEADERS_TOPIC_PARTITIONS: &[Field] = &[
    f("topic", 0, N, STR),
    f("partitions", 0, N, Ty::Array(&I32)),
];

const ELECT_LEADERS_REQUEST: &[Field] = &[
    f("election_type", 1, N, I8),
    f(
        "topic_partitions",
        0,
        N,
        Ty::Array(&Ty::Struct(ELECT_LEADERS_TOPIC_PARTITIONS)),
    )
    .null(),
    f("timeout_ms", 0, N, I32),
];

const INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG: &[Field] = &[
    f("name", 0, N, STR),
    f("config_operation", 0, N, I8),
    f("value", 0, N, STR).null(),
];

const INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE: &[Field] = &[
    f("resource_type", 0, N, I8),
    f("resource_name", 0, N, STR),
    f(
        "configs",
        0,
        N,
        Ty::Array(&Ty::Struct(INCREMENTAL_ALTER_CONFIGS_ALTERABLE_CONFIG)),
    ),
];

const INCREMENTAL_ALTER_CONFIGS_REQUEST: &[Field] = &[
    f(
        "resources",
        0,
        N,
        Ty::Array(&Ty::Struct(
            INCREMENTAL_ALTER_CONFIGS_ALTER_CONFIGS_RESOURCE,
        )),
    ),
    f("validate_only", 0, N, BOOL),
];

const ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_PARTITION: &[Field] = &[
    f("partition_index", 0, N, I32),
    f("replicas", 0, N, Ty::Array(&I32)).null(),
];

const ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_TOPIC: &[Field] = &[
    f("name", 0, N, STR),
    f(
        "partitions",
        0,
        N,
        Ty::Array(&Ty::Struct(
            ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_PARTITION,
        )),
    ),
];

const ALTER_PARTITION_REASSIGNMENTS_REQUEST: &[Field] = &[
    f("timeout_ms", 0, N, I32),
    f("allow_replication_factor_change", 1, N, BOOL),
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(
            ALTER_PARTITION_REASSIGNMENTS_REASSIGNABLE_TOPIC,
        )),
    ),
];

const LIST_PARTITION_REASSIGNMENTS_TOPICS: &[Field] = &[
    f("name", 0, N, STR),
    f("partition_indexes", 0, N, Ty::Array(&I32)),
];

const LIST_PARTITION_REASSIGNMENTS_REQUEST: &[Field] = &[
    f("timeout_ms", 0, N, I32),
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(LIST_PARTITION_REASSIGNMENTS_TOPICS)),
    )
    .null(),
];

const OFFSET_DELETE_REQUEST_PARTITION: &[Field] = &[f("partition_index", 0, N, I32)];

const OFFSET_DELETE_REQUEST_TOPIC: &[Field] = &[
    f("name", 0, N, STR),
    f(
        "partitions",
        0,
        N,
        Ty::Array(&Ty::Struct(OFFSET_DELETE_REQUEST_PARTITION)),
    ),
];

const OFFSET_DELETE_REQUEST: &[Field] = &[
    f("group_id", 0, N, STR),
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(OFFSET_DELETE_REQUEST_TOPIC)),
    ),
];

const DESCRIBE_USER_SCRAM_CREDENTIALS_USER_NAME: &[Field] = &[f("name", 0, N, STR)];

const DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST: &[Field] = &[f(
    "users",
    0,
    N,
    Ty::Array(&Ty::Struct(DESCRIBE_USER_SCRAM_CREDENTIALS_USER_NAME)),
)
.null()];

const ALTER_USER_SCRAM_CREDENTIALS_SCRAM_CREDENTIAL_DELETION: &[Field] =
    &[f("name", 0, N, STR), f("mechanism", 0, N, I8)];

const ALTER_USER_SCRAM_CREDENTIALS_SCRAM_CREDENTIAL_UPSERTION: &[Field] = &[
    f("name", 0, N, STR),
    f("mechanism", 0, N, I8),
    f("iterations", 0, N, I32),
    f("salt", 0, N, BYTES),
    f("salted_password", 0, N, BYTES),
];

const ALTER_USER_SCRAM_CREDENTIALS_REQUEST: &[Field] = &[
    f(
        "deletions",
        0,
        N,
        Ty::Array(&Ty::Struct(
            ALTER_USER_SCRAM_CREDENTIALS_SCRAM_CREDENTIAL_DELETION,
        )),
    ),
    f(
        "upsertions",
        0,
        N,
        Ty::Array(&Ty::Struct(
            ALTER_USER_SCRAM_CREDENTIALS_SCRAM_CREDENTIAL_UPSERTION,
        )),
    ),
];

const DESCRIBE_CLUSTER_REQUEST: &[Field] = &[
    f("include_cluster_authorized_operations", 0, N, BOOL),
    f("endpoint_type", 1, N, I8),
];

const DESCRIBE_PRODUCERS_TOPIC_REQUEST: &[Field] = &[
    f("name", 0, N, STR),
    f("partition_indexes", 0, N, Ty::Array(&I32)),
];

const DESCRIBE_PRODUCERS_REQUEST: &[Field] = &[f(
    "topics",
    0,
    N,
    Ty::Array(&Ty::Struct(DESCRIBE_PRODUCERS_TOPIC_REQUEST)),
)];

const DESCRIBE_TRANSACTIONS_REQUEST: &[Field] = &[f("transactional_ids", 0, N, Ty::Array(&STR))];

const LIST_TRANSACTIONS_REQUEST: &[Field] = &[
    f("state_filters", 0, N, Ty::Array(&STR)),
    f("producer_id_filters", 0, N, Ty::Array(&I64)),
    f("duration_filter", 1, N, I64),
];

const CONSUMER_GROUP_HEARTBEAT_TOPIC_PARTITIONS: &[Field] = &[
    f("topic_id", 0, N, UUID),
    f("partitions", 0, N, Ty::Array(&I32)),
];

const CONSUMER_GROUP_HEARTBEAT_REQUEST: &[Field] = &[
    f("group_id", 0, N, STR),
    f("member_id", 0, N, STR),
    f("member_epoch", 0, N, I32),
    f("instance_id", 0, N, STR).null(),
    f("rack_id", 0, N, STR).null(),
    f("rebalance_timeout_ms", 0, N, I32),
    f("subscribed_topic_names", 0, N, Ty::Array(&STR)).null(),
    f("subscribed_topic_regex", 1, N, STR).null(),
    f("server_assignor", 0, N, STR).null(),
    f(
        "topic_partitions",
        0,
        N,
        Ty::Array(&Ty::Struct(CONSUMER_GROUP_HEARTBEAT_TOPIC_PARTITIONS)),
    )
    .null(),
];

const CONSUMER_GROUP_DESCRIBE_REQUEST: &[Field] = &[
    f("group_ids", 0, N, Ty::Array(&STR)),
    f("include_authorized_operations", 0, N, BOOL),
];

const DESCRIBE_TOPIC_PARTITIONS_TOPIC_REQUEST: &[Field] = &[f("name", 0, N, STR)];

const DESCRIBE_TOPIC_PARTITIONS_CURSOR: &[Field] =
    &[f("topic_name", 0, N, STR), f("partition_index", 0, N, I32)];

const DESCRIBE_TOPIC_PARTITIONS_REQUEST: &[Field] = &[
    f(
        "topics",
        0,
        N,
        Ty::Array(&Ty::Struct(DESCRIBE_TOPIC_PARTITIONS_TOPIC_REQUEST)),
    ),
    f("response_partition_limit", 0, N, I32),
    f(
        "cursor",
        0,
        N,
        Ty::OptStruct(DESCRIBE_TOPIC_PARTITIONS_CURSOR),
    ),
];

/// Every request the guard covers, by API key.
static APIS: &[Api] = &[
    Api {
        key: 0,
        name: "Produce",
        min: 3,
        max: 11,
        flex: 9,
        body: PRODUCE_REQUEST,
    },
    Api {
        key: 1,
        name: "Fetch",
        min: 4,
        max: 16,
        flex: 12,
        body: FETCH_REQUEST,
    },
    Api {
        key: 2,
        name: "ListOffsets",
        min: 1,
        max: 9,
        flex: 6,
        body: LIST_OFFSETS_REQUEST,
    },
    Api {
        key: 3,
        name: "Metadata",
        min: 0,
        max: 12,
        flex: 9,
        body: METADATA_REQUEST,
    },
    Api {
        key: 8,
        name: "OffsetCommit",
        min: 2,
        max: 9,
        flex: 8,
        body: OFFSET_COMMIT_REQUEST,
    },
    Api {
        key: 9,
        name: "OffsetFetch",
        min: 1,
        max: 9,
        flex: 6,
        body: OFFSET_FETCH_REQUEST,
    },
    Api {
        key: 10,
        name: "FindCoordinator",
        min: 0,
        max: 6,
        flex: 3,
        body: FIND_COORDINATOR_REQUEST,
    },
    Api {
        key: 11,
        name: "JoinGroup",
        min: 0,
        max: 9,
        flex: 6,
        body: JOIN_GROUP_REQUEST,
    },
    Api {
        key: 12,
        name: "Heartbeat",
        min: 0,
        max: 4,
        flex: 4,
        body: HEARTBEAT_REQUEST,
    },
    Api {
        key: 13,
        name: "LeaveGroup",
        min: 0,
        max: 5,
        flex: 4,
        body: LEAVE_GROUP_REQUEST,
    },
    Api {
        key: 14,
        name: "SyncGroup",
        min: 0,
        max: 5,
        flex: 4,
        body: SYNC_GROUP_REQUEST,
    },
    Api {
        key: 15,
        name: "DescribeGroups",
        min: 0,
        max: 5,
        flex: 5,
        body: DESCRIBE_GROUPS_REQUEST,
    },
    Api {
        key: 16,
        name: "ListGroups",
        min: 0,
        max: 5,
        flex: 3,
        body: LIST_GROUPS_REQUEST,
    },
    Api {
        key: 17,
        name: "SaslHandshake",
        min: 0,
        max: 1,
        flex: NEVER,
        body: SASL_HANDSHAKE_REQUEST,
    },
    Api {
        key: 18,
        name: "ApiVersions",
        min: 0,
        max: 4,
        flex: 3,
        body: API_VERSIONS_REQUEST,
    },
    Api {
        key: 19,
        name: "CreateTopics",
        min: 2,
        max: 7,
        flex: 5,
        body: CREATE_TOPICS_REQUEST,
    },
    Api {
        key: 20,
        name: "DeleteTopics",
        min: 1,
        max: 6,
        flex: 4,
        body: DELETE_TOPICS_REQUEST,
    },
    Api {
        key: 21,
        name: "DeleteRecords",
        min: 0,
        max: 2,
        flex: 2,
        body: DELETE_RECORDS_REQUEST,
    },
    Api {
        key: 22,
        name: "InitProducerId",
        min: 0,
        max: 5,
        flex: 2,
        body: INIT_PRODUCER_ID_REQUEST,
    },
    Api {
        key: 23,
        name: "OffsetForLeaderEpoch",
        min: 2,
        max: 4,
        flex: 4,
        body: OFFSET_FOR_LEADER_EPOCH_REQUEST,
    },
    Api {
        key: 24,
        name: "AddPartitionsToTxn",
        min: 0,
        max: 3,
        flex: 3,
        body: ADD_PARTITIONS_TO_TXN_REQUEST,
    },
    Api {
        key: 25,
        name: "AddOffsetsToTxn",
        min: 0,
        max: 3,
        flex: 3,
        body: ADD_OFFSETS_TO_TXN_REQUEST,
    },
    Api {
        key: 26,
        name: "EndTxn",
        min: 0,
        max: 3,
        flex: 3,
        body: END_TXN_REQUEST,
    },
    Api {
        key: 27,
        name: "WriteTxnMarkers",
        min: 1,
        max: 1,
        flex: 1,
        body: WRITE_TXN_MARKERS_REQUEST,
    },
    Api {
        key: 28,
        name: "TxnOffsetCommit",
        min: 0,
        max: 3,
        flex: 3,
        body: TXN_OFFSET_COMMIT_REQUEST,
    },
    Api {
        key: 29,
        name: "DescribeAcls",
        min: 1,
        max: 3,
        flex: 2,
        body: DESCRIBE_ACLS_REQUEST,
    },
    Api {
        key: 30,
        name: "CreateAcls",
        min: 1,
        max: 3,
        flex: 2,
        body: CREATE_ACLS_REQUEST,
    },
    Api {
        key: 31,
        name: "DeleteAcls",
        min: 1,
        max: 3,
        flex: 2,
        body: DELETE_ACLS_REQUEST,
    },
    Api {
        key: 32,
        name: "DescribeConfigs",
        min: 1,
        max: 4,
        flex: 4,
        body: DESCRIBE_CONFIGS_REQUEST,
    },
    Api {
        key: 33,
        name: "AlterConfigs",
        min: 0,
        max: 2,
        flex: 2,
        body: ALTER_CONFIGS_REQUEST,
    },
    Api {
        key: 35,
        name: "DescribeLogDirs",
        min: 1,
        max: 4,
        flex: 2,
        body: DESCRIBE_LOG_DIRS_REQUEST,
    },
    Api {
        key: 36,
        name: "SaslAuthenticate",
        min: 0,
        max: 2,
        flex: 2,
        body: SASL_AUTHENTICATE_REQUEST,
    },
    Api {
        key: 37,
        name: "CreatePartitions",
        min: 0,
        max: 3,
        flex: 2,
        body: CREATE_PARTITIONS_REQUEST,
    },
    Api {
        key: 42,
        name: "DeleteGroups",
        min: 0,
        max: 2,
        flex: 2,
        body: DELETE_GROUPS_REQUEST,
    },
    Api {
        key: 43,
        name: "ElectLeaders",
        min: 0,
        max: 2,
        flex: 2,
        body: ELECT_LEADERS_REQUEST,
    },
    Api {
        key: 44,
        name: "IncrementalAlterConfigs",
        min: 0,
        max: 1,
        flex: 1,
        body: INCREMENTAL_ALTER_CONFIGS_REQUEST,
    },
    Api {
        key: 45,
        name: "AlterPartitionReassignments",
        min: 0,
        max: 1,
        flex: 0,
        body: ALTER_PARTITION_REASSIGNMENTS_REQUEST,
    },
    Api {
        key: 46,
        name: "ListPartitionReassignments",
        min: 0,
        max: 0,
        flex: 0,
        body: LIST_PARTITION_REASSIGNMENTS_REQUEST,
    },
    Api {
        key: 47,
        name: "OffsetDelete",
        min: 0,
        max: 0,
        flex: NEVER,
        body: OFFSET_DELETE_REQUEST,
    },
    Api {
        key: 50,
        name: "DescribeUserScramCredentials",
        min: 0,
        max: 0,
        flex: 0,
        body: DESCRIBE_USER_SCRAM_CREDENTIALS_REQUEST,
    },
    Api {
        key: 51,
        name: "AlterUserScramCredentials",
        min: 0,
        max: 0,
        flex: 0,
        body: ALTER_USER_SCRAM_CREDENTIALS_REQUEST,
    },
    Api {
        key: 60,
        name: "DescribeCluster",
        min: 0,
        max: 1,
        flex: 0,
        body: DESCRIBE_CLUSTER_REQUEST,
    },
    Api {
        key: 61,
        name: "DescribeProducers",
        min: 0,
        max: 0,
        flex: 0,
        body: DESCRIBE_PRODUCERS_REQUEST,
    },
    Api {
        key: 65,
        name: "DescribeTransactions",
        min: 0,
        max: 0,
        flex: 0,
        body: DESCRIBE_TRANSACTIONS_REQUEST,
    },
    Api {
        key: 66,
        name: "ListTransactions",
        min: 0,
        max: 1,
        flex: 0,
        body: LIST_TRANSACTIONS_REQUEST,
    },
    Api {
        key: 68,
        name: "ConsumerGroupHeartbeat",
        min: 0,
        max: 1,
        flex: 0,
        body: CONSUMER_GROUP_HEARTBEAT_REQUEST,
    },
    Api {
        key: 69,
        name: "ConsumerGroupDescribe",
        min: 0,
        max: 1,
        flex: 0,
        body: CONSUMER_GROUP_DESCRIBE_REQUEST,
    },
    Api {
        key: 75,
        name: "DescribeTopicPartitions",
        min: 0,
        max: 0,
        flex: 0,
        body: DESCRIBE_TOPIC_PARTITIONS_REQUEST,
    },
];
