//! Input: bytes as a produce request or a replica fetch would carry them. Runs both validations,
//! and for every batch the record parser (with decompression). The same input is tried a second
//! time with magic and CRC of its first batch made right, so the fuzzer reaches the record
//! parser without having to forge a CRC-32C. Any panic, abort or allocation over libFuzzer's
//! `-malloc_limit_mb` is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxka_log::batch::RecordBatchMut;
use oxka_log::TimestampType;

fn exercise(data: &[u8]) {
    let _ = oxka_log::validate_batches(data, 1 << 20);
    let _ = oxka_log::validate_replicated_batches(data);
    for batch in oxka_log::batch::batches(data) {
        let _ = batch.record_timestamps();
        if let Ok(payload) = batch.records_payload() {
            for record in batch.records(&payload) {
                let _ = record;
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    let mut fixed = data.to_vec();
    if fixed.len() > 16 {
        fixed[16] = 2;
    }
    if let Ok(mut batch) = RecordBatchMut::from_prefix(&mut fixed) {
        let max = batch.as_batch().max_timestamp();
        let ty = batch.as_batch().timestamp_type();
        // Flip the type twice: the second call recomputes the CRC over the original attributes.
        let other = match ty {
            TimestampType::CreateTime => TimestampType::LogAppendTime,
            TimestampType::LogAppendTime => TimestampType::CreateTime,
        };
        batch.set_max_timestamp(other, max);
        batch.set_max_timestamp(ty, max);
        exercise(&fixed);
    }
});
