//! Behaviour of `oxka_log::Log` through its public API. One test binary (modules below) to keep
//! link times down.

mod append_read;
mod compaction;
mod epochs;
mod randomized;
mod recovery;
mod retention;
mod roll_and_index;
mod support;
mod throughput;
mod timestamps;
mod truncation;
mod validation;
