//! Shared by the targets: the first byte picks request options, the rest is
//! the body. Each target checks properties, not only "no crash": the same
//! request normalizes to the same output, and every failure is typed.

use tributary_adapter::{AdapterError, IdSource, Parsed, RawRequest, testing};

/// A request from fuzz input; the first byte chooses gzip and Content-Type.
pub fn request(data: &[u8]) -> RawRequest {
    let (flags, body) = data.split_first().map_or((0, data), |(f, b)| (*f, b));
    let mut req = RawRequest::new("fuzz", "production", body.to_vec(), testing::received_at())
        .with_ids(IdSource::sequential(0))
        .with_max_body_bytes(1 << 20);
    if flags & 1 != 0 {
        req = req.with_header("Content-Encoding", "gzip");
    }
    if flags & 2 != 0 {
        req = req.with_header("Content-Type", "application/json; charset=utf-8");
    }
    req
}

/// Runs `parse` twice on fresh requests and checks the properties.
pub fn check(data: &[u8], parse: impl Fn(&RawRequest) -> Result<Parsed, AdapterError>) {
    let first = parse(&request(data));
    let second = parse(&request(data));
    assert_eq!(testing::render(&first), testing::render(&second));
    match first {
        Ok(parsed) => {
            for problem in parsed.errors() {
                assert!(problem.field.starts_with('/'));
            }
        }
        Err(e) => assert!(!e.code().is_empty()),
    }
}
