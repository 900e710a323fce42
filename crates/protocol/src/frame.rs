//! Request framing: a 4-byte big-endian size, then the request header and body.
//!
//! The size is checked *before* any buffer is allocated for the frame: a frame shorter than a
//! request header's fixed part (api key, api version, correlation id = 8 bytes) or longer than
//! `socket.request.max.bytes` ends the connection. The request header is parsed here by hand
//! rather than by the codec, so that a hostile header can never make it panic or allocate.

use bytes::{Buf, Bytes};

/// Smallest frame that can hold a request header's fixed fields.
pub const MIN_FRAME_BYTES: usize = 8;

/// Why a frame or a request header was refused. Every variant ends the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame size {0} is smaller than the {MIN_FRAME_BYTES}-byte minimum")]
    TooShort(i64),
    #[error("frame size {size} exceeds socket.request.max.bytes {max}")]
    TooLarge { size: i64, max: usize },
    #[error("request header is truncated")]
    TruncatedHeader,
    #[error("client id is not valid UTF-8")]
    InvalidClientId,
}

/// Checks a frame size read from the wire and returns it as a length to read.
pub fn check_frame_size(size: i32, max_bytes: usize) -> Result<usize, FrameError> {
    let size_wide = i64::from(size);
    if size_wide < MIN_FRAME_BYTES as i64 {
        return Err(FrameError::TooShort(size_wide));
    }
    let size = size as usize;
    if size > max_bytes {
        return Err(FrameError::TooLarge {
            size: size_wide,
            max: max_bytes,
        });
    }
    Ok(size)
}

/// The request header (v0–v2) as every request carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// The fixed part of a header: enough to answer or close even when the rest is unusable.
pub fn peek_fixed_header(frame: &[u8]) -> Result<(i16, i16, i32), FrameError> {
    if frame.len() < MIN_FRAME_BYTES {
        return Err(FrameError::TruncatedHeader);
    }
    let mut b = frame;
    Ok((b.get_i16(), b.get_i16(), b.get_i32()))
}

/// Parses a request header of `header_version` (1 or 2; 0 is not used by any API we serve)
/// and returns it with the body that follows.
pub fn parse_request_header(
    mut frame: Bytes,
    header_version: i16,
) -> Result<(RequestHeader, Bytes), FrameError> {
    let (api_key, api_version, correlation_id) = peek_fixed_header(&frame)?;
    frame.advance(MIN_FRAME_BYTES);
    let mut client_id = None;
    if header_version >= 1 {
        if frame.remaining() < 2 {
            return Err(FrameError::TruncatedHeader);
        }
        let len = frame.get_i16();
        if len >= 0 {
            let len = len as usize;
            if frame.remaining() < len {
                return Err(FrameError::TruncatedHeader);
            }
            let raw = frame.split_to(len);
            client_id = Some(
                std::str::from_utf8(&raw)
                    .map_err(|_| FrameError::InvalidClientId)?
                    .to_owned(),
            );
        }
    }
    if header_version >= 2 {
        skip_tagged_fields(&mut frame)?;
    }
    Ok((
        RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        },
        frame,
    ))
}

fn skip_tagged_fields(buf: &mut Bytes) -> Result<(), FrameError> {
    let count = read_unsigned_varint(buf)?;
    for _ in 0..count {
        let _tag = read_unsigned_varint(buf)?;
        let size = read_unsigned_varint(buf)? as usize;
        if buf.remaining() < size {
            return Err(FrameError::TruncatedHeader);
        }
        buf.advance(size);
    }
    Ok(())
}

fn read_unsigned_varint(buf: &mut Bytes) -> Result<u32, FrameError> {
    let mut value: u32 = 0;
    for shift in (0..35).step_by(7) {
        if !buf.has_remaining() {
            return Err(FrameError::TruncatedHeader);
        }
        let byte = buf.get_u8();
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(FrameError::TruncatedHeader)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_outside_bounds_are_refused_before_allocation() {
        assert_eq!(check_frame_size(-1, 100), Err(FrameError::TooShort(-1)));
        assert_eq!(check_frame_size(7, 100), Err(FrameError::TooShort(7)));
        assert!(matches!(
            check_frame_size(i32::MAX, 100),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(check_frame_size(8, 100), Ok(8));
    }

    #[test]
    fn header_v2_with_tagged_fields_and_null_client_id() {
        let mut raw = vec![0, 3, 0, 12, 0, 0, 0, 7, 0xff, 0xff];
        raw.extend_from_slice(&[1, 5, 2, 0xaa, 0xbb, 0x42]);
        let (h, body) = parse_request_header(Bytes::from(raw), 2).unwrap();
        assert_eq!((h.api_key, h.api_version, h.correlation_id), (3, 12, 7));
        assert_eq!(h.client_id, None);
        assert_eq!(&body[..], &[0x42]);
    }

    #[test]
    fn truncated_client_id_is_an_error() {
        let raw = vec![0, 3, 0, 1, 0, 0, 0, 7, 0, 50, b'a'];
        assert_eq!(
            parse_request_header(Bytes::from(raw), 1).unwrap_err(),
            FrameError::TruncatedHeader
        );
    }
}
