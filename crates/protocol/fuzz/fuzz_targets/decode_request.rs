//! Input: api key (2 bytes, big-endian), api version (2 bytes), request body. Runs the guarded
//! decode; any panic, abort or allocation over libFuzzer's `-malloc_limit_mb` is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let api_key = i16::from_be_bytes([data[0], data[1]]);
    let api_version = i16::from_be_bytes([data[2], data[3]]);
    let body = bytes::Bytes::copy_from_slice(&data[4..]);
    let _ = oxka_protocol::guard::decode_request_body(api_key, api_version, body);
});
