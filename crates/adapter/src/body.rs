//! Body decoding: `Content-Encoding` (gzip, deflate) with a cap on the
//! decompressed size, and `Content-Type` / charset tolerance.

use std::{borrow::Cow, io::Read};

use flate2::read::{GzDecoder, ZlibDecoder};

use crate::{AdapterError, RawRequest};

/// Decodes the request body: decompresses it (refusing anything that would
/// grow past `req.max_body_bytes`), checks the charset is UTF-8, and strips
/// a UTF-8 byte-order mark.
///
/// A missing or wrong `Content-Type` is tolerated (Freshpaint omits it, and
/// senders misconfigure it); only a charset other than UTF-8 is refused,
/// because JSON on the wire is UTF-8.
pub fn decode_body(req: &RawRequest) -> Result<Cow<'_, [u8]>, AdapterError> {
    check_charset(req.header("content-type"))?;
    let cap = req.max_body_bytes;
    let decoded = match content_encoding(req.header("content-encoding"))? {
        Encoding::Identity => {
            if req.body.len() > cap {
                return Err(too_large(cap));
            }
            Cow::Borrowed(req.body.as_slice())
        }
        Encoding::Gzip => Cow::Owned(inflate(GzDecoder::new(req.body.as_slice()), cap)?),
        Encoding::Deflate => Cow::Owned(inflate(ZlibDecoder::new(req.body.as_slice()), cap)?),
    };
    Ok(strip_bom(decoded))
}

enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

fn content_encoding(header: Option<&str>) -> Result<Encoding, AdapterError> {
    let Some(value) = header else {
        return Ok(Encoding::Identity);
    };
    // A list such as `gzip, identity` is applied right to left; more than one
    // real coding on a webhook body has never been seen, so refuse it.
    let codings: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .collect();
    match codings.as_slice() {
        [] => Ok(Encoding::Identity),
        [one] if one.eq_ignore_ascii_case("gzip") || one.eq_ignore_ascii_case("x-gzip") => {
            Ok(Encoding::Gzip)
        }
        [one] if one.eq_ignore_ascii_case("deflate") => Ok(Encoding::Deflate),
        _ => Err(AdapterError::UnsupportedEncoding {
            code: "unsupported_content_encoding",
            message: format!(
                "Content-Encoding `{value}` is not supported; send identity, gzip or deflate"
            ),
        }),
    }
}

fn check_charset(content_type: Option<&str>) -> Result<(), AdapterError> {
    let Some(content_type) = content_type else {
        return Ok(());
    };
    for param in content_type.split(';').skip(1) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("charset") {
            continue;
        }
        let value = value.trim().trim_matches('"');
        let utf8 = ["utf-8", "utf8", "us-ascii", "ascii"]
            .iter()
            .any(|c| value.eq_ignore_ascii_case(c));
        if !utf8 {
            return Err(AdapterError::UnsupportedEncoding {
                code: "unsupported_charset",
                message: format!("charset `{value}` is not supported; JSON bodies must be UTF-8"),
            });
        }
    }
    Ok(())
}

/// Reads at most `cap + 1` bytes so a gzip bomb stops at the cap instead of
/// filling memory.
fn inflate(reader: impl Read, cap: usize) -> Result<Vec<u8>, AdapterError> {
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| AdapterError::UnsupportedEncoding {
            code: "invalid_compressed_body",
            message: format!("the compressed body could not be decoded: {e}"),
        })?;
    if out.len() > cap {
        return Err(too_large(cap));
    }
    Ok(out)
}

fn too_large(cap: usize) -> AdapterError {
    AdapterError::TooLarge {
        code: "body_too_large",
        message: format!("the body is larger than {cap} bytes after decompression"),
    }
}

fn strip_bom(body: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    match body {
        Cow::Borrowed(b) => Cow::Borrowed(b.strip_prefix(BOM).unwrap_or(b)),
        Cow::Owned(mut v) => {
            if v.starts_with(BOM) {
                v.drain(..BOM.len());
            }
            Cow::Owned(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use chrono::DateTime;
    use flate2::{Compression, write::GzEncoder};

    use super::*;
    use crate::ErrorCategory;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn req(body: Vec<u8>) -> RawRequest {
        RawRequest::new("s", "e", body, DateTime::from_timestamp_millis(0).unwrap())
    }

    #[test]
    fn gzip_bodies_are_decoded() {
        let r = req(gzip(br#"{"a":1}"#)).with_header("Content-Encoding", "GZIP");
        assert_eq!(&*decode_body(&r).unwrap(), br#"{"a":1}"#);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_cap() {
        // 8 MiB of zeros compresses to about 8 KiB: a 1000x bomb against
        // the default 4 MiB cap.
        let bomb = gzip(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 << 10);
        let r = req(bomb).with_header("content-encoding", "gzip");
        let err = decode_body(&r).unwrap_err();
        assert_eq!(err.category(), ErrorCategory::TooLarge);
    }

    #[test]
    fn the_cap_is_inclusive_and_applies_to_plain_bodies() {
        let r = req(gzip(&[b' '; 100]))
            .with_header("content-encoding", "gzip")
            .with_max_body_bytes(100);
        assert_eq!(decode_body(&r).unwrap().len(), 100);
        let r = req(vec![b' '; 101]).with_max_body_bytes(100);
        assert_eq!(decode_body(&r).unwrap_err().code(), "body_too_large");
    }

    #[test]
    fn unknown_encodings_and_charsets_are_refused() {
        let r = req(b"{}".to_vec()).with_header("content-encoding", "br");
        assert_eq!(
            decode_body(&r).unwrap_err().category(),
            ErrorCategory::UnsupportedEncoding
        );
        let r = req(b"{}".to_vec()).with_header("content-type", "application/json; charset=utf-16");
        assert_eq!(decode_body(&r).unwrap_err().code(), "unsupported_charset");
        let r = req(b"not gzip".to_vec()).with_header("content-encoding", "gzip");
        assert_eq!(
            decode_body(&r).unwrap_err().code(),
            "invalid_compressed_body"
        );
    }

    #[test]
    fn content_type_is_tolerated_and_the_bom_stripped() {
        for ct in [
            None,
            Some("text/plain"),
            Some("application/json; charset=UTF-8"),
            Some("application/json;charset=\"utf-8\""),
        ] {
            let mut r = req(b"\xEF\xBB\xBF{}".to_vec());
            if let Some(ct) = ct {
                r = r.with_header("Content-Type", ct);
            }
            assert_eq!(&*decode_body(&r).unwrap(), b"{}");
        }
        let r = req(gzip(b"\xEF\xBB\xBF[]")).with_header("content-encoding", "gzip, identity");
        assert_eq!(&*decode_body(&r).unwrap(), b"[]");
    }
}
